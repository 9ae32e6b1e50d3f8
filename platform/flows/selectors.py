"""Reads inside one workspace: flows, versions, runs (with their status and result from
DBOS's tables) and run events (from the engine's event table)."""

import json
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from django.db import connection
from django.db.models import Exists, Q, QuerySet
from django.db.models.expressions import RawSQL

import engine
from billing.selectors import halts
from fireflow.errors import NotFound
from tenants.context import WorkspaceContext
from tenants.models import Membership, Workspace, WorkspaceUserObjectPermission

from . import node_rules as rules_
from .models import Flow, FlowVersion, LLMUsage, NetworkPolicy, Run

# DBOS workflow status -> what a user sees.
_STATUS = {
    "ENQUEUED": "queued",
    "DELAYED": "queued",
    "PENDING": "running",
    "SUCCESS": "completed",
    "ERROR": "failed",
    "CANCELLED": "cancelled",
    "MAX_RECOVERY_ATTEMPTS_EXCEEDED": "failed",
}
_DBOS_STATUS = RawSQL(
    "SELECT ws.status FROM dbos.workflow_status ws WHERE ws.workflow_uuid = flows_run.id::text",
    (),
)
_RESULT_STATUS = RawSQL(
    "SELECT wo.output::json->>'status' FROM dbos.workflow_output wo "
    "WHERE wo.workflow_uuid = flows_run.id::text",
    (),
)


def status_of(dbos_status: str | None, result_status: str | None) -> str:
    """What a user sees: a workflow that finished may still have failed nodes."""
    if dbos_status == "SUCCESS" and result_status:
        return result_status
    return _STATUS.get(dbos_status or "ENQUEUED", "running")


def flow_list(*, wctx: WorkspaceContext) -> QuerySet[Flow]:
    return Flow.objects.filter(workspace=wctx.workspace).select_related("current_version")


def flow_get(*, wctx: WorkspaceContext, flow_id: UUID) -> Flow:
    flow = (
        Flow.objects.filter(workspace=wctx.workspace, id=flow_id)
        .select_related("current_version", "current_version__author")
        .first()
    )
    if flow is None:
        raise NotFound("No flow with this id in this workspace.")
    return flow


def version_list(*, wctx: WorkspaceContext, flow_id: UUID) -> QuerySet[FlowVersion]:
    flow = flow_get(wctx=wctx, flow_id=flow_id)
    return FlowVersion.objects.filter(flow=flow).select_related("author", "parent")


def version_get(*, wctx: WorkspaceContext, flow_id: UUID, version_hash: str) -> FlowVersion:
    version = (
        FlowVersion.objects.filter(
            flow__workspace=wctx.workspace, flow_id=flow_id, hash=version_hash
        )
        .select_related("author", "parent")
        .first()
    )
    if version is None:
        raise NotFound("No version with this hash in this flow.")
    return version


def with_status(runs: QuerySet[Run]) -> QuerySet[Run]:
    """`runs` with what RunOut shows: their status from DBOS's tables, flow and people."""
    return runs.select_related("flow", "flow_version", "caller", "flow_owner").annotate(
        dbos_status=_DBOS_STATUS, result_status=_RESULT_STATUS
    )


def run_list(
    *, wctx: WorkspaceContext, flow_id: UUID | None = None, status: str | None = None
) -> QuerySet[Run]:
    runs = with_status(Run.objects.filter(workspace=wctx.workspace))
    if flow_id:
        runs = runs.filter(flow_id=flow_id)
    if status in ("completed", "failed"):
        runs = runs.filter(
            Q(dbos_status="SUCCESS", result_status=status)
            | Q(dbos_status__in=[k for k, v in _STATUS.items() if v == status and k != "SUCCESS"])
        )
    elif status:
        runs = runs.filter(Q(dbos_status__in=[k for k, v in _STATUS.items() if v == status]))
    return runs


def run_get_row(*, wctx: WorkspaceContext, run_id: UUID) -> Run:
    run = run_list(wctx=wctx).filter(id=run_id).first()
    if run is None:
        raise NotFound("No run with this id in this workspace.")
    return run


@dataclass(frozen=True)
class RunState:
    status: str
    outputs: dict[str, Any] | None
    error: str | None
    nodes: dict[str, Any]
    recovery_attempts: int


def run_state(run: Run) -> RunState:
    """Status, outputs and error of a run, read from DBOS's tables."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT ws.status, wo.output, wo.error, ws.recovery_attempts "
            "FROM dbos.workflow_status ws "
            "LEFT JOIN dbos.workflow_output wo ON wo.workflow_uuid = ws.workflow_uuid "
            "WHERE ws.workflow_uuid = %s",
            [str(run.id)],
        )
        row = cursor.fetchone()
    if row is None:
        return RunState("queued", None, None, {}, 0)
    dbos_status, output, error, attempts = row
    result = json.loads(output) if output else {}
    status = status_of(dbos_status, result.get("status"))
    message = result.get("error")
    if dbos_status == "MAX_RECOVERY_ATTEMPTS_EXCEEDED":
        message = (
            f"The run stopped after crashing its worker {attempts} times. The last node that "
            "started is the likely cause; fix it and re-run from there."
        )
    elif dbos_status == "ERROR":
        message = _error_message(error)
    elif dbos_status == "CANCELLED":
        message = run.cancel_reason or "The run was cancelled."
    return RunState(status, result.get("outputs"), message, result.get("nodes", {}), attempts)


def _error_message(error: str | None) -> str:
    if not error:
        return "The run failed."
    try:
        data = json.loads(error)
    except ValueError:
        return error[:2000]
    if isinstance(data, dict):
        return str(data.get("message") or data.get("name") or "The run failed.")[:2000]
    return str(data)[:2000]


def run_events(
    *, wctx: WorkspaceContext, run_id: UUID, after: int = 0, limit: int = 500
) -> list[dict[str, Any]]:
    run_get_row(wctx=wctx, run_id=run_id)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT seq, type, node, port, payload, created_at FROM fireflow.run_event "
            "WHERE run_id = %s AND seq > %s ORDER BY seq LIMIT %s",
            [str(run_id), after, limit],
        )
        rows = cursor.fetchall()
    return [
        {
            "seq": seq,
            "type": type_,
            "node": node,
            "port": port,
            "payload": json.loads(payload) if isinstance(payload, str) else payload,
            "created_at": created_at,
        }
        for seq, type_, node, port, payload, created_at in rows
    ]


@dataclass(frozen=True)
class FlowToRun:
    flow: Flow  # with its current version and that version's author
    policy: NetworkPolicy | None  # the workspace's (None: it has set none)
    halted: bool  # a kill switch halts the workspace now


def flow_to_run(*, wctx: WorkspaceContext, flow_id: UUID) -> FlowToRun:
    """What starting a run of a flow reads, in one query (a start request's time is a run's
    time to first token): the flow, the workspace's network policy and whether a kill
    switch halts the workspace."""
    flow = (
        Flow.objects.filter(workspace=wctx.workspace, id=flow_id)
        .select_related("current_version", "current_version__author", "workspace__network_policy")
        .annotate(halted=Exists(halts(wctx.workspace)))
        .first()
    )
    if flow is None:
        raise NotFound("No flow with this id in this workspace.")
    try:
        policy: NetworkPolicy | None = flow.workspace.network_policy
    except NetworkPolicy.DoesNotExist:
        policy = None
    return FlowToRun(flow, policy, bool(flow.halted))  # type: ignore[attr-defined]


def network_policy(*, workspace: Workspace) -> NetworkPolicy | None:
    """The workspace's network allow list and node rules (None: it has set neither)."""
    return NetworkPolicy.objects.filter(workspace=workspace).first()


def network_allow(*, wctx: WorkspaceContext) -> list[str]:
    policy = network_policy(workspace=wctx.workspace)
    return list(policy.http_allow) if policy else []


def node_rules(*, workspace: Workspace) -> list[dict[str, Any]]:
    """The workspace's node rules (see flows.node_rules); empty: every node type allowed."""
    policy = network_policy(workspace=workspace)
    return list(policy.node_rules) if policy else []


def member_role(*, workspace: Workspace, user_id: UUID | None) -> str | None:
    """The role `user_id` holds on `workspace` now (as a user, no API key's cap), None if
    none: what the node rules go by for a flow version's author."""
    if user_id is None:
        return None
    org_role = (
        Membership.objects.filter(org_id=workspace.org_id, user_id=user_id)
        .values_list("role", flat=True)
        .first()
    )
    codenames = WorkspaceUserObjectPermission.objects.filter(
        content_object=workspace, user_id=user_id
    ).values_list("permission__codename", flat=True)
    return rules_.role_in_workspace(org_role, list(codenames))


def node_rule_issues(*, wctx: WorkspaceContext, document: dict[str, Any]) -> list[engine.Issue]:
    """The nodes of `document` the workspace's node rules refuse to the actor (as its
    author): one validation issue each."""
    refused = rules_.document_refusals(
        node_rules(workspace=wctx.workspace), document, [(f"you ({wctx.role})", wctx.role)]
    )
    return [
        engine.Issue(code="node_denied", message=message, node=node_id)
        for node_id, message in refused.items()
    ]


def run_usage(*, wctx: WorkspaceContext, run_id: UUID) -> dict[str, Any]:
    """Every LLM call of a run (its child runs included), in the order they were made, with
    the totals."""
    run_get_row(wctx=wctx, run_id=run_id)
    calls = list(LLMUsage.objects.filter(run_id=run_id, workspace=wctx.workspace).order_by("id"))
    totals = {
        field: sum(getattr(call, field) for call in calls)
        for field in ("input_tokens", "output_tokens", "cached_tokens", "cost_micros")
    }
    return {"calls": calls, **totals}
