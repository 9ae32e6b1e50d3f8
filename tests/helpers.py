"""Small helpers shared by the API tests."""

import hashlib
import time
from typing import Any

from django.apps import apps
from django.db import connection


def tenancy_tables() -> list[str]:
    """Every table of the platform's models: tenant data, object permissions, flows, runs.
    (Sessions are left out: logging in is not a change to a tenant.)"""
    return sorted(
        model._meta.db_table
        for model in apps.get_models()
        if model._meta.db_table not in ("django_session", "fireflow_cache")
    )


def db_snapshot() -> dict[str, str]:
    """A digest of every row of every tenancy table: equal snapshots, nothing changed."""
    digests = {}
    with connection.cursor() as cursor:
        for table in tenancy_tables():
            quoted = connection.ops.quote_name(table)
            cursor.execute(
                f"SELECT count(*), coalesce(string_agg(t::text, '|' ORDER BY t::text), '') "
                f"FROM {quoted} AS t"
            )
            count, rows = cursor.fetchone()
            digests[table] = f"{count}:{hashlib.sha256(rows.encode()).hexdigest()}"
    return digests


def all_tenancy_text() -> str:
    """Every row of every tenancy table as text, to search for what must never be stored."""
    parts = []
    with connection.cursor() as cursor:
        for table in tenancy_tables():
            cursor.execute(f"SELECT t::text FROM {connection.ops.quote_name(table)} AS t")
            parts.extend(row[0] for row in cursor.fetchall())
    return "\n".join(parts)


def wait_for_request(client: Any, base: str, run_id: str, what: str) -> str:
    """Wait (30 s at most) until the run has a human request, as `client` sees them; the
    run's id. `what`: what the run was to ask, for the failure message."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if client.get(f"{base}/runs/{run_id}/requests").json():
            return run_id
        time.sleep(0.1)
    raise AssertionError(f"run {run_id} did not {what}")
