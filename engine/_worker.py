"""The worker process: launches DBOS with a unique, stable executor id, pulls runs from the
queue, and watches its peers. A worker whose heartbeat is older than `dead_after` is taken
over by exactly one live worker (a conditional UPDATE is the fence), which puts the dead
one's pending runs back on the queue; the dead worker need never come back."""

import asyncio
import concurrent.futures
import contextlib
import gc
import importlib
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Coroutine, Iterator
from dataclasses import dataclass, field
from typing import Any

import psycopg
from dbos import DBOS, DBOSConfig, Queue
from dbos._core import execute_dequeued_workflow
from dbos._dbos import _get_dbos_instance
from dbos._sys_db import WorkflowStatusInternal
from dbos._utils import GlobalParams, generate_uuid
from psycopg.rows import dict_row

from ._durable import (
    APPLICATION_VERSION,
    CHILD_QUEUE,
    RUN_QUEUE,
    configure_event_store,
)
from ._registry import PolicySource, SecretSource, SpendGate, UsageLedger
from ._shelf import SHELVING, wake_due
from ._slots import SLOTS
from ._store import ENQUEUE_CHANNEL, migrate

log = logging.getLogger("fireflow.worker")


@dataclass
class WorkerConfig:
    database_url: str
    executor_id: str
    # Runs working at once on this worker; and runs that may wait (for a person, their child
    # runs, a Delay) on top: a waiting run holds no slot, thread or connection, so the queue
    # hands this worker up to concurrency + parked runs (engine/_slots.py).
    concurrency: int = 50
    parked: int = 10_000
    # A run that has waited this long for people, and does nothing else, leaves the worker's
    # memory until it is answered or due (engine/_shelf.py); None keeps every wait in memory.
    shelve_after_sec: float | None = 5.0
    # How often the worker looks for queued runs besides being woken when one is queued
    # (ENQUEUE_CHANNEL): runs whose notification was missed, and room freed by runs ending.
    polling_interval_sec: float = 0.05
    heartbeat_sec: float = 3.0
    dead_after_sec: float = 15.0
    # Modules to import for extra node types (plugins; tests use it for their own nodes).
    node_modules: list[str] = field(default_factory=list)
    # The platform's adapter for its rules (allow lists, later node policies).
    policy: PolicySource | None = None
    # The platform's usage ledger (one record per LLM call).
    usage: UsageLedger | None = None
    # The platform's vault (secrets sealed to the step that uses them).
    secrets: SecretSource | None = None
    # The platform's budgets and kill switches (every LLM call held against them first).
    spend: SpendGate | None = None


# The most threads DBOS may run the blocking parts of workflows on, in one process.
MAX_EXECUTOR_THREADS = 64


def dbos_config(
    database_url: str, executor_id: str, application_version: str = APPLICATION_VERSION
) -> DBOSConfig:
    """How a FireFlow process launches DBOS. The system database pool skips SQLAlchemy's
    pre-ping: it costs a round trip on every checkout (two per step), about a third of a
    step's time measured here, and DBOS already retries an operation whose connection broke
    (a PostgreSQL restart invalidates the pool and the retry reconnects).

    DBOS hands the blocking parts of async workflows (its system-database calls) to a thread
    pool that is unbounded by default and never shrinks: thousands of runs starting together
    would leave thousands of idle threads. Bounded, the calls queue for a thread instead
    (they queue for one of the pool's connections anyway)."""
    return {
        "name": "fireflow",
        "system_database_url": database_url,
        "executor_id": executor_id,
        "application_version": application_version,
        "max_executor_threads": MAX_EXECUTOR_THREADS,
        "db_engine_kwargs": {
            "pool_pre_ping": False,
            "connect_args": {"application_name": f"fireflow:{executor_id}"[:63]},
        },
    }


def recover_executor_runs(dead_executor_id: str) -> int:
    """Put a dead executor's pending runs back on their queue. Wraps DBOS's private
    `_recover_pending_workflows` (seen working on dbos 3.4; pinned, and a test fails if an
    upgrade changes it)."""
    handles = DBOS._recover_pending_workflows([dead_executor_id])
    return len(handles)


# One statement claims up to %(limit)s queued runs and reads them back whole: what DBOS's
# queue thread does in two transactions (`start_queued_workflows`, five round trips, then
# `get_workflow_statuses`), for a queue with no global limit, rate limit or partitions, as
# FireFlow's are. The row is updated as DBOS's claim updates it (PENDING, this executor, the
# claim's owner token, started now, the dispatch counted against the dead-letter limit, the
# deadline of a workflow timeout set). Runs carry the application version they were queued
# for; one without a version (a fork: DBOS queues it without one) is run by any worker, as
# DBOS does while one version is registered. Rows of other DBOS applications are left
# alone. SKIP LOCKED: workers claim from one queue at once and each run goes to one.
_CLAIM_SQL = """
WITH picked AS (
    SELECT workflow_uuid FROM dbos.workflow_status
    WHERE queue_name = %(queue)s AND status = 'ENQUEUED'
      AND (application_version = %(version)s OR application_version IS NULL)
      AND (%(app)s::text IS NULL OR application_name = %(app)s OR application_name IS NULL)
    ORDER BY priority, created_at
    LIMIT %(limit)s
    FOR UPDATE SKIP LOCKED
), claimed AS (
    UPDATE dbos.workflow_status ws SET
        status = 'PENDING', owner_xid = %(owner)s, application_version = %(version)s,
        executor_id = %(executor)s, application_name = %(app)s,
        started_at_epoch_ms = (extract(epoch FROM now()) * 1000)::bigint,
        updated_at = (extract(epoch FROM now()) * 1000)::bigint,
        rate_limited = false, recovery_attempts = ws.recovery_attempts + 1,
        workflow_deadline_epoch_ms = CASE
            WHEN ws.workflow_timeout_ms IS NOT NULL AND ws.workflow_deadline_epoch_ms IS NULL
            THEN LEAST((extract(epoch FROM now()) * 1000)::numeric + ws.workflow_timeout_ms,
                       9223372036854775807)::bigint
            ELSE ws.workflow_deadline_epoch_ms END
    FROM picked
    WHERE ws.workflow_uuid = picked.workflow_uuid AND ws.status = 'ENQUEUED'
    RETURNING ws.*
)
SELECT c.*, COALESCE(i.inputs, c.inputs) AS claimed_inputs
FROM claimed c LEFT JOIN dbos.workflow_input i ON i.workflow_uuid = c.workflow_uuid
ORDER BY c.priority, c.created_at
"""


def _status(row: dict[str, Any]) -> WorkflowStatusInternal:
    """A claimed row as DBOS reads a workflow's status (`get_workflow_statuses`)."""
    return {
        "workflow_uuid": row["workflow_uuid"],
        "status": row["status"],
        "name": row["name"],
        "recovery_attempts": row["recovery_attempts"],
        "config_name": row["config_name"],
        "class_name": row["class_name"],
        "authenticated_user": row["authenticated_user"],
        "authenticated_roles": row["authenticated_roles"],
        "assumed_role": row["assumed_role"],
        "queue_name": row["queue_name"],
        "executor_id": row["executor_id"],
        "created_at": row["created_at"],
        "updated_at": row["updated_at"],
        "app_version": row["application_version"],
        "app_id": row["application_id"],
        "workflow_deadline_epoch_ms": row["workflow_deadline_epoch_ms"],
        "workflow_timeout_ms": row["workflow_timeout_ms"],
        "deduplication_id": row["deduplication_id"],
        "priority": row["priority"],
        "inputs": row["claimed_inputs"],
        "queue_partition_key": row["queue_partition_key"],
        "forked_from": row["forked_from"],
        "parent_workflow_id": row["parent_workflow_id"],
        "started_at_epoch_ms": row["started_at_epoch_ms"],
        "serialization": row["serialization"],
        "delay_until_epoch_ms": row["delay_until_epoch_ms"],
        "attributes": row["attributes"],
        "schedule_name": row["schedule_name"],
        "debounce_deadline_epoch_ms": row["debounce_deadline_epoch_ms"],
        "is_debounced": bool(row["is_debounced"]),
        "application_name": row["application_name"],
        "shard_key": None,
    }


def claim_queued(conn: psycopg.Connection[Any], queue: str, room: int) -> list[str]:
    """Claim up to `room` of the runs waiting on `queue` (on `conn`, autocommit) and start
    them with DBOS's private `execute_dequeued_workflow` (seen working on dbos 3.4; pinned,
    and the worker tests fail if an upgrade changes it or the status table). Returns the
    ids of the runs claimed."""
    if room <= 0:
        return []
    dbos = _get_dbos_instance()
    owner_xid = generate_uuid()
    with conn.cursor(row_factory=dict_row) as cursor:
        rows = cursor.execute(
            _CLAIM_SQL,
            {
                "queue": queue,
                "version": GlobalParams.app_version,
                "app": dbos._sys_db.app_name,
                "limit": room,
                "owner": owner_xid,
                "executor": GlobalParams.executor_id,
            },
        ).fetchall()
    # As DBOS's queue thread: each run on its own, so one that cannot start (a poison run
    # dead-lettered, inputs that do not read) does not leave the others of the claim behind.
    with _starts_handed_over(dbos):
        for row in rows:
            try:
                execute_dequeued_workflow(dbos, _status(row), owner_xid)
            except Exception as exc:
                log.error("could not start claimed run %s: %s", row["workflow_uuid"], exc)
    return [row["workflow_uuid"] for row in rows]


_HAND_OVER_PATIENCE_SECONDS = 30.0


class _Handing(threading.local):
    futures: list[concurrent.futures.Future[Any]] | None = None


_HANDING = _Handing()


@contextlib.contextmanager
def _starts_handed_over(dbos: DBOS) -> Iterator[None]:
    """While in this block, the runs DBOS starts from this thread are handed to its event
    loop without waiting for each to be taken; they are waited for together when it ends.
    DBOS's `execute_dequeued_workflow` waits for the loop to create each run's task: behind
    a busy loop that was about 3 ms a run, so a claim of 50 kept this thread (and the claims
    after it) waiting 150 ms while the worker's slots emptied."""
    loop = dbos._background_event_loop
    if not getattr(loop, "_fireflow_hands_over", False):
        waits = loop.submit_coroutine

        def submit(coro: Coroutine[Any, Any, Any]) -> Any:
            futures = _HANDING.futures
            target = loop.target_loop()
            if futures is None or target is None:
                return waits(coro)
            futures.append(asyncio.run_coroutine_threadsafe(coro, target))
            return None  # what DBOS's run-starting coroutine returns

        loop.submit_coroutine = submit  # type: ignore[method-assign]
        loop._fireflow_hands_over = True  # type: ignore[attr-defined]
    futures: list[concurrent.futures.Future[Any]] = []
    _HANDING.futures = futures
    try:
        yield
    finally:
        _HANDING.futures = None
        # A live loop takes them in moments; one that has stopped (shutting down) never will,
        # and the dispatcher must not hang on it.
        taken, untaken = concurrent.futures.wait(futures, timeout=_HAND_OVER_PATIENCE_SECONDS)
        if untaken:
            log.warning("%d claimed run(s) not yet taken by the event loop", len(untaken))
        for future in taken:
            if not future.cancelled() and (error := future.exception()):
                log.error("could not start a claimed run: %s", error)


def dispatcher_name(executor_id: str) -> str:
    """The application_name of a worker's dispatcher connection (pg_stat_activity): it
    listens for queued runs and claims them."""
    return f"fireflow-dispatch:{executor_id}"[:63]


class _Dispatcher(threading.Thread):
    """Takes this worker's share of queued runs, in place of DBOS's queue thread (told not to
    listen to FireFlow's queues), because DBOS counts a run that waits for a person as one
    that works: a worker that may keep 10,000 runs parked would take a backlog of 10,000 in
    one claim and leave its peers idle. Here a worker claims only what its free working
    slots take (`concurrency` less the runs working now; parked runs do not count, up to
    `concurrency + parked` in all), so a backlog spreads over the workers.

    It claims when woken, at once: the enqueue SQL notifies ENQUEUE_CHANNEL with the queue's
    name when its transaction commits (every worker hears it; one wins each run), and
    otherwise every `polling_interval_sec` (runs whose notification was missed, slots freed
    by finished runs), or every 10 ms while runs are left queued that there was no room for."""

    def __init__(self, config: WorkerConfig, queues: dict[str, Queue], stop: threading.Event):
        super().__init__(name="fireflow-dispatcher", daemon=True)
        self.config = config
        self.queues = queues
        self.stop = stop
        self._backlog: set[str] = set()  # queues whose last claim took all the room it had

    def run(self) -> None:
        while not self.stop.is_set():
            try:
                with psycopg.connect(
                    self.config.database_url,
                    autocommit=True,
                    connect_timeout=5,
                    application_name=dispatcher_name(self.config.executor_id),
                ) as conn:
                    conn.execute(f"LISTEN {ENQUEUE_CHANNEL}")  # the first thing it does
                    while not self.stop.is_set():
                        self.dispatch(conn)
                        # Until a run is queued (a burst of them is one wake-up), or the poll;
                        # a shorter one while runs are left queued.
                        interval = self.config.polling_interval_sec
                        if self._backlog:
                            interval = min(interval, _BACKLOG_POLL_SEC)
                        for _ in conn.notifies(timeout=interval, stop_after=1):
                            pass
                        for _ in conn.notifies(timeout=0.0):
                            pass
            except psycopg.Error:
                log.warning("queue dispatcher lost its connection; reconnecting")
                self.stop.wait(1.0)
            except Exception:  # never die quietly: a worker that claims nothing looks alive
                log.exception("queue dispatcher failed; starting over")
                self.stop.wait(1.0)

    def room(self) -> int:
        """How many more runs this worker takes on now."""
        dbos = _get_dbos_instance()
        active = sum(dbos._active_workflows_set.count_for_queue(q) for q in self.queues)
        working = active - SLOTS.parked
        total = self.config.concurrency + self.config.parked
        return max(0, min(self.config.concurrency - working, total - active))

    def dispatch(self, conn: psycopg.Connection[Any]) -> None:
        for queue in self.queues.values():
            room = self.room()
            if room <= 0 or self.stop.is_set():
                return
            entered = SLOTS.entered
            try:
                claimed = claim_queued(conn, queue.name, room)
            except Exception:  # the next round tries again
                log.warning("could not claim queued runs of %s", queue.name, exc_info=True)
                continue
            if len(claimed) < room:
                self._backlog.discard(queue.name)  # none left queued
            else:
                self._backlog.add(queue.name)  # maybe more than there was room for
            self._until_started(entered, len(claimed))

    def _until_started(self, entered: int, claimed: int) -> None:
        """Claimed runs start on DBOS's event loop a moment later: wait for them to enter
        their slots (counted once each, whether they finish at once or not) before the room
        is worked out again, so one room is not claimed twice. A run that fails before it
        starts (a flow that no longer validates) is waited for a little only."""
        deadline = time.monotonic() + _START_PATIENCE_SECONDS
        while SLOTS.entered < entered + claimed and time.monotonic() < deadline:
            if self.stop.wait(0.002):
                return


_START_PATIENCE_SECONDS = 0.2
# How soon a worker looks again while runs are left queued that it had no room for: the room
# runs leave as they end is taken within this, not a whole `polling_interval_sec` later.
_BACKLOG_POLL_SEC = 0.01


class _Watchdog(threading.Thread):
    """Every `heartbeat_sec`: the worker's heartbeat, the takeover of dead workers' runs,
    and shelved runs whose deadline has come queued again (engine/_shelf.py)."""

    def __init__(self, config: WorkerConfig, stop: threading.Event) -> None:
        super().__init__(name="fireflow-watchdog", daemon=True)
        self.config = config
        self.stop = stop

    def run(self) -> None:
        # One connection kept from beat to beat (not a new PostgreSQL backend every beat); a
        # new one after an error.
        conn: psycopg.Connection[Any] | None = None
        while not self.stop.is_set():
            try:
                if conn is None or conn.closed:
                    conn = psycopg.connect(
                        self.config.database_url, autocommit=True, connect_timeout=5
                    )
                self.beat_and_take_over(conn)
            except Exception:  # a blip in the database must not kill the worker
                log.exception("heartbeat failed; retrying")
                if conn is not None:
                    conn.close()
            self.stop.wait(self.config.heartbeat_sec)
        if conn is not None:
            conn.close()

    def beat_and_take_over(self, c: psycopg.Connection[Any]) -> None:
        me = self.config.executor_id
        c.execute(
            "INSERT INTO fireflow.executor (executor_id) VALUES (%s) "
            "ON CONFLICT (executor_id) DO UPDATE SET last_seen = now(), "
            "taken_over_by = NULL, taken_over_at = NULL, recovered_at = NULL",
            (me,),
        )
        # The fence: one live worker wins each dead one. A takeover whose taker died before
        # it finished (recovered_at still empty after a while) is up for grabs again.
        dead = c.execute(
            "UPDATE fireflow.executor SET taken_over_by = %s, taken_over_at = now(), "
            "recovered_at = NULL "
            "WHERE executor_id <> %s AND last_seen < now() - make_interval(secs => %s) "
            "AND (taken_over_by IS NULL OR (recovered_at IS NULL "
            "     AND taken_over_at < now() - make_interval(secs => %s))) "
            "RETURNING executor_id",
            (me, me, self.config.dead_after_sec, self.config.dead_after_sec),
        ).fetchall()
        for (executor_id,) in dead:
            count = recover_executor_runs(executor_id)
            c.execute(
                "UPDATE fireflow.executor SET recovered_at = now() WHERE executor_id = %s",
                (executor_id,),
            )
            log.warning("took over %d pending run(s) of dead worker %s", count, executor_id)
        # Shelved runs whose deadline has come are queued again (one worker takes each);
        # after the takeover, so a failure here does not hold that up.
        try:
            with c.cursor() as cursor:
                if woken := wake_due(cursor):
                    log.info("%d shelved run(s) due: queued again", woken)
        except psycopg.Error:
            log.warning("could not look for shelved runs that are due", exc_info=True)


def run_worker(config: WorkerConfig) -> None:
    """Run a worker until SIGTERM or SIGINT."""
    for module in config.node_modules:
        importlib.import_module(module)
    migrate(config.database_url)
    configure_event_store(
        config.database_url, config.policy, config.usage, config.secrets, config.spend
    )
    SLOTS.limit = config.concurrency  # before launch: recovered runs take slots at once
    SHELVING.after, SHELVING.executor_id = config.shelve_after_sec, config.executor_id
    DBOS(config=dbos_config(config.database_url, config.executor_id))
    DBOS.listen_queues([])  # FireFlow's queues are taken by the dispatcher (below)
    DBOS.launch()
    gc.freeze()  # the loaded code lives as long as the process: no full collection scans it
    # Runs execute on one event loop while DBOS's checkpoints run on its threads: a thread
    # busy in Python hands the interpreter back to the loop after 1 ms instead of 5, which
    # keeps a step's start from waiting behind another's bookkeeping (TTFT p95, measured).
    sys.setswitchinterval(0.001)
    queues = {
        name: DBOS.register_queue(
            name,
            worker_concurrency=config.concurrency + config.parked,
            polling_interval_sec=config.polling_interval_sec,
        )
        for name in (RUN_QUEUE, CHILD_QUEUE)
    }
    stop = threading.Event()

    def _stop(signum: int, frame: Any) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    _Watchdog(config, stop).start()
    dispatcher = _Dispatcher(config, queues, stop)
    dispatcher.start()
    log.info("worker %s ready (pid %d)", config.executor_id, os.getpid())
    print(f"[fireflow] worker {config.executor_id} ready", flush=True)
    stop.wait()
    dispatcher.join(timeout=5)  # claims nothing more while DBOS shuts down
    DBOS.destroy(workflow_completion_timeout_sec=5)
