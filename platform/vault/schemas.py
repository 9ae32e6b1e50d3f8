"""Request and response shapes of the vault API. A value goes in; it never comes out."""

from datetime import datetime
from typing import Annotated, Any
from uuid import UUID

from ninja import Schema
from pydantic import Field, SecretStr, StringConstraints

SecretName = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]


class SecretIn(Schema):
    name: SecretName = Field(description="how nodes refer to it")
    value: SecretStr = Field(description="stored sealed; never shown again")
    description: str = Field("", max_length=500)
    allowed_flows: list[UUID] = Field(
        default_factory=list, description="the flows that may use it; empty: any of the owner's"
    )


class SecretPatchIn(Schema):
    description: str | None = Field(None, max_length=500)
    allowed_flows: list[UUID] | None = Field(
        None, description="the flows that may use it; empty: any of the owner's"
    )


class SecretValueIn(Schema):
    value: SecretStr


class SecretOut(Schema):
    id: UUID
    name: str
    description: str
    scope: str = Field(description="personal (yours) or workspace (shared)")
    owner_email: str | None
    workspace_id: UUID | None
    created_by_email: str | None
    created_at: datetime
    rotated_at: datetime | None
    last_used_at: datetime | None
    allowed_flows: list[str]

    @staticmethod
    def resolve_scope(obj: Any) -> str:
        return "workspace" if obj.workspace_id else "personal"

    @staticmethod
    def resolve_owner_email(obj: Any) -> str | None:
        return obj.owner.email if obj.owner_id else None

    @staticmethod
    def resolve_created_by_email(obj: Any) -> str | None:
        return obj.created_by.email if obj.created_by_id else None


class KeyRotationOut(Schema):
    epoch: int = Field(description="the owner's key epoch now")
    rewrapped: int = Field(description="secrets moved to it")


class VaultStatusOut(Schema):
    current_version: int
    min_version: int
    versions_in_use: dict[str, int] = Field(description="master key version -> secrets")
    rows_to_rewrap: int
    job_id: str | None = None


class SecretUseOut(Schema):
    at: datetime
    run_id: str | None
    node_id: str | None
    caller_email: str | None = Field(description="who started the run")
