"""Routes: publishing apps and their keys (workspace members, under the workspace), and the
published apps themselves (visitors, under /api/apps/{org_slug}/{app_slug})."""

from typing import Any
from uuid import UUID

from ag_ui import core as ag
from asgiref.sync import sync_to_async
from django.http import HttpRequest, StreamingHttpResponse
from ninja import Router, Status
from ninja.pagination import paginate

from fireflow.middleware import client_ip
from fireflow.pagination import CursorPagination
from flows import live
from flows.selectors import run_state
from tenants.gate import gate, workspace_ctx

from . import access, selectors, services
from .schemas import (
    AppIn,
    AppKeyCreatedOut,
    AppKeyIn,
    AppKeyOut,
    AppOut,
    AppPatchIn,
    AppRunDetailOut,
    AppRunIn,
    AppRunOut,
    PublicAppOut,
)

apps_router = Router(tags=["apps"], auth=gate("workspace"))
public_router = Router(tags=["published apps"], auth=None)


@apps_router.get("", response=list[AppOut])
def app_list(request: HttpRequest):  # type: ignore[no-untyped-def]
    return selectors.app_list(wctx=workspace_ctx(request))


@apps_router.post("", response={201: AppOut}, summary="Publish a flow version as an app")
def app_publish(request: HttpRequest, payload: AppIn) -> Status[Any]:
    data = payload.dict()
    app = services.app_publish(
        wctx=workspace_ctx(request),
        flow_id=data.pop("flow_id"),
        version_hash=data.pop("version"),
        **data,
    )
    return Status(201, app)


@apps_router.get("/{app_id}", response=AppOut)
def app_detail(request: HttpRequest, app_id: UUID):  # type: ignore[no-untyped-def]
    return selectors.app_get(wctx=workspace_ctx(request), app_id=app_id)


@apps_router.patch(
    "/{app_id}",
    response=AppOut,
    summary="Change an app: publish another version (or roll back), settings, unpublish",
)
def app_update(request: HttpRequest, app_id: UUID, payload: AppPatchIn):  # type: ignore[no-untyped-def]
    changes = payload.dict(exclude_unset=True)
    if "version" in changes:
        changes["version_hash"] = changes.pop("version")
    return services.app_update(wctx=workspace_ctx(request), app_id=app_id, changes=changes)


@apps_router.delete("/{app_id}", response={204: None})
def app_delete(request: HttpRequest, app_id: UUID) -> Status[None]:
    services.app_delete(wctx=workspace_ctx(request), app_id=app_id)
    return Status(204, None)


@apps_router.get("/{app_id}/keys", response=list[AppKeyOut])
def key_list(request: HttpRequest, app_id: UUID):  # type: ignore[no-untyped-def]
    return selectors.key_list(wctx=workspace_ctx(request), app_id=app_id)


@apps_router.post("/{app_id}/keys", response={201: AppKeyCreatedOut}, summary="Make an app key")
def key_create(request: HttpRequest, app_id: UUID, payload: AppKeyIn) -> Status[Any]:
    key, new = services.key_create(wctx=workspace_ctx(request), app_id=app_id, name=payload.name)
    key.key = new.raw  # type: ignore[attr-defined]
    return Status(201, key)


@apps_router.delete("/{app_id}/keys/{app_key_id}", response={204: None})
def key_revoke(request: HttpRequest, app_id: UUID, app_key_id: UUID) -> Status[None]:
    services.key_revoke(wctx=workspace_ctx(request), app_id=app_id, key_id=app_key_id)
    return Status(204, None)


# -- the published apps ------------------------------------------------------------------


@public_router.get("/{org_slug}/{app_slug}", response=PublicAppOut, summary="Open an app")
def public_app(request: HttpRequest, org_slug: str, app_slug: str) -> dict[str, Any]:
    app = access.published_app(org_slug, app_slug)
    visitor = access.visitor(request, app, issue=True)
    return {
        "org_slug": app.org.slug,
        "org_name": app.org.name,
        "slug": app.slug,
        "title": app.title,
        "description": app.description,
        "access": app.access,
        "inputs": selectors.input_fields(app.version.document),
        "visitor_rate_per_minute": app.visitor_rate_per_minute,
        "visitor": {
            "kind": visitor.kind,
            "email": visitor.email,
        },
        "visitor_token": visitor.token,
    }


@public_router.post(
    "/{org_slug}/{app_slug}/runs",
    response={201: AppRunOut},
    summary="Run the app",
    description="Starts a run of the app's published version with the visitor as caller. "
    "429 (with Retry-After) past the app's runs per minute per visitor or in all.",
)
def public_run_start(
    request: HttpRequest, org_slug: str, app_slug: str, payload: AppRunIn
) -> Status[Any]:
    app = access.published_app(org_slug, app_slug)
    visitor = access.visitor(request, app)
    run = services.visitor_run_start(
        app=app, visitor=visitor, inputs=payload.inputs, address=client_ip(request)
    )
    run.dbos_status = None  # type: ignore[attr-defined]
    return Status(201, run)


@public_router.get("/{org_slug}/{app_slug}/runs", response=list[AppRunOut], summary="Your runs")
@paginate(CursorPagination, ordering=("-created_at", "-id"))
def public_run_list(request: HttpRequest, org_slug: str, app_slug: str):  # type: ignore[no-untyped-def]
    app = access.published_app(org_slug, app_slug)
    return selectors.visitor_runs(app=app, visitor=access.visitor(request, app).key)


@public_router.get("/{org_slug}/{app_slug}/runs/{run_id}", response=AppRunDetailOut)
def public_run_detail(request: HttpRequest, org_slug: str, app_slug: str, run_id: UUID):  # type: ignore[no-untyped-def]
    app = access.published_app(org_slug, app_slug)
    run = selectors.visitor_run(app=app, visitor=access.visitor(request, app).key, run_id=run_id)
    run.state = run_state(run)  # type: ignore[attr-defined]
    return run


# What a visitor's stream shows: the run's course and its text, not the flow's insides
# (node values, tool calls, usage, who approves or answered and what they wrote); of a human
# step only that it waits and how it ended, so the page can show its card.
_SHOWN_CUSTOM = {"HITL_REQUESTED", "HITL_ESCALATED", "HITL_RESOLVED", "NODE_RESTARTED"}
_VISITOR_FIELDS = ("node", "title", "deadline", "outcome", "escalated", "attempt")


def _for_visitor(event: ag.BaseEvent) -> ag.BaseEvent | None:
    if not isinstance(event, ag.CustomEvent):
        return event
    value = event.value if isinstance(event.value, dict) else {}
    if event.name not in _SHOWN_CUSTOM or value.get("kind") == "tool_call":
        return None
    return ag.CustomEvent(
        name=event.name, value={k: value[k] for k in _VISITOR_FIELDS if k in value}
    )


def _visitor_run(request: HttpRequest, org_slug: str, app_slug: str, run_id: UUID) -> None:
    app = access.published_app(org_slug, app_slug)
    visitor = access.visitor(request, app, token_in_query=True)
    selectors.visitor_run(app=app, visitor=visitor.key, run_id=run_id)


@public_router.get(
    "/{org_slug}/{app_slug}/runs/{run_id}/stream",
    response={200: None},
    summary="Follow your run live (Server-Sent Events, AG-UI)",
    openapi_extra={
        "responses": {
            200: {
                "description": "AG-UI events as Server-Sent Events",
                "content": {"text/event-stream": {}},
            }
        }
    },
)
async def public_run_stream(  # noqa: PLR0917 - path and query parameters
    request: HttpRequest,
    org_slug: str,
    app_slug: str,
    run_id: UUID,
    after: int = 0,
    visitor: str = "",
) -> StreamingHttpResponse:
    """`visitor`: an anonymous visitor's token, for browsers' EventSource (no headers)."""
    await sync_to_async(_visitor_run)(request, org_slug, app_slug, run_id)
    last_seen = request.headers.get("Last-Event-ID", "")
    if last_seen.isdigit():
        after = max(after, int(last_seen))
    response = StreamingHttpResponse(
        live.stream(str(run_id), max(after, 0), _for_visitor), content_type="text/event-stream"
    )
    response["Cache-Control"] = "no-cache"
    response["X-Accel-Buffering"] = "no"
    return response
