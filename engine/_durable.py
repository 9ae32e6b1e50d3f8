"""Durable runs on DBOS: a run is one workflow; each node with an effect is one step.

Determinism: step ids are reserved up front, in the flow's topological order, for every
node with an effect. Each node then runs its step at its own id whenever its inputs are
ready, so concurrent branches finish in any order and a replay still finds every checkpoint
where it left it. A node's step is looked up and recorded in batches with the steps of the
worker's other nodes and runs (engine/_checkpoints.py, in DBOS's own table); a node that
checkpoints as it goes (`runs_in_workflow`) uses DBOS's `reserve_step` instead. Pure nodes
run inside the workflow and are simply recomputed on replay. Workflow inputs and step
outputs hold flow data only, never secrets.

The platform enqueues runs with `enqueue_run_sql` inside its own transaction (the Run row
and the queue entry commit together); workers launch DBOS with `launch_worker`."""

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from dbos import DBOS, WorkflowSerializationFormat
from dbos._context import DBOSContext
from dbos._dbos import StepReservation
from psycopg.types.json import Jsonb

from ._checkpoints import StepBook, reserve
from ._document import FlowDocument
from ._events import Event, EventType
from ._human import HumanDesk, HumanHub
from ._planner import Plan, plan, topological_order
from ._ports import PortType
from ._registry import (
    BudgetPaused,
    Effect,
    NodeContext,
    NodeError,
    NodeType,
    PolicySource,
    Port,
    SecretSource,
    SpendGate,
    UsageLedger,
    node_type,
    with_mirrors,
)
from ._runtime import RunResult, live_streams, run_flow
from ._shelf import begin_presence
from ._slots import SLOTS, waiting
from ._store import ENQUEUE_CHANNEL, PostgresEventStore
from ._streams import (
    FramedWriter,
    StreamChunk,
    StreamWriter,
    WritersOfNode,
    frame_chunk,
    parse_ref,
)
from ._transit import RunKeyPair, TransitError, open_for_run
from ._validate import FlowInvalid, ResolvedNode, parse_flow, parse_known_flow, resolve_nodes

log = logging.getLogger("fireflow.engine")

RUN_WORKFLOW = "fireflow_run"
RUN_QUEUE = "fireflow_runs"
# Child runs (ExecuteFlow, Map) have a queue of their own: a parent waiting for its children
# holds a slot of RUN_QUEUE, and children queued behind parents could otherwise starve.
CHILD_QUEUE = "fireflow_child_runs"
# Pinned: a deploy must not strand pending runs (a human wait lasting weeks included) on an
# old version. Bump only with a plan for the runs in flight (patching or draining).
APPLICATION_VERSION = "fireflow-1"
# DBOS numbers a workflow's steps from 1; the i-th effectful node (in step_order) owns step
# FIRST_STEP_ID + i. Checked in every run, so a DBOS change cannot misplace forks silently.
FIRST_STEP_ID = 1
# How long a budget's request for more spend waits for an owner before the call is refused.
BUDGET_APPROVAL_SECONDS = 7 * 24 * 3600
# A run whose worker keeps dying is given up after this many recoveries.
MAX_RECOVERY_ATTEMPTS = 5


@dataclass
class _WorkerState:
    store: PostgresEventStore
    policy: PolicySource | None = None
    usage: UsageLedger | None = None
    secrets: SecretSource | None = None
    spend: SpendGate | None = None  # budgets and kill switches, before every LLM call
    # Human-in-the-loop: the process's one listener for answers (engine/_human.py).
    human: HumanHub | None = None
    # Opening the pool once, whichever run (recovered runs start together) asks first.
    opening: "asyncio.Future[None] | None" = None
    book: StepBook | None = None  # node steps' checkpoints, on the store's pool


_state: _WorkerState | None = None


def configure_event_store(
    conninfo: str,
    policy: PolicySource | None = None,
    usage: UsageLedger | None = None,
    secrets: SecretSource | None = None,
    spend: SpendGate | None = None,
) -> None:
    """Where this worker's runs write their events, where it reads the platform's rules,
    records LLM usage, holds LLM calls against budgets and gets secrets (called once by the
    worker)."""
    global _state  # noqa: PLW0603 (one event store per worker process)
    _state = _WorkerState(
        store=PostgresEventStore(conninfo),
        policy=policy,
        usage=usage,
        secrets=secrets,
        spend=spend,
        human=HumanHub(conninfo),  # human-in-the-loop
    )


async def _store() -> PostgresEventStore:
    if _state is None:
        raise RuntimeError("the worker has no event store: call configure_event_store first")
    if _state.opening is None:
        # Opened on DBOS's event loop, where runs execute.
        _state.opening = asyncio.ensure_future(_state.store.open())
    await asyncio.shield(_state.opening)
    return _state.store


def _book() -> StepBook:
    """The worker's step checkpoints (after `_store()`: on its pool, on DBOS's loop)."""
    if _state is None:
        raise RuntimeError("the worker has no event store: call configure_event_store first")
    if _state.book is None:
        _state.book = StepBook(_state.store.pool)
    return _state.book


class _BufferedSink:
    """Collects a run's events and writes them in batches: at most `interval` after the
    first unwritten event (so a slow node shows as running almost at once) and when the run
    ends, one transaction per batch. Flushes are serialised and take the buffer whole, so
    the stream keeps the order the events were emitted in."""

    def __init__(self, store: PostgresEventStore, run_id: str, interval: float = 0.05) -> None:
        self._store = store
        self._run_id = run_id
        self._interval = interval
        self._buffer: list[Event] = []
        self._lock = asyncio.Lock()
        self._timer: asyncio.Task[None] | None = None
        self._waiting = False  # the timer is still sleeping (safe to cancel)
        self._streaming = False  # a stream chunk was seen (and flushed at once)

    async def emit(self, events: list[Event]) -> None:
        self._buffer.extend(events)
        # The first token of a stream is written before the node goes on (time to first
        # token is what a user waits for), with whatever waits in the buffer; the tokens
        # after it are batched.
        if not self._streaming and any(e.type is EventType.STREAM_CHUNK for e in events):
            self._streaming = True
            if self._timer is not None and not self._timer.done() and self._waiting:
                self._timer.cancel()  # nothing taken from the buffer yet: flush it now
                self._timer = None
            await self._flush_logged()
            return
        if self._timer is None or self._timer.done():
            self._waiting = True
            self._timer = asyncio.ensure_future(self._flush_soon(self._interval))

    async def _flush_soon(self, delay: float) -> None:
        await asyncio.sleep(delay)
        self._waiting = False
        await self._flush_logged()

    async def _flush_logged(self) -> None:
        try:
            await self.flush()
        except Exception:  # the batch is back in the buffer; close() tries again
            log.warning("could not write events of run %s yet", self._run_id, exc_info=True)

    async def flush(self) -> None:
        async with self._lock:
            if self._buffer:
                batch, self._buffer = self._buffer, []
                try:
                    await self._store.append(self._run_id, batch)
                except BaseException:
                    self._buffer[:0] = batch  # nothing lost: written with the next flush
                    raise

    async def close(self) -> None:
        if self._timer is not None and not self._timer.done():
            if self._waiting:
                self._timer.cancel()  # nothing taken from the buffer yet
            else:
                await asyncio.wait([self._timer])  # mid-write: let that batch land
        await self.flush()


_TERMINAL = {"SUCCESS", "ERROR", "CANCELLED", "MAX_RECOVERY_ATTEMPTS_EXCEEDED"}


class _ChildRuns:
    """Child runs on the same queue, started by deterministic id (starting one twice is a
    no-op) and awaited by polling DBOS's status table."""

    def __init__(self, store: PostgresEventStore, parent: str, meta: dict[str, Any]) -> None:
        self._store = store
        self._parent = parent
        self._meta = {k: v for k, v in meta.items() if k != "steps"}

    async def _parent_stopped(self) -> bool:
        row = await self._store.fetchone(
            "SELECT status FROM dbos.workflow_status WHERE workflow_uuid = %s", [self._parent]
        )
        return row is not None and row[0] == "CANCELLED"

    async def run(
        self, child_id: str, document: dict[str, Any], inputs: dict[str, Any]
    ) -> dict[str, Any]:
        if await self._parent_stopped():
            raise NodeError(f"run {self._parent} was cancelled: child {child_id} not started")
        sql, params = enqueue_run_sql(
            run_id=child_id, document=document, inputs=inputs, meta=self._meta, queue=CHILD_QUEUE
        )
        await self._store.execute(sql, params)
        delay = 0.05
        async with waiting():  # the child needs a slot: this run gives its own back
            while True:
                row = await self._store.fetchone(
                    "SELECT ws.status, wo.output, wo.error FROM dbos.workflow_status ws "
                    "LEFT JOIN dbos.workflow_output wo USING (workflow_uuid) "
                    "WHERE ws.workflow_uuid = %s",
                    [child_id],
                )
                if row is not None and row[0] in _TERMINAL:
                    return _child_result(row[0], row[1], row[2])
                if await self._parent_stopped():
                    raise NodeError(f"run {self._parent} was cancelled while {child_id} ran")
                await asyncio.sleep(delay)
                delay = min(delay * 1.5, 1.0)


class _WorkspaceData:
    """The data store of the run's workspace, with writes recorded per (run, node)."""

    def __init__(self, store: PostgresEventStore, run_id: str, node_id: str, meta: dict[str, Any]):
        self._store = store
        self._run_id = run_id
        self._node_id = node_id
        workspace = meta.get("workspace")
        self._workspace = str(workspace) if workspace else f"run:{run_id}"

    async def write(self, operation: str, collection: str, key: str, value: Any) -> dict[str, Any]:
        sql = {
            "set": "EXCLUDED.value",
            "append": "CASE WHEN jsonb_typeof(r.value) = 'array' THEN r.value || EXCLUDED.value "
            "ELSE jsonb_build_array(r.value) || EXCLUDED.value END",
            "increment": "to_jsonb(COALESCE((r.value #>> '{}')::numeric, 0) "
            "+ (EXCLUDED.value #>> '{}')::numeric)",
        }[operation]
        initial = [value] if operation == "append" else value

        async def apply(conn: Any) -> dict[str, Any]:
            cursor = await conn.execute(  # `sql` is one of three fixed fragments above
                "INSERT INTO fireflow.data_record AS r "  # noqa: S608
                "(workspace_id, collection, key, value, updated_by) VALUES (%s, %s, %s, %s, %s) "
                f"ON CONFLICT (workspace_id, collection, key) DO UPDATE SET value = {sql}, "
                "updated_at = now(), updated_by = EXCLUDED.updated_by RETURNING value",
                (self._workspace, collection, key, Jsonb(initial), self._run_id),
            )
            row = await cursor.fetchone()
            return {"value": row[0] if row else None}

        return await self._store.write_once(self._run_id, self._node_id, apply)

    async def read(self, collection: str, key: str | None, limit: int) -> list[dict[str, Any]]:
        where, params = "workspace_id = %s AND collection = %s", [self._workspace, collection]
        if key is not None:
            where += " AND key = %s"
            params.append(key)
        rows = await self._store.fetchall(
            f"SELECT key, value, updated_at FROM fireflow.data_record WHERE {where} "  # noqa: S608
            "ORDER BY updated_at DESC, key LIMIT %s",
            [*params, limit],
        )
        return [{"key": k, "value": v, "updated_at": u.isoformat()} for k, v, u in rows]


def _child_result(status: str, output: str | None, error: str | None) -> dict[str, Any]:
    if status == "SUCCESS" and output:
        result: dict[str, Any] = json.loads(output)
        return result
    if status == "CANCELLED":
        return {"status": "cancelled", "error": "the child run was cancelled"}
    if status == "MAX_RECOVERY_ATTEMPTS_EXCEEDED":
        return {"status": "failed", "error": "the child run kept crashing its worker"}
    # Inputs that do not fit the called flow are the caller's mistake: say which (the
    # exception is stored as JSON {"name", "message"}); anything else stays internal.
    with contextlib.suppress(ValueError, TypeError, AttributeError):
        stored = json.loads(error or "")
        if stored.get("name") == FlowInvalid.__name__:
            return {"status": "failed", "error": f"its inputs do not fit: {stored['message']}"}
    log.warning("child run ended %s: %s", status, (error or "")[:2000])
    return {"status": "failed", "error": "the child run ended with an internal error"}


async def _execute_node_step(
    run_id: str,
    node: dict[str, Any],
    inputs: dict[str, Any],
    meta: dict[str, Any],
    emit: Callable[[str, dict[str, Any]], Awaitable[None]] | None = None,
) -> dict[str, Any]:
    """The body of a node's DBOS step: runs the node (`{"id", "type", "config", "streams"}`)
    and returns its outputs, which DBOS checkpoints (`emit` streams events meanwhile)."""
    cls = node_type(node["type"])
    if cls is None:
        raise RuntimeError(f"node type '{node['type']}' is not installed on this worker")
    store = await _store()
    refused: str | None = None
    if _state is not None and _state.policy is not None and meta.get("workspace"):
        # The rules as they are now, not as they were when the run (or its original, for a
        # fork) was queued: a flow saved, or a run queued, before a rule was tightened is
        # refused here, node by node.
        policy = await _state.policy.for_step(
            str(meta["workspace"]),
            run_id=run_id,
            node_id=node["id"],
            node_type=node["type"],
            config=node["config"],
            meta=meta,
        )
        meta = {**meta, "http_allow": policy.http_allow}
        refused = policy.refusal
    attempt = _Attempt(store, run_id, node["id"], emit)
    if any(p.type is PortType.STREAM for p in _output_ports(cls, node["config"]).values()):
        # Its first chunk carries the attempt: asked for now, not on the first token's way.
        attempt.ask()
    secrets = _StepSecrets(run_id, node["id"], meta)
    human = (
        HumanDesk(store, _state.human, run_id, node["id"], meta.get("workspace"))
        if _state is not None and _state.human is not None
        else None
    )
    meter = _StepMeter(run_id, node["id"], meta, human)
    streams = _DbosNodeStreams(run_id, node["id"], set(node.get("streams", ())), attempt, secrets)
    ctx = NodeContext(
        run_id=run_id,
        node_id=node["id"],
        extra=meta,
        children=_ChildRuns(store, run_id, meta),
        data=_WorkspaceData(store, run_id, node["id"], meta),
        emit=_step_emitter(run_id, node["id"], meta, emit, attempt, secrets, meter),
        streams=streams,
        secrets=secrets,
        # human-in-the-loop: the approval node's request and wait (engine/_human.py)
        human=human,
        budget=meter,
    )
    meter.emit = ctx.emit  # a pause for approval is told in the run's events
    if refused is not None:
        await streams.finish({}, refused)
        raise NodeError(refused)
    try:
        outputs = await cls().execute(node["config"], inputs, ctx)
    except NodeError as exc:
        message = secrets.redact(str(exc))
        await streams.finish({}, message)
        raise NodeError(message) from None
    except Exception as exc:
        await streams.finish({}, f"internal error in node '{node['id']}'")
        if secrets.revealed:  # the details go to the log: without the values
            raise RuntimeError(f"{type(exc).__name__}: {secrets.redact(str(exc))}") from None
        raise
    if secrets.found_in(outputs):
        # Step outputs are checkpointed and flow on to the run's outputs: never a secret.
        message = f"refused: an output of node '{node['id']}' would carry a secret's value"
        await streams.finish({}, message)
        raise NodeError(message)
    await streams.finish(with_mirrors(_output_ports(cls, node["config"]), outputs), None)
    return outputs


_REDACTED = "[secret]"


class _StepSecrets:
    """Secrets opened in one step: each sealed by the platform to this step's ephemeral key
    (engine transit), opened here, remembered only to keep it out of what leaves the step."""

    def __init__(self, run_id: str, node_id: str, meta: dict[str, Any]) -> None:
        self._run_id = run_id
        self._node_id = node_id
        self._meta = meta
        self._pair: RunKeyPair | None = None
        self.revealed: list[str] = []

    async def reveal(self, name: str) -> str:
        source = _state.secrets if _state is not None else None
        if source is None:
            raise NodeError(
                "this worker has no vault: secrets can only be used on a platform worker"
            )
        if self._pair is None:
            self._pair = RunKeyPair.generate()
        blob, binding = await source.seal_for_step(
            self._run_id, self._node_id, name, self._meta, self._pair.public_bytes()
        )
        if (binding.run_id, binding.node_id) != (self._run_id, self._node_id):
            raise NodeError(f"secret '{name}' was sealed for another step")
        try:
            value = open_for_run(self._pair, binding, blob).decode()
        except TransitError:
            raise NodeError(f"secret '{name}' could not be opened in this step") from None
        if len(value) >= 4:  # shorter values would redact ordinary text
            self.revealed.append(value)
        return value

    def redact(self, text: str) -> str:
        for value in self.revealed:
            text = text.replace(value, _REDACTED)
        return text

    def scrub(self, value: Any) -> Any:
        """`value` (JSON) with every secret's value replaced."""
        if not self.revealed:
            return value
        if isinstance(value, str):
            return self.redact(value)
        if isinstance(value, list):
            return [self.scrub(v) for v in value]
        if isinstance(value, dict):
            return {k: self.scrub(v) for k, v in value.items()}
        return value

    def found_in(self, value: Any) -> bool:
        return bool(self.revealed) and self.scrub(value) != value


def _output_ports(cls: type[NodeType], config: Mapping[str, Any]) -> dict[str, Port]:
    return {port.name: port for port in cls.outputs(config)}


class _Attempt:
    """Which execution of a step this is, asked for once, when the step first streams or
    emits: 1 normally; 2, 3, ... when it runs again after its worker died. A repeat
    announces itself with NODE_RESTARTED so readers drop what the earlier attempt streamed."""

    def __init__(
        self,
        store: PostgresEventStore,
        run_id: str,
        node_id: str,
        emit: Callable[[str, dict[str, Any]], Awaitable[None]] | None,
    ) -> None:
        self._store = store
        self._run_id = run_id
        self._node_id = node_id
        self._emit = emit
        self._value: asyncio.Future[int] | None = None

    def ask(self) -> "asyncio.Future[int]":
        """Ask (once) without waiting for the answer."""
        if self._value is None:
            self._value = asyncio.ensure_future(self._first())
            # A step that ends before it needs the answer does not leave its error unread.
            self._value.add_done_callback(lambda f: f.cancelled() or f.exception())
        return self._value

    async def get(self) -> int:
        return await asyncio.shield(self.ask())

    async def _first(self) -> int:
        number = await self._store.next_attempt(self._run_id, self._node_id)
        if number > 1 and self._emit is not None:
            await self._emit(EventType.NODE_RESTARTED, {"attempt": number})
        return number


class _DbosNodeStreams:
    """A step's streams as DBOS streams of its workflow (readable from any worker)."""

    def __init__(
        self,
        run_id: str,
        node_id: str,
        connected: set[str],
        attempt: _Attempt,
        secrets: _StepSecrets,
    ) -> None:
        self._run_id = run_id
        self._node_id = node_id
        self._attempt = attempt
        self._secrets = secrets
        self._own = WritersOfNode(connected)

    async def _make(self, port: str) -> FramedWriter:
        key = f"{self._node_id}.{port}"

        async def send(frame: dict[str, Any]) -> None:
            await DBOS.write_stream_async(key, self._secrets.scrub(frame))

        async def finish() -> None:
            await DBOS.close_stream_async(key)

        return FramedWriter(await self._attempt.get(), send, finish)

    async def writer(self, port: str) -> StreamWriter:
        return await self._own.writer(port, lambda: self._make(port))

    async def read(self, ref: Any) -> AsyncIterator[StreamChunk]:
        run, key = parse_ref(ref)
        # Its own run's streams, or an ancestor's (a child run's id extends its parent's): a
        # reference given as an input cannot reach into anybody else's run.
        if run != self._run_id and not self._run_id.startswith(f"{run}:"):
            raise NodeError(
                "a stream can only be read by its own run and the child runs it starts; this "
                "one belongs to another run"
            )
        async for frame in DBOS.read_stream_async(run, key):
            yield frame_chunk(key, frame)

    async def finish(self, outputs: dict[str, Any], error: str | None) -> None:
        await self._own.finish(outputs, error, self._make)


class _StepMeter:
    """One step's LLM calls, numbered as they report usage (a step that re-executes after a
    crash numbers its calls the same way), each held against the budgets before it is made
    (`NodeContext.budget`; the SpendGate port)."""

    def __init__(
        self, run_id: str, node_id: str, meta: dict[str, Any], human: HumanDesk | None
    ) -> None:
        self._run_id = run_id
        self._node_id = node_id
        self._meta = meta
        self._human = human
        self._approved = False  # a person approved spend past pausing budgets in this step
        self.calls = 0  # calls that reported their usage
        self.emit: Callable[[str, dict[str, Any]], Awaitable[None]] | None = None

    @contextlib.asynccontextmanager
    async def hold(self, provider: str, model: str, max_cost_micros: int) -> AsyncIterator[None]:
        gate = _state.spend if _state is not None else None
        if gate is None:
            yield
            return
        index = self.calls + 1

        async def reserve() -> None:
            await gate.reserve(
                self._run_id,
                self._node_id,
                index,
                self._meta,
                provider=provider,
                model=model,
                max_cost_micros=max_cost_micros,
                approved=self._approved,
            )

        try:
            await reserve()
        except BudgetPaused as paused:
            await self._ask_for_more(str(paused))
            self._approved = True
            await reserve()
        try:
            yield
        finally:
            if self.calls < index:  # no usage reported: the call failed, free its hold
                await asyncio.shield(gate.release(self._run_id, self._node_id, index))

    async def _ask_for_more(self, refusal: str) -> None:
        """Ask the workspace's owners to approve spend past the budget, and wait (durably:
        the request is the step's own, and survives restarts); NodeError unless approved."""
        if self._human is None:
            raise NodeError(refusal)
        request = {
            "title": "Approve more LLM spend",
            "message": refusal,
            "data": None,
            "approvers": {"role": "owner", "users": [], "caller": False},
            "on_timeout": "reject",
            "kind": "budget",
        }
        opened = await self._human.open(request, BUDGET_APPROVAL_SECONDS)
        if self.emit is not None:
            await self.emit(
                EventType.HITL_REQUESTED,
                {
                    "title": request["title"],
                    "message": refusal,
                    "deadline": opened["deadline"],
                    "approvers": request["approvers"],
                },
            )
        decision = await self._human.wait()
        if self.emit is not None:
            await self.emit(
                EventType.HITL_RESOLVED, {k: decision.get(k) for k in ("outcome", "by", "comment")}
            )
        if decision.get("outcome") != "approved":
            who = f" by {decision['by']}" if decision.get("by") else ""
            raise NodeError(
                f"{refusal} More spend was not approved ({decision.get('outcome')}{who})."
            )


def _step_emitter(  # noqa: PLR0917 (one call site, in order of the step's own arguments)
    run_id: str,
    node_id: str,
    meta: dict[str, Any],
    emit: Callable[[str, dict[str, Any]], Awaitable[None]] | None,
    attempt: _Attempt,
    secrets: _StepSecrets,
    meter: _StepMeter,
) -> Callable[[str, dict[str, Any]], Awaitable[None]]:
    """A step's `emit`: stream chunks carry the step's attempt, and every LLM_USAGE is also
    recorded in the usage ledger under the meter's number for the call (the ledger keeps one
    record per number, and settles the call's budget hold)."""
    ledger = _state.usage if _state is not None else None

    async def step_emit(event_type: str, payload: dict[str, Any]) -> None:
        payload = secrets.scrub(payload)
        if event_type == EventType.STREAM_CHUNK:
            payload = {**payload, "attempt": await attempt.get()}
        if event_type == EventType.LLM_USAGE:
            meter.calls += 1
            if ledger is not None:
                await ledger.record(run_id, node_id, meter.calls, meta, payload)
        if emit is not None:
            await emit(event_type, payload)

    return step_emit


@DBOS.workflow(
    name=RUN_WORKFLOW,
    serialization_type=WorkflowSerializationFormat.PORTABLE,
    max_recovery_attempts=MAX_RECOVERY_ATTEMPTS,
)
async def run_workflow(
    run_id: str, document: dict[str, Any], inputs: dict[str, Any], meta: dict[str, Any]
) -> dict[str, Any]:
    """One run of a flow version. `meta` carries ids only (workspace, flow owner, caller).

    The run's id is the workflow's own id, not the `run_id` input: a fork copies the
    inputs of the run it forks but is a run of its own."""
    run_id = DBOS.workflow_id or run_id
    parsed = parse_known_flow(document)
    steps = meta.get("steps")
    order = list(steps) if isinstance(steps, list) else _step_order(parsed)
    # DBOS's own reservations for the nodes that checkpoint inside the workflow; the others'
    # steps are checkpointed in batches (engine/_checkpoints.py). One sequence of ids.
    types = {spec.id: node_type(spec.type) for spec in parsed.nodes}
    reservations: dict[str, StepReservation | DBOSContext] = {}
    for node_id in order:
        cls = types.get(node_id)
        reservations[node_id] = (
            DBOS.reserve_step() if cls is not None and cls.runs_in_workflow else reserve()
        )
    ids = [
        r.step_id if isinstance(r, StepReservation) else r.function_id
        for r in reservations.values()
    ]
    if ids != list(range(FIRST_STEP_ID, FIRST_STEP_ID + len(ids))):
        raise RuntimeError(f"unexpected DBOS step ids {ids}: fork_step needs updating")
    store = await _store()
    book = _book()
    sink = _BufferedSink(store, run_id)
    connected, _ = live_streams(parsed)

    presence = begin_presence(run_id)  # shelved when it only waits (engine/_shelf.py)

    async def call_node(
        node: ResolvedNode, values: dict[str, Any], ctx: NodeContext
    ) -> dict[str, Any]:
        if presence is None:
            return await _call_node(node, values, ctx)
        async with presence.running():
            return await _call_node(node, values, ctx)

    async def _call_node(
        node: ResolvedNode, values: dict[str, Any], ctx: NodeContext
    ) -> dict[str, Any]:
        reservation = reservations.get(node.spec.id)
        if reservation is None:
            return await node.cls().execute(node.spec.config, values, ctx)
        step_name = f"node:{node.spec.id}"
        if isinstance(reservation, StepReservation):  # the node checkpoints as it goes
            in_workflow = reservation

            async def checkpoint(fn: Callable[..., Any], *args: Any) -> Any:
                return await in_workflow.run_async({"name": step_name}, fn, *args)

            durable = NodeContext(ctx.run_id, ctx.node_id, meta, checkpoint=checkpoint)
            return await node.cls().execute(node.spec.config, values, durable)
        spec = {
            "id": node.spec.id,
            "type": node.spec.type,
            "config": dict(node.spec.config),
            "streams": sorted(connected.get(node.spec.id, ())),
        }
        outputs: dict[str, Any] = await book.run(
            reservation,
            step_name,
            lambda: _execute_node_step(run_id, spec, values, meta, ctx.emit),
        )
        return outputs

    try:
        async with SLOTS.run():  # given back while the run waits (engine/_slots.py)
            book.look_ahead([r for r in reservations.values() if isinstance(r, DBOSContext)])
            result = await run_flow(
                parsed, inputs, run_id=run_id, events=sink, call_node=call_node, streams=_IN_STEPS
            )
    finally:
        book.forget(run_id)
        await sink.close()
    return result_to_json(result)


class _InSteps:
    """Streams are a step's business in a durable run (see `_DbosNodeStreams`)."""

    def for_node(self, node_id: str) -> None:
        return None


_IN_STEPS = _InSteps()


def _graph(
    document: Mapping[str, Any] | FlowDocument,
) -> tuple[dict[str, ResolvedNode], dict[str, set[str]]]:
    parsed = document if isinstance(document, FlowDocument) else parse_flow(document)
    nodes = resolve_nodes(parsed)
    graph: dict[str, set[str]] = {node_id: set() for node_id in nodes}
    for edge in parsed.edges:
        graph[edge.source_ref.node].add(edge.target_ref.node)
    return nodes, graph


def plan_flow(document: Mapping[str, Any]) -> Plan:
    """The series-parallel plan of a valid flow (what runs after what, what in parallel)."""
    _, graph = _graph(document)
    return plan(graph)


def step_order(document: Mapping[str, Any]) -> list[str]:
    """The nodes that run as DBOS steps, in the order their step ids are reserved: the i-th
    of them (from 0) owns step FIRST_STEP_ID + i in every run of this document."""
    return _step_order(parse_flow(document))


def _step_order(document: FlowDocument) -> list[str]:
    nodes, graph = _graph(document)
    return [n for n in topological_order(graph) if nodes[n].cls.effect is not Effect.PURE]


def fork_step(document: Mapping[str, Any], node_id: str) -> int:
    """The step to fork a run from so that `node_id` and everything after it runs again
    (pure nodes are recomputed anyway; effectful ones before it are replayed)."""
    nodes, graph = _graph(document)
    if node_id not in nodes:
        raise KeyError(node_id)
    downstream = {node_id}
    frontier = [node_id]
    while frontier:
        for nxt in graph[frontier.pop()]:
            if nxt not in downstream:
                downstream.add(nxt)
                frontier.append(nxt)
    order = step_order(document)
    positions = [i for i, n in enumerate(order) if n in downstream]
    return FIRST_STEP_ID + (min(positions) if positions else len(order))


def result_to_json(result: RunResult) -> dict[str, Any]:
    return {
        "status": result.status,
        "outputs": result.outputs,
        "error": result.error,
        "nodes": {
            node_id: {"status": o.status, "error": o.error, "outputs": sorted(o.outputs)}
            for node_id, o in result.nodes.items()
        },
    }


def enqueue_job_sql(
    workflow_name: str, job_id: str, *args: Any, queue: str = RUN_QUEUE, schema: str = "dbos"
) -> tuple[str, list[Any]]:
    """SQL (and its parameters) that queues a workflow registered on the workers under the
    id `job_id`, to execute in the caller's own transaction: queued if and only if that
    transaction commits; queuing the same id twice is harmless (DBOS keeps the first)."""
    arrays = ", ".join(["%s::json"] * len(args))
    sql = (
        f"SELECT {schema}.enqueue_workflow("
        "workflow_name => %s, queue_name => %s, "
        f"positional_args => ARRAY[{arrays}], "
        "workflow_id => %s, app_version => %s), "
        "pg_notify(%s, %s)"
    )
    params = [workflow_name, queue, *(json.dumps(a) for a in args), job_id, APPLICATION_VERSION]
    params += [ENQUEUE_CHANNEL, queue]
    return sql, params


def enqueue_run_sql(
    *,
    run_id: str,
    document: Mapping[str, Any],
    inputs: Mapping[str, Any],
    meta: Mapping[str, Any],
    schema: str = "dbos",
    queue: str = RUN_QUEUE,
) -> tuple[str, list[Any]]:
    """`enqueue_job_sql` for a run of a flow: the run is queued if and only if the caller's
    transaction commits."""
    # The step layout is fixed when the run is queued: a later deploy that changes a node
    # type's effect must not move the step ids of runs already in flight.
    meta = {**meta, "steps": step_order(document)}
    return enqueue_job_sql(
        RUN_WORKFLOW, run_id, run_id, document, inputs, meta, queue=queue, schema=schema
    )
