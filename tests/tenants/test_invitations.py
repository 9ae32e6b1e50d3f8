"""Invitations: mailed once, stored as a digest, accepted once, by the invited address only;
expiry, revocation, duplicates, workspace grants and joining a second organisation."""

import hashlib
import re
from datetime import timedelta

import pytest
from django.core import mail
from django.test import Client
from django.utils import timezone

from tenants.models import AuditEvent, Invitation, Membership, User
from tenants.roles import OrgRole, WorkspaceRole
from tests.factories import PASSWORD, make_invitation, make_org, make_user, make_workspace
from tests.helpers import all_tenancy_text, db_snapshot

pytestmark = pytest.mark.django_db


def _invite(client: Client, slug: str, **body: object):  # type: ignore[no-untyped-def]
    return client.post(f"/api/orgs/{slug}/invitations", body, content_type="application/json")


def test_invitation_is_mailed_and_its_token_stored_only_as_a_digest(
    client_for, django_capture_on_commit_callbacks
) -> None:
    fx = make_org()
    with django_capture_on_commit_callbacks(execute=True):
        response = _invite(client_for(fx.owner), fx.org.slug, email="New@Example.com")
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["status"] == "open"
    assert body["role"] == "member"
    assert body["invited_by"] == fx.owner.email
    token = body["accept_url"].rsplit("/", 1)[1]
    assert len(mail.outbox) == 1
    assert mail.outbox[0].to == ["New@example.com"]
    assert body["accept_url"] in mail.outbox[0].body

    invitation = Invitation.objects.get(id=body["id"])
    assert invitation.token_hash == hashlib.sha256(token.encode()).hexdigest()
    assert token not in all_tenancy_text()
    listed = client_for(fx.owner).get(f"/api/orgs/{fx.org.slug}/invitations")
    assert token not in listed.content.decode()
    assert [i["id"] for i in listed.json()["results"]] == [body["id"]]

    preview = Client().get(f"/api/invitations/{token}")
    assert preview.status_code == 200
    assert preview.json()["org_slug"] == fx.org.slug
    assert preview.json()["account_exists"] is False
    # The stored digest is not a token.
    assert Client().get(f"/api/invitations/{invitation.token_hash}").status_code == 404


def test_new_account_acceptance_creates_a_verified_user_and_signs_them_in() -> None:
    fx = make_org()
    lab = make_workspace(fx, "Lab")
    _invitation, token = make_invitation(
        fx, email="newbie@example.com", workspace=lab, workspace_role=WorkspaceRole.EDITOR
    )
    client = Client()
    preview = client.get(f"/api/invitations/{token}").json()
    assert (preview["workspace_name"], preview["workspace_role"]) == ("Lab", "editor")
    assert preview["account_exists"] is False
    response = client.post(
        f"/api/invitations/{token}/signup",
        {"name": "Newbie", "password": "a-brand-new-passphrase"},
        content_type="application/json",
    )
    assert response.status_code == 201, response.content
    assert response.json()["user"]["email_verified"] is True
    assert response.json()["organizations"][0]["slug"] == fx.org.slug
    user = User.objects.get(email="newbie@example.com")
    assert user.email_verified_at is not None
    # Signed in, with the workspace role the invitation carried.
    me = client.get("/api/auth/me")
    assert me.status_code == 200
    detail = client.get(f"/api/orgs/{fx.org.slug}/workspaces/{lab.id}")
    assert detail.status_code == 200
    assert detail.json()["role"] == "editor"
    assert client.get(f"/api/orgs/{fx.org.slug}/workspaces/{fx.workspace.id}").status_code == 404
    # The link is spent.
    again = Client().post(
        f"/api/invitations/{token}/signup",
        {"name": "Other", "password": "another-brand-new-passphrase"},
        content_type="application/json",
    )
    assert again.status_code == 409
    assert again.json()["code"] == "invitation_used"


def test_signed_in_user_of_another_org_accepts_and_can_switch(client_for) -> None:
    home = make_org()
    fx = make_org()
    _invitation, token = make_invitation(fx, email=home.owner.email, role=OrgRole.ADMIN)
    client = client_for(home.owner)
    response = client.post(f"/api/invitations/{token}/accept")
    assert response.status_code == 200, response.content
    orgs = {o["slug"]: o["role"] for o in client.get("/api/auth/me").json()["organizations"]}
    assert orgs == {home.org.slug: "owner", fx.org.slug: "admin"}
    # Both organisations answer, each with its own role.
    assert client.get(f"/api/orgs/{home.org.slug}").json()["role"] == "owner"
    assert client.get(f"/api/orgs/{fx.org.slug}").json()["role"] == "admin"
    assert client.post(f"/api/invitations/{token}/accept").json()["code"] == "invitation_used"


def test_acceptance_by_another_email_is_refused_and_changes_nothing(client_for) -> None:
    fx = make_org()
    _invitation, token = make_invitation(fx, email="intended@example.com")
    stranger = make_user(email="stranger@example.com")
    client = client_for(stranger)
    before = db_snapshot()
    response = client.post(f"/api/invitations/{token}/accept")
    assert response.status_code == 403
    assert response.json()["code"] == "wrong_account"
    assert "i***@example.com" in response.json()["detail"]
    assert "intended@example.com" not in response.json()["detail"]
    assert db_snapshot() == before
    assert not Membership.objects.filter(org=fx.org, user=stranger).exists()


def test_expired_invitation_is_refused(client_for, settings) -> None:
    fx = make_org()
    invitee = make_user()
    invitation, token = make_invitation(fx, email=invitee.email)
    invitation.expires_at = timezone.now() - timedelta(minutes=1)
    invitation.save(update_fields=["expires_at"])
    response = client_for(invitee).post(f"/api/invitations/{token}/accept")
    assert response.status_code == 409
    assert response.json()["code"] == "invitation_expired"
    assert "Ask for a new one" in response.json()["detail"]
    assert Client().get(f"/api/invitations/{token}").json()["status"] == "expired"
    signup = Client().post(
        f"/api/invitations/{token}/signup",
        {"name": "Late", "password": "a-late-long-passphrase"},
        content_type="application/json",
    )
    assert signup.status_code == 409
    assert not Membership.objects.filter(org=fx.org, user=invitee).exists()
    # An expired invitation is not "open": a new one can be sent.
    again = _invite(client_for(fx.owner), fx.org.slug, email=invitee.email)
    assert again.status_code == 201

    # INVITATION_TTL_DAYS sets the lifetime of new invitations.
    settings.INVITATION_TTL_DAYS = 2
    fresh = _invite(client_for(fx.owner), fx.org.slug, email="ttl@example.com").json()
    lifetime = Invitation.objects.get(id=fresh["id"]).expires_at - timezone.now()
    assert timedelta(days=1, hours=23) < lifetime <= timedelta(days=2)


def test_revoked_invitation_is_refused(client_for) -> None:
    fx = make_org()
    invitee = make_user()
    invitation, token = make_invitation(fx, email=invitee.email)
    revoke = client_for(fx.owner).delete(f"/api/orgs/{fx.org.slug}/invitations/{invitation.id}")
    assert revoke.status_code == 204
    response = client_for(invitee).post(f"/api/invitations/{token}/accept")
    assert response.status_code == 409
    assert response.json()["code"] == "invitation_revoked"
    again = client_for(fx.owner).delete(f"/api/orgs/{fx.org.slug}/invitations/{invitation.id}")
    assert again.status_code == 409
    listed = client_for(fx.owner).get(
        f"/api/orgs/{fx.org.slug}/invitations", {"include_closed": "true"}
    )
    assert listed.json()["results"][0]["status"] == "revoked"
    assert client_for(fx.owner).get(f"/api/orgs/{fx.org.slug}/invitations").json()["results"] == []


def test_only_owners_invite_owners(client_for) -> None:
    fx = make_org()
    admin = fx.add_member(OrgRole.ADMIN)
    refused = _invite(client_for(admin), fx.org.slug, email="boss@example.com", role="owner")
    assert refused.status_code == 403
    assert refused.json()["detail"] == "Only owners can invite owners."
    assert _invite(client_for(admin), fx.org.slug, email="boss@example.com").status_code == 201
    assert not Invitation.objects.filter(role="owner").exists()


def test_duplicate_open_invitation_and_existing_member_are_refused(client_for) -> None:
    fx = make_org()
    member = fx.add_member(OrgRole.MEMBER)
    client = client_for(fx.owner)
    assert _invite(client, fx.org.slug, email="dup@example.com").status_code == 201
    dup = _invite(client, fx.org.slug, email="DUP@example.com")
    assert dup.status_code == 409
    assert dup.json()["code"] == "already_invited"
    assert dup.json()["fields"] == {"email": "already invited"}
    already = _invite(client, fx.org.slug, email=member.email.upper())
    assert already.status_code == 409
    assert already.json()["code"] == "already_member"
    assert Invitation.objects.filter(org=fx.org).count() == 1


def test_invitation_to_another_orgs_workspace_is_refused(client_for) -> None:
    fx = make_org()
    other = make_org()
    response = _invite(
        client_for(fx.owner),
        fx.org.slug,
        email="x@example.com",
        workspace_id=str(other.workspace.id),
        workspace_role="owner",
    )
    assert response.status_code == 404
    assert not Invitation.objects.filter(org=fx.org).exists()


def test_workspace_role_without_a_workspace_is_refused(client_for) -> None:
    fx = make_org()
    response = _invite(
        client_for(fx.owner), fx.org.slug, email="x@example.com", workspace_role="editor"
    )
    assert response.status_code == 422
    assert "workspace_id" in response.json()["fields"]


def test_billing_invitation_cannot_carry_a_workspace_role(client_for) -> None:
    fx = make_org()
    response = _invite(
        client_for(fx.owner),
        fx.org.slug,
        email="x@example.com",
        role="billing",
        workspace_id=str(fx.workspace.id),
        workspace_role="viewer",
    )
    assert response.status_code == 422
    assert not Invitation.objects.filter(org=fx.org).exists()


def test_accepting_writes_an_audit_row(client_for) -> None:
    fx = make_org()
    invitee = make_user()
    _inv, token = make_invitation(
        fx, email=invitee.email, workspace=fx.workspace, workspace_role=WorkspaceRole.VIEWER
    )
    client_for(invitee).post(
        f"/api/invitations/{token}/accept", headers={"X-Request-ID": "req-accept-1"}
    )
    rows = AuditEvent.objects.filter(org=fx.org, actor=invitee).order_by("created_at")
    assert [r.action for r in rows] == ["invitation.accepted", "workspace.member_role_set"]
    assert {r.request_id for r in rows} == {"req-accept-1"}


def test_login_with_the_invited_account_then_accept(django_capture_on_commit_callbacks) -> None:
    """The path of someone who already has an account: preview says so, log in, accept."""
    fx = make_org()
    invitee = make_user()
    with django_capture_on_commit_callbacks(execute=True):
        response = _invite(_logged_in(fx.owner.email), fx.org.slug, email=invitee.email)
    token = re.search(r"/invitations/(\S+)", mail.outbox[-1].body).group(1)  # type: ignore[union-attr]
    assert Client().get(f"/api/invitations/{token}").json()["account_exists"] is True
    client = _logged_in(invitee.email)
    assert client.post(f"/api/invitations/{token}/accept").status_code == 200
    assert response.status_code == 201
    assert Membership.objects.get(org=fx.org, user=invitee).role == "member"


def _logged_in(email: str) -> Client:
    client = Client()
    response = client.post(
        "/api/auth/login", {"email": email, "password": PASSWORD}, content_type="application/json"
    )
    assert response.status_code == 200, response.content
    return client
