"""The engine's own tables (schema `fireflow`): the run event stream and worker heartbeats.

The DDL lives here, once; `migrate(url)` applies it idempotently (the platform calls it from
a Django migration, as it calls DBOS's). Event writes are batched: one transaction per
flush, whatever the number of events, and the flushes of many runs made at once share one
(group commit), with idempotent keys so a replayed node never duplicates an event, and
sequence numbers handed out under a per-run lock so the stream has no gaps. Every run's
flush is announced with pg_notify on channel `fireflow_run_events`."""

import asyncio
import logging
import select
import time
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from typing import Any

import psycopg
from psycopg.types.json import Jsonb
from psycopg_pool import AsyncConnectionPool

from ._batches import Batches
from ._events import Event

NOTIFY_CHANNEL = "fireflow_run_events"
# Notified with a queue's name when a run is queued on it (on commit): workers start it at
# once instead of at their next poll of the queue.
ENQUEUE_CHANNEL = "fireflow_enqueued"
# The executor id of a shelved run's DBOS row (engine/_shelf.py): no worker's (startup or
# takeover recovery re-queues only the runs of the executor it recovers).
SHELVED_EXECUTOR = "fireflow:shelved"
log = logging.getLogger("fireflow.events")

DDL = (
    """
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
ALTER TABLE fireflow.executor ADD COLUMN IF NOT EXISTS recovered_at timestamptz;
-- The workspace data store (data_put / data_query nodes).
CREATE TABLE IF NOT EXISTS fireflow.data_record (
    workspace_id text        NOT NULL,
    collection   text        NOT NULL,
    key          text        NOT NULL,
    value        jsonb       NOT NULL,
    updated_at   timestamptz NOT NULL DEFAULT now(),
    updated_by   text        NOT NULL,
    PRIMARY KEY (workspace_id, collection, key)
);
-- Results of writes, committed in the same transaction as the write: a write step that runs
-- again after a crash finds its result here instead of writing twice.
CREATE TABLE IF NOT EXISTS fireflow.write_checkpoint (
    run_id  text  NOT NULL,
    node    text  NOT NULL,
    result  jsonb NOT NULL,
    PRIMARY KEY (run_id, node)
);
-- How often a step has started to stream: a step that runs again after its worker died takes
-- the next attempt number, so what it streamed before is marked as superseded.
CREATE TABLE IF NOT EXISTS fireflow.step_attempt (
    run_id    text    NOT NULL,
    node      text    NOT NULL,
    attempts  integer NOT NULL,
    PRIMARY KEY (run_id, node)
);

-- Human requests (the approval node, engine/_human.py): one per (run, node). The deadline
-- is fixed when the row is created; the first answer wins (`WHERE answer IS NULL`).
CREATE TABLE IF NOT EXISTS fireflow.human_request (
    run_id       text        NOT NULL,
    node_id      text        NOT NULL,
    workspace_id text,
    request      jsonb       NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT clock_timestamp(),
    deadline     timestamptz,
    answer       jsonb,
    answered_by  text,
    answered_at  timestamptz,
    PRIMARY KEY (run_id, node_id)
);
CREATE INDEX IF NOT EXISTS human_request_pending
    ON fireflow.human_request (workspace_id, created_at) WHERE answer IS NULL;

-- Runs put out of the workers' memory while they wait for people (engine/_shelf.py): one
-- row per shelved run, deleted by whoever queues it again (an answer, its deadline).
CREATE TABLE IF NOT EXISTS fireflow.shelved_run (
    run_id     text        PRIMARY KEY,
    queue_name text        NOT NULL,
    wake_at    timestamptz,
    shelved_at timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX IF NOT EXISTS shelved_run_wake ON fireflow.shelved_run (wake_at)
    WHERE wake_at IS NOT NULL;

-- Take a run off the shelf (p_run; NULL: every run whose wake_at has come) and queue it
-- again as DBOS's recovery does, on its own queue; the dispatchers are woken. Deleting the
-- shelf row is the fence: one caller queues a run, once. Returns how many were queued.
CREATE OR REPLACE FUNCTION fireflow.wake_shelved(p_run text) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    v_woken integer;
BEGIN
    WITH due AS (
        DELETE FROM fireflow.shelved_run s
        WHERE (p_run IS NOT NULL AND s.run_id = p_run)
           OR (p_run IS NULL AND s.wake_at <= clock_timestamp())
        RETURNING s.run_id
    ), woken AS (
        UPDATE dbos.workflow_status ws SET status = 'ENQUEUED', owner_xid = NULL,
            started_at_epoch_ms = NULL, recovery_attempts = 0,
            updated_at = (extract(epoch FROM clock_timestamp()) * 1000)::bigint
        FROM due WHERE ws.workflow_uuid = due.run_id AND ws.status = 'PENDING'
            AND ws.executor_id = '__SHELVED_EXECUTOR__'
        RETURNING ws.workflow_uuid
    )
    SELECT count(*) INTO v_woken FROM woken;
    IF v_woken > 0 THEN
        PERFORM pg_notify('__ENQUEUE_CHANNEL__', 'shelf');
    END IF;
    RETURN v_woken;
END
$$;

-- One round trip per flush: lock the run's counter, skip keys already written, number the
-- rest after the last sequence (so the stream has no gaps), announce the new last sequence.
CREATE OR REPLACE FUNCTION fireflow.append_events(
    p_run text, p_keys text[], p_types text[], p_nodes text[], p_ports text[],
    p_payloads jsonb[]
) RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
    v_last bigint;
    v_new integer;
BEGIN
    INSERT INTO fireflow.run_event_counter (run_id, last_seq) VALUES (p_run, 0)
    ON CONFLICT (run_id) DO NOTHING;
    SELECT last_seq INTO v_last FROM fireflow.run_event_counter
    WHERE run_id = p_run FOR UPDATE;
    WITH incoming AS (
        SELECT u.k, u.t, u.n, u.p, u.pl, u.ord
        FROM unnest(p_keys, p_types, p_nodes, p_ports, p_payloads)
             WITH ORDINALITY AS u(k, t, n, p, pl, ord)
    ), fresh AS (
        SELECT i.*, row_number() OVER (ORDER BY i.ord) AS rn FROM incoming i
        WHERE NOT EXISTS (
            SELECT 1 FROM fireflow.run_event e WHERE e.run_id = p_run AND e.key = i.k
        )
    )
    INSERT INTO fireflow.run_event (run_id, seq, key, type, node, port, payload)
    SELECT p_run, v_last + fresh.rn, fresh.k, fresh.t, fresh.n, fresh.p, fresh.pl FROM fresh;
    GET DIAGNOSTICS v_new = ROW_COUNT;
    IF v_new > 0 THEN
        UPDATE fireflow.run_event_counter SET last_seq = v_last + v_new WHERE run_id = p_run;
        PERFORM pg_notify('__NOTIFY_CHANNEL__',
                          json_build_object('run', p_run, 'seq', v_last + v_new)::text);
    END IF;
    RETURN v_new;
END
$$;

-- The events of several runs in one round trip and one commit (a worker's runs flushing at
-- once): p_counts[i] of the arrays' elements, in order, are p_runs[i]'s. Every run's counter
-- is locked first, in one order, so two such batches never wait for each other in a circle.
-- Returns each run's number of new events, in p_runs' order.
CREATE OR REPLACE FUNCTION fireflow.append_events_of_runs(
    p_runs text[], p_counts integer[], p_keys text[], p_types text[], p_nodes text[],
    p_ports text[], p_payloads jsonb[]
) RETURNS integer[] LANGUAGE plpgsql AS $$
DECLARE
    v_counts integer[] := '{}';
    v_from integer := 1;
    v_to integer;
BEGIN
    INSERT INTO fireflow.run_event_counter (run_id, last_seq)
    SELECT DISTINCT r, 0 FROM unnest(p_runs) AS r ORDER BY 1
    ON CONFLICT (run_id) DO NOTHING;
    PERFORM 1 FROM fireflow.run_event_counter WHERE run_id = ANY (p_runs)
    ORDER BY run_id FOR UPDATE;
    FOR i IN 1 .. coalesce(array_length(p_runs, 1), 0) LOOP
        v_to := v_from + p_counts[i] - 1;
        v_counts := v_counts || fireflow.append_events(
            p_runs[i], p_keys[v_from:v_to], p_types[v_from:v_to], p_nodes[v_from:v_to],
            p_ports[v_from:v_to], p_payloads[v_from:v_to]);
        v_from := v_to + 1;
    END LOOP;
    RETURN v_counts;
END
$$;
""".replace("__NOTIFY_CHANNEL__", NOTIFY_CHANNEL)
    .replace("__ENQUEUE_CHANNEL__", ENQUEUE_CHANNEL)
    .replace("__SHELVED_EXECUTOR__", SHELVED_EXECUTOR)
)


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


# A pooled connection unused for this long is tried with a query before it is handed out: a
# server whose host went away without closing it (no goodbye, see `_check_if_told`) is found.
_QUIET_SECONDS = 5.0
_RETURNED: "weakref.WeakKeyDictionary[psycopg.AsyncConnection[Any], float]" = (
    weakref.WeakKeyDictionary()
)


async def _check_if_told(conn: psycopg.AsyncConnection[Any]) -> None:
    """The pool's check of a connection it hands out, without a round trip while the server
    has said nothing and the connection was in use a moment ago: a server that restarted or
    dropped the connection has sent its goodbye or closed the socket, which makes the socket
    readable; only then (or after a quiet spell) is the connection tried, and replaced when
    broken. These connections listen to nothing, so nothing else arrives unasked.
    (`check_connection`'s empty query was a round trip before every statement.)"""
    if conn.closed:
        raise psycopg.OperationalError("the connection is closed")
    poller = select.poll()
    poller.register(conn.fileno(), select.POLLIN)
    returned = _RETURNED.get(conn)
    if poller.poll(0) or returned is None or time.monotonic() - returned > _QUIET_SECONDS:
        await AsyncConnectionPool.check_connection(conn)


async def _note_return(conn: psycopg.AsyncConnection[Any]) -> None:
    _RETURNED[conn] = time.monotonic()


class PostgresEventStore:
    """Writes run events to fireflow.run_event through an async connection pool."""

    def __init__(self, conninfo: str, *, max_size: int = 4, retry_for: float = 120.0) -> None:
        # Connections are checked when taken, so a database restart costs a reconnect.
        self._pool = AsyncConnectionPool(
            conninfo,
            min_size=1,
            max_size=max_size,
            open=False,
            check=_check_if_told,
            reset=_note_return,
            kwargs={"connect_timeout": 5, "autocommit": True},
        )
        self._retry_for = retry_for
        # The events of the runs that flush in the same turn of the event loop (or while a
        # batch is being written) go in one statement.
        self._appends: Batches[tuple[str, dict[str, Event]], int] = Batches(self._append_all)

    @property
    def pool(self) -> AsyncConnectionPool[Any]:
        """The store's connections (autocommit), for the engine's other statements."""
        return self._pool

    async def open(self) -> None:
        await self._pool.open(wait=True)

    async def close(self) -> None:
        await self._pool.close()

    async def write_once(
        self,
        run_id: str,
        node: str,
        write: Callable[[psycopg.AsyncConnection[Any]], Awaitable[dict[str, Any]]],
    ) -> dict[str, Any]:
        """Run `write` in a transaction that also records its result, once per (run, node):
        a re-executed step gets the recorded result and writes nothing (exactly-once)."""
        async with self.transaction() as conn:
            # Serialise two executions of the same step (a takeover racing a slow worker).
            await conn.execute(
                "SELECT pg_advisory_xact_lock(hashtext(%s), hashtext(%s))", (run_id, node)
            )
            cursor = await conn.execute(
                "SELECT result FROM fireflow.write_checkpoint WHERE run_id = %s AND node = %s",
                (run_id, node),
            )
            row = await cursor.fetchone()
            if row is not None:
                recorded: dict[str, Any] = row[0]
                return recorded
            result = await write(conn)
            await conn.execute(
                "INSERT INTO fireflow.write_checkpoint (run_id, node, result) VALUES (%s, %s, %s)",
                (run_id, node, Jsonb(result)),
            )
            return result

    async def next_attempt(self, run_id: str, node: str) -> int:
        """1 the first time a node of a run asks, then 2, 3, ... (one per execution)."""
        row = await self.fetchone(
            "INSERT INTO fireflow.step_attempt (run_id, node, attempts) VALUES (%s, %s, 1) "
            "ON CONFLICT (run_id, node) DO UPDATE SET attempts = step_attempt.attempts + 1 "
            "RETURNING attempts",
            (run_id, node),
        )
        return int(row[0]) if row else 1

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
        """A connection inside one transaction (committed when the block ends)."""
        async with self._pool.connection() as conn, conn.transaction():
            yield conn

    async def execute(self, sql: str, params: Sequence[Any]) -> None:
        async with self._pool.connection() as conn:
            await conn.execute(sql, params)

    async def fetchall(self, sql: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
        async with self._pool.connection() as conn:
            cursor = await conn.execute(sql, params)
            return await cursor.fetchall()

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
        return await self._appends.submit((run_id, keyed))

    async def _append_all(
        self, items: list[tuple[str, dict[str, Event]]]
    ) -> list[int | BaseException]:
        """One statement for the events of several runs (of `append` calls in flight)."""
        events = [event for _, keyed in items for event in keyed.values()]
        try:
            async with self._pool.connection() as conn:
                cursor = await conn.execute(
                    "SELECT fireflow.append_events_of_runs(%s, %s, %s, %s, %s, %s, %s::jsonb[])",
                    (
                        [run_id for run_id, _ in items],
                        [len(keyed) for _, keyed in items],
                        [key for _, keyed in items for key in keyed],
                        [e.type.value for e in events],
                        [e.node for e in events],
                        [e.port for e in events],
                        [Jsonb(e.payload) for e in events],
                    ),
                )
                row = await cursor.fetchone()
        except psycopg.OperationalError as exc:
            # The database is away: every caller waits and tries again (`append`); written
            # one by one, each would wait for a connection on its own first.
            return [exc for _ in items]
        counts: list[int] = list(row[0]) if row else [0] * len(items)
        return [int(count) for count in counts]


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
