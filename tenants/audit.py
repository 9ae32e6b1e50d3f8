"""Audit rows, written inside the transaction of the change they record."""

from typing import Any

from .context import Actor
from .models import AuditEvent, Organization, Workspace


def audit_record(
    *,
    org: Organization,
    actor: Actor,
    action: str,
    target_type: str,
    target_id: object = "",
    target_label: str = "",
    workspace: Workspace | None = None,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
) -> AuditEvent:
    return AuditEvent.objects.create(
        org=org,
        workspace=workspace,
        actor=actor.user,
        actor_email=actor.user.email,
        api_key=actor.api_key,
        action=action,
        target_type=target_type,
        target_id=str(target_id),
        target_label=target_label,
        before=before,
        after=after,
        request_id=actor.request_id,
        ip=actor.ip,
    )
