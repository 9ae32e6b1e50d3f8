"""Storing, rotating and deleting secrets, and opening one for a run. Values are sealed on
the way in (envelope.py, with the owner's current key epoch) and never leave this module
except through `reveal`, which only the worker's secret source calls."""

import re
import uuid
from typing import Any

from django.db import transaction
from django.utils import timezone

from fireflow.errors import Conflict, InvalidInput
from tenants.audit import audit_record
from tenants.context import OrgContext, WorkspaceContext
from tenants.roles import WorkspaceRole

from .envelope import Context, open_sealed, rewrap, seal
from .keys import master_keys
from .models import KeyEpoch, Secret
from .selectors import require_personal_scope

PURPOSE = "secret"
NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_.-]{0,99}$")
MAX_VALUE_BYTES = 16 * 1024


def envelope_context(secret: Secret) -> Context:
    return Context(
        tenant=str(secret.org_id), owner=secret.owner_key, secret_id=str(secret.id), purpose=PURPOSE
    )


def _current_epoch(org_id: Any, owner_key: str) -> int:
    epoch, _ = KeyEpoch.objects.get_or_create(org_id=org_id, owner_key=owner_key)
    return int(epoch.epoch)


def _check(name: str | None, value: str | None) -> None:
    problems = {}
    if name is not None and not NAME.match(name):
        problems["name"] = (
            "Use 1 to 100 letters, digits, '_', '-' or '.', starting with a letter "
            "(nodes refer to the secret by this name)."
        )
    if value is not None and not value:
        problems["value"] = "The value is empty."
    elif value is not None and len(value.encode()) > MAX_VALUE_BYTES:
        problems["value"] = f"The value is over {MAX_VALUE_BYTES // 1024} KB."
    if problems:
        raise InvalidInput(
            "The secret was not stored: " + " ".join(problems.values()), fields=problems
        )


def _seal_into(secret: Secret, value: str) -> None:
    keys = master_keys()
    secret.epoch = _current_epoch(secret.org_id, secret.owner_key)
    secret.master_version = keys.current
    secret.sealed = seal(keys, envelope_context(secret), secret.epoch, value.encode())


def _require_manager(wctx: WorkspaceContext) -> None:
    wctx.require(WorkspaceRole.OWNER, action="manage its shared secrets")


@transaction.atomic
def secret_create(
    *,
    ctx: OrgContext,
    name: str,
    value: str,
    description: str = "",
    wctx: WorkspaceContext | None = None,
    allowed_flows: list[Any] | None = None,
) -> Secret:
    """A personal secret of the actor (no `wctx`) or a shared one of the workspace."""
    _check(name, value)
    flows = _flows_of(ctx, allowed_flows or [])
    if wctx is not None:
        _require_manager(wctx)
        taken = Secret.objects.filter(workspace=wctx.workspace, name=name).exists()
        secret = Secret(id=uuid.uuid4(), org=ctx.org, workspace=wctx.workspace)
    else:
        require_personal_scope(ctx)
        taken = Secret.objects.filter(org=ctx.org, owner=ctx.user, name=name).exists()
        secret = Secret(id=uuid.uuid4(), org=ctx.org, owner=ctx.user)
    if taken:
        raise Conflict(
            f"There is already a secret named '{name}' here: rotate its value instead.",
            code="secret_exists",
        )
    secret.name, secret.description, secret.created_by = name, description, ctx.user
    secret.allowed_flows = flows
    _seal_into(secret, value)
    secret.save(force_insert=True)
    _audit(ctx, secret, "secret.created", wctx)
    return secret


@transaction.atomic
def secret_rotate(
    *, ctx: OrgContext, secret: Secret, value: str, wctx: WorkspaceContext | None = None
) -> Secret:
    """Replace the value (the old one is gone)."""
    _check(None, value)
    if wctx is not None:
        _require_manager(wctx)
    secret = Secret.objects.select_for_update().get(id=secret.id)
    _seal_into(secret, value)
    secret.rotated_at = timezone.now()
    secret.save(update_fields=["sealed", "master_version", "epoch", "rotated_at"])
    _audit(ctx, secret, "secret.rotated", wctx)
    return secret


@transaction.atomic
def secret_update(
    *,
    ctx: OrgContext,
    secret: Secret,
    description: str | None = None,
    allowed_flows: list[Any] | None = None,
    wctx: WorkspaceContext | None = None,
) -> Secret:
    """Change what is said about a secret and which flows may use it (not its value)."""
    if wctx is not None:
        _require_manager(wctx)
    secret = Secret.objects.select_for_update().get(id=secret.id)
    before = {"allowed_flows": list(secret.allowed_flows)}
    if description is not None:
        secret.description = description
    if allowed_flows is not None:
        secret.allowed_flows = _flows_of(ctx, allowed_flows)
    secret.save(update_fields=["description", "allowed_flows"])
    audit_record(
        org=ctx.org,
        actor=ctx.actor,
        action="secret.updated",
        target_type="secret",
        target_id=secret.id,
        target_label=secret.name,
        workspace=wctx.workspace if wctx is not None else None,
        before=before,
        after={"allowed_flows": list(secret.allowed_flows)},
    )
    return secret


def _flows_of(ctx: OrgContext, flow_ids: list[Any]) -> list[str]:
    """The ids, checked to be flows of this organisation (named by index when not)."""
    from flows.models import Flow

    wanted = [str(f) for f in flow_ids]
    found = {
        str(f)
        for f in Flow.objects.filter(workspace__org=ctx.org, id__in=wanted).values_list(
            "id", flat=True
        )
    }
    unknown = {
        f"allowed_flows.{i}": "not a flow of this organisation"
        for i, f in enumerate(wanted)
        if f not in found
    }
    if unknown:
        raise InvalidInput("Some of the allowed flows do not exist here.", fields=unknown)
    return sorted(set(wanted))


@transaction.atomic
def secret_delete(*, ctx: OrgContext, secret: Secret, wctx: WorkspaceContext | None = None) -> None:
    if wctx is not None:
        _require_manager(wctx)
    _audit(ctx, secret, "secret.deleted", wctx)
    secret.delete()


@transaction.atomic
def rotate_owner_key(*, ctx: OrgContext, wctx: WorkspaceContext | None = None) -> dict[str, int]:
    """Per-owner rotation: the owner's key epoch goes up and every secret of theirs is
    rewrapped under it (the old epoch then opens nothing)."""
    if wctx is not None:
        _require_manager(wctx)
        owner_key, secrets = (
            f"workspace:{wctx.workspace.id}",
            Secret.objects.filter(workspace=wctx.workspace),
        )
    else:
        require_personal_scope(ctx)
        owner_key, secrets = (
            f"user:{ctx.user.id}",
            Secret.objects.filter(org=ctx.org, owner=ctx.user),
        )
    epoch, _ = KeyEpoch.objects.select_for_update().get_or_create(org=ctx.org, owner_key=owner_key)
    epoch.epoch += 1
    epoch.save(update_fields=["epoch"])
    keys = master_keys()
    moved = 0
    for secret in secrets.select_for_update().order_by("id"):
        secret.sealed = rewrap(
            keys, envelope_context(secret), secret.epoch, bytes(secret.sealed), epoch.epoch
        )
        secret.epoch, secret.master_version = epoch.epoch, keys.current
        secret.save(update_fields=["sealed", "epoch", "master_version"])
        moved += 1
    audit_record(
        org=ctx.org,
        actor=ctx.actor,
        action="vault.key_rotated",
        target_type="workspace" if wctx is not None else "user",
        target_id=wctx.workspace.id if wctx is not None else ctx.user.id,
        target_label=wctx.workspace.name if wctx is not None else ctx.user.email,
        workspace=wctx.workspace if wctx is not None else None,
        after={"epoch": epoch.epoch, "secrets": moved},
    )
    return {"epoch": epoch.epoch, "rewrapped": moved}


def _audit(ctx: OrgContext, secret: Secret, action: str, wctx: WorkspaceContext | None) -> None:
    audit_record(
        org=ctx.org,
        actor=ctx.actor,
        action=action,
        target_type="secret",
        target_id=secret.id,
        target_label=secret.name,
        workspace=wctx.workspace if wctx is not None else None,
        after={"name": secret.name, "scope": "workspace" if secret.workspace_id else "personal"},
    )


def reveal(secret: Secret) -> str:
    """The value, for the worker's secret source only (raises envelope.VaultError)."""
    return open_sealed(
        master_keys(), envelope_context(secret), secret.epoch, bytes(secret.sealed)
    ).decode()
