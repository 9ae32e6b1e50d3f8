"""Bad input gets a 4xx in the one error shape, never a 500, and stores nothing."""

import pytest
from django.test import Client

from tenants.models import Invitation, User, Workspace
from tests.factories import make_org

pytestmark = pytest.mark.django_db

LONG_EMAIL = "a" * 60 + "." + "b" * 60 + "." + "c" * 30 + "@example.com"  # valid, 164 chars


def test_a_body_that_is_not_json_is_invalid_input(client_for) -> None:
    fx = make_org()
    response = client_for(fx.owner).post(
        f"/api/orgs/{fx.org.slug}/workspaces", "\x00{not json", content_type="application/json"
    )
    assert response.status_code == 422
    assert response.json() == {
        "detail": "Invalid input — the request body is not valid JSON.",
        "code": "invalid",
        "fields": {"body": "not valid JSON"},
    }


def test_nul_characters_are_invalid_input_and_nothing_is_stored(client_for) -> None:
    fx = make_org()
    client = client_for(fx.owner)
    created = client.post(
        f"/api/orgs/{fx.org.slug}/workspaces", {"name": "Lab\x00"}, content_type="application/json"
    )
    assert created.status_code == 422
    assert created.json()["code"] == "invalid"
    assert Workspace.objects.filter(org=fx.org).count() == 1
    audit = client.get(f"/api/orgs/{fx.org.slug}/audit", {"action": "member\x00"})
    assert audit.status_code == 422
    assert client.get("/api/orgs/a%00b/members").status_code == 422


def test_an_email_too_long_for_an_account_is_refused_by_name() -> None:
    response = Client().post(
        "/api/auth/signup",
        {
            "org_name": "Long",
            "org_slug": "long-co",
            "name": "L",
            "email": LONG_EMAIL,
            "password": "a-long-enough-passphrase",
        },
        content_type="application/json",
    )
    assert response.status_code == 422
    assert response.json()["fields"] == {"email": "at most 150 characters"}
    assert not User.objects.filter(email=LONG_EMAIL).exists()


def test_an_invitation_nobody_could_accept_is_refused(client_for) -> None:
    fx = make_org()
    response = client_for(fx.owner).post(
        f"/api/orgs/{fx.org.slug}/invitations", {"email": LONG_EMAIL}, "application/json"
    )
    assert response.status_code == 422
    assert "email" in response.json()["fields"]
    assert not Invitation.objects.filter(org=fx.org).exists()
