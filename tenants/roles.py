"""Organisation and workspace roles, and what each may do.

Org roles: owner > admin > member; ``billing`` sees billing only and sits beside the chain
(an owner covers it, an admin or member does not).
Workspace roles: owner > editor > viewer, stored as django-guardian object permissions.
Organisation owners and admins act as owners of every workspace of their organisation.
"""

from enum import StrEnum


class OrgRole(StrEnum):
    OWNER = "owner"
    ADMIN = "admin"
    BILLING = "billing"
    MEMBER = "member"


class WorkspaceRole(StrEnum):
    OWNER = "owner"
    EDITOR = "editor"
    VIEWER = "viewer"


# What each org role covers (itself included): used to cap API keys and to compare roles.
_ORG_COVERS: dict[OrgRole, frozenset[OrgRole]] = {
    OrgRole.OWNER: frozenset(OrgRole),
    OrgRole.ADMIN: frozenset({OrgRole.ADMIN, OrgRole.MEMBER}),
    OrgRole.MEMBER: frozenset({OrgRole.MEMBER}),
    OrgRole.BILLING: frozenset({OrgRole.BILLING}),
}

_WORKSPACE_RANK = {WorkspaceRole.VIEWER: 1, WorkspaceRole.EDITOR: 2, WorkspaceRole.OWNER: 3}

# Guardian permission codenames held on a Workspace for each workspace role.
WORKSPACE_PERMS: dict[WorkspaceRole, tuple[str, ...]] = {
    WorkspaceRole.VIEWER: ("view_workspace",),
    WorkspaceRole.EDITOR: ("view_workspace", "edit_workspace"),
    WorkspaceRole.OWNER: ("view_workspace", "edit_workspace", "manage_workspace"),
}
ALL_WORKSPACE_PERMS = WORKSPACE_PERMS[WorkspaceRole.OWNER]


# The org roles that manage people and workspaces, and act as owners of every workspace.
MANAGER_ROLES = (OrgRole.OWNER, OrgRole.ADMIN)


def effective_workspace_role(
    org_role: OrgRole | None, given: WorkspaceRole | None
) -> WorkspaceRole | None:
    """What someone may do on a workspace: organisation owners and admins act as its owners,
    billing members see no workspace, members have the role given on it."""
    if org_role in MANAGER_ROLES:
        return WorkspaceRole.OWNER
    if org_role == OrgRole.MEMBER:
        return given
    return None


def org_role_covers(held: OrgRole, wanted: OrgRole) -> bool:
    """True when a member holding `held` may act as `wanted` (e.g. cap an API key at it)."""
    return wanted in _ORG_COVERS[held]


def effective_org_role(held: OrgRole, cap: OrgRole | None) -> OrgRole | None:
    """The role an API key capped at `cap` acts with, for a user now holding `held`.

    None when the two have nothing in common (the key then grants nothing)."""
    if cap is None:
        return held
    if org_role_covers(held, cap):
        return cap
    if org_role_covers(cap, held):
        return held
    return None


def workspace_role_from_perms(perms: set[str] | frozenset[str]) -> WorkspaceRole | None:
    for role in (WorkspaceRole.OWNER, WorkspaceRole.EDITOR, WorkspaceRole.VIEWER):
        if set(WORKSPACE_PERMS[role]) <= perms:
            return role
    return None


def workspace_role_at_least(held: WorkspaceRole | None, needed: WorkspaceRole) -> bool:
    return held is not None and _WORKSPACE_RANK[held] >= _WORKSPACE_RANK[needed]


def min_workspace_role(a: WorkspaceRole | None, b: WorkspaceRole | None) -> WorkspaceRole | None:
    if a is None or b is None:
        return None
    return a if _WORKSPACE_RANK[a] <= _WORKSPACE_RANK[b] else b
