"""Builders for tenancy test data, through the services (never raw rows that skip rules)."""

import itertools
from dataclasses import dataclass

from tenants import services
from tenants.context import Actor, OrgContext
from tenants.models import ApiKey, Invitation, Membership, Organization, User, Workspace
from tenants.roles import OrgRole, WorkspaceRole

PASSWORD = "correct-horse-battery-staple"
_counter = itertools.count(1)


def unique(prefix: str) -> str:
    return f"{prefix}{next(_counter)}"


def make_user(*, email: str | None = None, name: str = "Test User") -> User:
    return services.user_create(
        email=email or f"{unique('user')}@example.com",
        name=name,
        password=PASSWORD,
        verified=True,
    )


def ctx_for(user: User, org: Organization) -> OrgContext:
    membership = Membership.objects.get(org=org, user=user)
    return OrgContext(
        org=org, actor=Actor(user=user), membership=membership, role=OrgRole(membership.role)
    )


@dataclass
class OrgFixture:
    org: Organization
    owner: User
    workspace: Workspace  # the default workspace

    def add_member(self, role: OrgRole, *, email: str | None = None) -> User:
        user = make_user(email=email)
        Membership.objects.create(org=self.org, user=user, role=role)
        return user

    def grant(self, user: User, role: WorkspaceRole, workspace: Workspace | None = None) -> None:
        from tenants.access import access_workspace

        owner_ctx = ctx_for(self.owner, self.org)
        wctx = access_workspace(owner_ctx, (workspace or self.workspace).id)
        services.workspace_member_set_role(wctx=wctx, user_id=user.id, role=role)

    def owner_ctx(self) -> OrgContext:
        return ctx_for(self.owner, self.org)


def make_org(*, slug: str | None = None, owner: User | None = None) -> OrgFixture:
    owner = owner or make_user()
    slug = slug or unique("org-")
    org = services.organization_create(name=f"Org {slug}", slug=slug, owner=owner)
    workspace = Workspace.objects.get(org=org, name=services.DEFAULT_WORKSPACE_NAME)
    return OrgFixture(org=org, owner=owner, workspace=workspace)


def make_api_key(
    user: User,
    org: Organization,
    *,
    role: str | None = None,
    workspace: Workspace | None = None,
    name: str = "test key",
) -> tuple[ApiKey, str]:
    """A key for `user` in `org` (capped at their own org role by default); returns the row
    and the raw key, as the API shows it once."""
    ctx = ctx_for(user, org)
    if role is None:
        role = WorkspaceRole.VIEWER.value if workspace else str(ctx.role)
    return services.api_key_create(
        ctx=ctx, name=name, role=role, workspace_id=workspace.id if workspace else None
    )


def make_invitation(
    fixture: OrgFixture,
    *,
    email: str | None = None,
    role: OrgRole = OrgRole.MEMBER,
    workspace: Workspace | None = None,
    workspace_role: WorkspaceRole | None = None,
) -> tuple[Invitation, str]:
    """An open invitation sent by the org's owner; returns it and its one-time token."""
    return services.invitation_create(
        ctx=fixture.owner_ctx(),
        email=email or f"{unique('invitee')}@example.com",
        role=role,
        workspace_id=workspace.id if workspace else None,
        workspace_role=workspace_role,
    )


def make_workspace(fixture: OrgFixture, name: str | None = None) -> Workspace:
    return services.workspace_create(ctx=fixture.owner_ctx(), name=name or unique("Workspace "))
