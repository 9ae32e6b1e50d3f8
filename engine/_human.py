"""Human requests: a run's durable pause for a person's answer (the approval node).

A request is one row of `fireflow.human_request` per (run, node), created by the node's
step the first time it runs, with its deadline fixed then (a step re-executed after a crash
finds the row and keeps the deadline). The step then waits for the row's answer without a
thread or a database connection: each worker process holds ONE listening connection on
channel HUMAN_CHANNEL (`HumanHub`), which wakes the steps whose request was answered, and
every waiting step re-reads its row at least every RECHECK_SECONDS (a missed notification or
the deadline are still seen). The outcome is the step's output, checkpointed by DBOS: a
replay returns it without waiting.

Answers are written by `answer_request`, in the caller's transaction, with a conditional
UPDATE (`WHERE answer IS NULL`): the first answer wins, a second or replayed one changes
nothing. A step that reaches its deadline records `timed_out` the same way, so a person's
answer and the timeout can never both win."""

import asyncio
import contextlib
import json
import logging
from collections import defaultdict
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, Protocol

import psycopg
from psycopg.types.json import Jsonb

from ._events import Event, EventType
from ._registry import NodeError
from ._shelf import (
    SHELVING,
    RunPresence,
    RunShelved,
    current_presence,
    forget_runs,
    shelve,
    shelved_runs,
    wake_run,
)
from ._slots import waiting
from ._store import PostgresEventStore, event_key

log = logging.getLogger("fireflow.human")

HUMAN_CHANNEL = "fireflow_human"
# How often a waiting step re-reads its request even without a notification.
RECHECK_SECONDS = 30.0
Outcome = Literal["approved", "rejected", "timed_out", "cancelled"]
AnswerStatus = Literal["answered", "already_answered", "expired", "not_found"]


class Cursor(Protocol):
    """A DB-API cursor (psycopg's, or Django's wrapper of it)."""

    def execute(self, sql: str, params: Sequence[Any] = ...) -> Any: ...

    def fetchone(self) -> Any: ...

    def fetchall(self) -> Any: ...


@dataclass(frozen=True)
class AnswerResult:
    """What `answer_request` did: `answered` (this answer is the one), else why not, with
    the answer already stored (`already_answered`, `expired`: timed out) when there is one."""

    status: AnswerStatus
    answer: dict[str, Any] | None = None
    answered_by: str | None = None
    answered_at: datetime | None = None
    deadline: datetime | None = None


def answer_request(
    cursor: Cursor,
    *,
    run_id: str,
    node_id: str,
    outcome: Literal["approved", "rejected"],
    by: str,
    comment: str = "",
    by_id: str | None = None,
    arguments: Mapping[str, Any] | None = None,
) -> AnswerResult:
    """Answer the request of `node_id` in `run_id`, in the cursor's transaction (commit it
    to deliver the answer: the waiting step is notified at commit). Only the first answer
    counts; after the deadline, none does. `arguments`: a tool call's arguments as the
    person edited them (the agent's tool-call requests), checked by the caller."""
    answer: dict[str, Any] = {"outcome": outcome, "comment": comment, "by_id": by_id}
    if arguments is not None:
        answer["arguments"] = dict(arguments)
    cursor.execute(
        "UPDATE fireflow.human_request SET answer = %s, answered_by = %s, "
        "answered_at = clock_timestamp() "
        "WHERE run_id = %s AND node_id = %s AND answer IS NULL "
        "AND (deadline IS NULL OR deadline > clock_timestamp()) "
        "RETURNING answer, answered_by, answered_at, deadline",
        (Jsonb(answer), by, run_id, node_id),
    )
    row = cursor.fetchone()
    if row is not None:
        cursor.execute("SELECT pg_notify(%s, %s)", (HUMAN_CHANNEL, _note(run_id, node_id)))
        cursor.fetchone()
        wake_run(cursor, run_id)  # a run on the shelf (engine/_shelf.py) is queued again
        return AnswerResult("answered", _json(row[0]), row[1], row[2], row[3])
    cursor.execute(
        "SELECT answer, answered_by, answered_at, deadline FROM fireflow.human_request "
        "WHERE run_id = %s AND node_id = %s",
        (run_id, node_id),
    )
    row = cursor.fetchone()
    if row is None:
        return AnswerResult("not_found")
    stored, answered_by, answered_at, deadline = _json(row[0]), row[1], row[2], row[3]
    if stored is None or stored.get("outcome") == "timed_out":
        return AnswerResult("expired", stored, answered_by, answered_at, deadline)
    return AnswerResult("already_answered", stored, answered_by, answered_at, deadline)


def withdraw_requests(cursor: Cursor, run_id: str) -> int:
    """Close the unanswered requests of a run being cancelled (its child runs' included),
    in the caller's transaction: they leave the inboxes, answers to them change nothing
    (the first answer wins, so one given just before stands), and the waiting steps are
    woken at commit to stop. Returns how many were open."""
    cursor.execute(
        "UPDATE fireflow.human_request SET answer = %s, answered_at = clock_timestamp() "
        "WHERE (run_id = %s OR run_id LIKE %s) AND answer IS NULL RETURNING run_id, node_id",
        (Jsonb({"outcome": "cancelled", "comment": ""}), run_id, f"{run_id}:%"),
    )
    closed = list(cursor.fetchall())
    forget_runs(cursor, run_id)  # nothing left to wake them for
    shelved = shelved_runs(cursor, sorted({run for run, _ in closed})) if closed else set()
    for request_run, node_id in closed:
        cursor.execute("SELECT pg_notify(%s, %s)", (HUMAN_CHANNEL, _note(request_run, node_id)))
        cursor.fetchone()
        if request_run in shelved:  # no step of it in memory to say so: said as it would
            failed = Event(EventType.NODE_FAILED, node_id, payload={"error": cancelled(node_id)})
            cursor.execute(
                "SELECT fireflow.append_events(%s, ARRAY[%s], ARRAY[%s], ARRAY[%s], "
                "ARRAY[NULL::text], ARRAY[%s::jsonb])",
                (request_run, event_key(failed), failed.type.value, node_id, Jsonb(failed.payload)),
            )
            cursor.fetchone()
    return len(closed)


def cancelled(node_id: str) -> str:
    """Why a waiting node failed when its run was cancelled."""
    return f"the run was cancelled while node '{node_id}' waited"


def reopen_requests(cursor: Cursor, run_id: str) -> int:
    """Open again the requests `withdraw_requests` closed, for a cancelled run being resumed
    (its re-executed steps find them waiting, deadlines unchanged). Commit before resuming
    the run. Returns how many."""
    cursor.execute(
        "UPDATE fireflow.human_request SET answer = NULL, answered_at = NULL "
        "WHERE (run_id = %s OR run_id LIKE %s) AND answer->>'outcome' = 'cancelled' "
        "RETURNING run_id",
        (run_id, f"{run_id}:%"),
    )
    return len(list(cursor.fetchall()))


def _json(value: Any) -> Any:
    # Django's cursor leaves jsonb as text; psycopg's own parses it.
    return json.loads(value) if isinstance(value, str) else value


def _note(run_id: str, node_id: str) -> str:
    return json.dumps({"run": run_id, "node": node_id})


class HumanHub:
    """A worker process's one LISTEN connection on HUMAN_CHANNEL, waking the steps that wait
    for the answered requests. Opened on the first wait, on the loop the runs execute on."""

    def __init__(self, conninfo: str) -> None:
        self._conninfo = conninfo
        self._waiters: dict[tuple[str, str], set[asyncio.Event]] = defaultdict(set)
        self._task: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    @contextlib.contextmanager
    def watching(self, run_id: str, node_id: str) -> Iterator[asyncio.Event]:
        loop = asyncio.get_running_loop()
        if self._task is None or self._task.done() or self._loop is not loop:
            self._loop = loop
            self._task = loop.create_task(self._listen())
        key = (run_id, node_id)
        event = asyncio.Event()
        self._waiters[key].add(event)
        try:
            yield event
        finally:
            self._waiters[key].discard(event)
            if not self._waiters[key]:
                del self._waiters[key]

    @property
    def waiting(self) -> int:
        return sum(len(events) for events in self._waiters.values())

    async def _listen(self) -> None:
        while True:
            try:
                async with await psycopg.AsyncConnection.connect(
                    self._conninfo, autocommit=True, connect_timeout=5
                ) as conn:
                    await conn.execute(f"LISTEN {HUMAN_CHANNEL}")
                    self._wake_all()  # whatever was answered while (re)connecting is re-read
                    async for note in conn.notifies():
                        with contextlib.suppress(ValueError, KeyError, TypeError):
                            data = json.loads(note.payload)
                            for event in self._waiters.get((data["run"], data["node"]), ()):
                                event.set()
            except (psycopg.Error, OSError):
                log.warning("human-request listener lost its connection; reconnecting")
                await asyncio.sleep(1)

    def _wake_all(self) -> None:
        for events in self._waiters.values():
            for event in events:
                event.set()


class HumanDesk:
    """engine.HumanRequests for one step: its run's request at its node."""

    def __init__(
        self, store: PostgresEventStore, hub: HumanHub, run_id: str, node_id: str, workspace: Any
    ) -> None:
        self._store = store
        self._hub = hub
        self._run_id = run_id
        self._node_id = node_id
        self._workspace = str(workspace) if workspace else None

    def keyed(self, key: str) -> "HumanDesk":
        """Another request of the same step, stored under `<node>:<key>` (node ids have no
        ':', so it is nobody else's): a node that asks more than once (the agent, one
        request per tool call) gives each a key that a re-executed step computes again."""
        return HumanDesk(
            self._store, self._hub, self._run_id, f"{self._node_id}:{key}", self._workspace
        )

    async def open(
        self, request: Mapping[str, Any], timeout_seconds: float | None
    ) -> dict[str, Any]:
        # The deadline is computed by the database once, when the row is created: a step
        # that runs again (after a crash) keeps it.
        await self._store.execute(
            "INSERT INTO fireflow.human_request (run_id, node_id, workspace_id, request, "
            "deadline) VALUES (%s, %s, %s, %s, CASE WHEN %s::float8 IS NULL THEN NULL "
            "ELSE clock_timestamp() + make_interval(secs => %s::float8) END) "
            "ON CONFLICT (run_id, node_id) DO NOTHING",
            [
                self._run_id,
                self._node_id,
                self._workspace,
                Jsonb(dict(request)),
                timeout_seconds,
                timeout_seconds,
            ],
        )
        row = await self._store.fetchone(
            "SELECT request, created_at, deadline FROM fireflow.human_request "
            "WHERE run_id = %s AND node_id = %s",
            [self._run_id, self._node_id],
        )
        if row is None:  # pragma: no cover (inserted just above)
            raise RuntimeError(f"request of node '{self._node_id}' vanished")
        return {
            "request": row[0],
            "created_at": row[1].isoformat(),
            "deadline": row[2].isoformat() if row[2] else None,
        }

    async def wait(
        self,
        on_escalated: Callable[[dict[str, Any]], Awaitable[None]] | None = None,
        *,
        shelvable: bool = False,
    ) -> dict[str, Any]:
        # The run's slot serves other runs while this one waits (engine/_slots.py).
        async with waiting():
            return await self._wait(on_escalated, current_presence() if shelvable else None)

    async def _wait(
        self,
        on_escalated: Callable[[dict[str, Any]], Awaitable[None]] | None,
        presence: RunPresence | None,
    ) -> dict[str, Any]:
        loop = asyncio.get_running_loop()
        # When this wait may put the run on the shelf (engine/_shelf.py).
        shelve_at = (
            loop.time() + SHELVING.after
            if presence is not None and SHELVING.after is not None
            else None
        )
        with self._hub.watching(self._run_id, self._node_id) as wake:
            try:
                while True:
                    if presence is not None and presence.shelved:
                        raise RunShelved  # another wait of the run shelved it
                    wake.clear()  # before reading: an answer committed after the read wakes us
                    row = await self._store.fetchone(
                        "SELECT h.answer, h.answered_by, h.answered_at, "
                        "extract(epoch FROM h.deadline - clock_timestamp()), ws.status, "
                        "h.request ? 'escalated' "
                        "FROM fireflow.human_request h LEFT JOIN dbos.workflow_status ws "
                        "ON ws.workflow_uuid = h.run_id WHERE h.run_id = %s AND h.node_id = %s",
                        [self._run_id, self._node_id],
                    )
                    if presence is not None and presence.shelved:
                        raise RunShelved  # shelved while this read was under way
                    if row is None:
                        raise NodeError(f"the request of node '{self._node_id}' was deleted")
                    settled = self._settled(row)
                    if settled is not None:
                        return settled
                    remaining = row[3]
                    if remaining is not None and float(remaining) <= 0:
                        await self._at_deadline(on_escalated)
                        continue  # read what won: the timeout, or an answer just before it
                    timeout = RECHECK_SECONDS
                    if remaining is not None:
                        timeout = min(timeout, float(remaining) + 0.05)
                    if presence is not None and shelve_at is not None:
                        left = shelve_at - loop.time()
                        if left > 0:
                            timeout = min(timeout, left)
                        else:
                            await self._shelve(presence, wake)
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(wake.wait(), timeout)
            finally:
                if presence is not None:
                    presence.ready.pop(self._node_id, None)

    def _settled(self, row: Sequence[Any]) -> dict[str, Any] | None:
        """The outcome in a read of the request, if there is one."""
        answer, by, at, _, status, escalated = row
        if (answer is not None and answer.get("outcome") == "cancelled") or (
            answer is None and status == "CANCELLED"
        ):
            raise NodeError(cancelled(self._node_id))
        if answer is None:
            return None
        return {
            "outcome": answer.get("outcome"),
            "by": by,
            "comment": answer.get("comment") or "",
            "at": at.isoformat() if at else None,
            "escalated": escalated,
            # a tool call's arguments as edited by the person who approved it
            **({"arguments": answer["arguments"]} if "arguments" in answer else {}),
        }

    async def _shelve(self, presence: RunPresence, wake: asyncio.Event) -> None:
        """This wait has lasted long enough to shelve its run: once every node the run has
        running is such a wait (the last to get there, or the end of another branch's
        work, tries), the run goes on the shelf and this execution ends."""
        presence.ready[self._node_id] = wake
        if presence.only_waits() and await shelve(self._store, presence):
            raise RunShelved

    async def _at_deadline(
        self, on_escalated: Callable[[dict[str, Any]], Awaitable[None]] | None
    ) -> None:
        """Escalate the request, or (nothing to escalate) time it out."""
        escalation = await self._escalate()
        if escalation is None:
            await self._time_out()
        elif on_escalated is not None:
            await on_escalated(escalation)

    async def _escalate(self) -> dict[str, Any] | None:
        """At the deadline of a request that says `escalate`: pass it to the escalation's
        approvers, its deadline moved on by the escalation's timeout counted from the first
        deadline (a worker that was down does not give the second group longer). Once: the
        UPDATE is conditional; None when there is nothing (more) to escalate."""
        row = await self._store.fetchone(
            "UPDATE fireflow.human_request SET "
            "request = (request - 'escalate') || jsonb_build_object("
            "  'approvers', request->'escalate'->'approvers', "
            "  'on_timeout', request->'escalate'->'on_timeout', "
            "  'escalated', jsonb_build_object('from', request->'approvers', 'at', deadline)), "
            "deadline = deadline + make_interval("
            "  secs => (request->'escalate'->>'timeout_seconds')::float8) "
            "WHERE run_id = %s AND node_id = %s AND answer IS NULL AND request ? 'escalate' "
            "AND deadline <= clock_timestamp() RETURNING request, deadline",
            [self._run_id, self._node_id],
        )
        if row is None:
            return None
        # Tell the platform's notifier (a new group to ask) as an answer wakes a step.
        await self._store.execute(
            "SELECT pg_notify(%s, %s)", [HUMAN_CHANNEL, _note(self._run_id, self._node_id)]
        )
        return {"request": row[0], "deadline": row[1].isoformat() if row[1] else None}

    async def _time_out(self) -> None:
        await self._store.execute(
            # Only past the deadline, and never over an escalation still to happen (another
            # execution of the step may have just escalated it, moving the deadline on).
            "UPDATE fireflow.human_request SET answer = %s, answered_at = clock_timestamp() "
            "WHERE run_id = %s AND node_id = %s AND answer IS NULL "
            "AND deadline <= clock_timestamp() AND NOT request ? 'escalate'",
            [Jsonb({"outcome": "timed_out", "comment": ""}), self._run_id, self._node_id],
        )
