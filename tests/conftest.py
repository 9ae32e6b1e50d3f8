import os
import time
from collections.abc import Iterator

os.environ.setdefault("FIREFLOW_ENV", "test")  # for subprocesses the tests start

import pytest
from django.conf import settings
from django.db import OperationalError
from django.test import Client

# pytest-django imports the settings before any conftest runs, so the line above comes too
# late for this process: apply the test profile's fast hasher here (hashing cost is not
# what tests are about; PBKDF2 made every user a test creates cost half a second).
if settings.FIREFLOW_ENV != "test":
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

from tests.factories import OrgFixture, make_org

# The session's worker and web server (tests/workers.py), for every folder that needs them.
pytest_plugins = ["tests.workers"]

DEADLOCK = "40P01"


@pytest.fixture(scope="session", autouse=True)
def _flush_tried_again_after_a_deadlock() -> Iterator[None]:
    """A transactional test ends with Django's flush: one TRUNCATE of every table, locking
    them one by one in no fixed order. The session's worker keeps running meanwhile, and a
    transaction of its that holds one of those tables and then asks for one the TRUNCATE
    already holds is a deadlock; PostgreSQL may end either side, and when it ends the flush
    the test errors although nothing it tested failed (tests/test_flush.py). The flush is
    rolled back whole when that happens, so it is tried again."""
    from django.db.backends.postgresql.operations import DatabaseOperations

    flush_once = DatabaseOperations.execute_sql_flush

    def execute_sql_flush(self: DatabaseOperations, sql_list: list[str]) -> None:
        for attempt in range(5):
            try:
                return flush_once(self, sql_list)
            except OperationalError as error:
                if getattr(error.__cause__, "sqlstate", None) != DEADLOCK or attempt == 4:
                    raise
                time.sleep(0.1)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(DatabaseOperations, "execute_sql_flush", execute_sql_flush)
        yield


@pytest.fixture
def org(db: None) -> OrgFixture:
    return make_org()


@pytest.fixture
def other_org(db: None) -> OrgFixture:
    return make_org()


@pytest.fixture
def client_for():
    """A logged-in test client for a user (session auth, as the browser uses)."""

    def build(user) -> Client:  # type: ignore[no-untyped-def]
        client = Client()
        client.force_login(user)
        return client

    return build


@pytest.fixture
def bearer():
    """A test client that sends `Authorization: Bearer <key>` on every request."""

    def build(raw_key: str) -> Client:
        return Client(headers={"Authorization": f"Bearer {raw_key}"})

    return build
