"""Writes: flows, versions (validated at save; an invalid document never replaces the last
good version) and runs (the Run row and the engine's queue entry commit together)."""

import hashlib
import json
from collections.abc import Callable, Sequence
from typing import Any
from uuid import UUID

from django.conf import settings
from django.db import IntegrityError, connection, transaction

import engine
from billing.services import refuse_if_halted
from fireflow.errors import Conflict, Forbidden, InvalidInput, NotFound
from tenants.audit import audit_record
from tenants.context import WorkspaceContext
from tenants.models import Workspace
from tenants.roles import WorkspaceRole

from . import engine_bridge
from . import node_rules as rules_
from .models import Flow, FlowVersion, NetworkPolicy, Run
from .selectors import (
    flow_get,
    flow_to_run,
    member_role,
    network_policy,
    node_rule_issues,
    node_rules,
    run_get_row,
)


def _require_active(wctx: WorkspaceContext) -> None:
    """An archived workspace is read-only: restore it to build or run again."""
    _require_active_workspace(wctx.workspace)


def _require_active_workspace(workspace: Workspace) -> None:
    if workspace.archived_at is not None:
        raise Conflict(
            f"The workspace '{workspace.name}' is archived: restore it to edit or run its flows.",
            code="workspace_archived",
        )


def issues_to_fields(issues: list[engine.Issue]) -> dict[str, str]:
    """Validation issues in the API's error shape: one entry per node (and port)."""
    fields: dict[str, str] = {}
    for issue in issues:
        key = "document"
        if issue.node:
            key = f"nodes.{issue.node}" + (f".{issue.port}" if issue.port else "")
        elif issue.port:
            key = f"inputs.{issue.port}"
        fields[key] = f"{fields[key]}; {issue.message}" if key in fields else issue.message
    return fields


def _invalid_flow(exc: engine.FlowInvalid) -> InvalidInput:
    count = len(exc.issues)
    first = exc.issues[0].message if exc.issues else ""
    return InvalidInput(
        f"The flow has {count} error{'s' if count != 1 else ''}: {first}"
        + (" (and more, see fields)" if count > 1 else ""),
        code="invalid_flow",
        fields=issues_to_fields(exc.issues),
    )


def _nodes_refused(
    prefix: str, refused: dict[str, str], error: type[InvalidInput] | type[Forbidden]
) -> InvalidInput | Forbidden:
    """One error for the nodes the node rules refuse (`nodes.<id>` -> why), naming the
    first in its message and all of them in its fields."""
    more = " (and more, see fields)" if len(refused) > 1 else ""
    return error(
        f"{prefix}{next(iter(refused.values()))}{more}", code="node_denied", fields=refused
    )


def version_hash(document: dict[str, Any], parent: FlowVersion | None) -> str:
    canonical = json.dumps(
        {"document": document, "parent": parent.hash if parent else None},
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


@transaction.atomic
def flow_create(
    *,
    wctx: WorkspaceContext,
    name: str,
    description: str = "",
    document: dict[str, Any] | None = None,
    message: str = "",
) -> Flow:
    wctx.require(WorkspaceRole.EDITOR, action="create flows")
    _require_active(wctx)
    flow = Flow.objects.create(
        workspace=wctx.workspace,
        name=name.strip(),
        description=description,
        created_by=wctx.actor.user,
    )
    audit_record(
        org=wctx.org,
        actor=wctx.actor,
        action="flow.created",
        target_type="flow",
        target_id=flow.id,
        target_label=flow.name,
        workspace=wctx.workspace,
        after={"name": flow.name},
    )
    if document is not None:
        version_save(wctx=wctx, flow_id=flow.id, document=document, message=message)
        flow.refresh_from_db()
    return flow


@transaction.atomic
def flow_update(
    *, wctx: WorkspaceContext, flow_id: UUID, name: str | None, description: str | None
) -> Flow:
    wctx.require(WorkspaceRole.EDITOR, action="edit flows")
    flow = flow_get(wctx=wctx, flow_id=flow_id)
    if name is not None:
        flow.name = name.strip()
    if description is not None:
        flow.description = description
    flow.save(update_fields=["name", "description", "updated_at"])
    return flow


@transaction.atomic
def version_save(
    *,
    wctx: WorkspaceContext,
    flow_id: UUID,
    document: dict[str, Any],
    message: str = "",
    parent_hash: str | None = None,
) -> FlowVersion:
    """Validate and store a new version as the flow's current one. `parent_hash`, when
    given, must be the current version (someone else's newer save is not overwritten)."""
    wctx.require(WorkspaceRole.EDITOR, action="edit flows")
    _require_active(wctx)
    flow = Flow.objects.select_for_update().filter(id=flow_id, workspace=wctx.workspace).first()
    if flow is None:
        raise NotFound("No flow with this id in this workspace.")
    try:
        parsed = engine.parse_flow(document)
    except engine.FlowInvalid as exc:
        raise _invalid_flow(exc) from None
    normalized = parsed.to_json()
    refused = node_rule_issues(wctx=wctx, document=normalized)
    if refused:
        count = len(refused)
        raise _nodes_refused(
            f"The workspace's node rules refuse {count} node{'s' if count != 1 else ''} of "
            "this flow: ",
            issues_to_fields(refused),
            InvalidInput,
        )
    current = flow.current_version
    if parent_hash is not None and (current.hash if current else "") != parent_hash:
        raise Conflict(
            "The flow was saved by someone else since you opened it. Reload it, then save "
            "your changes on top of the newest version.",
            code="stale_parent",
        )
    digest = version_hash(normalized, current)
    version = FlowVersion.objects.filter(flow=flow, hash=digest).first()
    if version is None:
        version = FlowVersion.objects.create(
            flow=flow,
            hash=digest,
            parent=current,
            document=normalized,
            author=wctx.actor.user,
            message=message,
        )
    flow.current_version = version
    flow.save(update_fields=["current_version", "updated_at"])
    return version


def run_start(
    *,
    wctx: WorkspaceContext,
    flow_id: UUID,
    inputs: dict[str, Any],
    version_hash_: str | None = None,
    idempotency_key: str = "",
) -> tuple[Run, bool]:
    """Start a run of the flow's current version (or `version_hash_`). Returns the run and
    whether it is new: a retried request with the same Idempotency-Key gets the same run."""
    wctx.require(WorkspaceRole.EDITOR, action="run flows")
    _require_active(wctx)
    target = flow_to_run(wctx=wctx, flow_id=flow_id)
    if target.halted:
        refuse_if_halted(wctx.workspace)  # 409, saying which switch and why
    caller = wctx.actor.user
    if idempotency_key:
        existing = Run.objects.filter(
            workspace=wctx.workspace, caller=caller, idempotency_key=idempotency_key
        ).first()
        if existing is not None:
            _check_same_request(existing, flow_id, inputs, version_hash_)
            return existing, False
    flow = target.flow
    if version_hash_:
        version = FlowVersion.objects.filter(flow=flow, hash=version_hash_).first()
        if version is None:
            raise NotFound("No version with this hash in this flow.")
    else:
        version = flow.current_version
        if version is None:
            raise Conflict("The flow has no saved version yet: save it first.", code="no_version")
    _check_inputs(version, inputs)
    subflows = pin_subflows(wctx.workspace.id, version.document)
    policy = target.policy
    _check_node_rules_for_run(
        wctx,
        version,
        [version.document, *subflows.values()],
        list(policy.node_rules) if policy else [],
    )
    try:
        with transaction.atomic():
            run = Run.objects.create(
                workspace=wctx.workspace,
                flow=flow,
                flow_version=version,
                flow_owner=version.author,
                caller=caller,
                api_key=wctx.actor.api_key,
                inputs=inputs,
                idempotency_key=idempotency_key,
            )
            _enqueue(run, version.document, subflows, policy)
    except IntegrityError:
        existing = Run.objects.filter(
            workspace=wctx.workspace, caller=caller, idempotency_key=idempotency_key
        ).first()
        if existing is None:
            raise
        return existing, False
    return run, True


def _check_inputs(version: FlowVersion, inputs: dict[str, Any]) -> None:
    streams = {
        (node["id"], field["name"]): field
        for node in version.document.get("nodes", ())
        if node.get("type") == "input"
        for field in (node.get("config") or {}).get("fields", ())
        if field.get("type") == "stream"
    }
    problems = {
        f"nodes.{node_id}.{name}": (
            "a stream input is given by a parent flow (an Execute flow node's stream_inputs), "
            "not when a run is started"
            if name in inputs
            else "this flow reads a stream here, so it only runs as a child of another flow"
        )
        for (node_id, name), field in streams.items()
        if name in inputs or (field.get("required", True) and "default" not in field)
    }
    if problems:
        raise InvalidInput(
            "The run's inputs do not fit the flow: " + "; ".join(problems.values()),
            code="invalid_inputs",
            fields=problems,
        )
    try:
        engine.check_run_inputs(engine.parse_flow(version.document), inputs)
    except engine.FlowInvalid as exc:
        raise InvalidInput(
            "The run's inputs do not fit the flow: " + "; ".join(i.message for i in exc.issues),
            code="invalid_inputs",
            fields=issues_to_fields(exc.issues),
        ) from None


def app_run_start(
    *,
    workspace: Workspace,
    version: FlowVersion,
    owner_id: UUID | None,
    caller_id: UUID | None,
    inputs: dict[str, Any],
    link: Callable[[Run], object],
) -> Run:
    """Start a run of a published mini-app's version for a visitor: the visitor is the
    caller (None for anonymous visitors and app keys), the flow runs as `owner_id` (who
    published it), whose role the node rules judge (visitors hold no workspace role).
    `link(run)` records the visitor in the run's transaction."""
    _require_active_workspace(workspace)
    refuse_if_halted(workspace)
    _check_inputs(version, inputs)
    subflows = pin_subflows(workspace.id, version.document)
    policy = network_policy(workspace=workspace)
    rules = list(policy.node_rules) if policy else []
    if rules:
        role = member_role(workspace=workspace, user_id=owner_id)
        _refuse_nodes(
            rules,
            [version.document, *subflows.values()],
            [(f"the app's publisher ({role or 'no longer a member'})", role)],
            "This app cannot run: ",
            InvalidInput,
        )
    with transaction.atomic():
        run = Run.objects.create(
            workspace=workspace,
            flow_id=version.flow_id,
            flow_version=version,
            flow_owner_id=owner_id,
            caller_id=caller_id,
            inputs=inputs,
        )
        link(run)
        _enqueue(run, version.document, subflows, policy)
    return run


def _check_node_rules_for_run(
    wctx: WorkspaceContext,
    version: FlowVersion,
    documents: list[dict[str, Any]],
    rules: list[dict[str, Any]] | None = None,
) -> None:
    """Refuse a run whose nodes (its called flows' included) the node rules refuse to the
    caller (403) or, since the rules changed after it was saved, to the version's author
    (422). The worker checks again as each node runs. `rules`: as already read, if they were."""
    if rules is None:
        rules = node_rules(workspace=wctx.workspace)
    if not rules:
        return
    author_role = member_role(workspace=wctx.workspace, user_id=version.author_id)
    author = f"the flow's author ({author_role or 'no longer a member'})"
    for people, error in (
        ([(f"you ({wctx.role})", wctx.role.value)], Forbidden),
        ([(author, author_role)], InvalidInput),
    ):
        _refuse_nodes(rules, documents, people, "This run cannot start: ", error)


def _refuse_nodes(
    rules: list[dict[str, Any]],
    documents: list[dict[str, Any]],
    people: Sequence[tuple[str, str | None]],
    prefix: str,
    error: type[InvalidInput] | type[Forbidden],
) -> None:
    """Raise `error` naming every node of `documents` the rules refuse to `people`."""
    refused: dict[str, str] = {}
    for document in documents:
        for node_id, message in rules_.document_refusals(rules, document, people).items():
            refused.setdefault(f"nodes.{node_id}", message)
    if refused:
        raise _nodes_refused(prefix, refused, error)


@transaction.atomic
def node_rules_set(*, wctx: WorkspaceContext, rules: list[dict[str, Any]]) -> NetworkPolicy:
    """Replace the workspace's node rules (workspace owners only; audited). Flows saved
    before are not changed: they are refused when they next run, node by node."""
    wctx.require(WorkspaceRole.OWNER, action="change its node rules")
    cleaned, problems = rules_.check_rules(rules)
    if problems:
        raise InvalidInput(
            "Some node rules are invalid: "
            + "; ".join(f"{field}: {message}" for field, message in problems.items()),
            code="invalid_node_rules",
            fields=problems,
        )
    policy, _ = NetworkPolicy.objects.select_for_update().get_or_create(workspace=wctx.workspace)
    before = list(policy.node_rules)
    policy.node_rules = cleaned
    policy.save(update_fields=["node_rules", "updated_at"])
    audit_record(
        org=wctx.org,
        actor=wctx.actor,
        action="workspace.node_rules_changed",
        target_type="workspace",
        target_id=wctx.workspace.id,
        target_label=wctx.workspace.name,
        workspace=wctx.workspace,
        before={"node_rules": before},
        after={"node_rules": cleaned},
    )
    return policy


@transaction.atomic
def network_policy_set(*, wctx: WorkspaceContext, http_allow: list[str]) -> NetworkPolicy:
    """Replace the workspace's allow list (workspace owners only; audited)."""
    wctx.require(WorkspaceRole.OWNER, action="change its network settings")
    problems = {}
    for index, entry in enumerate(http_allow):
        try:
            engine.check_allow_entry(entry, settings.NETWORK_ALLOWABLE)
        except engine.BadAllowEntry as exc:
            problems[f"http_allow.{index}"] = str(exc)
    if problems:
        raise InvalidInput(
            "Some entries cannot be allowed: " + "; ".join(problems.values()),
            code="invalid_allow_list",
            fields=problems,
        )
    policy, _ = NetworkPolicy.objects.select_for_update().get_or_create(workspace=wctx.workspace)
    before = list(policy.http_allow)
    policy.http_allow = sorted(set(http_allow))
    policy.save(update_fields=["http_allow", "updated_at"])
    audit_record(
        org=wctx.org,
        actor=wctx.actor,
        action="workspace.network_changed",
        target_type="workspace",
        target_id=wctx.workspace.id,
        target_label=wctx.workspace.name,
        workspace=wctx.workspace,
        before={"http_allow": before},
        after={"http_allow": policy.http_allow},
    )
    return policy


_MAX_NESTING = 5


def _called_flows(node: dict[str, Any]) -> list[str]:
    cls = engine.node_type(str(node.get("type", "")))
    config = node.get("config")
    return cls.called_flows(config) if cls is not None and isinstance(config, dict) else []


def pin_subflows(workspace_id: UUID, document: dict[str, Any]) -> dict[str, Any]:
    """The current documents of every flow this document calls (ExecuteFlow, Map,
    StreamFlatMap, an agent's tools), and of the flows they call: pinned into the run so it
    never changes under it."""
    pinned: dict[str, Any] = {}

    def visit(doc: dict[str, Any], path: list[str]) -> None:
        if len(path) > _MAX_NESTING:
            raise InvalidInput(
                f"Flows call each other more than {_MAX_NESTING} levels deep.",
                code="flows_too_deep",
            )
        for node in doc.get("nodes", []):
            for raw_id in _called_flows(node):
                visit_call(node, raw_id, path)

    def visit_call(node: dict[str, Any], raw_id: str, path: list[str]) -> None:
        flow_uuid = _uuid_or_none(raw_id)
        flow_id = str(flow_uuid) if flow_uuid else raw_id  # one spelling per flow
        if flow_id in path:
            raise InvalidInput(
                f"Node '{node['id']}' calls flow {flow_id}, which is already running "
                "higher up: flows cannot call themselves.",
                code="flow_cycle",
                fields={f"nodes.{node['id']}": "calls its own caller"},
            )
        if flow_id in pinned:
            return
        flow = (
            Flow.objects.filter(workspace_id=workspace_id, id=flow_uuid)
            .select_related("current_version")
            .first()
            if flow_uuid
            else None
        )
        if flow is None or flow.current_version is None:
            raise InvalidInput(
                f"Node '{node['id']}' calls flow {flow_id}, which is not a saved flow of "
                "this workspace.",
                code="unknown_flow",
                fields={f"nodes.{node['id']}": "unknown flow"},
            )
        pinned[flow_id] = flow.current_version.document
        visit(flow.current_version.document, [*path, flow_id])

    visit(document, [])
    return pinned


def _uuid_or_none(value: str) -> UUID | None:
    try:
        return UUID(value)
    except ValueError:
        return None


def _check_same_request(
    run: Run, flow_id: UUID, inputs: dict[str, Any], version: str | None
) -> None:
    """A retried start must be the same request; the same key for another one is a bug in
    the caller, not a retry."""
    if (
        run.flow_id != flow_id
        or run.inputs != inputs
        or (version is not None and run.flow_version.hash != version)
    ):
        raise Conflict(
            "This Idempotency-Key was already used to start a different run (another flow, "
            "version or inputs). Use a new key for a new run.",
            code="idempotency_key_reused",
        )


def _meta(run: Run, subflows: dict[str, Any], policy: NetworkPolicy | None) -> dict[str, Any]:
    return {
        "subflows": subflows,
        "http_allow": policy.http_allow if policy else [],
        "http_allowable": list(settings.NETWORK_ALLOWABLE),
        "org": str(run.workspace.org_id),
        "workspace": str(run.workspace_id),
        "flow": str(run.flow_id),
        "flow_version": run.flow_version.hash,
        "flow_owner": str(run.flow_owner_id) if run.flow_owner_id else None,
        "caller": str(run.caller_id) if run.caller_id else None,
    }


def _enqueue(
    run: Run, document: dict[str, Any], subflows: dict[str, Any], policy: NetworkPolicy | None
) -> None:
    """Queue the run in the caller's transaction (`policy`: its workspace's `network_policy`)."""
    sql, params = engine.enqueue_run_sql(
        run_id=str(run.id), document=document, inputs=run.inputs, meta=_meta(run, subflows, policy)
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, params)


def run_cancel(*, wctx: WorkspaceContext, run_id: UUID) -> None:
    wctx.require(WorkspaceRole.EDITOR, action="cancel runs")
    run_get_row(wctx=wctx, run_id=run_id)
    engine_bridge.cancel_run(str(run_id))


def run_resume(*, wctx: WorkspaceContext, run_id: UUID) -> None:
    wctx.require(WorkspaceRole.EDITOR, action="resume runs")
    _require_active(wctx)
    refuse_if_halted(wctx.workspace)
    run_get_row(wctx=wctx, run_id=run_id)
    engine_bridge.resume_run(str(run_id))


def run_fork(*, wctx: WorkspaceContext, run_id: UUID, node_id: str) -> Run:
    """A new run that reuses everything `run_id` did before `node_id` and runs the rest
    again (re-run from any node)."""
    wctx.require(WorkspaceRole.EDITOR, action="re-run flows")
    _require_active(wctx)
    refuse_if_halted(wctx.workspace)
    original = run_get_row(wctx=wctx, run_id=run_id)
    document = original.flow_version.document
    try:
        start_step = engine.fork_step(document, node_id)
    except KeyError:
        raise InvalidInput(
            f"The flow has no node '{node_id}'.", code="unknown_node", fields={"node": "unknown"}
        ) from None
    _check_node_rules_for_run(wctx, original.flow_version, [document])
    new_id = engine_bridge.client().fork(str(run_id), start_step)
    return Run.objects.create(
        id=UUID(new_id),
        workspace=wctx.workspace,
        flow=original.flow,
        flow_version=original.flow_version,
        flow_owner=original.flow_owner,
        caller=wctx.actor.user,
        api_key=wctx.actor.api_key,
        inputs=original.inputs,
        forked_from=original,
        forked_at_node=node_id,
    )
