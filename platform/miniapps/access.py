"""Who is using a published app: the one place that finds an app by its address and decides
the visitor's identity for it.

A visitor is, in this order: the holder of an app key of this app (``Authorization: Bearer
ffa_...``), a signed-in member of the app's organisation, or, where the app is public, an
anonymous browser with a visitor token of this app (``X-App-Visitor``). An unpublished app,
an unknown address and another organisation's app all answer 404."""

from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from uuid import UUID

from django.http import HttpRequest
from django.utils import timezone
from ninja.utils import check_csrf

from fireflow.errors import Forbidden, NotAuthenticated, NotFound
from tenants.gate import api_key_authenticate
from tenants.models import Membership
from tenants.tokens import digests_match

from .models import Access, App, AppKey
from .tokens import app_key_prefix, new_visitor_token, visitor_of_token

VISITOR_HEADER = "X-App-Visitor"
_SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}
_LAST_USED_RESOLUTION = timedelta(minutes=1)


@dataclass(frozen=True)
class Visitor:
    """`key` names the visitor for their runs and rate limit: ``user:<id>``, ``key:<id>`` or
    ``anon:<id>``. `token` is set when a new anonymous identity was just issued."""

    key: str
    kind: str  # member, key, anonymous
    user_id: UUID | None = None
    email: str | None = None
    app_key: AppKey | None = None
    token: str | None = None


def published_app(org_slug: str, app_slug: str) -> App:
    app = (
        App.objects.select_related("org", "workspace", "version", "flow")
        .filter(org__slug=org_slug, slug=app_slug, published=True)
        .first()
    )
    if app is None:
        raise _not_found(org_slug, app_slug)
    return app


def _not_found(org_slug: str, app_slug: str) -> NotFound:
    return NotFound(
        f"No app at /apps/{org_slug}/{app_slug}: the address is wrong or the app is not published.",
        code="app_not_found",
    )


def _bearer(request: HttpRequest) -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


def _app_key(app: App, raw: str) -> AppKey:
    prefix = app_key_prefix(raw)
    key = (
        AppKey.objects.filter(prefix=prefix, app=app, revoked_at__isnull=True).first()
        if prefix
        else None
    )
    if key is None or not digests_match(raw, key.key_hash):
        raise NotAuthenticated(
            "This key does not open this app: it is revoked, mistyped, or the key of another "
            "app. Ask the app's owner for a key of this app.",
            code="invalid_app_key",
        )
    now = timezone.now()
    if key.last_used_at is None or now - key.last_used_at > _LAST_USED_RESOLUTION:
        AppKey.objects.filter(pk=key.pk).update(last_used_at=now)
    return key


def visitor(
    request: HttpRequest, app: App, *, issue: bool = False, token_in_query: bool = False
) -> Visitor:
    """The visitor making `request`; with `issue`, an anonymous browser without a token of
    this app gets a new identity (the app's page asks for one when it opens). With
    `token_in_query`, the token may come as `?visitor=` (EventSource sends no headers).

    Members (signed in, or through an API key of theirs) use every app of their
    organisation; anyone else signed in meets a members-only app as a missing one."""
    raw = _bearer(request)
    user: Any = request.user
    if raw is not None and raw.startswith("ffa_"):
        key = _app_key(app, raw)
        return Visitor(key=f"key:{key.id}", kind="key", app_key=key)
    if raw is not None:
        api_key = api_key_authenticate(raw)
        if api_key is None:
            raise NotAuthenticated(
                "This key is not valid: send an app key ('Bearer ffa_...') or a member's API key.",
                code="invalid_key",
            )
        # A key reaches what it was made for: its organisation, and its workspace if scoped.
        if api_key.org_id != app.org_id or api_key.workspace_id not in (None, app.workspace_id):
            raise _not_found(app.org.slug, app.slug)
        user = api_key.user
    elif user.is_authenticated and request.method not in _SAFE_METHODS and check_csrf(request):
        raise Forbidden("CSRF check failed: reload the page and try again.", code="csrf_failed")
    if user.is_authenticated and Membership.objects.filter(org=app.org, user=user).exists():
        return Visitor(key=f"user:{user.pk}", kind="member", user_id=user.pk, email=user.email)
    if app.access == Access.KEY:
        raise NotAuthenticated(
            "This app is used with an app key: send it as 'Authorization: Bearer ffa_...'.",
            code="app_key_required",
        )
    if app.access == Access.MEMBERS and user.is_authenticated:
        raise _not_found(app.org.slug, app.slug)
    if app.access == Access.MEMBERS:
        raise NotAuthenticated(
            f"This app is for members of {app.org.name}: sign in to use it.",
            code="sign_in_required",
        )
    token = request.headers.get(VISITOR_HEADER, "")
    if not token and token_in_query:
        token = request.GET.get("visitor", "")
    anonymous = visitor_of_token(token, app.id) if token else None
    if anonymous is not None:
        return Visitor(key=f"anon:{anonymous}", kind="anonymous")
    if issue:
        token, anonymous = new_visitor_token(app.id)
        return Visitor(key=f"anon:{anonymous}", kind="anonymous", token=token)
    raise NotAuthenticated(
        f"No visitor token: open the app first (GET /api/apps/{app.org.slug}/{app.slug}) and "
        f"send the visitor_token it gives as the {VISITOR_HEADER} header.",
        code="visitor_token_required",
    )
