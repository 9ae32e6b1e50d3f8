"""Reads, always inside a tenant: members, invitations, workspaces, workspace members, API
keys and the audit log."""

from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from django.db.models import QuerySet
from django.utils import timezone
from guardian.shortcuts import get_users_with_perms

from fireflow.errors import Forbidden

from .access import restrict_workspaces
from .context import OrgContext, WorkspaceContext
from .models import ApiKey, AuditEvent, Invitation, Membership, Organization, User, Workspace
from .roles import (
    ALL_WORKSPACE_PERMS,
    MANAGER_ROLES,
    OrgRole,
    WorkspaceRole,
    effective_workspace_role,
    workspace_role_from_perms,
)

_PEOPLE = (OrgRole.OWNER, OrgRole.ADMIN, OrgRole.MEMBER)


def user_organizations(*, user: User) -> list[tuple[Organization, OrgRole]]:
    memberships = Membership.objects.filter(user=user).select_related("org").order_by("org__name")
    return [(m.org, OrgRole(m.role)) for m in memberships]


def member_list(*, ctx: OrgContext) -> QuerySet[Membership]:
    ctx.require(*_PEOPLE, action="see the members")
    return Membership.objects.filter(org=ctx.org).select_related("user").order_by("created_at")


def invitation_list(*, ctx: OrgContext, include_closed: bool = False) -> QuerySet[Invitation]:
    ctx.require(*MANAGER_ROLES, action="see invitations")
    queryset = Invitation.objects.filter(org=ctx.org).select_related("invited_by", "workspace")
    if not include_closed:
        queryset = queryset.filter(
            accepted_at__isnull=True, revoked_at__isnull=True, expires_at__gt=timezone.now()
        )
    return queryset.order_by("-created_at")


def workspace_list(*, ctx: OrgContext, include_archived: bool = False) -> QuerySet[Workspace]:
    queryset = restrict_workspaces(ctx, Workspace.objects.all())
    if not include_archived:
        queryset = queryset.filter(archived_at__isnull=True)
    return queryset.order_by("created_at")


def workspace_explicit_roles(workspace: Workspace) -> dict[User, WorkspaceRole]:
    """Roles given on the workspace itself (organisation owners/admins are implicit owners)."""
    users = get_users_with_perms(
        workspace,
        attach_perms=True,
        with_superusers=False,
        with_group_users=False,
        only_with_perms_in=list(ALL_WORKSPACE_PERMS),
    )
    assert isinstance(users, dict)
    roles: dict[User, WorkspaceRole] = {}
    for user, perms in users.items():
        role = workspace_role_from_perms(frozenset(perms))
        if role is not None:
            roles[user] = role
    return roles


@dataclass(frozen=True)
class WorkspaceMember:
    user: User
    org_role: OrgRole
    role: WorkspaceRole | None  # given on the workspace
    effective_role: WorkspaceRole | None  # what they can do there


def workspace_member_list(*, wctx: WorkspaceContext) -> list[WorkspaceMember]:
    """Every member of the organisation with their role here (people without one included, so
    a workspace owner can give them one)."""
    explicit = workspace_explicit_roles(wctx.workspace)
    members = []
    for membership in member_list(ctx=wctx.org_ctx) if wctx.org_ctx.role else []:
        org_role = OrgRole(membership.role)
        role = explicit.get(membership.user)
        effective = effective_workspace_role(org_role, role)
        members.append(WorkspaceMember(membership.user, org_role, role, effective))
    return members


def api_key_list(*, ctx: OrgContext) -> QuerySet[ApiKey]:
    """Owners and admins see every key of the organisation, others their own."""
    if ctx.role is None:
        raise Forbidden("A workspace API key cannot list API keys.", code="role_required")
    queryset = ApiKey.objects.filter(org=ctx.org).select_related("user", "workspace")
    if ctx.role not in MANAGER_ROLES:
        queryset = queryset.filter(user=ctx.user)
    return queryset.order_by("-created_at")


@dataclass(frozen=True)
class AuditFilter:
    action: str | None = None
    actor_id: UUID | None = None
    target_type: str | None = None
    workspace_id: UUID | None = None
    since: datetime | None = None
    until: datetime | None = None


def audit_list(*, ctx: OrgContext, filters: AuditFilter) -> QuerySet[AuditEvent]:
    ctx.require(*MANAGER_ROLES, action="read the audit log")
    queryset = AuditEvent.objects.filter(org=ctx.org).select_related("workspace")
    if filters.action:
        # "member" matches member.removed, member.role_changed, ...
        if "." in filters.action:
            queryset = queryset.filter(action=filters.action)
        else:
            queryset = queryset.filter(action__startswith=filters.action + ".")
    if filters.actor_id:
        queryset = queryset.filter(actor_id=filters.actor_id)
    if filters.target_type:
        queryset = queryset.filter(target_type=filters.target_type)
    if filters.workspace_id:
        queryset = queryset.filter(workspace_id=filters.workspace_id)
    if filters.since:
        queryset = queryset.filter(created_at__gte=filters.since)
    if filters.until:
        queryset = queryset.filter(created_at__lt=filters.until)
    return queryset.order_by("-created_at")
