"""The engine's own tables (schema `fireflow`): the run event stream and worker heartbeats.

The DDL lives here, once; `migrate(url)` applies it idempotently (the platform calls it from
a Django migration, as it calls DBOS's). Event writes are batched: one transaction per
flush, whatever the number of events, with idempotent keys so a replayed node never
duplicates an event, and sequence numbers handed out under a per-run lock so the stream has
no gaps. Every flush is announced with pg_notify on channel `fireflow_run_events`."""

import asyncio
import json
import logging
import time
from collections.abc import Sequence
from typing import Any

import psycopg
from psycopg.types.json import Jsonb
from psycopg_pool import AsyncConnectionPool

from ._events import Event

NOTIFY_CHANNEL = "fireflow_run_events"
log = logging.getLogger("fireflow.events")

DDL = """
CREATE SCHEMA IF NOT EXISTS fireflow;
CREATE TABLE IF NOT EXISTS fireflow.run_event (
    run_id      text        NOT NULL,
    seq         bigint      NOT NULL,
    key         text        NOT NULL,
    type        text        NOT NULL,
    node        text,
    port        text,
    payload     jsonb       NOT NULL DEFAULT '{}'::jsonb,
    created_at  timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (run_id, seq),
    UNIQUE (run_id, key)
);
CREATE TABLE IF NOT EXISTS fireflow.run_event_counter (
    run_id   text   PRIMARY KEY,
    last_seq bigint NOT NULL
);
CREATE TABLE IF NOT EXISTS fireflow.executor (
    executor_id    text        PRIMARY KEY,
    started_at     timestamptz NOT NULL DEFAULT now(),
    last_seen      timestamptz NOT NULL DEFAULT now(),
    taken_over_by  text,
    taken_over_at  timestamptz
);
CREATE TABLE IF NOT EXISTS fireflow.node_execution (
    run_id     text        NOT NULL,
    node       text        NOT NULL,
    attempt_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    executor_id text
);
CREATE INDEX IF NOT EXISTS node_execution_run ON fireflow.node_execution (run_id, node);
"""


def migrate(conninfo: str) -> None:
    """Create or update the engine's tables (idempotent)."""
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute("SELECT pg_advisory_lock(hashtext('fireflow.migrate'))")
        try:
            conn.execute(DDL)
        finally:
            conn.execute("SELECT pg_advisory_unlock(hashtext('fireflow.migrate'))")


def event_key(event: Event) -> str:
    """The idempotency key of an event within its run: the same event emitted again (a
    replayed node, a retried flush) has the same key."""
    if event.key:
        return event.key
    return ":".join(part or "" for part in (event.type.value, event.node, event.port))


class PostgresEventStore:
    """Writes run events to fireflow.run_event through an async connection pool."""

    def __init__(self, conninfo: str, *, max_size: int = 4, retry_for: float = 120.0) -> None:
        # Connections are checked when taken, so a database restart costs a reconnect.
        self._pool = AsyncConnectionPool(
            conninfo,
            min_size=1,
            max_size=max_size,
            open=False,
            check=AsyncConnectionPool.check_connection,
            kwargs={"connect_timeout": 5},
        )
        self._retry_for = retry_for

    async def open(self) -> None:
        await self._pool.open(wait=True)

    async def close(self) -> None:
        await self._pool.close()

    async def execute(self, sql: str, params: Sequence[Any]) -> None:
        async with self._pool.connection() as conn:
            await conn.execute(sql, params)

    async def fetchone(self, sql: str, params: Sequence[Any]) -> tuple[Any, ...] | None:
        async with self._pool.connection() as conn:
            cursor = await conn.execute(sql, params)
            return await cursor.fetchone()

    async def append(self, run_id: str, events: Sequence[Event]) -> int:
        """Append events in one transaction; already-written keys are skipped. Returns the
        number of new events. While the database is away, retries (idempotent) for up to
        `retry_for` seconds instead of failing the run."""
        if not events:
            return 0
        deadline = time.monotonic() + self._retry_for
        delay = 0.2
        while True:
            try:
                return await self._append_once(run_id, events)
            except psycopg.OperationalError:
                if time.monotonic() + delay > deadline:
                    raise
                log.warning("event store unreachable; retrying in %.1fs", delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)

    async def _append_once(self, run_id: str, events: Sequence[Event]) -> int:
        keyed: dict[str, Event] = {}
        for event in events:
            keyed.setdefault(event_key(event), event)
        async with self._pool.connection() as conn, conn.transaction():
            # Lock this run's counter row: concurrent flushes of one run serialise here.
            await conn.execute(
                "INSERT INTO fireflow.run_event_counter (run_id, last_seq) VALUES (%s, 0) "
                "ON CONFLICT (run_id) DO NOTHING",
                (run_id,),
            )
            cursor = await conn.execute(
                "SELECT last_seq FROM fireflow.run_event_counter WHERE run_id = %s FOR UPDATE",
                (run_id,),
            )
            row = await cursor.fetchone()
            last_seq = int(row[0]) if row else 0
            cursor = await conn.execute(
                "SELECT key FROM fireflow.run_event WHERE run_id = %s AND key = ANY(%s)",
                (run_id, list(keyed)),
            )
            existing = {r[0] for r in await cursor.fetchall()}
            fresh = [(k, e) for k, e in keyed.items() if k not in existing]
            if not fresh:
                return 0
            rows = [
                (run_id, last_seq + i, key, e.type.value, e.node, e.port, Jsonb(e.payload))
                for i, (key, e) in enumerate(fresh, start=1)
            ]
            async with conn.cursor() as cur:
                await cur.executemany(
                    "INSERT INTO fireflow.run_event "
                    "(run_id, seq, key, type, node, port, payload) "
                    "VALUES (%s, %s, %s, %s, %s, %s, %s)",
                    rows,
                )
            new_last = last_seq + len(fresh)
            await conn.execute(
                "UPDATE fireflow.run_event_counter SET last_seq = %s WHERE run_id = %s",
                (new_last, run_id),
            )
            await conn.execute(
                "SELECT pg_notify(%s, %s)",
                (NOTIFY_CHANNEL, json.dumps({"run": run_id, "seq": new_last})),
            )
        return len(fresh)


def read_events(conninfo: str, run_id: str, after: int = 0) -> list[dict[str, Any]]:
    """A run's events after sequence `after`, in order (for tools and tests)."""
    with psycopg.connect(conninfo) as conn:
        rows = conn.execute(
            "SELECT seq, type, node, port, payload FROM fireflow.run_event "
            "WHERE run_id = %s AND seq > %s ORDER BY seq",
            (run_id, after),
        ).fetchall()
    return [
        {"seq": seq, "type": type_, "node": node, "port": port, "payload": payload}
        for seq, type_, node, port, payload in rows
    ]
