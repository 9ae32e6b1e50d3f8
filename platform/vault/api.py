"""Vault API: a member's personal secrets in an organisation (`/api/orgs/{org}/secrets`) and
a workspace's shared secrets (`/api/orgs/{org}/workspaces/{ws}/secrets`; members see the
names, owners manage them). Values go in and are never returned."""

from typing import Any
from uuid import UUID

from django.http import HttpRequest
from ninja import Router, Status

from fireflow.errors import NotFound
from tenants.gate import actor_of, gate, org_ctx, workspace_ctx

from . import rewrap, selectors, services
from .models import Secret
from .schemas import (
    KeyRotationOut,
    SecretIn,
    SecretOut,
    SecretPatchIn,
    SecretUseOut,
    SecretValueIn,
    VaultStatusOut,
)

personal_router = Router(tags=["vault"], auth=gate("org"))
shared_router = Router(tags=["vault"], auth=gate("workspace"))


@personal_router.get("", response=list[SecretOut], summary="Your secrets in this organisation")
def personal_list(request: HttpRequest):  # type: ignore[no-untyped-def]
    return list(selectors.personal_secrets(ctx=org_ctx(request)))


@personal_router.post("", response={201: SecretOut}, summary="Store a secret of yours")
def personal_create(request: HttpRequest, payload: SecretIn) -> Status[Secret]:
    secret = services.secret_create(
        ctx=org_ctx(request),
        name=payload.name,
        value=payload.value.get_secret_value(),
        description=payload.description,
        allowed_flows=payload.allowed_flows,
    )
    return Status(201, secret)


@personal_router.post(
    "/rotate-key",
    response=KeyRotationOut,
    summary="Rotate your vault key: a new epoch, every secret of yours rewrapped",
)
def personal_rotate_key(request: HttpRequest) -> dict[str, int]:
    return services.rotate_owner_key(ctx=org_ctx(request))


@personal_router.get("/{secret_id}", response=SecretOut)
def personal_detail(request: HttpRequest, secret_id: UUID) -> Secret:
    return selectors.personal_secret(ctx=org_ctx(request), secret_id=secret_id)


@personal_router.get(
    "/{secret_id}/uses", response=list[SecretUseOut], summary="The secret's last uses by runs"
)
def personal_uses(request: HttpRequest, secret_id: UUID) -> list[dict[str, Any]]:
    secret = selectors.personal_secret(ctx=org_ctx(request), secret_id=secret_id)
    return selectors.last_uses(secret)


@personal_router.patch("/{secret_id}", response=SecretOut, summary="Description, allowed flows")
def personal_update(request: HttpRequest, secret_id: UUID, payload: SecretPatchIn) -> Secret:
    ctx = org_ctx(request)
    secret = selectors.personal_secret(ctx=ctx, secret_id=secret_id)
    return services.secret_update(
        ctx=ctx, secret=secret, description=payload.description, allowed_flows=payload.allowed_flows
    )


@personal_router.put("/{secret_id}/value", response=SecretOut, summary="Rotate the value")
def personal_rotate(request: HttpRequest, secret_id: UUID, payload: SecretValueIn) -> Secret:
    ctx = org_ctx(request)
    secret = selectors.personal_secret(ctx=ctx, secret_id=secret_id)
    return services.secret_rotate(ctx=ctx, secret=secret, value=payload.value.get_secret_value())


@personal_router.delete("/{secret_id}", response={204: None})
def personal_delete(request: HttpRequest, secret_id: UUID) -> Status[None]:
    ctx = org_ctx(request)
    services.secret_delete(ctx=ctx, secret=selectors.personal_secret(ctx=ctx, secret_id=secret_id))
    return Status(204, None)


@shared_router.get("", response=list[SecretOut], summary="The workspace's shared secrets")
def shared_list(request: HttpRequest):  # type: ignore[no-untyped-def]
    return list(selectors.shared_secrets(wctx=workspace_ctx(request)))


@shared_router.post("", response={201: SecretOut}, summary="Store a shared secret (owners)")
def shared_create(request: HttpRequest, payload: SecretIn) -> Status[Secret]:
    wctx = workspace_ctx(request)
    secret = services.secret_create(
        ctx=wctx.org_ctx,
        wctx=wctx,
        name=payload.name,
        value=payload.value.get_secret_value(),
        description=payload.description,
        allowed_flows=payload.allowed_flows,
    )
    return Status(201, secret)


@shared_router.post(
    "/rotate-key",
    response=KeyRotationOut,
    summary="Rotate the workspace's vault key (owners)",
)
def shared_rotate_key(request: HttpRequest) -> dict[str, int]:
    wctx = workspace_ctx(request)
    return services.rotate_owner_key(ctx=wctx.org_ctx, wctx=wctx)


@shared_router.get("/{secret_id}", response=SecretOut)
def shared_detail(request: HttpRequest, secret_id: UUID) -> Secret:
    return selectors.shared_secret(wctx=workspace_ctx(request), secret_id=secret_id)


@shared_router.get(
    "/{secret_id}/uses", response=list[SecretUseOut], summary="The secret's last uses by runs"
)
def shared_uses(request: HttpRequest, secret_id: UUID) -> list[dict[str, Any]]:
    secret = selectors.shared_secret(wctx=workspace_ctx(request), secret_id=secret_id)
    return selectors.last_uses(secret)


@shared_router.patch(
    "/{secret_id}", response=SecretOut, summary="Description, allowed flows (owners)"
)
def shared_update(request: HttpRequest, secret_id: UUID, payload: SecretPatchIn) -> Secret:
    wctx = workspace_ctx(request)
    secret = selectors.shared_secret(wctx=wctx, secret_id=secret_id)
    return services.secret_update(
        ctx=wctx.org_ctx,
        wctx=wctx,
        secret=secret,
        description=payload.description,
        allowed_flows=payload.allowed_flows,
    )


@shared_router.put("/{secret_id}/value", response=SecretOut, summary="Rotate the value (owners)")
def shared_rotate(request: HttpRequest, secret_id: UUID, payload: SecretValueIn) -> Secret:
    wctx = workspace_ctx(request)
    secret = selectors.shared_secret(wctx=wctx, secret_id=secret_id)
    return services.secret_rotate(
        ctx=wctx.org_ctx, wctx=wctx, secret=secret, value=payload.value.get_secret_value()
    )


@shared_router.delete("/{secret_id}", response={204: None}, summary="Delete (owners)")
def shared_delete(request: HttpRequest, secret_id: UUID) -> Status[None]:
    wctx = workspace_ctx(request)
    secret = selectors.shared_secret(wctx=wctx, secret_id=secret_id)
    services.secret_delete(ctx=wctx.org_ctx, wctx=wctx, secret=secret)
    return Status(204, None)


admin_router = Router(tags=["vault"], auth=gate("user"))


def _staff(request: HttpRequest) -> None:
    if not actor_of(request).user.is_superuser:
        raise NotFound("Not found.")  # platform staff only; nobody else learns it exists


@admin_router.get("", response=VaultStatusOut, summary="Master key versions in use (staff)")
def vault_status(request: HttpRequest) -> dict[str, Any]:
    _staff(request)
    return rewrap.status()


@admin_router.post(
    "/rewrap",
    response={202: VaultStatusOut},
    summary="Move every secret to the current master key version (staff)",
)
def vault_rewrap(request: HttpRequest) -> Status[dict[str, Any]]:
    _staff(request)
    current = rewrap.status()
    job = rewrap.start() if current["rows_to_rewrap"] else None
    return Status(202, {**current, "job_id": job})
