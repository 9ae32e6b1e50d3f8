"""The tenancy gate: ninja auth classes that authenticate the caller and, for scoped routers,
resolve the organisation (and workspace) named in the URL into a typed context.

Routers declare their scope once (``Router(auth=gate("org"))``); endpoints read the context
with `org_ctx(request)` / `workspace_ctx(request)` and never look tenants up themselves.

Order matters: the bearer gate comes first so programs (no cookie, no CSRF token) are judged
by their key alone; the session gate checks CSRF on unsafe methods."""

from datetime import timedelta
from typing import Any, Literal

from django.conf import settings
from django.db.models import Exists, OuterRef
from django.http import HttpRequest
from django.utils import timezone
from ninja.security import HttpBearer
from ninja.security.apikey import APIKeyCookie
from ninja.utils import check_csrf

from fireflow.errors import Forbidden
from fireflow.middleware import client_ip

from .access import access_workspace, resolve_org, workspace_roles
from .context import Actor, OrgContext, WorkspaceContext
from .models import ApiKey, Membership, Workspace
from .roles import WorkspaceRole
from .tokens import api_key_prefix, digests_match

Scope = Literal["user", "org", "workspace"]
_SAFE_METHODS = {"GET", "HEAD", "OPTIONS", "TRACE"}
_LAST_USED_RESOLUTION = timedelta(minutes=1)


def api_key_authenticate(raw: str) -> ApiKey | None:
    """The live key `raw` stands for, or None. A key dies with its owner's membership."""
    prefix = api_key_prefix(raw)
    if prefix is None:
        return None
    key = (
        ApiKey.objects.select_related("user", "org")
        .filter(prefix=prefix, revoked_at__isnull=True)
        .annotate(
            member=Exists(
                Membership.objects.filter(org_id=OuterRef("org_id"), user_id=OuterRef("user_id"))
            )
        )
        .first()
    )
    if key is None or not digests_match(raw, key.key_hash) or not key.user.is_active:
        return None
    if not key.member:  # type: ignore[attr-defined]
        return None
    now = timezone.now()
    if key.last_used_at is None or now - key.last_used_at > _LAST_USED_RESOLUTION:
        ApiKey.objects.filter(pk=key.pk).update(last_used_at=now)
    return key


def _actor(request: HttpRequest, user: Any, api_key: ApiKey | None) -> Actor:
    return Actor(
        user=user,
        api_key=api_key,
        request_id=getattr(request, "request_id", ""),
        ip=client_ip(request),
    )


def _scoped(
    request: HttpRequest, actor: Actor, scope: Scope
) -> Actor | OrgContext | WorkspaceContext:
    if scope == "user":
        return actor
    kwargs = request.resolver_match.kwargs if request.resolver_match else {}
    ctx = resolve_org(actor, kwargs.get("org_slug", ""))
    if scope == "org":
        return ctx
    return access_workspace(ctx, kwargs.get("ws_id", ""), WorkspaceRole.VIEWER)


class SessionGate(APIKeyCookie):
    """Browser sessions. CSRF is checked on unsafe methods once a session user is present."""

    param_name = settings.SESSION_COOKIE_NAME

    def __init__(self, scope: Scope) -> None:
        self.scope = scope
        super().__init__(csrf=False)

    def authenticate(self, request: HttpRequest, key: str | None) -> Any:
        if not request.user.is_authenticated:
            return None
        if request.method not in _SAFE_METHODS and check_csrf(request):
            raise Forbidden("CSRF check failed: reload the page and try again.", code="csrf_failed")
        return _scoped(request, _actor(request, request.user, None), self.scope)


class BearerGate(HttpBearer):
    """Programs: ``Authorization: Bearer ff_...`` API keys."""

    def __init__(self, scope: Scope) -> None:
        self.scope = scope
        super().__init__()

    def authenticate(self, request: HttpRequest, token: str) -> Any:
        key = api_key_authenticate(token)
        if key is None:
            return None
        return _scoped(request, _actor(request, key.user, key), self.scope)


def gate(scope: Scope) -> list[Any]:
    """The auth list for a router of the given scope."""
    return [BearerGate(scope), SessionGate(scope)]


def actor_of(request: HttpRequest) -> Actor:
    auth = request.auth  # type: ignore[attr-defined]
    assert isinstance(auth, Actor), "route is not behind gate('user')"
    return auth


def org_ctx(request: HttpRequest) -> OrgContext:
    auth = request.auth  # type: ignore[attr-defined]
    assert isinstance(auth, OrgContext), "route is not behind gate('org')"
    return auth


def workspace_ctx(request: HttpRequest) -> WorkspaceContext:
    auth = request.auth  # type: ignore[attr-defined]
    assert isinstance(auth, WorkspaceContext), "route is not behind gate('workspace')"
    return auth


def workspace_role_in_request(request: HttpRequest, workspace: Workspace) -> WorkspaceRole | None:
    """The actor's role on `workspace`, for responses listing many workspaces: the user's
    workspace permissions in the organisation are read once per request."""
    auth = request.auth  # type: ignore[attr-defined]
    ctx = auth.org_ctx if isinstance(auth, WorkspaceContext) else auth
    if not isinstance(ctx, OrgContext):
        return None
    roles = getattr(request, "_fireflow_workspace_roles", None)
    if roles is None:
        roles = workspace_roles(ctx)
        request._fireflow_workspace_roles = roles  # type: ignore[attr-defined]
    return roles.get(workspace.id)
