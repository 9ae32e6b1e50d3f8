"""Request and response shapes of the tenancy API (validated at the edge)."""

from datetime import datetime
from typing import Annotated, Any
from uuid import UUID

from django.utils import timezone
from ninja import Schema
from pydantic import EmailStr, Field, StringConstraints

from .gate import workspace_role_in_request
from .roles import OrgRole, WorkspaceRole


def invitation_status(invitation: Any) -> str:
    if invitation.accepted_at is not None:
        return "accepted"
    if invitation.revoked_at is not None:
        return "revoked"
    if invitation.expires_at <= timezone.now():
        return "expired"
    return "open"


Slug = Annotated[
    str,
    StringConstraints(
        strip_whitespace=True,
        to_lower=True,
        min_length=3,
        max_length=50,
        pattern=r"^[a-z0-9](?:[a-z0-9-]*[a-z0-9])?$",
    ),
    Field(description="3-50 lowercase letters, digits and hyphens; used in URLs"),
]
Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
PersonName = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=150)]
Password = Annotated[str, StringConstraints(min_length=1, max_length=256)]
Token = Annotated[str, StringConstraints(min_length=1, max_length=512)]


class ErrorOut(Schema):
    detail: str
    code: str
    fields: dict[str, str] = {}


# --- auth --------------------------------------------------------------------------------


class SignupIn(Schema):
    org_name: Name
    org_slug: Slug
    name: PersonName
    email: EmailStr
    password: Password


class LoginIn(Schema):
    email: EmailStr
    password: Password


class TokenIn(Schema):
    token: Token


class EmailIn(Schema):
    email: EmailStr


class PasswordResetConfirmIn(Schema):
    uid: Annotated[str, StringConstraints(min_length=1, max_length=64)]
    token: Token
    password: Password


class UserOut(Schema):
    id: UUID
    email: str
    name: str
    email_verified: bool

    @staticmethod
    def resolve_email_verified(obj: Any) -> bool:
        return obj.email_verified_at is not None


class OrgSummaryOut(Schema):
    id: UUID
    name: str
    slug: str
    role: OrgRole


class MeOut(Schema):
    user: UserOut
    organizations: list[OrgSummaryOut]


class OrgCreateIn(Schema):
    name: Name
    slug: Slug


class OrgOut(Schema):
    id: UUID
    name: str
    slug: str
    created_at: datetime
    role: OrgRole | None = Field(description="your role; null for a workspace-scoped API key")


# --- members and invitations -------------------------------------------------------------


class MemberOut(Schema):
    id: UUID
    user: UserOut
    role: OrgRole
    joined_at: datetime

    @staticmethod
    def resolve_joined_at(obj: Any) -> datetime:
        return obj.created_at  # type: ignore[no-any-return]


class MemberRoleIn(Schema):
    role: OrgRole


class InvitationIn(Schema):
    email: EmailStr
    role: OrgRole = OrgRole.MEMBER
    workspace_id: UUID | None = None
    workspace_role: WorkspaceRole | None = None


class InvitationOut(Schema):
    id: UUID
    email: str
    role: OrgRole
    workspace_id: UUID | None
    workspace_role: WorkspaceRole | None
    invited_by: str | None
    created_at: datetime
    expires_at: datetime
    status: str = Field(description="open, accepted, revoked or expired")

    @staticmethod
    def resolve_workspace_role(obj: Any) -> str | None:
        return obj.workspace_role or None

    @staticmethod
    def resolve_invited_by(obj: Any) -> str | None:
        return obj.invited_by.email if obj.invited_by else None

    @staticmethod
    def resolve_status(obj: Any) -> str:
        return invitation_status(obj)


class InvitationCreatedOut(InvitationOut):
    accept_url: str = Field(description="the link mailed to the invitee")


class InvitationPreviewOut(Schema):
    org_name: str
    org_slug: str
    email: str
    role: OrgRole
    workspace_name: str | None = Field(None, description="the workspace the invitation opens")
    workspace_role: WorkspaceRole | None = None
    invited_by: str | None
    expires_at: datetime
    status: str
    account_exists: bool


class InvitationSignupIn(Schema):
    name: PersonName
    password: Password


# --- workspaces --------------------------------------------------------------------------


class WorkspaceIn(Schema):
    name: Name


class WorkspacePatchIn(Schema):
    name: Name | None = None
    archived: bool | None = None


class WorkspaceOut(Schema):
    id: UUID
    name: str
    created_at: datetime
    archived: bool
    role: WorkspaceRole | None = Field(description="your role on it")

    @staticmethod
    def resolve_archived(obj: Any) -> bool:
        return obj.archived_at is not None

    @staticmethod
    def resolve_role(obj: Any, context: dict[str, Any]) -> WorkspaceRole | None:
        return workspace_role_in_request(context["request"], obj)


class WorkspaceMemberOut(Schema):
    user: UserOut
    org_role: OrgRole
    role: WorkspaceRole | None = Field(description="role given on this workspace")
    effective_role: WorkspaceRole | None = Field(
        description="what they can do here (organisation owners and admins act as owners)"
    )


class WorkspaceRoleIn(Schema):
    role: WorkspaceRole


# --- API keys ----------------------------------------------------------------------------


class ApiKeyIn(Schema):
    name: Name
    role: Annotated[str, StringConstraints(min_length=1, max_length=16)] = Field(
        description="org role (owner, admin, billing, member) for an organisation key; "
        "workspace role (owner, editor, viewer) when workspace_id is given"
    )
    workspace_id: UUID | None = None


class ApiKeyOut(Schema):
    id: UUID
    name: str
    prefix: str = Field(description="the start of the key (ff_…), to recognise it by")
    role: str
    workspace_id: UUID | None
    user_email: str
    created_at: datetime
    last_used_at: datetime | None
    revoked: bool

    @staticmethod
    def resolve_prefix(obj: Any) -> str:
        return f"ff_{obj.prefix}"  # how the key starts, as its holder sees it

    @staticmethod
    def resolve_user_email(obj: Any) -> str:
        return obj.user.email  # type: ignore[no-any-return]

    @staticmethod
    def resolve_revoked(obj: Any) -> bool:
        return obj.revoked_at is not None


class ApiKeyCreatedOut(ApiKeyOut):
    key: str = Field(description="the secret key: shown this once, store it now")


# --- audit -------------------------------------------------------------------------------


class AuditFilterIn(Schema):
    action: str | None = Field(
        None, max_length=64, description="an action (member.removed) or its family (member)"
    )
    actor_id: UUID | None = None
    target_type: str | None = Field(None, max_length=32)
    workspace_id: UUID | None = None
    since: datetime | None = None
    until: datetime | None = None


class AuditEventOut(Schema):
    id: UUID
    created_at: datetime
    action: str
    actor_id: UUID | None
    actor_email: str
    api_key_id: UUID | None
    target_type: str
    target_id: str
    target_label: str
    workspace_id: UUID | None
    before: dict[str, Any] | None
    after: dict[str, Any] | None
    request_id: str
    ip: str | None
