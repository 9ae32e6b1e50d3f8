"""Human requests of runs (the approval node, a budget's pause, an agent's tool call): who
may answer them, the inbox of what a user may answer across their organisations, and the
answer itself.

The requests live in the engine's table `fireflow.human_request` (one per run and request
key: the node's id, or `<node>:tool:<turn>:<index>` for an agent's tool call;
engine/_human.py); the answer is written through `engine.answer_request`, a conditional
UPDATE in this transaction (the first answer wins, a replay changes nothing), and the
waiting step is notified when it commits. A tool call may be approved with edited
arguments, checked here against the tool's parameters before anything is stored.

Who may answer (besides seeing the workspace at all): members holding at least the
request's workspace role, the members it names by email, and the run's caller if it says
so. Through an API key the role is the key's capped role, and the named-user and caller
rules apply only to a key that carries its user's full role on the workspace."""

import json
from typing import Any
from uuid import UUID

import jsonschema
import referencing.exceptions
from django.db import connection, transaction

import engine
from fireflow.errors import Conflict, Forbidden, InvalidInput, NotFound
from tenants.access import resolve_org, workspace_roles
from tenants.audit import audit_record
from tenants.context import Actor, OrgContext, WorkspaceContext
from tenants.models import Membership
from tenants.roles import WorkspaceRole, workspace_role_at_least

from .cards import card_answer
from .selectors import run_get_row

# A request of a child run (a called flow, a Map item, an agent's tool) belongs to the run a
# user started: its id is the start of the child's (`<run>:<node>[:<n>]...`). The API names
# such a request `<child path>~<node>` under the started run, e.g. `call~ask`.
_SELECT = (
    "SELECT h.run_id, h.node_id, h.workspace_id, h.request, h.created_at, h.deadline, "
    "h.answer, h.answered_by, h.answered_at, h.deadline IS NOT NULL AND h.deadline <= now(), "
    "r.caller_id, r.flow_id, f.name, r.id::text "
    "FROM fireflow.human_request h "
    "JOIN flows_run r ON r.id::text = split_part(h.run_id, ':', 1) "
    "AND r.workspace_id::text = h.workspace_id "
    "JOIN flows_flow f ON f.id = r.flow_id "
)
CHILD_MARK = "~"


def request_key(run_id: str, root: str, node_id: str) -> str:
    """How the API names the request of `node_id` in `run_id`, under the started run."""
    return node_id if run_id == root else f"{run_id[len(root) + 1 :]}{CHILD_MARK}{node_id}"


def _locate(root: str, key: str) -> tuple[str, str]:
    """The (run, node) of the request the API names `key` under the started run `root`."""
    if CHILD_MARK in key:
        path, node_id = key.rsplit(CHILD_MARK, 1)
        return f"{root}:{path}", node_id
    return root, key


def may_answer(
    *,
    request: dict[str, Any],
    role: WorkspaceRole | None,
    user_id: UUID,
    email: str,
    caller_id: UUID | None,
    full_authority: bool = True,
) -> bool:
    """Whether someone holding `role` on the request's workspace may answer it."""
    if role is None:
        return False
    approvers = request.get("approvers") or {}
    try:
        needed = WorkspaceRole(approvers.get("role", "editor"))
    except ValueError:
        needed = WorkspaceRole.OWNER
    if workspace_role_at_least(role, needed):
        return True
    if not full_authority:
        return False
    if email.lower() in {str(u).lower() for u in approvers.get("users", [])}:
        return True
    return bool(approvers.get("caller", True)) and caller_id is not None and caller_id == user_id


def _full_authority(ctx: OrgContext, workspace_id: UUID, capped: WorkspaceRole | None) -> bool:
    """True unless the actor is an API key capped below its user's own role there."""
    if ctx.actor.api_key is None:
        return True
    own = workspace_roles(resolve_org(Actor(user=ctx.actor.user), ctx.org.slug), only=workspace_id)
    return own.get(workspace_id) == capped


def _shape(row: tuple[Any, ...], *, org_slug: str, can_answer: bool) -> dict[str, Any]:
    (
        run_id,
        node_id,
        workspace_id,
        request,
        created_at,
        deadline,
        answer,
        answered_by,
        answered_at,
        expired,
        _caller_id,
        flow_id,
        flow_name,
        root,
    ) = row
    request = json.loads(request) if isinstance(request, str) else request
    answer = json.loads(answer) if isinstance(answer, str) else answer
    if answer is not None:
        status = str(answer.get("outcome"))
    else:
        status = "expired" if expired else "pending"
    kind = str(request.get("kind") or "approval")
    tool_call = None
    if kind == "tool_call":
        tool_call = {
            "tool": request.get("tool", ""),
            "description": request.get("description", ""),
            "arguments": request.get("arguments") or {},
            "parameters": request.get("parameters") or {},
            "tool_call_id": request.get("tool_call_id", ""),
            "edited_arguments": (answer or {}).get("arguments"),
        }
    card = None
    if kind == "card":
        given = (answer or {}).get("arguments") or {}
        card = {
            "surface": request.get("surface") or {},
            "data": request.get("data") or {},
            "action": given.get("action"),
            "values": given.get("values"),
        }
    # The node of the started run that waits: for a child run's request, the node that
    # called the child.
    waiting_node = (
        run_id[len(root) + 1 :].split(":", 1)[0]
        if run_id != root
        else request.get("node") or node_id
    )
    return {
        "run_id": root,
        "node_id": request_key(run_id, root, node_id),
        "node": waiting_node,
        "kind": kind,
        "tool_call": tool_call,
        "card": card,
        "org_slug": org_slug,
        "workspace_id": workspace_id,
        "flow_id": flow_id,
        "flow_name": flow_name,
        "title": request.get("title", ""),
        "message": request.get("message", ""),
        "data": request.get("data"),
        "approvers": request.get("approvers", {}),
        "created_at": created_at,
        "deadline": deadline,
        "status": status,
        "answered_by": answered_by,
        "answered_at": answered_at,
        "comment": (answer or {}).get("comment", ""),
        "can_answer": can_answer and status == "pending",
    }


def inbox_list(*, actor: Actor) -> list[dict[str, Any]]:
    """The pending requests `actor` may answer, in every organisation and workspace it can
    see (an API key: its organisation, and its workspace if scoped), oldest first."""
    memberships = Membership.objects.filter(user=actor.user).select_related("org")
    if actor.api_key is not None:
        memberships = memberships.filter(org_id=actor.api_key.org_id)
    found: list[dict[str, Any]] = []
    for membership in memberships:
        try:
            ctx = resolve_org(actor, membership.org.slug)
        except NotFound:
            continue
        roles = workspace_roles(ctx)
        if not roles:
            continue
        with connection.cursor() as cursor:
            cursor.execute(
                _SELECT + "WHERE h.answer IS NULL AND (h.deadline IS NULL OR h.deadline > now()) "
                "AND h.workspace_id = ANY(%s) ORDER BY h.created_at, h.run_id, h.node_id",
                [[str(ws_id) for ws_id in roles]],
            )
            rows = cursor.fetchall()
        authority: dict[UUID, bool] = {}  # per workspace, not per request
        for row in rows:
            workspace_id = UUID(row[2])
            role = roles.get(workspace_id)
            if workspace_id not in authority:
                authority[workspace_id] = _full_authority(ctx, workspace_id, role)
            request = json.loads(row[3]) if isinstance(row[3], str) else row[3]
            allowed = may_answer(
                request=request,
                role=role,
                user_id=actor.user.id,
                email=actor.user.email,
                caller_id=row[10],
                full_authority=authority[workspace_id],
            )
            if allowed:
                found.append(_shape(row, org_slug=ctx.org.slug, can_answer=True))
    found.sort(key=lambda item: item["created_at"])
    return found


def _rows(wctx: WorkspaceContext, run_id: UUID, key: str | None) -> list[tuple[Any, ...]]:
    """The requests of the started run `run_id` and its child runs (or the one named `key`)."""
    root = str(run_id)
    if key is None:
        where = "WHERE (h.run_id = %s OR h.run_id LIKE %s) AND h.workspace_id = %s"
        params: list[Any] = [root, f"{root}:%", str(wctx.workspace.id)]
    else:
        request_run, node_id = _locate(root, key)
        where = "WHERE h.run_id = %s AND h.node_id = %s AND h.workspace_id = %s"
        params = [request_run, node_id, str(wctx.workspace.id)]
    with connection.cursor() as cursor:
        cursor.execute(_SELECT + where + " ORDER BY h.created_at, h.node_id", params)
        return cursor.fetchall()


def _can_answer(wctx: WorkspaceContext, row: tuple[Any, ...], full_authority: bool) -> bool:
    request = json.loads(row[3]) if isinstance(row[3], str) else row[3]
    return may_answer(
        request=request,
        role=wctx.role,
        user_id=wctx.actor.user.id,
        email=wctx.actor.user.email,
        caller_id=row[10],
        full_authority=full_authority,
    )


def run_requests(*, wctx: WorkspaceContext, run_id: UUID) -> list[dict[str, Any]]:
    """The run's requests, pending and answered (whoever may see the run may read them)."""
    run_get_row(wctx=wctx, run_id=run_id)
    authority = _full_authority(wctx.org_ctx, wctx.workspace.id, wctx.role)
    return [
        _shape(row, org_slug=wctx.org.slug, can_answer=_can_answer(wctx, row, authority))
        for row in _rows(wctx, run_id, None)
    ]


def _argument_errors(parameters: dict[str, Any], arguments: dict[str, Any]) -> dict[str, str]:
    """Where edited arguments break the tool's parameters, by argument (`arguments.<path>`)."""
    try:
        validator = jsonschema.Draft202012Validator(parameters)
        errors = sorted(validator.iter_errors(arguments), key=lambda e: list(e.absolute_path))
    except (jsonschema.SchemaError, referencing.exceptions.Unresolvable):
        # A schema the agent could use but that names what it cannot reach ($ref to a URL):
        # nothing is fetched; the edit is refused.
        return {"arguments": "the tool's parameters cannot be checked (not a usable schema)"}
    fields: dict[str, str] = {}
    for error in errors:
        where = ".".join(["arguments", *(str(part) for part in error.absolute_path)])
        instance = error.instance if isinstance(error.instance, dict) else {}
        if error.validator == "required":  # name the missing argument, not its parent
            for name in error.validator_value:
                if name not in instance:
                    fields.setdefault(f"{where}.{name}", "this argument is required")
        elif error.validator == "additionalProperties" and error.validator_value is False:
            known = set((error.schema or {}).get("properties") or {})
            for name in sorted(set(instance) - known):
                fields.setdefault(f"{where}.{name}", "the tool has no such argument")
        else:
            fields.setdefault(where, error.message)
    return fields


def _check_arguments(request: dict[str, Any], decision: str, arguments: dict[str, Any]) -> None:
    """Edited arguments: only for a tool call, only with an approval, only if they fit."""
    if request.get("kind") != "tool_call":
        raise InvalidInput(
            "Only an agent's tool-call request takes arguments; this request is not one.",
            code="arguments_not_allowed",
            fields={"arguments": "not allowed for this request"},
        )
    if decision != "approve":
        raise InvalidInput(
            "Edited arguments go with an approval: a rejected call does not run.",
            code="arguments_not_allowed",
            fields={"arguments": "only with decision 'approve'"},
        )
    fields = _argument_errors(dict(request.get("parameters") or {}), arguments)
    if fields:
        raise InvalidInput(
            f"The arguments do not fit the parameters of the tool '{request.get('tool')}': "
            "nothing was stored; correct them and answer again.",
            code="invalid_arguments",
            fields=fields,
        )


def _check_card_action(
    request: dict[str, Any],
    decision: str,
    arguments: dict[str, Any] | None,
    action: dict[str, Any] | None,
) -> dict[str, Any] | None:
    """A card's answer ({action, values}, checked against the card), or None for other
    requests, which take no action."""
    if request.get("kind") != "card":
        if action is not None:
            raise InvalidInput(
                "Only a card takes an action; this request is not one.",
                code="action_not_allowed",
                fields={"action": "not allowed for this request"},
            )
        return None
    if arguments is not None:
        raise InvalidInput(
            "A card is answered with an action, not arguments.",
            code="arguments_not_allowed",
            fields={"arguments": "not allowed for this request"},
        )
    if action is None or decision != "approve":
        raise InvalidInput(
            "A card is answered with one of its buttons: decision 'approve' and an action.",
            code="action_required",
            fields={"action": "required for a card, with decision 'approve'"},
        )
    return card_answer(request, str(action["name"]), dict(action.get("values") or {}))


@transaction.atomic
def request_answer(
    *,
    wctx: WorkspaceContext,
    run_id: UUID,
    node_id: str,
    decision: str,
    comment: str = "",
    arguments: dict[str, Any] | None = None,
    action: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Answer the request `node_id` of the run (approve or reject; audited); an agent's tool
    call may be approved with edited `arguments` (422 with the arguments at fault when they
    do not fit the tool's parameters, nothing stored); a card is answered with an A2UI
    `action` ({name, values}: 422 with `values.<component id>` at fault when they do not
    fit the card's inputs, nothing stored; platform/flows/cards.py). Only the first answer counts: a
    second or replayed one is refused (409 already_answered, with the answer given), and so
    is one after the deadline (409 expired)."""
    run = run_get_row(wctx=wctx, run_id=run_id)
    rows = _rows(wctx, run_id, node_id)
    if not rows:
        raise NotFound(f"Run {run_id} has no request at node '{node_id}'.")
    if not _can_answer(wctx, rows[0], _full_authority(wctx.org_ctx, wctx.workspace.id, wctx.role)):
        raise Forbidden(
            "You may not answer this request: it needs another workspace role, a named "
            "approver or the run's caller.",
            code="not_an_approver",
        )
    stored = rows[0][3]
    asked = json.loads(stored) if isinstance(stored, str) else stored
    # A request already closed is told as such (409 below), whatever the answer says.
    closed = rows[0][6] is not None or bool(rows[0][9])
    card = None if closed else _check_card_action(asked, decision, arguments, action)
    if arguments is not None:
        _check_arguments(asked, decision, arguments)
    outcome = "approved" if decision == "approve" else "rejected"
    with connection.cursor() as cursor:
        result = engine.answer_request(
            cursor,
            run_id=rows[0][0],  # the request's own run (a child's, for a called flow)
            node_id=rows[0][1],
            outcome=outcome,  # type: ignore[arg-type]
            by=wctx.actor.user.email,
            by_id=str(wctx.actor.user.id),
            comment=comment,
            arguments=card if card is not None else arguments,
        )
    if result.status == "not_found":  # pragma: no cover (read above, in this transaction)
        raise NotFound(f"Run {run_id} has no request at node '{node_id}'.")
    if result.status != "answered":
        given = (result.answer or {}).get("outcome") or "timed_out"
        fields = {
            "outcome": str(given),
            "answered_by": result.answered_by or "",
            "answered_at": result.answered_at.isoformat() if result.answered_at else "",
        }
        if given == "cancelled":
            raise Conflict(
                "The run was cancelled: this request is closed, and your answer changed nothing.",
                code="run_cancelled",
                fields=fields,
            )
        if result.status == "expired":
            raise Conflict(
                "This request expired: nobody answered it before its deadline.",
                code="expired",
                fields=fields,
            )
        raise Conflict(
            f"This request was already answered ({given}"
            + (f" by {result.answered_by}" if result.answered_by else "")
            + "): your answer changed nothing.",
            code="already_answered",
            fields=fields,
        )
    audit_record(
        org=wctx.org,
        actor=wctx.actor,
        action="run.request_answered",
        target_type="run",
        target_id=run.id,
        target_label=f"{run.flow.name}: {node_id}",
        workspace=wctx.workspace,
        after={
            "node": node_id,
            "outcome": outcome,
            "comment": comment,
            **({"arguments": arguments} if arguments is not None else {}),
            **({"action": card["action"], "values": card["values"]} if card else {}),
        },
    )
    return _shape(_rows(wctx, run_id, node_id)[0], org_slug=wctx.org.slug, can_answer=False)
