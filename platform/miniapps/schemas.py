"""Request and response shapes of the mini-apps API."""

from datetime import datetime
from typing import Annotated, Any, Literal
from uuid import UUID

from django.conf import settings
from ninja import Schema
from pydantic import Field, StringConstraints

from flows.schemas import Hash, RunOut
from tenants.schemas import Slug

Title = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
AccessName = Literal["public", "members", "key"]
Rate = Annotated[int, Field(ge=1, le=100_000, description="runs per minute")]
Origin = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]


class AppIn(Schema):
    flow_id: UUID
    version: Hash | None = Field(
        None, description="the version to publish; the flow's current one if omitted"
    )
    slug: Slug
    title: Title
    description: str = Field("", max_length=2000)
    access: AccessName = Field(
        "public",
        description="public: anyone with the link; members: signed-in members of the "
        "organisation; key: holders of an app key",
    )
    visitor_rate_per_minute: Rate = 10
    app_rate_per_minute: Rate = 600
    allowed_origins: list[Origin] = Field(
        default_factory=list, description="sites that may embed the app in a frame"
    )


class AppPatchIn(Schema):
    version: Hash | None = Field(None, description="publish this version (newer, or roll back)")
    slug: Slug | None = None
    title: Title | None = None
    description: str | None = Field(None, max_length=2000)
    access: AccessName | None = None
    visitor_rate_per_minute: Rate | None = None
    app_rate_per_minute: Rate | None = None
    allowed_origins: list[Origin] | None = None
    published: bool | None = None


def app_url(org_slug: str, slug: str) -> str:
    return f"{settings.PUBLIC_URL}/apps/{org_slug}/{slug}"


class AppOut(Schema):
    id: UUID
    flow_id: UUID
    flow_name: str
    version: str
    slug: str
    title: str
    description: str
    access: str
    visitor_rate_per_minute: int
    app_rate_per_minute: int
    allowed_origins: list[str]
    published: bool
    published_by_email: str | None
    url: str
    embed_html: str = Field(description="an iframe snippet for the sites in allowed_origins")
    created_at: datetime
    updated_at: datetime

    @staticmethod
    def resolve_flow_name(obj: Any) -> str:
        return obj.flow.name  # type: ignore[no-any-return]

    @staticmethod
    def resolve_version(obj: Any) -> str:
        return obj.version.hash  # type: ignore[no-any-return]

    @staticmethod
    def resolve_published_by_email(obj: Any) -> str | None:
        return obj.published_by.email if obj.published_by_id else None

    @staticmethod
    def resolve_url(obj: Any) -> str:
        return app_url(obj.org.slug, obj.slug)

    @staticmethod
    def resolve_embed_html(obj: Any) -> str:
        return (
            f'<iframe src="{app_url(obj.org.slug, obj.slug)}?embed=1" title="{_attr(obj.title)}" '
            'width="100%" height="640" style="border:0" loading="lazy"></iframe>'
        )


def _attr(text: str) -> str:
    return text.replace("&", "&amp;").replace('"', "&quot;").replace("<", "&lt;")


class AppKeyIn(Schema):
    name: Title


class AppKeyOut(Schema):
    id: UUID
    name: str
    prefix: str
    created_by_email: str | None
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None

    @staticmethod
    def resolve_created_by_email(obj: Any) -> str | None:
        return obj.created_by.email if obj.created_by_id else None


class AppKeyCreatedOut(AppKeyOut):
    key: str = Field(description="the key itself: shown this once, never again")


class InputFieldOut(Schema):
    name: str
    type: str
    required: bool
    description: str
    default: Any = None


class VisitorOut(Schema):
    kind: str = Field(description="member, key or anonymous")
    email: str | None = None


class PublicAppOut(Schema):
    org_slug: str
    org_name: str
    slug: str
    title: str
    description: str
    access: str
    inputs: list[InputFieldOut]
    visitor_rate_per_minute: int
    visitor: VisitorOut
    visitor_token: str | None = Field(
        None,
        description="a new anonymous identity for this app: keep it and send it as the "
        "X-App-Visitor header (given only when the request had none)",
    )


class AppRunIn(Schema):
    inputs: dict[str, Any] = Field(default_factory=dict)


class AppRunOut(Schema):
    id: UUID
    status: str
    inputs: dict[str, Any]
    created_at: datetime

    @staticmethod
    def resolve_status(obj: Any) -> str:
        return RunOut.resolve_status(obj)


class AppRunDetailOut(AppRunOut):
    outputs: dict[str, Any] | None
    error: str | None

    @staticmethod
    def resolve_status(obj: Any) -> str:
        return obj.state.status  # type: ignore[no-any-return]

    @staticmethod
    def resolve_outputs(obj: Any) -> dict[str, Any] | None:
        return obj.state.outputs  # type: ignore[no-any-return]

    @staticmethod
    def resolve_error(obj: Any) -> str | None:
        return obj.state.error  # type: ignore[no-any-return]
