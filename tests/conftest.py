import os

os.environ.setdefault("FIREFLOW_ENV", "test")  # fast password hashing; read by the settings

import pytest
from django.test import Client

from tests.factories import OrgFixture, make_org


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
