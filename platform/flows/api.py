"""Flows and runs API: thin endpoints over services and selectors, behind the workspace
gate (`/api/orgs/{org_slug}/workspaces/{ws_id}/...`). Viewers read; editors edit and run."""

from typing import Any
from uuid import UUID

from asgiref.sync import sync_to_async
from django.http import HttpRequest, StreamingHttpResponse
from ninja import Header, Router, Status
from ninja.pagination import paginate

import engine
from engine.llm import model_catalogue
from fireflow.pagination import CursorPagination
from tenants.gate import actor_of, gate, workspace_ctx

from . import inbox, live, selectors, services
from .schemas import (
    AnswerIn,
    EventOut,
    FlowDetailOut,
    FlowIn,
    FlowOut,
    FlowPatchIn,
    ForkIn,
    HumanRequestOut,
    NetworkPolicyIn,
    NetworkPolicyOut,
    NodeRulesIn,
    NodeRulesOut,
    NodeTypesOut,
    RunDetailOut,
    RunIn,
    RunOut,
    RunUsageOut,
    ValidateIn,
    ValidateOut,
    VersionDetailOut,
    VersionIn,
    VersionOut,
)

catalogue_router = Router(tags=["flows"], auth=gate("user"))
flows_router = Router(tags=["flows"], auth=gate("workspace"))
runs_router = Router(tags=["runs"], auth=gate("workspace"))
inbox_router = Router(tags=["inbox"], auth=gate("user"))


@catalogue_router.get("", response=NodeTypesOut, summary="The node types a flow may use")
def node_types(request: HttpRequest) -> dict[str, Any]:
    return {
        "models": [
            {
                "provider": m.provider,
                "model": m.model,
                "context": m.context,
                "input_per_million": m.input_per_m,
                "output_per_million": m.output_per_m,
                "cached_per_million": m.cached_per_m,
            }
            for m in model_catalogue().values()
        ],
        "node_types": engine.catalogue(),
        "port_compatibility": engine.compatibility_table(),
        "event_types": {t.value: d for t, d in engine.EVENT_PAYLOADS.items()},
    }


network_router = Router(tags=["workspaces"], auth=gate("workspace"))


@network_router.get("", response=NetworkPolicyOut, summary="Hosts the HTTP node may reach")
def network_get(request: HttpRequest) -> dict[str, Any]:
    return {"http_allow": selectors.network_allow(wctx=workspace_ctx(request))}


@network_router.put("", response=NetworkPolicyOut, summary="Replace the allow list (owners)")
def network_put(request: HttpRequest, payload: NetworkPolicyIn) -> dict[str, Any]:
    policy = services.network_policy_set(wctx=workspace_ctx(request), http_allow=payload.http_allow)
    return {"http_allow": policy.http_allow}


node_rules_router = Router(tags=["workspaces"], auth=gate("workspace"))


@node_rules_router.get(
    "", response=NodeRulesOut, summary="Which node types members may use, per role"
)
def node_rules_get(request: HttpRequest) -> dict[str, Any]:
    return {"node_rules": selectors.node_rules(workspace=workspace_ctx(request).workspace)}


@node_rules_router.put(
    "",
    response=NodeRulesOut,
    summary="Replace the node rules (owners)",
    description="Checked when a flow version is saved (against its author's role), when a "
    "run starts (author and caller) and again by the worker as each node runs. Per role, "
    "rules naming a node type decide before rules for '*'; at each level a matching deny "
    "refuses, and allow rules act as an allow list. No rules: everything is allowed.",
)
def node_rules_put(request: HttpRequest, payload: NodeRulesIn) -> dict[str, Any]:
    policy = services.node_rules_set(
        wctx=workspace_ctx(request),
        rules=[rule.model_dump() for rule in payload.node_rules],
    )
    return {"node_rules": policy.node_rules}


@flows_router.post("/validate", response=ValidateOut, summary="Validate a flow document")
def flow_validate(request: HttpRequest, payload: ValidateIn) -> dict[str, Any]:
    wctx = workspace_ctx(request)
    issues, ports = engine.flow_ports(payload.document)
    issues += selectors.node_rule_issues(wctx=wctx, document=payload.document)
    valid = not any(i.severity == "error" for i in issues)
    return {
        "valid": valid,
        "issues": [i.to_json() for i in issues],
        "plan": engine.plan_flow(payload.document).to_json() if valid else None,
        "ports": ports,
    }


@flows_router.get("", response=list[FlowOut])
@paginate(CursorPagination, ordering=("-created_at", "-id"))
def flow_list(request: HttpRequest):  # type: ignore[no-untyped-def]
    return selectors.flow_list(wctx=workspace_ctx(request))


@flows_router.post("", response={201: FlowDetailOut})
def flow_create(request: HttpRequest, payload: FlowIn):  # type: ignore[no-untyped-def]
    flow = services.flow_create(
        wctx=workspace_ctx(request),
        name=payload.name,
        description=payload.description,
        document=payload.document,
        message=payload.message,
    )
    return Status(201, flow)


@flows_router.get("/{flow_id}", response=FlowDetailOut)
def flow_detail(request: HttpRequest, flow_id: UUID):  # type: ignore[no-untyped-def]
    return selectors.flow_get(wctx=workspace_ctx(request), flow_id=flow_id)


@flows_router.patch("/{flow_id}", response=FlowDetailOut)
def flow_update(request: HttpRequest, flow_id: UUID, payload: FlowPatchIn):  # type: ignore[no-untyped-def]
    return services.flow_update(
        wctx=workspace_ctx(request),
        flow_id=flow_id,
        name=payload.name,
        description=payload.description,
    )


@flows_router.get("/{flow_id}/versions", response=list[VersionOut])
@paginate(CursorPagination, ordering=("-created_at", "-id"))
def version_list(request: HttpRequest, flow_id: UUID):  # type: ignore[no-untyped-def]
    return selectors.version_list(wctx=workspace_ctx(request), flow_id=flow_id)


@flows_router.post(
    "/{flow_id}/versions",
    response={201: VersionDetailOut},
    summary="Save a new version (validated: an invalid flow is refused, the last good one stays)",
)
def version_save(request: HttpRequest, flow_id: UUID, payload: VersionIn):  # type: ignore[no-untyped-def]
    version = services.version_save(
        wctx=workspace_ctx(request),
        flow_id=flow_id,
        document=payload.document,
        message=payload.message,
        parent_hash=payload.parent,
    )
    return Status(201, version)


@flows_router.get("/{flow_id}/versions/{version_hash}", response=VersionDetailOut)
def version_detail(request: HttpRequest, flow_id: UUID, version_hash: str):  # type: ignore[no-untyped-def]
    return selectors.version_get(
        wctx=workspace_ctx(request), flow_id=flow_id, version_hash=version_hash
    )


@flows_router.post(
    "/{flow_id}/runs",
    response={201: RunOut, 200: RunOut},
    summary="Start a run (send an Idempotency-Key header to make retries safe)",
)
def run_start(  # type: ignore[no-untyped-def]
    request: HttpRequest,
    flow_id: UUID,
    payload: RunIn,
    idempotency_key: str = Header("", alias="Idempotency-Key", max_length=200),  # type: ignore[type-arg]
):
    run, created = services.run_start(
        wctx=workspace_ctx(request),
        flow_id=flow_id,
        inputs=payload.inputs,
        version_hash_=payload.version,
        idempotency_key=idempotency_key,
    )
    return Status(
        201 if created else 200, selectors.run_get_row(wctx=workspace_ctx(request), run_id=run.id)
    )


@runs_router.get("", response=list[RunOut])
@paginate(CursorPagination, ordering=("-created_at", "-id"))
def run_list(request: HttpRequest, flow_id: UUID | None = None, status: str | None = None):  # type: ignore[no-untyped-def]
    return selectors.run_list(wctx=workspace_ctx(request), flow_id=flow_id, status=status)


@runs_router.get("/{run_id}", response=RunDetailOut)
def run_detail(request: HttpRequest, run_id: UUID):  # type: ignore[no-untyped-def]
    run = selectors.run_get_row(wctx=workspace_ctx(request), run_id=run_id)
    run.state = selectors.run_state(run)  # type: ignore[attr-defined]
    return run


@runs_router.get(
    "/{run_id}/events",
    response=list[EventOut],
    summary="The run's events after sequence number `after`, in order",
)
def run_events(request: HttpRequest, run_id: UUID, after: int = 0, limit: int = 500):  # type: ignore[no-untyped-def]
    return selectors.run_events(
        wctx=workspace_ctx(request),
        run_id=run_id,
        after=max(after, 0),
        limit=min(max(limit, 1), 1000),
    )


@runs_router.get(
    "/{run_id}/usage",
    response=RunUsageOut,
    summary="The run's LLM calls: tokens and cost of each, and the totals",
)
def run_usage(request: HttpRequest, run_id: UUID) -> dict[str, Any]:
    return selectors.run_usage(wctx=workspace_ctx(request), run_id=run_id)


@runs_router.get(
    "/{run_id}/stream",
    response={200: None},
    summary="Follow a run live: Server-Sent Events in the AG-UI protocol",
    description="Replays the run's events after `after` (or the `Last-Event-ID` header), then "
    "sends new ones as they are written, until the run ends. Each SSE `id` is the event's "
    "sequence number: reconnect with it and nothing is missed or repeated.",
    openapi_extra={
        "responses": {
            200: {
                "description": "AG-UI events as Server-Sent Events",
                "content": {"text/event-stream": {}},
            }
        }
    },
)
async def run_stream(request: HttpRequest, run_id: UUID, after: int = 0) -> StreamingHttpResponse:
    wctx = workspace_ctx(request)
    await sync_to_async(selectors.run_get_row)(wctx=wctx, run_id=run_id)
    last_seen = request.headers.get("Last-Event-ID", "")
    if last_seen.isdigit():
        after = max(after, int(last_seen))
    response = StreamingHttpResponse(
        live.stream(str(run_id), max(after, 0)), content_type="text/event-stream"
    )
    response["Cache-Control"] = "no-cache"
    response["X-Accel-Buffering"] = "no"  # proxies must not hold frames back
    return response


@runs_router.post("/{run_id}/cancel", response={202: None})
def run_cancel(request: HttpRequest, run_id: UUID) -> Status[None]:
    services.run_cancel(wctx=workspace_ctx(request), run_id=run_id)
    return Status(202, None)


@runs_router.post(
    "/{run_id}/resume",
    response={202: None},
    summary="Resume a cancelled run, or one stopped after repeated crashes",
)
def run_resume(request: HttpRequest, run_id: UUID) -> Status[None]:
    services.run_resume(wctx=workspace_ctx(request), run_id=run_id)
    return Status(202, None)


@runs_router.post(
    "/{run_id}/fork",
    response={201: RunOut},
    summary="Re-run from a node: a new run reusing what came before it",
)
def run_fork(request: HttpRequest, run_id: UUID, payload: ForkIn):  # type: ignore[no-untyped-def]
    wctx = workspace_ctx(request)
    run = services.run_fork(wctx=wctx, run_id=run_id, node_id=payload.node)
    return Status(201, selectors.run_get_row(wctx=wctx, run_id=run.id))


@inbox_router.get(
    "",
    response=list[HumanRequestOut],
    summary="The pending requests (approvals) you may answer, across your workspaces",
)
def inbox_list(request: HttpRequest) -> list[dict[str, Any]]:
    return inbox.inbox_list(actor=actor_of(request))


@runs_router.get(
    "/{run_id}/requests",
    response=list[HumanRequestOut],
    summary="The run's requests to people (approvals), pending and answered",
)
def run_requests(request: HttpRequest, run_id: UUID) -> list[dict[str, Any]]:
    return inbox.run_requests(wctx=workspace_ctx(request), run_id=run_id)


@runs_router.post(
    "/{run_id}/requests/{node_id}/answer",
    response=HumanRequestOut,
    summary="Answer a request: approve or reject (the first answer wins)",
    description="Only the people the request names may answer (a workspace role, named "
    "members, the run's caller). A second or replayed answer changes nothing and answers "
    "409 `already_answered` with the answer given (in `fields`); after the deadline, 409 "
    "`expired`. An agent's tool call may be approved with edited `arguments`, which must fit "
    "the tool's parameters (422 `invalid_arguments`, the arguments at fault in `fields`); "
    "other requests refuse `arguments` (422 `arguments_not_allowed`). A card is answered "
    "with `approve` and an A2UI `action` (a button's action name and the inputs' values), "
    "which must fit the card (422 `invalid_card_answer`, `values.<component id>` at fault "
    "in `fields`); other requests refuse `action`, and a card needs one (422 "
    "`action_not_allowed`, `action_required`).",
)
def request_answer(
    request: HttpRequest, run_id: UUID, node_id: str, payload: AnswerIn
) -> dict[str, Any]:
    return inbox.request_answer(
        wctx=workspace_ctx(request),
        run_id=run_id,
        node_id=node_id,
        decision=payload.decision,
        comment=payload.comment,
        arguments=payload.arguments,
        action=payload.action.model_dump() if payload.action is not None else None,
    )
