"""Nodes that shape a run over time or into sub-runs: a durable delay, another flow as a
child run, and a map of a sub-flow over a list with a concurrency limit.

Child runs have deterministic ids (`<run>:<node>` and `<run>:<node>:<index>`), so a node
re-executed after a crash finds the children it already started instead of starting them
again. The documents of referenced flows are pinned when the parent run starts (in its
`subflows`), so a run never changes under the flows it calls."""

import asyncio
import contextlib
import json
import time
import uuid
from collections.abc import Mapping
from typing import Any, ClassVar

from .._ports import PortType
from .._registry import Effect, NodeContext, NodeError, NodeType, Port
from .._slots import waiting

_MAX_DELAY = 60 * 60 * 24 * 90  # ninety days
_FLOW_REF = {"type": "string", "format": "uuid", "description": "a flow of this workspace"}
# Config of the nodes that run a flow once per item (Map, StreamFlatMap).
_PER_ITEM: dict[str, Any] = {
    "flow_id": _FLOW_REF,
    "item_input": {"type": "string", "default": "item"},
    "concurrency": {"type": "integer", "minimum": 1, "maximum": 100, "default": 4},
    "max_items": {"type": "integer", "minimum": 1, "maximum": 10_000, "default": 1000},
}


class _CallsOneFlow(NodeType):
    """Base of the nodes whose config names one flow to run as child runs."""

    @classmethod
    def called_flows(cls, config: Mapping[str, Any]) -> list[str]:
        return [str(config.get("flow_id", ""))]


def _wall_clock() -> float:
    return time.time()


class Delay(NodeType):
    type_name = "delay"
    title = "Delay"
    description = (
        "Waits for a while, durably: a restart or a deploy during the wait does not restart it."
    )
    category = "control"
    effect = Effect.READ  # reads the clock once; the deadline is checkpointed
    runs_in_workflow = True
    config_schema: ClassVar[dict[str, Any]] = {
        "type": "object",
        "additionalProperties": False,
        "required": ["seconds"],
        "properties": {"seconds": {"type": "number", "minimum": 0, "maximum": _MAX_DELAY}},
    }
    INPUTS = (Port("value", PortType.ANY, required=False),)
    OUTPUTS = (Port("value", PortType.ANY),)

    async def execute(
        self, config: Mapping[str, Any], inputs: Mapping[str, Any], ctx: NodeContext
    ) -> dict[str, Any]:
        seconds = float(config["seconds"])
        if ctx.checkpoint is None:  # not durable: just wait
            await asyncio.sleep(seconds)
        else:
            deadline = await ctx.checkpoint(_deadline, seconds)
            async with waiting():  # the run's slot serves others meanwhile
                await asyncio.sleep(max(0.0, float(deadline) - _wall_clock()))
        return {"value": inputs.get("value")}


def _deadline(seconds: float) -> float:
    return _wall_clock() + seconds


def _subflow(ctx: NodeContext, flow_id: str) -> dict[str, Any]:
    subflows: Mapping[str, Any] = ctx.extra.get("subflows", {})
    with contextlib.suppress(ValueError):
        flow_id = str(uuid.UUID(flow_id))  # pinned under its canonical spelling
    document = subflows.get(flow_id)
    if document is None:
        raise NodeError(f"flow {flow_id} was not pinned for this run: is it in this workspace?")
    return dict(document)


def _children(ctx: NodeContext) -> Any:
    if ctx.children is None:
        raise NodeError("child runs need the durable runtime (run this flow on a worker)")
    return ctx.children


def _outcome(child_id: str, result: dict[str, Any]) -> dict[str, Any]:
    if result.get("status") != "completed":
        raise NodeError(
            f"child run {child_id} {result.get('status', 'failed')}: "
            f"{result.get('error') or 'no detail'}"
        )
    outputs: dict[str, Any] = result.get("outputs", {})
    return outputs


class ExecuteFlow(_CallsOneFlow):
    type_name = "execute_flow"
    title = "Execute flow"
    description = (
        "Runs another flow as a child run and returns its outputs. Streams (an LLM's tokens) "
        "can be among its inputs: the child reads them while they are written."
    )
    category = "flow"
    effect = Effect.EXTERNAL
    config_schema: ClassVar[dict[str, Any]] = {
        "type": "object",
        "additionalProperties": False,
        "required": ["flow_id"],
        "properties": {
            "flow_id": _FLOW_REF,
            "stream_inputs": {
                "type": "array",
                "maxItems": 16,
                "uniqueItems": True,
                "items": {"type": "string", "pattern": "^[A-Za-z_][A-Za-z0-9_]{0,63}$"},
                "description": "inputs of the child flow that are streams (its input fields of "
                "type stream): each a port here, to connect a stream output to; the child "
                "starts as soon as the stream does and reads it as it is written",
            },
        },
    }
    INPUTS = (Port("inputs", PortType.JSON, required=False, description="the child's inputs"),)
    OUTPUTS = (Port("outputs", PortType.JSON),)

    @classmethod
    def check_config(cls, config: Mapping[str, Any]) -> list[str]:
        if "inputs" in (config.get("stream_inputs") or ()):
            return [
                "stream_inputs: 'inputs' is this node's port for the other inputs; name the "
                "child's stream input otherwise"
            ]
        return []

    @classmethod
    def inputs(cls, config: Mapping[str, Any]) -> tuple[Port, ...]:
        streams = tuple(
            Port(str(name), PortType.STREAM, description=f"the child's stream input '{name}'")
            for name in config.get("stream_inputs") or ()
            if name != "inputs"
        )
        return (*cls.INPUTS, *streams)

    async def execute(
        self, config: Mapping[str, Any], inputs: Mapping[str, Any], ctx: NodeContext
    ) -> dict[str, Any]:
        child_id = f"{ctx.run_id}:{ctx.node_id}"
        document = _subflow(ctx, str(config["flow_id"]))
        child_inputs = dict(inputs.get("inputs") or {})
        for name in config.get("stream_inputs") or ():
            if name in inputs:
                child_inputs[name] = inputs[name]  # a reference: the child reads it live
        result = await _children(ctx).run(child_id, document, child_inputs)
        return {"outputs": _outcome(child_id, result)}


class Map(_CallsOneFlow):
    type_name = "map"
    title = "Map"
    description = (
        "Runs a flow once per item of a list (the item goes to the input named `item_input`), "
        "at most `concurrency` at a time, and returns the list of their outputs in order."
    )
    category = "flow"
    effect = Effect.EXTERNAL
    config_schema: ClassVar[dict[str, Any]] = {
        "type": "object",
        "additionalProperties": False,
        "required": ["flow_id"],
        "properties": _PER_ITEM,
    }
    INPUTS = (Port("items", PortType.LIST),)
    OUTPUTS = (Port("results", PortType.LIST),)

    async def execute(
        self, config: Mapping[str, Any], inputs: Mapping[str, Any], ctx: NodeContext
    ) -> dict[str, Any]:
        items = list(inputs["items"])
        limit = int(config.get("max_items", 1000))
        if len(items) > limit:
            raise NodeError(f"{len(items)} items is over this map's limit of {limit}")
        document = _subflow(ctx, str(config["flow_id"]))
        item_input = str(config.get("item_input", "item"))
        children = _children(ctx)
        gate = asyncio.Semaphore(int(config.get("concurrency", 4)))

        async def one(index: int, item: Any) -> dict[str, Any]:
            child_id = f"{ctx.run_id}:{ctx.node_id}:{index}"
            async with gate:
                result = await children.run(child_id, document, {item_input: item})
            return _outcome(child_id, result)

        # A failing child stops the others from starting (TaskGroup cancels the waiting ones).
        try:
            async with asyncio.TaskGroup() as group:
                tasks = [group.create_task(one(i, item)) for i, item in enumerate(items)]
        except ExceptionGroup as failures:
            raise _first(failures) from None
        return {"results": [task.result() for task in tasks]}


class StreamFlatMap(_CallsOneFlow):
    type_name = "stream_flat_map"
    title = "Stream flat-map"
    description = (
        "Runs a flow once per line of a stream as soon as the line is complete (while the "
        "producer is still writing), at most `concurrency` at a time, and returns their "
        "results in order, lists flattened into one list."
    )
    category = "flow"
    effect = Effect.EXTERNAL
    config_schema: ClassVar[dict[str, Any]] = {
        "type": "object",
        "additionalProperties": False,
        "required": ["flow_id"],
        "properties": {
            **_PER_ITEM,
            "split": {
                "enum": ["lines", "jsonl"],
                "default": "lines",
                "description": "lines: each non-empty line is a text item; jsonl: each line "
                "is parsed as JSON",
            },
            "result_output": {
                "type": "string",
                "description": "the child output to collect (a list is flattened); all of "
                "its outputs when empty",
            },
        },
    }
    INPUTS = (Port("stream", PortType.STREAM),)
    OUTPUTS = (Port("results", PortType.LIST),)

    async def execute(
        self, config: Mapping[str, Any], inputs: Mapping[str, Any], ctx: NodeContext
    ) -> dict[str, Any]:
        if ctx.streams is None:
            raise NodeError("stream_flat_map reads a stream: run it on a worker")
        document = _subflow(ctx, str(config["flow_id"]))
        children = _children(ctx)
        limit = int(config.get("max_items", 1000))
        gate = asyncio.Semaphore(int(config.get("concurrency", 4)))
        item_input = str(config.get("item_input", "item"))
        jsonl = config.get("split", "lines") == "jsonl"

        async def one(child_id: str, item: Any) -> dict[str, Any]:
            async with gate:
                result = await children.run(child_id, document, {item_input: item})
            return _outcome(child_id, result)

        # Items start as their lines complete. A new attempt of the producer (its worker
        # died) supersedes what it wrote before: start over, with child ids of that attempt.
        tasks: list[asyncio.Task[dict[str, Any]]] = []
        try:
            async with asyncio.TaskGroup() as group:
                attempt, pending = 0, ""

                def start(line: str) -> None:
                    if not line.strip():
                        return
                    if len(tasks) >= limit:
                        raise NodeError(f"the stream has more than this node's {limit} items")
                    item = _parse_line(line, len(tasks)) if jsonl else line.strip()
                    child_id = f"{ctx.run_id}:{ctx.node_id}:{attempt}:{len(tasks)}"
                    tasks.append(group.create_task(one(child_id, item)))

                async for chunk in ctx.streams.read(inputs["stream"]):
                    if chunk.attempt != attempt:
                        for task in tasks:
                            task.cancel()  # its child finishes on its own; the result is dropped
                        attempt, pending, tasks = chunk.attempt, "", []
                    pending += chunk.text
                    *lines, pending = pending.split("\n")
                    for line in lines:
                        start(line)
                start(pending)
        except ExceptionGroup as failures:
            raise _first(failures) from None
        output = config.get("result_output") or ""
        results: list[Any] = []
        for task in tasks:
            outputs = task.result()
            value = outputs.get(output) if output else outputs
            if output and output not in outputs:
                raise NodeError(f"the child flow has no output '{output}'")
            results.extend(value if isinstance(value, list) else [value])
        return {"results": results}


def _parse_line(line: str, index: int) -> Any:
    try:
        return json.loads(line)
    except json.JSONDecodeError as exc:
        raise NodeError(f"line {index + 1} of the stream is not JSON: {exc.msg}") from None


def _first(group: BaseExceptionGroup[BaseException]) -> BaseException:
    first = group.exceptions[0]
    return _first(first) if isinstance(first, BaseExceptionGroup) else first
