"""Shelved runs: a run that waits only for people leaves the worker's memory.

A run waiting in an approval (or a card) for longer than the worker's `shelve_after_sec` is
put on the shelf when every node it has running is such a wait (no node starts while it is
being shelved, so none is cut off): one transaction locks its open requests (an answer
racing the shelving waits for it, or wins before it), records the run in
`fireflow.shelved_run` (with the earliest deadline of those requests: when it must wake
unanswered) and hands the run's DBOS row to SHELVED_EXECUTOR (no worker's recovery takes
it: it is nobody's). The run's execution then ends (`RunShelved`, which DBOS records as
nothing: the run stays PENDING, its finished steps checkpointed), so a worker holds nothing
for it: no coroutine, no document, no slot.

Taking it off the shelf (`wake_run`, `wake_due`: SQL function fireflow.wake_shelved): the
answer's transaction (or, at the deadline, any worker's watchdog) deletes the shelf row and
queues the run again, as DBOS's recovery would (status ENQUEUED on its own queue; the
enqueue notification wakes the dispatchers). Deleting the row is the fence: one waker
queues it, once. The run replays its checkpointed steps; the approval's step runs again,
finds its request answered (or past its deadline: timed out, escalated) and goes on. A step
that shelves re-executes, so only nodes whose step is the wait (the approval, the card)
shelve; an agent waiting on a tool call does not (its model calls would run again), nor a
run waiting for its child runs."""

import asyncio
import contextvars
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import psycopg
from dbos._context import current_owner_xid  # private: pinned dbos 3.4, as in _worker

from ._store import SHELVED_EXECUTOR, PostgresEventStore

if TYPE_CHECKING:
    from ._human import Cursor

log = logging.getLogger("fireflow.shelf")


class RunShelved(BaseException):
    """The run was put on the shelf: its execution ends without an outcome (a BaseException,
    so neither a node's handling nor DBOS's records it; the run stays PENDING)."""


@dataclass
class Shelving:
    """What a worker shelves: runs waiting longer than `after` seconds (None: never)."""

    after: float | None = None
    executor_id: str = ""


SHELVING = Shelving()


@dataclass
class RunPresence:
    """One execution of a run in this process: how many of its nodes are running, and which
    of those are waits that may be shelved (node id -> the wake-up of its waiting step)."""

    run_id: str
    owner_xid: str  # DBOS's token of this execution: a stale one shelves nothing
    active: int = 0
    ready: dict[str, asyncio.Event] = field(default_factory=dict)
    shelved: bool = False
    # Cleared while the run is being shelved: no node starts meanwhile (it would be cut off).
    _open: asyncio.Event = field(default_factory=asyncio.Event)

    def __post_init__(self) -> None:
        self._open.set()

    @asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        """Around a node's execution."""
        await self._open.wait()
        if self.shelved:
            raise RunShelved
        self.active += 1
        try:
            yield
        finally:
            self.active -= 1
            if self.ready and not self.shelved and self.only_waits():
                next(iter(self.ready.values())).set()  # the waits left may shelve the run now

    def only_waits(self) -> bool:
        """Every running node is a wait that may be shelved, and no shelving is under way."""
        return bool(self.ready) and len(self.ready) == self.active and self._open.is_set()

    @asynccontextmanager
    async def shelving(self) -> AsyncIterator[None]:
        self._open.clear()
        try:
            yield
        finally:
            if self.shelved:
                for event in self.ready.values():  # the other waits end too
                    event.set()
            self._open.set()


_current: contextvars.ContextVar[RunPresence | None] = contextvars.ContextVar(
    "fireflow_run_presence", default=None
)


def begin_presence(run_id: str) -> RunPresence | None:
    """Called by a run's workflow as it starts: its presence, when this worker shelves."""
    if SHELVING.after is None:
        return None
    owner_xid = current_owner_xid(run_id)
    if owner_xid is None:
        return None
    presence = RunPresence(run_id, owner_xid)
    _current.set(presence)
    return presence


def current_presence() -> RunPresence | None:
    return _current.get()


async def shelve(store: PostgresEventStore, presence: RunPresence) -> bool:
    """Put the run on the shelf, if all its running steps still wait for open requests and
    its DBOS row is still this worker's. True: done (the caller's execution must end)."""
    async with presence.shelving():
        try:
            if not await _shelve(store, presence):
                return False
        except psycopg.Error as exc:  # the wait goes on in memory; a later one tries again
            log.warning("could not shelve run %s: %s", presence.run_id, exc)
            return False
        presence.shelved = True  # before the gate reopens: no node starts after this
    return True


async def _shelve(store: PostgresEventStore, presence: RunPresence) -> bool:
    nodes = sorted(presence.ready)
    async with store.transaction() as conn:
        cursor = await conn.execute(
            "SELECT node_id, answer IS NULL AND (deadline IS NULL OR "
            "deadline > clock_timestamp()), deadline FROM fireflow.human_request "
            "WHERE run_id = %s AND node_id = ANY(%s) ORDER BY node_id FOR UPDATE",
            (presence.run_id, nodes),
        )
        rows = await cursor.fetchall()
        if len(rows) != len(nodes) or not all(row[1] for row in rows):
            return False  # answered (or due) meanwhile: the waits read it
        deadlines = [row[2] for row in rows if row[2] is not None]
        cursor = await conn.execute(
            "UPDATE dbos.workflow_status SET executor_id = %s "
            "WHERE workflow_uuid = %s AND status = 'PENDING' AND executor_id = %s "
            "AND owner_xid = %s AND queue_name IS NOT NULL RETURNING queue_name",
            (SHELVED_EXECUTOR, presence.run_id, SHELVING.executor_id, presence.owner_xid),
        )
        row = await cursor.fetchone()
        if row is None:
            # Cancelled, taken over, or run again elsewhere: not this execution's to shelve.
            return False
        await conn.execute(
            "INSERT INTO fireflow.shelved_run (run_id, queue_name, wake_at) "
            "VALUES (%s, %s, %s) ON CONFLICT (run_id) DO UPDATE SET "
            "queue_name = EXCLUDED.queue_name, wake_at = EXCLUDED.wake_at, "
            "shelved_at = clock_timestamp()",
            (presence.run_id, row[0], min(deadlines) if deadlines else None),
        )
    return True


def wake_run(cursor: "Cursor", run_id: str) -> None:
    """Take `run_id` off the shelf (if it is there) in the cursor's transaction: it runs
    again once that commits."""
    cursor.execute("SELECT fireflow.wake_shelved(%s)", (run_id,))
    cursor.fetchone()


def wake_due(cursor: "Cursor") -> int:
    """Take off the shelf (in the cursor's transaction) the runs whose deadline has come;
    how many."""
    cursor.execute("SELECT fireflow.wake_shelved(NULL)", ())
    row = cursor.fetchone()
    return int(row[0]) if row else 0


def forget_runs(cursor: "Cursor", run_id: str) -> None:
    """A cancelled run (its child runs with it) leaves the shelf without running again."""
    cursor.execute(
        "DELETE FROM fireflow.shelved_run WHERE run_id = %s OR run_id LIKE %s",
        (run_id, f"{run_id}:%"),
    )


def shelved_runs(cursor: "Cursor", run_ids: list[str]) -> set[str]:
    """Which of these runs were last left on the shelf (no execution of them in memory; a
    cancelled one stays so, even if an answer took it off the shelf meanwhile)."""
    cursor.execute(
        "SELECT workflow_uuid FROM dbos.workflow_status "
        "WHERE workflow_uuid = ANY(%s) AND executor_id = %s",
        (run_ids, SHELVED_EXECUTOR),
    )
    return {row[0] for row in cursor.fetchall()}
