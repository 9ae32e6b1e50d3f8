"""The typed request context that the tenancy gate hands to every scoped endpoint."""

from dataclasses import dataclass
from uuid import UUID

from fireflow.errors import Forbidden

from .models import ApiKey, Membership, Organization, User, Workspace
from .roles import OrgRole, WorkspaceRole, workspace_role_at_least


@dataclass(frozen=True)
class Actor:
    """Who is acting, and from where: recorded on every audit row."""

    user: User
    api_key: ApiKey | None = None
    request_id: str = ""
    ip: str | None = None


@dataclass(frozen=True)
class OrgContext:
    """An authenticated actor inside one organisation it belongs to.

    `role` is the role the actor acts with (an API key's cap applied); it is None for a
    key scoped to one workspace, which reaches nothing at organisation level."""

    org: Organization
    actor: Actor
    membership: Membership
    role: OrgRole | None
    key_workspace_id: UUID | None = None
    key_workspace_cap: WorkspaceRole | None = None

    @property
    def user(self) -> User:
        return self.actor.user

    def require(self, *roles: OrgRole, action: str) -> None:
        """Raise 403 unless the actor's role is one of `roles`."""
        if self.role not in roles:
            allowed = " and ".join(sorted({r.value + "s" for r in roles}))
            raise Forbidden(f"Only {allowed} can {action}.", code="role_required")


@dataclass(frozen=True)
class WorkspaceContext:
    """An OrgContext narrowed to one workspace the actor may at least view."""

    org_ctx: OrgContext
    workspace: Workspace
    role: WorkspaceRole

    @property
    def org(self) -> Organization:
        return self.org_ctx.org

    @property
    def actor(self) -> Actor:
        return self.org_ctx.actor

    def require(self, needed: WorkspaceRole, *, action: str) -> None:
        if not workspace_role_at_least(self.role, needed):
            raise Forbidden(
                f"You need the {needed.value} role on this workspace to {action}.",
                code="role_required",
            )
