"""Sign-up, login and password reset answer 429 once a client exceeds the configured rate."""

import pytest
from django.test import Client

from tests.factories import PASSWORD, make_user

pytestmark = pytest.mark.django_db


@pytest.fixture
def tight_limits(settings) -> None:
    settings.RATE_LIMITS = {"signup": "2/h", "login": "3/m", "password_reset": "2/h"}


def _post(client: Client, url: str, body: dict[str, str]):  # type: ignore[no-untyped-def]
    return client.post(url, body, content_type="application/json")


def test_login_is_limited_even_for_right_passwords(tight_limits) -> None:
    user = make_user()
    client = Client()
    for _ in range(3):
        wrong = _post(client, "/api/auth/login", {"email": user.email, "password": "wrong-one"})
        assert wrong.status_code == 401
    limited = _post(client, "/api/auth/login", {"email": user.email, "password": PASSWORD})
    assert limited.status_code == 429
    assert limited.json()["code"] == "rate_limited"
    assert "Try again in" in limited.json()["detail"]
    # Counted per client address: another address still gets in.
    other = Client(REMOTE_ADDR="198.51.100.9")
    ok = _post(other, "/api/auth/login", {"email": user.email, "password": PASSWORD})
    assert ok.status_code == 200


def test_signup_is_limited(tight_limits) -> None:
    client = Client()
    for i in range(2):
        response = _post(
            client,
            "/api/auth/signup",
            {
                "org_name": f"Co {i}",
                "org_slug": f"co-{i}",
                "name": "A",
                "email": f"a{i}@example.com",
                "password": "a-long-enough-passphrase",
            },
        )
        assert response.status_code == 201
        client = Client()  # a new browser, same address
    limited = _post(
        client,
        "/api/auth/signup",
        {
            "org_name": "Co 3",
            "org_slug": "co-3",
            "name": "A",
            "email": "a3@example.com",
            "password": "a-long-enough-passphrase",
        },
    )
    assert limited.status_code == 429
    from tenants.models import Organization

    assert not Organization.objects.filter(slug="co-3").exists()


def test_password_reset_is_limited(tight_limits) -> None:
    client = Client()
    for _ in range(2):
        ok = _post(client, "/api/auth/password-reset", {"email": "x@example.com"})
        assert ok.status_code == 204
    assert _post(client, "/api/auth/password-reset", {"email": "x@example.com"}).status_code == 429
    confirm = _post(
        client,
        "/api/auth/password-reset/confirm",
        {"uid": "x", "token": "y", "password": "a-long-enough-passphrase"},
    )
    assert confirm.status_code == 429


def test_limits_follow_the_settings(settings) -> None:
    """Rates are read per request: raising the login limit above the default (10/m) lets
    more attempts through, without a restart."""
    settings.RATE_LIMITS = {**settings.RATE_LIMITS, "login": "15/m"}
    client = Client()
    body = {"email": "n@example.com", "password": "x"}
    statuses = [_post(client, "/api/auth/login", body).status_code for _ in range(16)]
    assert statuses == [401] * 15 + [429]
