"""Real worker processes against a real PostgreSQL, for the durability tests.

Each test module gets a database of its own on the server DATABASE_URL points at, with
DBOS's and the engine's schemas; workers are `worker_main.py` subprocesses."""

import atexit
import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psycopg
from dbos import DBOS

import engine
from tests.engine.plugin_nodes import LEDGER_DDL

ROOT = Path(__file__).resolve().parents[2]
WORKER_MAIN = Path(__file__).with_name("worker_main.py")
TERMINAL = {"SUCCESS", "ERROR", "CANCELLED", "MAX_RECOVERY_ATTEMPTS_EXCEEDED"}


def with_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{name}"))


@contextlib.contextmanager
def fresh_database(prefix: str = "ff_engine") -> Iterator[str]:
    server = os.environ["DATABASE_URL"]
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(server, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = with_database(server, name)
    try:
        DBOS.migrate(url)
        engine.migrate(url)
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(LEDGER_DDL)
        yield url
    finally:
        with psycopg.connect(server, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _drain(stream: Any, log_path: str | None) -> None:
    with contextlib.ExitStack() as stack:
        log = stack.enter_context(open(log_path, "a")) if log_path else None
        for line in stream:
            if log is not None:
                log.write(line)
                log.flush()


STARTED: list["Worker"] = []


@atexit.register
def _kill_survivors() -> None:
    """No worker outlives the test session, whatever failed."""
    for worker in STARTED:
        if worker.alive():
            worker.process.kill()


class Worker:
    def __init__(
        self,
        url: str,
        executor_id: str,
        dead_after: float = 15.0,
        *,
        platform: bool = False,
        concurrency: int = 50,
        extra_modules: str = "",
        poll_seconds: float = 0.05,
        shelve_after: float | None = None,
    ) -> None:
        """An engine worker; `platform=True` runs `fireflow worker` instead, with the
        platform's adapters wired in (and the test node types as a plugin)."""
        STARTED.append(self)
        self.url = url
        self.executor_id = executor_id
        env = {
            **os.environ,
            "FIREFLOW_TEST_LEDGER_URL": url,
            "FIREFLOW_TEST_EXTRA_MODULES": extra_modules,
            "FIREFLOW_TEST_POLL_SECONDS": str(poll_seconds),
            # Waits stay in memory unless a test shelves them (engine/_shelf.py).
            "FIREFLOW_TEST_SHELVE_AFTER": "never" if shelve_after is None else str(shelve_after),
            "FIREFLOW_SHELVE_AFTER_SECONDS": "never" if shelve_after is None else str(shelve_after),
            "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "platform")]),
        }
        command = [
            sys.executable,
            str(WORKER_MAIN),
            url,
            executor_id,
            str(dead_after),
            str(concurrency),
        ]
        if platform:
            env.update(
                DATABASE_URL=url,
                FIREFLOW_NODE_MODULES="tests.engine.plugin_nodes",
                LOG_LEVEL="WARNING",
                # Budget-alert webhooks may reach the tests' local receivers.
                FIREFLOW_WEBHOOK_ALLOW="127.0.0.1",
                # Approvers are emailed within a second of a request (flows/notify.py).
                FIREFLOW_NOTICE_SECONDS="1",
            )
            command = [sys.executable, "-m", "fireflow.cli", "worker", "--executor-id", executor_id]
        self.process = subprocess.Popen(
            command,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        deadline = time.monotonic() + 30
        assert self.process.stdout is not None
        while time.monotonic() < deadline:
            line = self.process.stdout.readline()
            if not line and self.process.poll() is not None:
                raise RuntimeError(f"worker {executor_id} exited before it was ready")
            if f"worker {executor_id} ready" in line:
                break
        # Drain its output so the pipe never fills up; FIREFLOW_TEST_WORKER_LOG keeps it.
        self._drain = threading.Thread(
            target=_drain,
            args=(self.process.stdout, os.environ.get("FIREFLOW_TEST_WORKER_LOG")),
            daemon=True,
        )
        self._drain.start()

    def kill9(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._drain.join(timeout=5)

    def alive(self) -> bool:
        return self.process.poll() is None


def enqueue(
    url: str,
    document: dict[str, Any],
    inputs: dict[str, Any],
    run_id: str | None = None,
    meta: dict[str, Any] | None = None,
) -> str:
    run_id = run_id or str(uuid.uuid4())
    sql, params = engine.enqueue_run_sql(
        run_id=run_id, document=document, inputs=inputs, meta=meta or {}
    )
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(sql, params)
    return run_id


def status(url: str, run_id: str) -> tuple[str | None, dict[str, Any] | None, str | None]:
    with psycopg.connect(url) as conn:
        row = conn.execute(
            "SELECT ws.status, wo.output, ws.executor_id FROM dbos.workflow_status ws "
            "LEFT JOIN dbos.workflow_output wo USING (workflow_uuid) "
            "WHERE ws.workflow_uuid = %s",
            (run_id,),
        ).fetchone()
    if row is None:
        return None, None, None
    return row[0], json.loads(row[1]) if row[1] else None, row[2]


def wait_for(predicate: Any, timeout: float, what: str, interval: float = 0.1) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def wait_terminal(url: str, run_id: str, timeout: float = 60) -> tuple[str, dict[str, Any]]:
    def done() -> Any:
        st, output, _ = status(url, run_id)
        return (st, output) if st in TERMINAL else None

    result: tuple[str, dict[str, Any]] = wait_for(done, timeout, f"run {run_id} to finish")
    return result


def ledger(url: str, run_id: str) -> list[tuple[str, str]]:
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT node, phase FROM fireflow_test.ledger WHERE run_id = %s ORDER BY id",
            (run_id,),
        ).fetchall()
    return [(r[0], r[1]) for r in rows]


def ledger_like(url: str, run_prefix: str) -> list[tuple[str, str, str]]:
    """(run id, node, phase) of every run whose id starts with `run_prefix` (child runs)."""
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT run_id, node, phase FROM fireflow_test.ledger WHERE run_id LIKE %s ORDER BY id",
            (run_prefix + "%",),
        ).fetchall()
    return [(r[0], r[1], r[2]) for r in rows]


def chain(*nodes: tuple[str, float]) -> dict[str, Any]:
    """input(x) -> ledger nodes in a row (each appends its name) -> output 'result'."""
    doc_nodes: list[dict[str, Any]] = [
        {"id": "inp", "type": "input", "config": {"fields": [{"name": "x", "type": "text"}]}}
    ]
    edges = []
    prev = "inp.x"
    for name, seconds in nodes:
        doc_nodes.append(
            {
                "id": name,
                "type": "test_ledger",
                "config": {"seconds": seconds, "suffix": f"-{name}"},
            }
        )
        edges.append({"from": prev, "to": f"{name}.value"})
        prev = f"{name}.value"
    doc_nodes.append({"id": "out", "type": "output", "config": {"name": "result"}})
    edges.append({"from": prev, "to": "out.value"})
    return {"schema": 1, "nodes": doc_nodes, "edges": edges}
