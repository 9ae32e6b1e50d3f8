"""Live run events for browsers and plain HTTP clients: Server-Sent Events in the AG-UI
protocol (the official `ag-ui-protocol` event models), replayed from the event table after a
sequence number and then followed live.

Each web process holds ONE listening connection to PostgreSQL (channel
`fireflow_run_events`, announced once per batch of events) and wakes the streams of the runs
it concerns: no broker, and never a notification per token."""

import asyncio
import contextlib
import json
import logging
from collections import defaultdict
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import psycopg
from ag_ui import core as ag
from ag_ui.encoder import EventEncoder
from asgiref.sync import sync_to_async
from django.db import connection

import engine

from .engine_bridge import database_url

log = logging.getLogger("fireflow.live")
_TERMINAL_DBOS = {"SUCCESS", "ERROR", "CANCELLED", "MAX_RECOVERY_ATTEMPTS_EXCEEDED"}
_END_TYPES = {"FLOW_COMPLETED", "FLOW_FAILED"}
KEEPALIVE_SECONDS = 15.0
# Streams are recycled after this long; clients reconnect with Last-Event-ID and miss nothing.
MAX_STREAM_SECONDS = 3600.0


class _Hub:
    """The process's one LISTEN connection, fanning notifications out to waiting streams."""

    def __init__(self) -> None:
        self._waiters: dict[str, set[asyncio.Event]] = defaultdict(set)
        self._task: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def watch(self, run_id: str) -> asyncio.Event:
        loop = asyncio.get_running_loop()
        if self._task is None or self._task.done() or self._loop is not loop:
            self._loop = loop
            self._task = loop.create_task(self._listen())
        event = asyncio.Event()
        self._waiters[run_id].add(event)
        return event

    def unwatch(self, run_id: str, event: asyncio.Event) -> None:
        self._waiters[run_id].discard(event)
        if not self._waiters[run_id]:
            del self._waiters[run_id]

    async def _listen(self) -> None:
        while True:
            try:
                async with await psycopg.AsyncConnection.connect(
                    database_url(), autocommit=True, connect_timeout=5
                ) as conn:
                    await conn.execute(f"LISTEN {engine.NOTIFY_CHANNEL}")
                    self._wake_all()  # anything missed while (re)connecting is re-read
                    async for note in conn.notifies():
                        with contextlib.suppress(ValueError, KeyError):
                            run_id = json.loads(note.payload)["run"]
                            for event in self._waiters.get(run_id, ()):
                                event.set()
            except (psycopg.Error, OSError):
                log.warning("event listener lost its connection; reconnecting", exc_info=True)
                await asyncio.sleep(1)

    def _wake_all(self) -> None:
        for events in self._waiters.values():
            for event in events:
                event.set()


hub = _Hub()


def _read(run_id: str, after: int) -> tuple[list[tuple[Any, ...]], str | None]:
    """The run's events after `after` (a page); when there are none, its DBOS status."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT seq, type, node, port, payload FROM fireflow.run_event "
            "WHERE run_id = %s AND seq > %s ORDER BY seq LIMIT 1000",
            [run_id, after],
        )
        rows = cursor.fetchall()
        if rows:
            return rows, None  # the status matters once the events are all read
        cursor.execute("SELECT status FROM dbos.workflow_status WHERE workflow_uuid = %s", [run_id])
        status = cursor.fetchone()
    return rows, status[0] if status else None


def _open_messages(run_id: str, upto: int) -> dict[str, str]:
    """The text messages open at sequence `upto` (node -> message id), for a resumed stream:
    a node whose last streaming event by then is a chunk has its message still open."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT DISTINCT ON (node) node, type, COALESCE((payload->>'attempt')::int, 1) "
            "FROM fireflow.run_event WHERE run_id = %s AND seq <= %s "
            "AND type IN ('STREAM_CHUNK', 'NODE_RESTARTED', 'NODE_COMPLETED', 'NODE_FAILED') "
            "ORDER BY node, seq DESC",
            [run_id, upto],
        )
        rows = cursor.fetchall()
    return {
        node: _message_id(run_id, node, attempt)
        for node, type_, attempt in rows
        if type_ == "STREAM_CHUNK"
    }


def _message_id(run_id: str, node: str, attempt: int) -> str:
    # A node that runs again after its worker died streams a new message.
    return f"{run_id}:{node}" if attempt <= 1 else f"{run_id}:{node}:{attempt}"


@dataclass(frozen=True)
class StoredEvent:
    seq: int
    type: str
    node: str | None
    port: str | None
    payload: Any


def to_ag_ui(run_id: str, event: StoredEvent, open_messages: dict[str, str]) -> list[ag.BaseEvent]:
    """The AG-UI events for one stored event (most map to one). A stream's first chunk also
    opens its text message; the node's completion or failure closes it, and so does a
    restart of the node (NODE_RESTARTED: what it streamed is superseded, a new message
    follows)."""
    payload = json.loads(event.payload) if isinstance(event.payload, str) else event.payload
    node = event.node or ""
    simple: dict[str, Callable[[], ag.BaseEvent]] = {
        "FLOW_STARTED": lambda: ag.RunStartedEvent(thread_id=run_id, run_id=run_id),
        "NODE_STARTED": lambda: ag.StepStartedEvent(step_name=node),
        "FLOW_COMPLETED": lambda: ag.RunFinishedEvent(
            thread_id=run_id, run_id=run_id, result=payload
        ),
        "FLOW_FAILED": lambda: ag.RunErrorEvent(
            message=payload.get("error", "the run failed"), code="failed"
        ),
    }
    if event.type in simple:
        return [simple[event.type]()]
    out: list[ag.BaseEvent] = []
    if event.type == "STREAM_CHUNK":
        message_id = _message_id(run_id, node, int(payload.get("attempt", 1)))
        if open_messages.get(node) != message_id:
            out += _close(open_messages, node)
            open_messages[node] = message_id
            out.append(ag.TextMessageStartEvent(message_id=message_id, role="assistant"))
        out.append(ag.TextMessageContentEvent(message_id=message_id, delta=payload["text"]))
        return out
    if event.type in ("NODE_COMPLETED", "NODE_FAILED", "NODE_RESTARTED"):
        out += _close(open_messages, node)
    if event.type == "NODE_COMPLETED":
        return [*out, ag.StepFinishedEvent(step_name=node)]
    extra = payload if isinstance(payload, dict) else {}
    return [
        *out,
        ag.CustomEvent(name=event.type, value={"node": event.node, "port": event.port, **extra}),
    ]


def _close(open_messages: dict[str, str], node: str) -> list[ag.BaseEvent]:
    message_id = open_messages.pop(node, None)
    return [ag.TextMessageEndEvent(message_id=message_id)] if message_id else []


async def events(run_id: str, after: int) -> AsyncIterator[tuple[int | None, Any]]:
    """(sequence number, AG-UI event) for every event after `after`, then live ones, until
    the run ends; (None, None) while idle, as a keep-alive."""
    open_messages = await sync_to_async(_open_messages)(run_id, after)
    wake = hub.watch(run_id)
    deadline = asyncio.get_running_loop().time() + MAX_STREAM_SECONDS
    try:
        while asyncio.get_running_loop().time() < deadline:
            wake.clear()
            rows, status = await sync_to_async(_read)(run_id, after)
            for seq, type_, node, port, payload in rows:
                stored = StoredEvent(seq, type_, node, port, payload)
                for event in to_ag_ui(run_id, stored, open_messages):
                    yield seq, event
                after = seq
                if type_ in _END_TYPES:
                    return
            if rows:
                continue  # there may be more than one page
            if status in _TERMINAL_DBOS:
                if status != "SUCCESS":  # cancelled, or stopped after crashes: no end event
                    yield (
                        None,
                        ag.RunErrorEvent(
                            message=f"the run ended: {status.lower()}", code=status.lower()
                        ),
                    )
                return
            try:
                await asyncio.wait_for(wake.wait(), KEEPALIVE_SECONDS)
            except TimeoutError:
                yield None, None
    finally:
        hub.unwatch(run_id, wake)


async def stream(
    run_id: str,
    after: int,
    view: Callable[[ag.BaseEvent], ag.BaseEvent | None] | None = None,
) -> AsyncIterator[str]:
    """The same as Server-Sent Events text: `id:` is the sequence number to resume from.
    `view` gives what a reader may see of each event, or None to skip it (a mini-app's
    visitor sees less than a member)."""
    encoder = EventEncoder()
    async for seq, event in events(run_id, after):
        if event is None:
            yield ": keep-alive\n\n"
            continue
        shown = view(event) if view is not None else event
        if shown is not None:
            yield (f"id: {seq}\n" if seq is not None else "") + encoder.encode(shown)
