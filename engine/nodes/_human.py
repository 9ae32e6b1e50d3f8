"""Human-in-the-loop nodes: an approval that waits, durably, for a person's answer.

The node is one ordinary step: it creates its request (once per run and node, with its
deadline fixed then), waits for the answer through the worker's one listener
(engine/_human.py) and returns the outcome, which DBOS checkpoints. Only the branch of the
outcome is taken: `approved`, `rejected` or `timed_out` (an output left out is not taken).
At its deadline a request may escalate to other approvers, with a second deadline."""

from collections.abc import Mapping
from typing import Any, ClassVar

import jinja2

from .._events import EventType
from .._ports import PortType
from .._registry import Effect, NodeContext, NodeError, NodeType, Port
from ._core import _JINJA

_MAX_TIMEOUT = 60 * 60 * 24 * 90  # ninety days
_MAX_MESSAGE = 20_000
_APPROVERS: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "role": {
            "enum": ["viewer", "editor", "owner"],
            "default": "editor",
            "description": "members with at least this workspace role may answer",
        },
        "users": {
            "type": "array",
            "maxItems": 100,
            "items": {"type": "string", "format": "email", "maxLength": 254},
            "description": "members (by email) who may answer whatever their role",
        },
        "caller": {
            "type": "boolean",
            "default": True,
            "description": "the person who started the run may answer",
        },
    },
}


class Approval(NodeType):
    type_name = "approval"
    title = "Approval"
    description = (
        "Waits for a person to approve or reject (for minutes or weeks; restarts and deploys "
        "do not lose the wait), then continues on the `approved` or `rejected` branch."
    )
    category = "human"
    effect = Effect.WRITE  # writes the request; its outcome is checkpointed
    config_schema: ClassVar[dict[str, Any]] = {
        "type": "object",
        "additionalProperties": False,
        "required": ["title"],
        "properties": {
            "title": {"type": "string", "minLength": 1, "maxLength": 200},
            "message": {
                "type": "string",
                "maxLength": 10_000,
                "description": "Jinja2 template over the `data` input (as `data`, and its "
                "fields when it is an object)",
            },
            "approvers": _APPROVERS,
            "timeout_seconds": {
                "type": "integer",
                "minimum": 1,
                "maximum": _MAX_TIMEOUT,
                "description": "how long the approvers have; none: no deadline",
            },
            "on_timeout": {
                "enum": ["reject", "approve", "fail", "branch", "escalate"],
                "default": "reject",
                "description": "when nobody answered in time: take `rejected` (or `approved`), "
                "fail the node, take the `timed_out` branch, or escalate: ask `escalate.approvers` "
                "for `escalate.timeout_seconds` more",
            },
            "escalate": {
                "type": "object",
                "additionalProperties": False,
                "required": ["approvers", "timeout_seconds"],
                "properties": {
                    "approvers": _APPROVERS,
                    "timeout_seconds": {"type": "integer", "minimum": 1, "maximum": _MAX_TIMEOUT},
                    "on_timeout": {
                        "enum": ["reject", "approve", "fail", "branch"],
                        "default": "reject",
                        "description": "when the escalation's approvers do not answer in time",
                    },
                },
            },
            "remind_every_seconds": {
                "type": "integer",
                "minimum": 60,
                "maximum": _MAX_TIMEOUT,
                "description": "email the approvers again this often while nobody answers",
            },
        },
        "if": {"properties": {"on_timeout": {"const": "escalate"}}, "required": ["on_timeout"]},
        "then": {"required": ["timeout_seconds", "escalate"]},
    }
    INPUTS = (Port("data", PortType.ANY, required=False, description="shown to approvers"),)
    OUTPUTS = (
        Port("approved", PortType.ANY, description="the data, when approved"),
        Port("rejected", PortType.ANY, description="the data, when rejected"),
        Port(
            "timed_out",
            PortType.ANY,
            description="the data, when nobody answered in time (on_timeout: branch)",
        ),
        Port("decision", PortType.JSON, description="{outcome, by, comment, at, escalated}"),
    )

    async def execute(
        self, config: Mapping[str, Any], inputs: Mapping[str, Any], ctx: NodeContext
    ) -> dict[str, Any]:
        if ctx.human is None:
            raise NodeError("approvals need the durable runtime (run this flow on a worker)")
        data = inputs.get("data")
        on_timeout = config.get("on_timeout", "reject")
        request: dict[str, Any] = {
            "title": config["title"],
            "message": _render(config.get("message", ""), data),
            "data": data,
            "approvers": normal_approvers(config.get("approvers")),
            "on_timeout": on_timeout,
        }
        escalate = config.get("escalate") or {}
        if on_timeout == "escalate":
            request["escalate"] = {
                "approvers": normal_approvers(escalate.get("approvers")),
                "timeout_seconds": escalate["timeout_seconds"],
                "on_timeout": escalate.get("on_timeout", "reject"),
            }
        if config.get("remind_every_seconds"):
            request["remind_every_seconds"] = config["remind_every_seconds"]
        timeout = config.get("timeout_seconds")
        opened = await ctx.human.open(request, float(timeout) if timeout else None)
        await announce(ctx, opened)

        async def escalated(escalation: dict[str, Any]) -> None:
            if ctx.emit is not None:
                moved = escalation["request"]
                await ctx.emit(
                    EventType.HITL_ESCALATED,
                    {
                        "approvers": moved.get("approvers"),
                        "from": (moved.get("escalated") or {}).get("from"),
                        "deadline": escalation["deadline"],
                    },
                )

        if "escalated" in opened["request"]:
            # Escalated by an execution of this step that died before its event was written:
            # said again (same key, so written once).
            await escalated({"request": opened["request"], "deadline": opened["deadline"]})
        decision = await ctx.human.wait(escalated, shelvable=True)
        await settle(ctx, decision, escalated=decision.get("escalated"))
        outcome = decision["outcome"]
        if outcome != "timed_out":
            branch = "approved" if outcome == "approved" else "rejected"
            return {branch: data, "decision": decision}
        # Nobody answered in time: the first group's rule, or the escalation's once it ran.
        final = escalate.get("on_timeout", "reject") if decision.get("escalated") else on_timeout
        if final == "fail":
            who = "the escalation's approvers" if decision.get("escalated") else "anyone"
            raise NodeError(f"{who} did not answer '{config['title']}' before its deadline")
        branch = {"approve": "approved", "branch": "timed_out"}.get(final, "rejected")
        return {branch: data, "decision": decision}


async def announce(ctx: NodeContext, opened: Mapping[str, Any], **extra: Any) -> None:
    """HITL_REQUESTED for a request as stored (what a re-executed step finds is what counts):
    its title, message, deadline and approvers, and what the kind of request adds."""
    if ctx.emit is None:
        return
    stored = opened["request"]
    await ctx.emit(
        EventType.HITL_REQUESTED,
        {
            "title": stored.get("title"),
            "message": stored.get("message"),
            "deadline": opened["deadline"],
            "approvers": stored.get("approvers"),
            **extra,
        },
    )


async def settle(ctx: NodeContext, decision: Mapping[str, Any], **extra: Any) -> None:
    """HITL_RESOLVED for an answered (or timed-out) request: who answered, how, and what the
    kind of request adds."""
    if ctx.emit is None:
        return
    answered = {k: decision.get(k) for k in ("outcome", "by", "comment")}
    await ctx.emit(EventType.HITL_RESOLVED, {**answered, **extra})


def normal_approvers(raw: Any) -> dict[str, Any]:
    """`approvers` as stored in a request: defaults filled in, emails lower-cased, once."""
    approvers = dict(raw or {})
    return {
        "role": approvers.get("role", "editor"),
        "users": sorted({str(u).strip().lower() for u in approvers.get("users", [])}),
        "caller": bool(approvers.get("caller", True)),
    }


def _render(template: str, data: Any) -> str:
    if not template:
        return ""
    variables = dict(data) if isinstance(data, dict) else {}
    variables["data"] = data
    try:
        text = _JINJA.from_string(template).render(**variables)
    except jinja2.TemplateError as exc:
        raise NodeError(f"message template error: {exc}") from None
    if len(text) > _MAX_MESSAGE:
        raise NodeError(f"the message exceeds {_MAX_MESSAGE} characters")
    return text
