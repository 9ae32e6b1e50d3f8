"""Builders for tenancy test data, through the services (never raw rows that skip rules)."""

import itertools
from dataclasses import dataclass

from tenants import services
from tenants.context import Actor, OrgContext
from tenants.models import Membership, Organization, User, Workspace
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
