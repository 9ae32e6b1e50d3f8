import os

os.environ.setdefault("FIREFLOW_ENV", "test")  # for subprocesses the tests start

import pytest
from django.conf import settings
from django.test import Client

# pytest-django imports the settings before any conftest runs, so the line above comes too
# late for this process: apply the test profile's fast hasher here (hashing cost is not
# what tests are about; PBKDF2 made every user a test creates cost half a second).
if settings.FIREFLOW_ENV != "test":
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

from tests.factories import OrgFixture, make_org

# The session's worker and web server (tests/workers.py), for every folder that needs them.
pytest_plugins = ["tests.workers"]


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
