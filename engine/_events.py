"""The event catalogue: every event a run emits, with its payload, documented once."""

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Protocol


class EventType(StrEnum):
    FLOW_STARTED = "FLOW_STARTED"  # {"inputs": {...}}
    NODE_STARTED = "NODE_STARTED"  # {"type": node type}
    NODE_COMPLETED = "NODE_COMPLETED"  # {"outputs": [taken output ports]}
    NODE_FAILED = "NODE_FAILED"  # {"error": message}
    NODE_SKIPPED = "NODE_SKIPPED"  # {"reason": why it did not run}
    PORT_VALUE_CHANGED = "PORT_VALUE_CHANGED"  # {"value": the value on node.port}
    FLOW_COMPLETED = "FLOW_COMPLETED"  # {"outputs": {...}}
    FLOW_FAILED = "FLOW_FAILED"  # {"error": summary, "failed_nodes": [...]}
    STREAM_CHUNK = "STREAM_CHUNK"  # {"text": a piece of a streamed output, "attempt": n}
    NODE_RESTARTED = "NODE_RESTARTED"  # {"attempt": n}: running again after its worker died
    LLM_USAGE = "LLM_USAGE"  # {"provider", "model", tokens, "cost_usd", "cost_micros"}
    TOOL_CALL_START = "TOOL_CALL_START"  # {"tool_call_id", "name"}
    TOOL_CALL_ARGS = "TOOL_CALL_ARGS"  # {"tool_call_id", "arguments": a piece of its JSON text}
    TOOL_CALL_END = "TOOL_CALL_END"  # {"tool_call_id"}: the model finished writing the call
    TOOL_CALL_RESULT = "TOOL_CALL_RESULT"  # {"tool_call_id", "result"} or {..., "error"}
    HITL_REQUESTED = "HITL_REQUESTED"  # {"title", "message", "deadline", "approvers"}
    HITL_ESCALATED = "HITL_ESCALATED"  # {"approvers", "from", "deadline"}
    HITL_RESOLVED = "HITL_RESOLVED"  # {"outcome", "by", "comment", "escalated"}


EVENT_PAYLOADS: dict[EventType, str] = {
    EventType.FLOW_STARTED: "inputs: the run's inputs",
    EventType.NODE_STARTED: "type: the node's type",
    EventType.NODE_COMPLETED: "outputs: the output ports that produced a value",
    EventType.NODE_FAILED: "error: what went wrong, for the user",
    EventType.NODE_SKIPPED: "reason: why the node did not run (untaken branch, failed input)",
    EventType.PORT_VALUE_CHANGED: "value: the value that left the node through `port`",
    EventType.FLOW_COMPLETED: "outputs: the run's outputs by output-node name",
    EventType.FLOW_FAILED: "error: a summary; failed_nodes: the ids of the nodes that failed",
    EventType.STREAM_CHUNK: "text: the next piece of a node's streamed output (LLM tokens); "
    "attempt: which execution of the node wrote it (see NODE_RESTARTED)",
    EventType.NODE_RESTARTED: "attempt: the node runs again (its worker died mid-step); what "
    "it streamed in earlier attempts is superseded",
    EventType.LLM_USAGE: "provider, model, input_tokens, output_tokens, cost_usd and "
    "cost_micros (USD millionths) of one call",
    EventType.TOOL_CALL_START: "tool_call_id, name: a model started calling a tool",
    EventType.TOOL_CALL_ARGS: "tool_call_id, arguments: the next piece of the arguments' JSON text",
    EventType.TOOL_CALL_END: "tool_call_id: the model finished writing the call's arguments",
    EventType.TOOL_CALL_RESULT: "tool_call_id, and result (the tool's outputs) or error (why "
    "not); refused: true when a person refused the call, arguments when they edited them",
    EventType.HITL_REQUESTED: "title, message, deadline (or null), approvers: the node waits for "
    "a person's answer (listed in their inbox); for an agent's tool call also kind "
    "(tool_call), request (its key), tool_call_id, tool and arguments",
    EventType.HITL_ESCALATED: "approvers (who may answer now), from (who could before) and "
    "deadline (the new one): nobody answered in time, so the request passed to others",
    EventType.HITL_RESOLVED: "outcome (approved, rejected or timed_out), by (who answered; null "
    "on a timeout), comment, and escalated (whether it had passed to the escalation's "
    "approvers): the wait is over",
}


@dataclass(frozen=True)
class Event:
    type: EventType
    node: str | None = None
    port: str | None = None
    payload: dict[str, Any] = field(default_factory=dict)
    # Idempotency key within the run; derived from type, node and port when empty.
    key: str = ""


class EventSink(Protocol):
    """Port: where a run's events go (the platform writes them to its event table)."""

    async def emit(self, events: list[Event]) -> None: ...


class MemoryEventSink:
    """Keeps events in a list (tests, local runs)."""

    def __init__(self) -> None:
        self.events: list[Event] = []

    async def emit(self, events: list[Event]) -> None:
        self.events.extend(events)
