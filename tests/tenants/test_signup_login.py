"""Sign-up, email verification, login (session rotation), logout and password reset."""

import re

import pytest
from django.core import mail
from django.test import Client

from tenants.models import AuditEvent, Membership, Organization, User, Workspace

pytestmark = pytest.mark.django_db

SIGNUP = {
    "org_name": "Acme Robots",
    "org_slug": "acme-robots",
    "name": "Ada Owner",
    "email": "ada@acme.example",
    "password": "a-long-and-unusual-passphrase",
}


def _link_from_last_mail() -> str:
    match = re.search(r"https?://\S+", mail.outbox[-1].body)
    assert match, mail.outbox[-1].body
    return match.group(0)


def test_signup_creates_org_owner_default_workspace_and_sends_verification(
    django_capture_on_commit_callbacks,
) -> None:
    client = Client()
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post("/api/auth/signup", SIGNUP, content_type="application/json")
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["user"]["email"] == "ada@acme.example"
    assert body["user"]["email_verified"] is False
    assert body["organizations"] == [
        {
            "id": body["organizations"][0]["id"],
            "name": "Acme Robots",
            "slug": "acme-robots",
            "role": "owner",
        }
    ]
    org = Organization.objects.get(slug="acme-robots")
    assert Membership.objects.get(org=org).role == "owner"
    assert Workspace.objects.filter(org=org, name="Default").count() == 1
    assert set(AuditEvent.objects.filter(org=org).values_list("action", flat=True)) >= {
        "org.created",
        "member.added",
        "workspace.created",
    }
    # Signed in straight away.
    assert client.get("/api/auth/me").status_code == 200

    # The verification link in the mail verifies the address.
    assert len(mail.outbox) == 1
    token = _link_from_last_mail().split("token=", 1)[1]
    verified = Client().post(
        "/api/auth/verify-email", {"token": token}, content_type="application/json"
    )
    assert verified.status_code == 200
    assert User.objects.get(email="ada@acme.example").email_verified_at is not None


def test_signup_errors_name_the_field() -> None:
    client = Client()
    client.post("/api/auth/signup", SIGNUP, content_type="application/json")
    taken = Client().post(
        "/api/auth/signup",
        {**SIGNUP, "email": "other@acme.example"},
        content_type="application/json",
    )
    assert taken.status_code == 409
    assert taken.json()["code"] == "slug_taken"
    assert "slug" in taken.json()["fields"]

    bad_slug = Client().post(
        "/api/auth/signup",
        {**SIGNUP, "org_slug": "Not A Slug!", "email": "x@acme.example"},
        content_type="application/json",
    )
    assert bad_slug.status_code == 422
    assert "org_slug" in bad_slug.json()["fields"]

    weak = Client().post(
        "/api/auth/signup",
        {**SIGNUP, "org_slug": "weak-co", "email": "weak@acme.example", "password": "12345678"},
        content_type="application/json",
    )
    assert weak.status_code == 422
    assert "password" in weak.json()["fields"]
    assert not Organization.objects.filter(slug="weak-co").exists()
    assert not User.objects.filter(email="weak@acme.example").exists()


def test_login_rotates_session_and_logout_ends_it() -> None:
    Client().post("/api/auth/signup", SIGNUP, content_type="application/json")
    client = Client()
    client.get("/api/auth/csrf")
    client.session.save()
    before = client.cookies.get("sessionid")
    wrong = client.post(
        "/api/auth/login",
        {"email": SIGNUP["email"], "password": "nope-nope-nope"},
        content_type="application/json",
    )
    assert wrong.status_code == 401
    ok = client.post(
        "/api/auth/login",
        {"email": "ADA@acme.example", "password": SIGNUP["password"]},
        content_type="application/json",
    )
    assert ok.status_code == 200, ok.content
    after = client.cookies["sessionid"].value
    assert before is None or before.value != after
    assert client.get("/api/auth/me").status_code == 200
    assert client.post("/api/auth/logout").status_code == 204
    assert client.get("/api/auth/me").status_code == 401


def test_password_reset_by_mailed_link() -> None:
    Client().post("/api/auth/signup", SIGNUP, content_type="application/json")
    mail.outbox.clear()
    client = Client()
    # Same answer for unknown addresses: nothing to learn about who has an account.
    assert (
        client.post(
            "/api/auth/password-reset",
            {"email": "nobody@acme.example"},
            content_type="application/json",
        ).status_code
        == 204
    )
    assert mail.outbox == []
    assert (
        client.post(
            "/api/auth/password-reset", {"email": SIGNUP["email"]}, content_type="application/json"
        ).status_code
        == 204
    )
    link = _link_from_last_mail()
    uid = re.search(r"uid=([^&]+)", link).group(1)  # type: ignore[union-attr]
    token = re.search(r"token=(\S+)", link).group(1)  # type: ignore[union-attr]
    new_password = "another-long-passphrase-42"
    done = client.post(
        "/api/auth/password-reset/confirm",
        {"uid": uid, "token": token, "password": new_password},
        content_type="application/json",
    )
    assert done.status_code == 204, done.content
    # The link works once.
    again = client.post(
        "/api/auth/password-reset/confirm",
        {"uid": uid, "token": token, "password": "yet-another-passphrase-9"},
        content_type="application/json",
    )
    assert again.status_code == 422
    login = client.post(
        "/api/auth/login",
        {"email": SIGNUP["email"], "password": new_password},
        content_type="application/json",
    )
    assert login.status_code == 200
