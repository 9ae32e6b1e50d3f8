"""Human-in-the-loop nodes: an approval that waits, durably, for a person's answer.

The node is one ordinary step: it creates its request (once per run and node, with its
deadline fixed then), waits for the answer through the worker's one listener
(engine/_human.py) and returns the outcome, which DBOS checkpoints. Only the branch of the
outcome is taken: `approved` or `rejected` (an output left out is not taken)."""

from collections.abc import Mapping
from typing import Any, ClassVar

import jinja2

from .._events import EventType
from .._ports import PortType
from .._registry import Effect, NodeContext, NodeError, NodeType, Port
from ._core import _JINJA

_MAX_TIMEOUT = 60 * 60 * 24 * 90  # ninety days
_MAX_MESSAGE = 20_000


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
            "approvers": {
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
            },
            "timeout_seconds": {"type": "integer", "minimum": 1, "maximum": _MAX_TIMEOUT},
            "on_timeout": {"enum": ["reject", "approve", "fail"], "default": "reject"},
        },
    }
    INPUTS = (Port("data", PortType.ANY, required=False, description="shown to approvers"),)
    OUTPUTS = (
        Port("approved", PortType.ANY, description="the data, when approved"),
        Port("rejected", PortType.ANY, description="the data, when rejected"),
        Port("decision", PortType.JSON, description="{outcome, by, comment, at}"),
    )

    async def execute(
        self, config: Mapping[str, Any], inputs: Mapping[str, Any], ctx: NodeContext
    ) -> dict[str, Any]:
        if ctx.human is None:
            raise NodeError("approvals need the durable runtime (run this flow on a worker)")
        data = inputs.get("data")
        approvers = dict(config.get("approvers") or {})
        request = {
            "title": config["title"],
            "message": _render(config.get("message", ""), data),
            "data": data,
            "approvers": {
                "role": approvers.get("role", "editor"),
                "users": sorted({str(u).strip().lower() for u in approvers.get("users", [])}),
                "caller": bool(approvers.get("caller", True)),
            },
            "on_timeout": config.get("on_timeout", "reject"),
        }
        timeout = config.get("timeout_seconds")
        opened = await ctx.human.open(request, float(timeout) if timeout else None)
        stored = opened["request"]
        if ctx.emit is not None:
            await ctx.emit(
                EventType.HITL_REQUESTED,
                {
                    "title": stored.get("title"),
                    "message": stored.get("message"),
                    "deadline": opened["deadline"],
                    "approvers": stored.get("approvers"),
                },
            )
        decision = await ctx.human.wait()
        if ctx.emit is not None:
            await ctx.emit(
                EventType.HITL_RESOLVED,
                {k: decision.get(k) for k in ("outcome", "by", "comment")},
            )
        outcome = decision["outcome"]
        if outcome == "timed_out":
            on_timeout = stored.get("on_timeout", "reject")
            if on_timeout == "fail":
                raise NodeError(f"nobody answered '{config['title']}' before its deadline")
            branch = "approved" if on_timeout == "approve" else "rejected"
        else:
            branch = "approved" if outcome == "approved" else "rejected"
        return {branch: data, "decision": decision}


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
