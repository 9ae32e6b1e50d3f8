"""A transactional test's flush survives a deadlock with a worker's transaction
(tests/conftest.py), as it must while the session's worker runs beside the tests."""

import re
import threading
import time

import psycopg
import pytest
from django.core.management import call_command
from django.core.management.color import no_style
from django.core.management.sql import sql_flush
from django.db import connection

from tenants.models import Organization
from tests.factories import make_org


@pytest.mark.django_db(transaction=True)
def test_a_flush_that_deadlocks_with_another_transaction_empties_the_tables(
    test_database_url: str,
) -> None:
    make_org()
    [truncate] = sql_flush(no_style(), connection, reset_sequences=False, allow_cascade=False)
    tables = re.findall(r'"(\w+)"', truncate)  # the order in which the TRUNCATE locks them
    first, last = tables[0], tables[-1]
    seen: dict[str, object] = {}

    def worker_transaction() -> None:
        """Holds the table the flush locks last, waits until the flush holds every other one
        and waits for it, then asks for the one it locked first: a deadlock."""
        with (
            psycopg.connect(test_database_url) as other,
            psycopg.connect(test_database_url, autocommit=True) as watcher,
        ):
            other.execute(f'SELECT 1 FROM "{last}" LIMIT 1')
            seen["holding"] = True
            deadline = time.monotonic() + 20
            while not watcher.execute(
                "SELECT 1 FROM pg_locks WHERE relation = %s::regclass AND NOT granted",
                (last,),
            ).fetchone():
                if time.monotonic() > deadline:
                    return
                time.sleep(0.01)
            seen["flush waiting"] = True
            other.execute(f'SELECT 1 FROM "{first}" LIMIT 1')
            other.commit()
            seen["committed"] = True

    thread = threading.Thread(target=worker_transaction)
    thread.start()
    deadline = time.monotonic() + 10
    while "holding" not in seen and time.monotonic() < deadline:
        time.sleep(0.01)
    call_command("flush", verbosity=0, interactive=False, reset_sequences=False)
    thread.join(timeout=30)

    assert seen == {"holding": True, "flush waiting": True, "committed": True}
    assert not Organization.objects.exists()
