"""Writes: publishing (an app pins a version of a flow; publishing another version or rolling
back is a change of it), app keys, and a visitor's run. Every change is audited."""

from typing import Any
from urllib.parse import urlsplit
from uuid import UUID

from django.db import IntegrityError, transaction
from django.utils import timezone

from fireflow.errors import Conflict, InvalidInput, NotFound
from flows.models import FlowVersion, Run
from flows.selectors import flow_get
from flows.services import app_run_start
from tenants.audit import audit_record
from tenants.context import WorkspaceContext
from tenants.roles import WorkspaceRole
from tenants.tokens import NewApiKey

from .access import Visitor
from .models import App, AppKey, AppRun
from .ratelimit import take_run
from .selectors import app_get
from .tokens import new_app_key

MAX_ORIGINS = 20
_WHO_MAY_USE = ("access", "published", "allowed_origins")
_SNAPSHOT = (
    "slug",
    "title",
    "description",
    "access",
    "visitor_rate_per_minute",
    "app_rate_per_minute",
    "allowed_origins",
    "published",
)


def _snapshot(app: App) -> dict[str, Any]:
    data = {name: getattr(app, name) for name in _SNAPSHOT}
    data["version"] = app.version.hash
    return data


def clean_origins(origins: list[str]) -> list[str]:
    """Origins a site embeds the app from: scheme and host (and port), nothing else."""
    if len(origins) > MAX_ORIGINS:
        raise InvalidInput(
            f"At most {MAX_ORIGINS} sites may embed an app.",
            code="invalid_origins",
            fields={"allowed_origins": f"at most {MAX_ORIGINS}"},
        )
    cleaned: list[str] = []
    problems: dict[str, str] = {}
    for index, origin in enumerate(origins):
        parts = urlsplit(origin.strip())
        plain = not (parts.path not in ("", "/") or parts.query or parts.fragment)
        try:
            parts.port  # noqa: B018 - raises on a port that is not a number
        except ValueError:
            plain = False
        if parts.scheme not in ("https", "http") or not parts.hostname or not plain:
            problems[f"allowed_origins.{index}"] = (
                f"'{origin}' is not an origin: give scheme and host only, e.g. "
                "https://www.example.com"
            )
            continue
        if parts.username or parts.password or any(c in origin for c in " ;,'\""):
            problems[f"allowed_origins.{index}"] = f"'{origin}' holds characters an origin cannot"
            continue
        cleaned.append(f"{parts.scheme}://{parts.netloc.lower()}")
    if problems:
        raise InvalidInput(
            "Some embedding sites are not origins: " + "; ".join(problems.values()),
            code="invalid_origins",
            fields=problems,
        )
    return sorted(set(cleaned))


def _version(
    app_flow_id: UUID, version_hash: str | None, current: FlowVersion | None
) -> FlowVersion:
    if version_hash is None:
        if current is None:
            raise Conflict(
                "The flow has no saved version yet: save it before publishing.",
                code="no_version",
            )
        return current
    version = FlowVersion.objects.filter(flow_id=app_flow_id, hash=version_hash).first()
    if version is None:
        raise NotFound("No version with this hash in this flow.", code="not_found")
    return version


@transaction.atomic
def app_publish(
    *,
    wctx: WorkspaceContext,
    flow_id: UUID,
    slug: str,
    title: str,
    version_hash: str | None = None,
    description: str = "",
    access: str = "public",
    visitor_rate_per_minute: int = 10,
    app_rate_per_minute: int = 600,
    allowed_origins: list[str] | None = None,
) -> App:
    """Publish a version of a flow (its current one unless `version_hash`) as an app."""
    wctx.require(WorkspaceRole.EDITOR, action="publish apps")
    flow = flow_get(wctx=wctx, flow_id=flow_id)
    version = _version(flow.id, version_hash, flow.current_version)
    app = App(
        org=wctx.org,
        workspace=wctx.workspace,
        flow=flow,
        version=version,
        slug=slug,
        title=title.strip(),
        description=description,
        access=access,
        visitor_rate_per_minute=visitor_rate_per_minute,
        app_rate_per_minute=app_rate_per_minute,
        allowed_origins=clean_origins(allowed_origins or []),
        published_by=wctx.actor.user,
    )
    try:
        with transaction.atomic():
            app.save(force_insert=True)
    except IntegrityError:
        raise Conflict(
            f"The address /apps/{wctx.org.slug}/{slug} is taken in this organisation: choose "
            "another slug.",
            code="slug_taken",
            fields={"slug": "taken"},
        ) from None
    audit_record(
        org=wctx.org,
        actor=wctx.actor,
        action="app.published",
        target_type="app",
        target_id=app.id,
        target_label=app.slug,
        workspace=wctx.workspace,
        after=_snapshot(app),
    )
    return app


@transaction.atomic
def app_update(*, wctx: WorkspaceContext, app_id: UUID, changes: dict[str, Any]) -> App:
    """Change an app: its settings, the version it serves (publish a newer one or roll back:
    `version_hash`), or whether it is published. The member who changes the version, or who
    may use the app (access, published, embedding sites), becomes the one the flow runs as."""
    wctx.require(WorkspaceRole.EDITOR, action="change apps")
    # Locked, then read: a change made meanwhile is the "before" of this one, not lost.
    App.objects.select_for_update().filter(id=app_id, workspace=wctx.workspace).exists()
    app = app_get(wctx=wctx, app_id=app_id)
    before = _snapshot(app)
    fields = {"updated_at"}
    if "version_hash" in changes and changes["version_hash"] is not None:
        version = _version(app.flow_id, changes.pop("version_hash"), None)
        if version.id != app.version_id:
            app.version = version
            app.published_by = wctx.actor.user
            fields |= {"version", "published_by"}
    changes.pop("version_hash", None)
    if "allowed_origins" in changes and changes["allowed_origins"] is not None:
        changes["allowed_origins"] = clean_origins(changes["allowed_origins"])
    for name, value in changes.items():
        if value is None or name not in _SNAPSHOT:
            continue
        if name in _WHO_MAY_USE and getattr(app, name) != value:
            # Who may use the app, and from where, decides who acts with the publisher's
            # authority: whoever changes it becomes the one the flow runs as.
            app.published_by = wctx.actor.user
            fields.add("published_by")
        setattr(app, name, value.strip() if name == "title" else value)
        fields.add(name)
    try:
        with transaction.atomic():
            app.save(update_fields=sorted(fields))
    except IntegrityError:
        raise Conflict(
            f"The address /apps/{wctx.org.slug}/{app.slug} is taken in this organisation: "
            "choose another slug.",
            code="slug_taken",
            fields={"slug": "taken"},
        ) from None
    after = _snapshot(app)
    if after != before:
        audit_record(
            org=wctx.org,
            actor=wctx.actor,
            action="app.version_published"
            if after["version"] != before["version"]
            else "app.changed",
            target_type="app",
            target_id=app.id,
            target_label=app.slug,
            workspace=wctx.workspace,
            before={k: v for k, v in before.items() if after[k] != v},
            after={k: v for k, v in after.items() if before[k] != v},
        )
    return app


@transaction.atomic
def app_delete(*, wctx: WorkspaceContext, app_id: UUID) -> None:
    wctx.require(WorkspaceRole.EDITOR, action="delete apps")
    app = app_get(wctx=wctx, app_id=app_id)
    audit_record(
        org=wctx.org,
        actor=wctx.actor,
        action="app.deleted",
        target_type="app",
        target_id=app.id,
        target_label=app.slug,
        workspace=wctx.workspace,
        before=_snapshot(app),
    )
    app.delete()


@transaction.atomic
def key_create(*, wctx: WorkspaceContext, app_id: UUID, name: str) -> tuple[AppKey, NewApiKey]:
    """A new key of the app; its secret is returned once and only its digest kept."""
    wctx.require(WorkspaceRole.EDITOR, action="make app keys")
    app = app_get(wctx=wctx, app_id=app_id)
    new = new_app_key()
    key = AppKey.objects.create(
        app=app,
        name=name.strip(),
        prefix=new.prefix,
        key_hash=new.key_hash,
        created_by=wctx.actor.user,
    )
    audit_record(
        org=wctx.org,
        actor=wctx.actor,
        action="app.key_created",
        target_type="app_key",
        target_id=key.id,
        target_label=f"{app.slug}: {key.name}",
        workspace=wctx.workspace,
    )
    return key, new


@transaction.atomic
def key_revoke(*, wctx: WorkspaceContext, app_id: UUID, key_id: UUID) -> None:
    wctx.require(WorkspaceRole.EDITOR, action="revoke app keys")
    app = app_get(wctx=wctx, app_id=app_id)
    key = AppKey.objects.filter(app=app, id=key_id).first()
    if key is None:
        raise NotFound("No key with this id in this app.")
    if key.revoked_at is None:
        key.revoked_at = timezone.now()
        key.save(update_fields=["revoked_at"])
        audit_record(
            org=wctx.org,
            actor=wctx.actor,
            action="app.key_revoked",
            target_type="app_key",
            target_id=key.id,
            target_label=f"{app.slug}: {key.name}",
            workspace=wctx.workspace,
        )


@transaction.atomic
def visitor_run_start(
    *, app: App, visitor: Visitor, inputs: dict[str, Any], address: str | None = None
) -> Run:
    """A visitor's run of the app's version, counted against its rate limits (a refused
    start counts nothing; an anonymous visitor's `address` is counted too); the visitor is
    the caller, the flow runs as its publisher."""
    take_run(app, visitor.key, address if visitor.kind == "anonymous" else None)
    return app_run_start(
        workspace=app.workspace,
        version=app.version,
        owner_id=app.published_by_id,
        caller_id=visitor.user_id,
        inputs=inputs,
        link=lambda run: AppRun.objects.create(run=run, app=app, visitor=visitor.key),
    )
