"""The worker process: launches DBOS with a unique, stable executor id, pulls runs from the
queue, and watches its peers. A worker whose heartbeat is older than `dead_after` is taken
over by exactly one live worker (a conditional UPDATE is the fence), which puts the dead
one's pending runs back on the queue; the dead worker need never come back."""

import importlib
import logging
import os
import signal
import threading
from dataclasses import dataclass, field
from typing import Any

import psycopg
from dbos import DBOS, DBOSConfig, Queue
from dbos._core import execute_dequeued_workflow
from dbos._dbos import _get_dbos_instance
from dbos._utils import GlobalParams, generate_uuid

from ._durable import (
    APPLICATION_VERSION,
    CHILD_QUEUE,
    ENQUEUE_CHANNEL,
    RUN_QUEUE,
    configure_event_store,
)
from ._registry import PolicySource, SecretSource, SpendGate, UsageLedger
from ._slots import SLOTS
from ._store import migrate

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
    # How often the worker looks for queued runs besides being woken when one is queued
    # (ENQUEUE_CHANNEL): what picks up runs whose notification was missed.
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


def claim_queued(queue: Queue) -> int:
    """Claim and start the runs waiting on `queue` that this worker has room for, now, as
    DBOS's queue thread does on its next poll. Wraps DBOS's private claim and dispatch
    (`start_queued_workflows`, `execute_dequeued_workflow`, seen working on dbos 3.4; pinned,
    and the start-latency tests fail if an upgrade changes them). The claim takes rows with
    SKIP LOCKED, so it may race the queue thread or other workers: each run goes to one."""
    dbos = _get_dbos_instance()
    owner_xid = generate_uuid()
    claimed, _ = dbos._sys_db.start_queued_workflows(
        queue,
        GlobalParams.executor_id,
        GlobalParams.app_version,
        None,
        dbos._active_workflows_set.count_for_queue(queue.name),
        owner_xid=owner_xid,
    )
    if claimed:
        for status in dbos._sys_db.get_workflow_statuses(claimed):
            execute_dequeued_workflow(dbos, status, owner_xid)
    return len(claimed)


class _Waker(threading.Thread):
    """Starts a queued run as soon as it is queued instead of at the queue's next poll: the
    enqueue SQL notifies ENQUEUE_CHANNEL with the queue's name when its transaction commits,
    and this thread, LISTENing on one connection, claims from that queue at once. Every
    worker hears it; one wins each run. Polling stays, for notifications lost while the
    connection was down."""

    def __init__(self, config: WorkerConfig, queues: dict[str, Queue], stop: threading.Event):
        super().__init__(name="fireflow-waker", daemon=True)
        self.config = config
        self.queues = queues
        self.stop = stop

    def run(self) -> None:
        while not self.stop.is_set():
            try:
                with psycopg.connect(
                    self.config.database_url, autocommit=True, connect_timeout=5
                ) as conn:
                    conn.execute(f"LISTEN {ENQUEUE_CHANNEL}")
                    while not self.stop.is_set():
                        names = {n.payload for n in conn.notifies(timeout=1.0, stop_after=1)}
                        # A burst of runs queued together: one claim per queue takes them.
                        names |= {n.payload for n in conn.notifies(timeout=0.0)}
                        for name in sorted(names):
                            self.claim(name)
            except psycopg.Error:
                log.warning("queue waker lost its connection; reconnecting")
                self.stop.wait(1.0)

    def claim(self, queue_name: str) -> None:
        queue = self.queues.get(queue_name)
        if queue is None:
            return
        try:
            claim_queued(queue)
        except Exception:  # the queue's own polling picks the run up instead
            log.debug("claim on notification failed", exc_info=True)


class _Watchdog(threading.Thread):
    def __init__(self, config: WorkerConfig, stop: threading.Event) -> None:
        super().__init__(name="fireflow-watchdog", daemon=True)
        self.config = config
        self.stop = stop

    def run(self) -> None:
        while not self.stop.is_set():
            try:
                self.beat_and_take_over()
            except Exception:  # a blip in the database must not kill the worker
                log.exception("heartbeat failed; retrying")
            self.stop.wait(self.config.heartbeat_sec)

    def beat_and_take_over(self) -> None:
        me = self.config.executor_id
        with psycopg.connect(self.config.database_url, autocommit=True, connect_timeout=5) as c:
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


def run_worker(config: WorkerConfig) -> None:
    """Run a worker until SIGTERM or SIGINT."""
    for module in config.node_modules:
        importlib.import_module(module)
    migrate(config.database_url)
    configure_event_store(
        config.database_url, config.policy, config.usage, config.secrets, config.spend
    )
    SLOTS.limit = config.concurrency  # before launch: recovered runs take slots at once
    DBOS(config=dbos_config(config.database_url, config.executor_id))
    DBOS.launch()
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
    _Waker(config, queues, stop).start()
    log.info("worker %s ready (pid %d)", config.executor_id, os.getpid())
    print(f"[fireflow] worker {config.executor_id} ready", flush=True)
    stop.wait()
    DBOS.destroy(workflow_completion_timeout_sec=5)
