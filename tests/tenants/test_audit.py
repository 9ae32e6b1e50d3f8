"""The audit log: every change to members, roles, invitations, workspaces and API keys leaves
one row (actor, action, target, before/after, request id, address) in the same transaction as
the change; failed changes leave none; the log filters and pages."""

import base64
from datetime import timedelta
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from tenants.models import AuditEvent, Membership
from tenants.roles import OrgRole, WorkspaceRole
from tests.factories import make_api_key, make_invitation, make_org, make_user

pytestmark = pytest.mark.django_db

REQUEST_ID = "audit-test-0001"


def _client(user: Any) -> Client:
    client = Client(headers={"X-Request-ID": REQUEST_ID}, REMOTE_ADDR="203.0.113.7")
    client.force_login(user)
    return client


def _last(org: Any) -> AuditEvent:
    return AuditEvent.objects.filter(org=org).order_by("-created_at").first()  # type: ignore[return-value]


def _check(row: AuditEvent, *, actor: Any, action: str, target_id: object, **fields: Any) -> None:
    assert row.action == action
    assert row.actor_id == actor.id
    assert row.actor_email == actor.email
    assert row.target_id == str(target_id)
    assert row.request_id == REQUEST_ID
    assert row.ip == "203.0.113.7"
    for name, value in fields.items():
        assert getattr(row, name) == value, (action, name, getattr(row, name))


def test_every_change_writes_one_audit_row(client_for) -> None:
    fx = make_org()
    owner = _client(fx.owner)
    base = f"/api/orgs/{fx.org.slug}"
    member = fx.add_member(OrgRole.MEMBER)
    membership = Membership.objects.get(org=fx.org, user=member)

    def act(method: str, url: str, body: dict[str, Any] | None = None) -> AuditEvent:
        count = AuditEvent.objects.filter(org=fx.org).count()
        if body is None:
            response = getattr(owner, method)(base + url)
        else:
            response = getattr(owner, method)(base + url, body, content_type="application/json")
        assert response.status_code < 300, (url, response.content)
        assert AuditEvent.objects.filter(org=fx.org).count() == count + 1, url
        return _last(fx.org)

    row = act("patch", f"/members/{membership.id}", {"role": "admin"})
    _check(
        row,
        actor=fx.owner,
        action="member.role_changed",
        target_id=membership.id,
        target_type="member",
        target_label=member.email,
        before={"role": "member"},
        after={"role": "admin"},
    )

    row = act("post", "/workspaces", {"name": "Lab"})
    lab_id = row.target_id
    _check(row, actor=fx.owner, action="workspace.created", target_id=lab_id, after={"name": "Lab"})
    assert str(row.workspace_id) == lab_id

    row = act("patch", f"/workspaces/{lab_id}", {"name": "Lab 2"})
    _check(
        row,
        actor=fx.owner,
        action="workspace.renamed",
        target_id=lab_id,
        before={"name": "Lab"},
        after={"name": "Lab 2"},
    )
    row = act("patch", f"/workspaces/{lab_id}", {"archived": True})
    _check(row, actor=fx.owner, action="workspace.archived", target_id=lab_id)
    assert row.after == {"archived": True}
    row = act("patch", f"/workspaces/{lab_id}", {"archived": False})
    _check(row, actor=fx.owner, action="workspace.restored", target_id=lab_id)

    row = act("put", f"/workspaces/{lab_id}/members/{member.id}", {"role": "editor"})
    _check(
        row,
        actor=fx.owner,
        action="workspace.member_role_set",
        target_id=member.id,
        before={"role": None},
        after={"role": "editor"},
    )
    row = act("delete", f"/workspaces/{lab_id}/members/{member.id}")
    _check(
        row,
        actor=fx.owner,
        action="workspace.member_removed",
        target_id=member.id,
        before={"role": "editor"},
        after={"role": None},
    )

    row = act("post", "/invitations", {"email": "audit@example.com", "role": "admin"})
    invitation_id = row.target_id
    _check(
        row,
        actor=fx.owner,
        action="invitation.created",
        target_id=invitation_id,
        target_label="audit@example.com",
    )
    assert row.after == {"email": "audit@example.com", "role": "admin", "workspace_role": None}
    row = act("delete", f"/invitations/{invitation_id}")
    _check(row, actor=fx.owner, action="invitation.revoked", target_id=invitation_id)

    row = act("post", "/api-keys", {"name": "ci", "role": "member"})
    key_id = row.target_id
    _check(row, actor=fx.owner, action="api_key.created", target_id=key_id, target_label="ci")
    row = act("delete", f"/api-keys/{key_id}")
    _check(
        row,
        actor=fx.owner,
        action="api_key.revoked",
        target_id=key_id,
        before={"revoked": False},
        after={"revoked": True},
    )

    row = act("delete", f"/members/{membership.id}")
    _check(
        row,
        actor=fx.owner,
        action="member.removed",
        target_id=membership.id,
        target_label=member.email,
        before={"role": "admin"},
    )

    # Leaving is recorded as such, with the leaver as actor.
    leaver = fx.add_member(OrgRole.MEMBER)
    leaver_membership = Membership.objects.get(org=fx.org, user=leaver)
    response = _client(leaver).delete(f"{base}/members/{leaver_membership.id}")
    assert response.status_code == 204
    _check(_last(fx.org), actor=leaver, action="member.left", target_id=leaver_membership.id)


def test_changes_made_with_an_api_key_name_the_key(bearer) -> None:
    fx = make_org()
    key, raw = make_api_key(fx.owner, fx.org)
    response = bearer(raw).post(
        f"/api/orgs/{fx.org.slug}/workspaces",
        {"name": "By key"},
        content_type="application/json",
        headers={"X-Request-ID": REQUEST_ID},
    )
    assert response.status_code == 201
    row = _last(fx.org)
    assert row.action == "workspace.created"
    assert row.api_key_id == key.id
    assert row.actor_id == fx.owner.id
    assert row.request_id == REQUEST_ID
    listed = Client(headers={"Authorization": f"Bearer {raw}"}).get(
        f"/api/orgs/{fx.org.slug}/audit", {"action": "workspace.created"}
    )
    assert listed.json()["results"][0]["api_key_id"] == str(key.id)


def test_failed_changes_write_no_audit_row(client_for) -> None:
    fx = make_org()
    owner = client_for(fx.owner)
    base = f"/api/orgs/{fx.org.slug}"
    member = fx.add_member(OrgRole.MEMBER)
    before = AuditEvent.objects.filter(org=fx.org).count()
    own = Membership.objects.get(org=fx.org, user=fx.owner)
    failures = [
        owner.patch(f"{base}/members/{own.id}", {"role": "member"}, "application/json"),
        owner.delete(f"{base}/members/{own.id}"),
        owner.post(f"{base}/workspaces", {"name": "default"}, "application/json"),
        owner.put(
            f"{base}/workspaces/{fx.workspace.id}/members/{fx.owner.id}",
            {"role": "viewer"},
            "application/json",
        ),
        owner.post(f"{base}/invitations", {"email": member.email}, "application/json"),
        owner.post(f"{base}/api-keys", {"name": "x", "role": "nope"}, "application/json"),
        client_for(member).post(f"{base}/workspaces", {"name": "Lab"}, "application/json"),
    ]
    assert [r.status_code for r in failures] == [409, 409, 409, 409, 409, 422, 403]
    assert AuditEvent.objects.filter(org=fx.org).count() == before


def test_a_change_and_its_audit_row_commit_together(client_for) -> None:
    """A rename that clashes after the name was checked rolls back whole: the workspace keeps
    its name and no row claims it was renamed."""
    fx = make_org()
    owner = client_for(fx.owner)
    base = f"/api/orgs/{fx.org.slug}"
    lab = owner.post(f"{base}/workspaces", {"name": "Lab"}, "application/json").json()
    owner.patch(f"{base}/workspaces/{lab['id']}", {"archived": True}, "application/json")
    owner.post(f"{base}/workspaces", {"name": "Lab"}, "application/json")
    before = AuditEvent.objects.filter(org=fx.org).count()
    clash = owner.patch(
        f"{base}/workspaces/{lab['id']}", {"archived": False}, content_type="application/json"
    )
    assert clash.status_code == 409
    assert clash.json()["code"] == "workspace_name_taken"
    assert AuditEvent.objects.filter(org=fx.org).count() == before


def _pages(client: Client, url: str, params: dict[str, Any]) -> list[list[dict[str, Any]]]:
    pages = []
    response = client.get(url, params)
    while True:
        assert response.status_code == 200, response.content
        pages.append(response.json()["results"])
        following = response.json()["next"]
        if not following:
            return pages
        response = client.get(following)


def test_filters_and_cursor_pagination(client_for) -> None:
    fx = make_org()
    admin = fx.add_member(OrgRole.ADMIN)
    member = fx.add_member(OrgRole.MEMBER)
    lab = None
    for i in range(3):
        workspace = client_for(admin).post(
            f"/api/orgs/{fx.org.slug}/workspaces", {"name": f"W{i}"}, "application/json"
        )
        lab = lab or workspace.json()["id"]
    make_invitation(fx, email="a@example.com")
    fx.grant(member, WorkspaceRole.VIEWER)
    url = f"/api/orgs/{fx.org.slug}/audit"
    owner = client_for(fx.owner)
    everything = AuditEvent.objects.filter(org=fx.org).order_by("-created_at")

    pages = _pages(owner, url, {"page_size": 2})
    assert all(len(page) <= 2 for page in pages)
    assert len(pages) == (everything.count() + 1) // 2
    seen = [row["id"] for page in pages for row in page]
    assert seen == [str(row.id) for row in everything]  # newest first, each once

    by_family = _pages(owner, url, {"action": "workspace", "page_size": 2})
    actions = [row["action"] for page in by_family for row in page]
    assert actions.count("workspace.created") == 4  # default + W0..W2
    assert set(actions) == {"workspace.created", "workspace.member_role_set"}

    by_actor = _pages(owner, url, {"actor_id": str(admin.id), "page_size": 2})
    assert [row["target_label"] for page in by_actor for row in page] == ["W2", "W1", "W0"]
    assert all(row["actor_email"] == admin.email for page in by_actor for row in page)

    in_lab = owner.get(url, {"workspace_id": lab}).json()["results"]
    assert [row["action"] for row in in_lab] == ["workspace.created"]

    exact = owner.get(url, {"action": "invitation.created"}).json()["results"]
    assert [row["target_label"] for row in exact] == ["a@example.com"]

    middle = everything.get(action="workspace.created", target_label="W1").created_at
    since = owner.get(url, {"since": middle.isoformat(), "actor_id": str(admin.id)}).json()
    assert [row["target_label"] for row in since["results"]] == ["W2", "W1"]
    until = owner.get(url, {"until": middle.isoformat(), "actor_id": str(admin.id)}).json()
    assert [row["target_label"] for row in until["results"]] == ["W0"]
    future = (timezone.now() + timedelta(hours=1)).isoformat()
    assert owner.get(url, {"since": future}).json()["results"] == []


def test_pagination_is_stable_when_rows_share_a_timestamp(client_for) -> None:
    fx = make_org()
    for i in range(5):
        make_invitation(fx, email=f"same{i}@example.com")
    stamp = timezone.now()
    AuditEvent.objects.filter(org=fx.org).update(created_at=stamp)
    total = AuditEvent.objects.filter(org=fx.org).count()
    pages = _pages(client_for(fx.owner), f"/api/orgs/{fx.org.slug}/audit", {"page_size": 2})
    seen = [row["id"] for page in pages for row in page]
    assert len(seen) == total
    assert len(set(seen)) == total


@pytest.mark.parametrize("cursor", [b"p=not-a-date", b"o=-5", b"o=abc&r=maybe"])
def test_a_forged_cursor_is_invalid_input_not_a_crash(cursor: bytes, client_for) -> None:
    fx = make_org()
    forged = base64.b64encode(cursor).decode()
    for path in ("audit", "members", "workspaces", "invitations", "api-keys"):
        response = client_for(fx.owner).get(f"/api/orgs/{fx.org.slug}/{path}", {"cursor": forged})
        assert response.status_code == 422, (path, response.content)
        assert "cursor" in response.json()["fields"]
    garbage = client_for(fx.owner).get(f"/api/orgs/{fx.org.slug}/audit", {"cursor": "!!"})
    assert garbage.status_code == 422
    assert "cursor" in garbage.json()["fields"]


@pytest.mark.parametrize("role", [OrgRole.MEMBER, OrgRole.BILLING])
def test_non_managers_cannot_read_the_audit_log(role: OrgRole, client_for) -> None:
    fx = make_org()
    user = fx.add_member(role)
    response = client_for(user).get(f"/api/orgs/{fx.org.slug}/audit")
    assert response.status_code == 403
    assert response.json()["detail"] == "Only admins and owners can read the audit log."


def test_audit_rows_survive_their_actor(client_for) -> None:
    fx = make_org()
    temp = make_user()
    Membership.objects.create(org=fx.org, user=temp, role=OrgRole.ADMIN)
    client_for(temp).post(f"/api/orgs/{fx.org.slug}/workspaces", {"name": "X"}, "application/json")
    temp.delete()
    row = AuditEvent.objects.get(org=fx.org, action="workspace.created", target_label="X")
    assert row.actor_id is None
    assert row.actor_email == temp.email
