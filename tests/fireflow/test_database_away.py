"""While PostgreSQL is unreachable, requests fail at once with a clear 503 (SECURITY.md,
durable execution 3): nothing hangs, nothing answers a bare 500."""

import time
from collections.abc import Iterator
from typing import Any

import pytest
from django.db import connection
from django.test import Client


@pytest.fixture
def database_away(transactional_db: None) -> Iterator[None]:
    saved = dict(connection.settings_dict)
    connection.close()
    connection.close_pool()  # the next connection comes from a pool on the new address
    connection.settings_dict.update(HOST="127.0.0.1", PORT="1")  # nothing listens there
    connection.settings_dict["OPTIONS"] = {
        k: v for k, v in saved.get("OPTIONS", {}).items() if k != "host"
    }
    try:
        yield
    finally:
        connection.close()
        connection.close_pool()
        connection.settings_dict.clear()
        connection.settings_dict.update(saved)


def test_requests_fail_fast_with_a_clear_error(database_away: None) -> None:
    started = time.monotonic()
    health = Client().get("/api/health")
    assert health.status_code == 503
    assert health.json() == {"status": "unavailable", "database": "unreachable"}
    scoped: Any = Client(headers={"Authorization": "Bearer ff_0123456789ab_" + "x" * 43}).get(
        "/api/orgs/acme/members"
    )
    assert scoped.status_code == 503
    assert scoped.json()["code"] == "database_unavailable"
    assert "try again shortly" in scoped.json()["detail"]
    assert time.monotonic() - started < 5
