"""Reads: a workspace's apps and keys (for its members), a visitor's runs (for the visitor)."""

from typing import Any
from uuid import UUID

from django.db.models import QuerySet

import engine
from fireflow.errors import NotFound
from flows.models import Run
from flows.selectors import with_status
from tenants.context import WorkspaceContext

from .models import App, AppKey


def app_list(*, wctx: WorkspaceContext) -> QuerySet[App]:
    return (
        App.objects.filter(workspace=wctx.workspace)
        .select_related("org", "flow", "version", "published_by")
        .order_by("-created_at", "-id")
    )


def app_get(*, wctx: WorkspaceContext, app_id: UUID) -> App:
    app = app_list(wctx=wctx).filter(id=app_id).first()
    if app is None:
        raise NotFound("No app with this id in this workspace.")
    return app


def key_list(*, wctx: WorkspaceContext, app_id: UUID) -> QuerySet[AppKey]:
    app = app_get(wctx=wctx, app_id=app_id)
    return app.keys.select_related("created_by").order_by("-created_at")


def visitor_runs(*, app: App, visitor: str) -> QuerySet[Run]:
    return with_status(
        Run.objects.filter(app_run__app=app, app_run__visitor=visitor).order_by(
            "-created_at", "-id"
        )
    )


def visitor_run(*, app: App, visitor: str, run_id: UUID) -> Run:
    run = visitor_runs(app=app, visitor=visitor).filter(id=run_id).first()
    if run is None:
        raise NotFound("No run of yours with this id in this app.")
    return run


def input_fields(document: dict[str, Any]) -> list[dict[str, Any]]:
    """The fields of the flow's input nodes: what the app's form asks for."""
    fields: list[dict[str, Any]] = []
    for spec in engine.parse_flow(document).nodes:
        if spec.type != "input":
            continue
        for field in spec.config.get("fields", []):
            fields.append(
                {
                    "name": field["name"],
                    "type": field["type"],
                    "required": bool(field.get("required", True)) and "default" not in field,
                    "description": str(field.get("description", "")),
                    "default": field.get("default"),
                }
            )
    return fields
