"""Running a validated flow: every node starts once all its inputs have settled.

A node whose required input did not arrive (an untaken branch, a failed or skipped
upstream) is skipped with the reason; a failing node fails only its own downstream, and its
siblings go on (allSettled) unless the flow sets `fail_fast`."""

import asyncio
import logging
import uuid
from collections import defaultdict
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from ._document import FlowDocument
from ._events import Event, EventSink, EventType, MemoryEventSink
from ._planner import topological_order
from ._ports import PortType, conform
from ._registry import Effect, NodeContext, NodeError, node_type, with_mirrors
from ._shelf import RunShelved
from ._streams import MemoryStreams, StreamHub, stream_ref
from ._validate import FlowInvalid, Issue, ResolvedNode, parse_flow, resolve_nodes

log = logging.getLogger("fireflow.engine")

NodeStatus = Literal["completed", "failed", "skipped"]
NodeCall = Callable[[ResolvedNode, dict[str, Any], NodeContext], Awaitable[dict[str, Any]]]


@dataclass
class NodeOutcome:
    status: NodeStatus
    outputs: dict[str, Any] = field(default_factory=dict)
    error: str | None = None


@dataclass
class RunResult:
    status: Literal["completed", "failed"]
    outputs: dict[str, Any]
    nodes: dict[str, NodeOutcome]
    error: str | None = None


async def _call_directly(
    node: ResolvedNode, inputs: dict[str, Any], ctx: NodeContext
) -> dict[str, Any]:
    return await node.cls().execute(node.spec.config, inputs, ctx)


def check_run_inputs(document: FlowDocument, inputs: Mapping[str, Any]) -> None:
    """Refuse run inputs that the flow's input nodes do not accept, naming the field."""
    issues = []
    declared: set[str] = set()
    for spec in document.nodes:
        if spec.type != "input":
            continue
        for f in spec.config.get("fields", []):
            declared.add(f["name"])
            if f["name"] not in inputs and f.get("required", True) and "default" not in f:
                issues.append(
                    Issue(
                        "missing_run_input",
                        f"input '{f['name']}' ({f['type']}) is required",
                        node=spec.id,
                        port=f["name"],
                    )
                )
        for f in spec.config.get("fields", []):
            if f["name"] in inputs:
                try:
                    conform(inputs[f["name"]], PortType(f["type"]))
                except TypeError as exc:
                    issues.append(
                        Issue(
                            "invalid_run_input",
                            f"input '{f['name']}' {exc}",
                            node=spec.id,
                            port=f["name"],
                        )
                    )
    for name in sorted(set(inputs) - declared):
        issues.append(
            Issue(
                "unknown_run_input",
                f"input '{name}' is not an input of this flow; its inputs are: "
                f"{', '.join(sorted(declared)) or 'none'}",
                port=name,
            )
        )
    if issues:
        raise FlowInvalid(issues)


def live_streams(
    document: FlowDocument, nodes: Mapping[str, ResolvedNode] | None = None
) -> tuple[dict[str, set[str]], set[tuple[str, str]]]:
    """The stream edges of a flow: for each producer, its STREAM outputs that feed a STREAM
    input, and the (node, input port) pairs fed live by them (consumers that start as soon as
    their producer starts). A pure node writes no stream: its STREAM output (a flow input's)
    passes on a stream someone else writes, as a value."""
    writes: dict[str, bool] = {}
    if nodes is None:  # a valid document: its ports, without validating it again
        specs = {spec.id: spec for spec in document.nodes}
        outputs, inputs = {}, {}
        for node_id, spec in specs.items():
            cls = node_type(spec.type)
            outputs[node_id] = {p.name: p for p in cls.outputs(spec.config)} if cls else {}
            inputs[node_id] = {p.name: p for p in cls.inputs(spec.config)} if cls else {}
            writes[node_id] = cls is not None and cls.effect is not Effect.PURE
    else:
        outputs = {node_id: node.outputs for node_id, node in nodes.items()}
        inputs = {node_id: node.inputs for node_id, node in nodes.items()}
        writes = {node_id: node.cls.effect is not Effect.PURE for node_id, node in nodes.items()}
    producers: dict[str, set[str]] = defaultdict(set)
    consumers: set[tuple[str, str]] = set()
    for edge in document.edges:
        src, dst = edge.source_ref, edge.target_ref
        out = outputs[src.node].get(src.port)
        inp = inputs[dst.node].get(dst.port)
        if (
            out is not None
            and inp is not None
            and PortType.STREAM == out.type == inp.type
            and writes.get(src.node, False)
        ):
            producers[src.node].add(src.port)
            consumers.add((dst.node, dst.port))
    return dict(producers), consumers


async def run_flow(
    raw: Any,
    inputs: Mapping[str, Any],
    *,
    run_id: str = "local",
    events: EventSink | None = None,
    call_node: NodeCall = _call_directly,
    streams: StreamHub | None = None,
) -> RunResult:
    """Run a flow document (raw JSON, or already parsed) to the end. `call_node` is where a
    durable runtime wraps nodes with effects into checkpointed steps; by default nodes are
    called directly. `streams` carries streams between nodes (in memory by default)."""
    document = raw if isinstance(raw, FlowDocument) else parse_flow(raw)
    check_run_inputs(document, inputs)
    run = _Run(document, inputs, run_id, events or MemoryEventSink(), call_node, streams=streams)
    return await run.execute()


class _Run:
    def __init__(
        self,
        document: FlowDocument,
        inputs: Mapping[str, Any],
        run_id: str,
        sink: EventSink,
        call_node: NodeCall,
        *,
        streams: StreamHub | None = None,
    ) -> None:
        self.document = document
        self.inputs = dict(inputs)
        self.run_id = run_id
        self.sink = sink
        self.call_node = call_node
        self.nodes = resolve_nodes(document)
        self.graph: dict[str, set[str]] = {node_id: set() for node_id in self.nodes}
        # target node -> [(its input port, source node, source output port)]
        self.feeds: dict[str, list[tuple[str, str, str]]] = defaultdict(list)
        for edge in document.edges:
            src, dst = edge.source_ref, edge.target_ref
            self.graph[src.node].add(dst.node)
            self.feeds[dst.node].append((dst.port, src.node, src.port))
        self.outcomes: dict[str, NodeOutcome] = {}
        self.done = {node_id: asyncio.Event() for node_id in self.nodes}
        # Two-phase streams: a consumer fed live waits only for its producer to start.
        connected, self.live = live_streams(document, self.nodes)
        self.streams = streams if streams is not None else MemoryStreams(run_id, connected)
        self.started: set[str] = set()
        self.announced = {node_id: asyncio.Event() for node_id in self.nodes}
        self.tasks: list[asyncio.Task[None]] = []
        # fail_fast: set at the first failure; nodes not started yet are then skipped. Nodes
        # already running finish (a step cut off mid-call could run its effect twice).
        self.stopping = False

    async def execute(self) -> RunResult:
        await self.sink.emit([Event(EventType.FLOW_STARTED, payload={"inputs": self.inputs})])
        order = topological_order(self.graph)
        self.tasks = [asyncio.create_task(self._node(n), name=n) for n in order]
        results = await self._settle_all()
        for result in results:
            # Cancellation of the run itself (and the engine's own control flow) is not a
            # node failure: let it through.
            if isinstance(result, BaseException) and not isinstance(result, Exception):
                raise result
        outputs = {}
        for node_id, node in self.nodes.items():
            if node.spec.type == "output" and self.outcomes[node_id].status == "completed":
                value = self._input_value(node_id, "value")
                if value is not _MISSING:
                    outputs[node.spec.config["name"]] = value
        failed = [node_id for node_id in order if self.outcomes[node_id].status == "failed"]
        if failed:
            error = "; ".join(f"{n}: {self.outcomes[n].error}" for n in failed)
            payload = {"error": error, "failed_nodes": failed}
            await self.sink.emit([Event(EventType.FLOW_FAILED, payload=payload)])
            return RunResult("failed", outputs, self.outcomes, error)
        await self.sink.emit([Event(EventType.FLOW_COMPLETED, payload={"outputs": outputs})])
        return RunResult("completed", outputs, self.outcomes)

    async def _settle_all(self) -> list[BaseException | None]:
        """Wait for every node's task. A run put on the shelf (engine/_shelf.py) ends its
        execution here: the nodes still waiting for their inputs are cancelled (they run in
        the run's next execution) and RunShelved goes up."""
        pending: set[asyncio.Task[None]] = set(self.tasks)
        try:
            while pending:
                done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_EXCEPTION)
                shelved = [t for t in done if not t.cancelled() and _is_shelved(t.exception())]
                if shelved:
                    # Nodes not started are cancelled; the started ones are the run's other
                    # waits, ending on their own (told so by the shelving).
                    for task in pending:
                        if task.get_name() not in self.started:
                            task.cancel()
                    _, stuck = await asyncio.wait(pending, timeout=5)
                    for task in stuck:
                        task.cancel()
                    await asyncio.gather(*pending, return_exceptions=True)
                    raise shelved[0].exception()  # type: ignore[misc]
        except asyncio.CancelledError:  # the run itself is cancelled: so are its nodes
            for task in self.tasks:
                task.cancel()
            await asyncio.gather(*self.tasks, return_exceptions=True)
            raise
        return [asyncio.CancelledError() if t.cancelled() else t.exception() for t in self.tasks]

    async def _node(self, node_id: str) -> None:
        node = self.nodes[node_id]
        for port, src, _ in self.feeds[node_id]:
            await (self.announced if (node_id, port) in self.live else self.done)[src].wait()
        values: dict[str, Any] = {}
        missing: list[str] = []
        wrong: list[str] = []
        for port, src, out in self.feeds[node_id]:
            if (node_id, port) in self.live:
                if src in self.started:
                    values[port] = stream_ref(self.run_id, src, out)
                elif node.inputs[port].required:
                    missing.append(f"{port} ({src}.{out} did not start)")
                continue
            upstream = self.outcomes[src]
            if upstream.status == "completed" and out in upstream.outputs:
                try:
                    values[port] = conform(upstream.outputs[out], node.inputs[port].type)
                except TypeError as exc:
                    wrong.append(f"{node_id}.{port} {exc} (from {src}.{out})")
            elif node.inputs[port].required:
                reason = "failed" if upstream.status == "failed" else "did not produce a value"
                missing.append(f"{port} ({src}.{out} {reason})")
        if wrong:
            await self.sink.emit(
                [Event(EventType.NODE_STARTED, node_id, payload={"type": node.spec.type})]
            )
            await self._fail(node_id, "; ".join(wrong))
        elif missing:
            await self._skip(node_id, "; ".join(missing), f"no value for {', '.join(missing)}")
        elif self.stopping:
            reason = "not started: the flow stops at its first failure (fail_fast)"
            await self._skip(node_id, reason, reason)
        else:
            await self._execute(node_id, node, values)
        self.done[node_id].set()
        self.announced[node_id].set()

    async def _execute(self, node_id: str, node: ResolvedNode, values: dict[str, Any]) -> None:
        started = Event(EventType.NODE_STARTED, node_id, payload={"type": node.spec.type})
        await self.sink.emit([started])
        streams = self.streams.for_node(node_id)
        ctx = NodeContext(
            run_id=self.run_id,
            node_id=node_id,
            extra={"run_inputs": self.inputs},
            emit=self._emitter(node_id),
            streams=streams,
        )
        self.started.add(node_id)
        self.announced[node_id].set()  # its stream consumers start now
        try:
            produced = await self.call_node(node, values, ctx)
        except NodeError as exc:
            if streams is not None:
                await streams.finish({}, str(exc))
            await self._fail(node_id, str(exc))
            return
        except Exception:  # a node's bug fails its branch, not the run
            # The details (which may name hosts, users or internals) go to the worker's log,
            # not to the tenant; the reference ties the two together.
            reference = uuid.uuid4().hex[:12]
            log.exception(
                "node %s of run %s failed (reference %s)", node_id, self.run_id, reference
            )
            message = f"internal error in node '{node_id}' (reference {reference})"
            if streams is not None:
                await streams.finish({}, message)
            await self._fail(node_id, message)
            return
        produced = with_mirrors(node.outputs, produced)
        if streams is not None:
            await streams.finish(produced, None)
        unknown = set(produced) - set(node.outputs)
        if unknown:
            await self._fail(node_id, f"produced unknown outputs {sorted(unknown)}")
            return
        self.outcomes[node_id] = NodeOutcome("completed", outputs=produced)
        await self.sink.emit(
            [
                *(
                    Event(EventType.PORT_VALUE_CHANGED, node_id, port, {"value": value})
                    for port, value in produced.items()
                ),
                Event(EventType.NODE_COMPLETED, node_id, payload={"outputs": sorted(produced)}),
            ]
        )

    def _emitter(self, node_id: str) -> Callable[[str, dict[str, Any]], Awaitable[None]]:
        """Events a node emits while it runs, numbered per node: a node that runs again
        (a replayed step) emits the same keys, so nothing is duplicated."""
        counter = 0

        async def emit(event_type: str, payload: dict[str, Any]) -> None:
            nonlocal counter
            counter += 1
            # A node that runs again after its worker died (a new attempt) emits new events.
            attempt = payload.get("attempt", 1)
            key = f"{event_type}:{node_id}:{attempt}:{counter}"
            await self.sink.emit([Event(EventType(event_type), node_id, None, payload, key)])

        return emit

    async def _skip(self, node_id: str, error: str, reason: str) -> None:
        self.outcomes[node_id] = NodeOutcome("skipped", error=error)
        await self.sink.emit([Event(EventType.NODE_SKIPPED, node_id, payload={"reason": reason})])

    async def _fail(self, node_id: str, message: str) -> None:
        self.outcomes[node_id] = NodeOutcome("failed", error=message)
        await self.sink.emit([Event(EventType.NODE_FAILED, node_id, payload={"error": message})])
        if self.document.settings.fail_fast:
            self.stopping = True

    def _input_value(self, node_id: str, port_name: str) -> Any:
        for port, src, out in self.feeds[node_id]:
            if port == port_name and out in self.outcomes[src].outputs:
                return self.outcomes[src].outputs[out]
        return _MISSING


_MISSING = object()


def _is_shelved(error: BaseException | None) -> bool:
    return isinstance(error, RunShelved)
