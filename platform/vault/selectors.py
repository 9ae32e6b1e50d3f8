"""Reading secrets' metadata (never their values)."""

from uuid import UUID

from django.db.models import QuerySet

from fireflow.errors import Forbidden, NotFound
from tenants.context import OrgContext, WorkspaceContext
from tenants.models import AuditEvent

from .models import Secret


def require_personal_scope(ctx: OrgContext) -> None:
    """A personal vault is reached by its owner, not by an API key limited to a workspace."""
    if ctx.role is None:
        raise Forbidden("This API key is limited to one workspace.", code="key_scope")


def personal_secrets(*, ctx: OrgContext) -> QuerySet[Secret]:
    require_personal_scope(ctx)
    return (
        Secret.objects.filter(org=ctx.org, owner=ctx.user)
        .select_related("owner", "created_by")
        .order_by("name")
    )


def shared_secrets(*, wctx: WorkspaceContext) -> QuerySet[Secret]:
    return (
        Secret.objects.filter(org=wctx.org, workspace=wctx.workspace)
        .select_related("workspace", "created_by")
        .order_by("name")
    )


def _one(queryset: QuerySet[Secret], secret_id: UUID) -> Secret:
    secret = queryset.filter(id=secret_id).first()
    if secret is None:
        raise NotFound("No secret with this id here.")
    return secret


def personal_secret(*, ctx: OrgContext, secret_id: UUID) -> Secret:
    return _one(personal_secrets(ctx=ctx), secret_id)


def shared_secret(*, wctx: WorkspaceContext, secret_id: UUID) -> Secret:
    return _one(shared_secrets(wctx=wctx), secret_id)


def last_uses(secret: Secret, limit: int = 20) -> list[dict[str, object]]:
    """The secret's most recent uses by runs (from the audit log): when, which run and node,
    on whose behalf."""
    events = AuditEvent.objects.filter(
        org_id=secret.org_id, action="secret.used", target_id=str(secret.id)
    ).order_by("-created_at")[:limit]
    return [
        {
            "at": event.created_at,
            "run_id": (event.after or {}).get("run"),
            "node_id": (event.after or {}).get("node"),
            "caller_email": event.actor_email or None,
        }
        for event in events
    ]
