"""Fixtures for tests that need a real worker (and a web server): one worker process on the
test database for the whole session, shared by the API, live-stream and browser tests.
Registered for the whole suite in tests/conftest.py (`pytest_plugins`)."""

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.engine.harness import Worker

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def test_database_url(django_db_setup: None, django_db_blocker: pytest.FixtureRequest) -> str:
    from django.db import connection

    from flows.engine_bridge import url_for

    with django_db_blocker.unblock():  # type: ignore[attr-defined]
        return url_for(connection.settings_dict)


@pytest.fixture(scope="session")
def fake_llm() -> Iterator[object]:
    from engine.llm import FakeLLMServer

    with FakeLLMServer() as server:
        os.environ["FIREFLOW_FAKE_LLM_URL"] = server.url  # inherited by the worker
        yield server
        os.environ.pop("FIREFLOW_FAKE_LLM_URL", None)


STRIPE_ENV = ("STRIPE_SECRET_KEY", "STRIPE_API_BASE", "STRIPE_WEBHOOK_SECRET")


@pytest.fixture(scope="session")
def fake_stripe() -> Iterator[Any]:
    """The fake Stripe (billing/fake_stripe.py) for the session; the worker talks to it."""
    from billing.fake_stripe import FakeStripeServer

    with FakeStripeServer(webhook_retry_delays=(0.1, 0.3)) as server:
        os.environ.update(
            STRIPE_SECRET_KEY="sk_test_fireflow",
            STRIPE_API_BASE=server.url,
            STRIPE_WEBHOOK_SECRET=server.webhook_secret,
        )
        yield server
        for name in STRIPE_ENV:
            os.environ.pop(name, None)


# Runs waiting for people longer than this leave the session worker's memory (engine/_shelf.py;
# 5 s in production): the API and browser tests whose answers come later go through it.
SESSION_SHELVE_AFTER = 2.0


@pytest.fixture(scope="session")
def engine_worker(test_database_url: str, fake_llm: object, fake_stripe: Any) -> Iterator[str]:
    """One real worker process on the test database for the whole session; tests that use it
    must commit (transactional_db) so the worker sees their rows."""
    import psycopg

    from flows import engine_bridge
    from tests.engine.plugin_nodes import LEDGER_DDL

    with psycopg.connect(test_database_url, autocommit=True) as conn:
        conn.execute(LEDGER_DDL)
    worker = Worker(
        test_database_url,
        f"api-tests-{os.getpid()}",
        platform=True,
        shelve_after=SESSION_SHELVE_AFTER,
    )
    yield test_database_url
    worker.stop()
    engine_bridge.client().close()  # let the test database be dropped
    engine_bridge.client.cache_clear()


@pytest.fixture
def session_worker_paused(engine_worker: str) -> Iterator[str]:
    """The session's worker stopped (SIGSTOP) for one test, so that the workers the test
    starts, and kills, are the only ones taking runs; resumed afterwards."""
    import signal

    from tests.engine.harness import STARTED

    paused = [w for w in STARTED if w.executor_id.startswith("api-tests-") and w.alive()]
    for worker in paused:
        worker.process.send_signal(signal.SIGSTOP)
    try:
        yield engine_worker
    finally:
        for worker in paused:
            worker.process.send_signal(signal.SIGCONT)


@pytest.fixture(scope="session")
def web_server(test_database_url: str) -> Iterator[str]:
    """daphne serving the app on the test database, as `make up` does (ASGI: live streams)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {
        **os.environ,
        "DATABASE_URL": test_database_url,
        "FIREFLOW_ENV": "test",
        "PYTHONPATH": os.pathsep.join([str(ROOT / "platform"), str(ROOT)]),
    }
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "daphne",
            "-b",
            "127.0.0.1",
            "-p",
            str(port),
            "fireflow.asgi:application",
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:  # up, and warm (the first request loads the app)
        try:
            if httpx.get(f"{url}/api/health", timeout=5).status_code == 200:
                break
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    yield url
    process.terminate()
    process.wait(timeout=10)
