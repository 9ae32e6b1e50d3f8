"""Tenancy resolution and access checks: the one place that decides who sees what.

Workspace roles are django-guardian object permissions assigned to the user on the workspace
(read from its direct-foreign-key table, never through guardian's superuser shortcut: platform
staff get no tenant access through the API).

Missing and forbidden objects both raise NotFound, so ids of other tenants reveal nothing.
Only object permissions on the workspace count: a global permission never opens one."""

from uuid import UUID

from django.db.models import QuerySet

from fireflow.errors import NotFound

from .context import Actor, OrgContext, WorkspaceContext
from .models import Membership, Workspace, WorkspaceUserObjectPermission
from .roles import (
    MANAGER_ROLES,
    OrgRole,
    WorkspaceRole,
    effective_org_role,
    min_workspace_role,
    workspace_role_at_least,
    workspace_role_from_perms,
)

_ORG_NOT_FOUND = "No organisation with this slug, or you are not a member of it."
_WORKSPACE_NOT_FOUND = "No workspace with this id in this organisation that you can see."


def resolve_org(actor: Actor, org_slug: str) -> OrgContext:
    """Build the context for `actor` in the organisation `org_slug`, or raise NotFound."""
    membership = (
        Membership.objects.select_related("org").filter(org__slug=org_slug, user=actor.user).first()
    )
    if membership is None:
        raise NotFound(_ORG_NOT_FOUND)
    held = OrgRole(membership.role)
    key = actor.api_key
    if key is None:
        return OrgContext(org=membership.org, actor=actor, membership=membership, role=held)
    if key.org_id != membership.org_id:
        raise NotFound(_ORG_NOT_FOUND)
    if key.workspace_id is not None:
        return OrgContext(
            org=membership.org,
            actor=actor,
            membership=membership,
            role=None,
            key_workspace_id=key.workspace_id,
            key_workspace_cap=WorkspaceRole(key.role),
        )
    role = effective_org_role(held, OrgRole(key.role))
    if role is None:
        raise NotFound(_ORG_NOT_FOUND)
    return OrgContext(org=membership.org, actor=actor, membership=membership, role=role)


def workspace_role_of(ctx: OrgContext, workspace: Workspace) -> WorkspaceRole | None:
    """The role the actor of `ctx` holds on `workspace` (None: it may not see it)."""
    if workspace.org_id != ctx.org.id:
        return None
    if ctx.key_workspace_id is None and ctx.role in MANAGER_ROLES:
        return WorkspaceRole.OWNER  # as workspace_roles has it, without reading it again
    return workspace_roles(ctx, only=workspace.id).get(workspace.id)


def access_workspace(
    ctx: OrgContext, workspace_id: UUID | str, needed: WorkspaceRole = WorkspaceRole.VIEWER
) -> WorkspaceContext:
    """The workspace `workspace_id` of ctx's organisation, if the actor holds `needed` on it.

    Raises NotFound otherwise, whether it is missing, another tenant's, or hidden."""
    try:
        workspace_uuid = workspace_id if isinstance(workspace_id, UUID) else UUID(workspace_id)
    except ValueError:
        raise NotFound(_WORKSPACE_NOT_FOUND) from None
    workspace = Workspace.objects.filter(org=ctx.org, id=workspace_uuid).first()
    if workspace is None:
        raise NotFound(_WORKSPACE_NOT_FOUND)
    role = workspace_role_of(ctx, workspace)
    if role is None or not workspace_role_at_least(role, needed):
        raise NotFound(_WORKSPACE_NOT_FOUND)
    return WorkspaceContext(org_ctx=ctx, workspace=workspace, role=role)


def restrict_workspaces(ctx: OrgContext, queryset: QuerySet[Workspace]) -> QuerySet[Workspace]:
    """Narrow `queryset` to the workspaces of ctx's organisation the actor may view."""
    return queryset.filter(org=ctx.org, id__in=list(workspace_roles(ctx)))


def workspace_roles(ctx: OrgContext, only: UUID | None = None) -> dict[UUID, WorkspaceRole]:
    """The actor's role on each workspace of ctx's organisation it may see (or on `only`),
    in one query. Organisation owners and admins act as owners of every workspace; an API
    key's cap lowers what its user holds."""
    if ctx.key_workspace_id is not None:
        if only is not None and only != ctx.key_workspace_id:
            return {}
        only = ctx.key_workspace_id
        acting: OrgRole | None = OrgRole(ctx.membership.role)
    else:
        acting = ctx.role
    held: dict[UUID, WorkspaceRole] = {}
    if acting in MANAGER_ROLES:
        workspaces = Workspace.objects.filter(org=ctx.org)
        if only is not None:
            workspaces = workspaces.filter(id=only)
        held = dict.fromkeys(workspaces.values_list("id", flat=True), WorkspaceRole.OWNER)
    elif acting == OrgRole.MEMBER:
        rows = WorkspaceUserObjectPermission.objects.filter(
            user=ctx.user, content_object__org=ctx.org
        )
        if only is not None:
            rows = rows.filter(content_object_id=only)
        perms: dict[UUID, set[str]] = {}
        for ws_id, codename in rows.values_list("content_object_id", "permission__codename"):
            perms.setdefault(ws_id, set()).add(codename)
        for ws_id, codes in perms.items():
            if (role := workspace_role_from_perms(frozenset(codes))) is not None:
                held[ws_id] = role
    if ctx.key_workspace_id is None:
        return held
    return {
        ws_id: capped
        for ws_id, role in held.items()
        if (capped := min_workspace_role(role, ctx.key_workspace_cap)) is not None
    }
