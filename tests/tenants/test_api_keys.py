"""API keys: shown once, stored hashed, scoped to an organisation or a workspace and capped at a
role, revocable at once, dead with their owner's membership, never accepted in a URL."""

import hashlib
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from tenants import services
from tenants.models import ApiKey, AuditEvent, Membership
from tenants.roles import OrgRole, WorkspaceRole
from tests.factories import ctx_for, make_api_key, make_org, make_workspace
from tests.helpers import all_tenancy_text

pytestmark = pytest.mark.django_db


def _create(client: Client, slug: str, **body: object):  # type: ignore[no-untyped-def]
    return client.post(
        f"/api/orgs/{slug}/api-keys", {"name": "ci", **body}, content_type="application/json"
    )


def test_created_key_is_shown_once_and_stored_only_as_a_hash(client_for, bearer) -> None:
    fx = make_org()
    client = client_for(fx.owner)
    created = _create(client, fx.org.slug, role="admin")
    assert created.status_code == 201, created.content
    body = created.json()
    raw = body["key"]
    assert raw.startswith("ff_")
    assert body["role"] == "admin"
    assert raw.startswith(body["prefix"] + "_")  # the prefix shown is how the key begins
    assert body["revoked"] is False
    assert body["user_email"] == fx.owner.email

    listed = client.get(f"/api/orgs/{fx.org.slug}/api-keys")
    assert listed.status_code == 200
    assert raw not in listed.content.decode()
    assert "key" not in listed.json()["results"][0]
    assert [k["id"] for k in listed.json()["results"]] == [body["id"]]

    row = ApiKey.objects.get(id=body["id"])
    assert row.key_hash == hashlib.sha256(raw.encode()).hexdigest()
    secret_part = raw.removeprefix(body["prefix"] + "_")  # the secret itself may contain "_"
    assert len(secret_part) >= 20
    stored = all_tenancy_text()
    assert raw not in stored
    assert secret_part not in stored
    audit = AuditEvent.objects.get(action="api_key.created", target_id=body["id"])
    assert raw not in str(audit.after)

    # The shown key works as a bearer credential.
    me = bearer(raw).get("/api/auth/me")
    assert me.status_code == 200
    assert me.json()["user"]["email"] == fx.owner.email


def test_org_key_capped_at_member_cannot_do_admin_things(bearer) -> None:
    fx = make_org()
    _key, raw = make_api_key(fx.owner, fx.org, role=OrgRole.MEMBER)
    client = bearer(raw)
    base = f"/api/orgs/{fx.org.slug}"
    assert client.get(base).json()["role"] == "member"
    assert client.get(f"{base}/members").status_code == 200
    for response in (
        client.get(f"{base}/audit"),
        client.get(f"{base}/invitations"),
        client.post(f"{base}/invitations", {"email": "x@example.com"}, "application/json"),
        client.post(f"{base}/workspaces", {"name": "Lab"}, "application/json"),
    ):
        assert response.status_code == 403, response.content
        assert response.json()["code"] == "role_required"
    # The owner's implicit ownership of every workspace does not pass through the cap: the
    # key sees only workspaces where its user holds a role of their own.
    admin = fx.add_member(OrgRole.ADMIN)
    theirs = services.workspace_create(ctx=ctx_for(admin, fx.org), name="Admin's")
    assert client.get(f"{base}/workspaces/{theirs.id}").status_code == 404
    patch = client.patch(f"{base}/workspaces/{theirs.id}", {"name": "Renamed"}, "application/json")
    assert patch.status_code == 404
    theirs.refresh_from_db()
    assert theirs.name == "Admin's"
    assert [w["name"] for w in client.get(f"{base}/workspaces").json()["results"]] == ["Default"]


def test_workspace_key_reaches_only_its_workspace_within_its_role(bearer) -> None:
    fx = make_org()
    other = make_workspace(fx, "Other")
    _key, raw = make_api_key(fx.owner, fx.org, role=WorkspaceRole.VIEWER, workspace=fx.workspace)
    client = bearer(raw)
    base = f"/api/orgs/{fx.org.slug}"
    own = client.get(f"{base}/workspaces/{fx.workspace.id}")
    assert own.status_code == 200
    assert own.json()["role"] == "viewer"
    assert client.get(f"{base}/workspaces/{other.id}").status_code == 404
    listed = client.get(f"{base}/workspaces")
    assert [w["id"] for w in listed.json()["results"]] == [str(fx.workspace.id)]
    for response in (
        client.get(f"{base}/members"),
        client.get(f"{base}/audit"),
        client.get(f"{base}/api-keys"),
        client.post(f"{base}/workspaces", {"name": "Lab"}, "application/json"),
        client.post(f"{base}/api-keys", {"name": "k", "role": "member"}, "application/json"),
    ):
        assert response.status_code == 403, response.content
    # A viewer key cannot change the workspace, even though its user owns the organisation.
    patch = client.patch(
        f"{base}/workspaces/{fx.workspace.id}", {"archived": True}, "application/json"
    )
    assert patch.status_code == 403
    fx.workspace.refresh_from_db()
    assert fx.workspace.archived_at is None


def test_workspace_key_cannot_act_on_the_organisation_membership(bearer) -> None:
    """A key scoped to one workspace reaches nothing at organisation level: it cannot make
    its user leave the organisation, nor revoke the user's other keys."""
    fx = make_org()
    member = fx.add_member(OrgRole.MEMBER)
    fx.grant(member, WorkspaceRole.EDITOR)
    _org_key, _ = make_api_key(member, fx.org, name="org key")
    org_key = ApiKey.objects.get(user=member, name="org key")
    _ws_key, raw = make_api_key(member, fx.org, role="viewer", workspace=fx.workspace)
    client = bearer(raw)
    membership = Membership.objects.get(org=fx.org, user=member)
    leave = client.delete(f"/api/orgs/{fx.org.slug}/members/{membership.id}")
    assert leave.status_code == 403
    assert Membership.objects.filter(id=membership.id).exists()
    revoke = client.delete(f"/api/orgs/{fx.org.slug}/api-keys/{org_key.id}")
    assert revoke.status_code == 403
    org_key.refresh_from_db()
    assert org_key.revoked_at is None


def test_workspace_key_for_an_editor_can_edit_nothing_above_editor(bearer) -> None:
    fx = make_org()
    member = fx.add_member(OrgRole.MEMBER)
    fx.grant(member, WorkspaceRole.OWNER)
    _key, raw = make_api_key(member, fx.org, role="editor", workspace=fx.workspace)
    url = f"/api/orgs/{fx.org.slug}/workspaces/{fx.workspace.id}"
    assert bearer(raw).get(url).json()["role"] == "editor"
    put = bearer(raw).put(f"{url}/members/{member.id}", {"role": "owner"}, "application/json")
    assert put.status_code == 403


def test_cannot_create_a_key_above_your_own_role(client_for) -> None:
    fx = make_org()
    admin = fx.add_member(OrgRole.ADMIN)
    member = fx.add_member(OrgRole.MEMBER)
    fx.grant(member, WorkspaceRole.VIEWER)
    above = _create(client_for(admin), fx.org.slug, role="owner")
    assert above.status_code == 403
    assert above.json()["code"] == "role_above_own"
    assert _create(client_for(admin), fx.org.slug, role="billing").status_code == 403
    assert _create(client_for(member), fx.org.slug, role="admin").status_code == 403
    ws_above = _create(
        client_for(member), fx.org.slug, role="editor", workspace_id=str(fx.workspace.id)
    )
    assert ws_above.status_code == 403
    ws_ok = _create(
        client_for(member), fx.org.slug, role="viewer", workspace_id=str(fx.workspace.id)
    )
    assert ws_ok.status_code == 201
    bad_role = _create(client_for(admin), fx.org.slug, role="god")
    assert bad_role.status_code == 422
    assert "role" in bad_role.json()["fields"]
    assert ApiKey.objects.filter(org=fx.org).count() == 1


def test_revocation_is_immediate(client_for, bearer) -> None:
    fx = make_org()
    key, raw = make_api_key(fx.owner, fx.org)
    client = bearer(raw)
    assert client.get(f"/api/orgs/{fx.org.slug}").status_code == 200
    revoked = client_for(fx.owner).delete(f"/api/orgs/{fx.org.slug}/api-keys/{key.id}")
    assert revoked.status_code == 204
    after = client.get(f"/api/orgs/{fx.org.slug}")
    assert after.status_code == 401
    assert after.json()["code"] == "not_authenticated"
    listed = client_for(fx.owner).get(f"/api/orgs/{fx.org.slug}/api-keys").json()["results"]
    assert listed[0]["revoked"] is True


def test_members_revoke_only_their_own_keys(client_for) -> None:
    fx = make_org()
    member = fx.add_member(OrgRole.MEMBER)
    owner_key, _ = make_api_key(fx.owner, fx.org)
    own_key, _ = make_api_key(member, fx.org)
    client = client_for(member)
    assert [k["id"] for k in client.get(f"/api/orgs/{fx.org.slug}/api-keys").json()["results"]] == [
        str(own_key.id)
    ]
    assert client.delete(f"/api/orgs/{fx.org.slug}/api-keys/{owner_key.id}").status_code == 404
    assert client.delete(f"/api/orgs/{fx.org.slug}/api-keys/{own_key.id}").status_code == 204
    owner_key.refresh_from_db()
    assert owner_key.revoked_at is None


def test_removing_the_user_from_the_org_kills_their_keys(client_for, bearer) -> None:
    fx = make_org()
    admin = fx.add_member(OrgRole.ADMIN)
    _key, raw = make_api_key(admin, fx.org)
    _ws_key, ws_raw = make_api_key(admin, fx.org, role="owner", workspace=fx.workspace)
    assert bearer(raw).get(f"/api/orgs/{fx.org.slug}").status_code == 200
    membership = Membership.objects.get(org=fx.org, user=admin)
    assert (
        client_for(fx.owner).delete(f"/api/orgs/{fx.org.slug}/members/{membership.id}").status_code
        == 204
    )
    assert bearer(raw).get(f"/api/orgs/{fx.org.slug}").status_code == 401
    assert bearer(ws_raw).get("/api/auth/me").status_code == 401
    assert ApiKey.objects.filter(user=admin, revoked_at__isnull=True).count() == 0


def test_a_key_whose_owner_is_no_longer_a_member_is_refused_even_unrevoked(bearer) -> None:
    """The membership is checked on every request, not only by revoking keys on removal."""
    fx = make_org()
    admin = fx.add_member(OrgRole.ADMIN)
    _key, raw = make_api_key(admin, fx.org)
    assert bearer(raw).get("/api/auth/me").status_code == 200
    Membership.objects.filter(org=fx.org, user=admin).delete()  # its keys left as they were
    assert ApiKey.objects.filter(user=admin, revoked_at__isnull=True).count() == 1
    assert bearer(raw).get("/api/auth/me").status_code == 401
    assert bearer(raw).get(f"/api/orgs/{fx.org.slug}").status_code == 401


def test_removing_a_workspace_role_kills_the_users_keys_for_it(client_for, bearer) -> None:
    fx = make_org()
    member = fx.add_member(OrgRole.MEMBER)
    fx.grant(member, WorkspaceRole.EDITOR)
    _key, raw = make_api_key(member, fx.org, role="editor", workspace=fx.workspace)
    url = f"/api/orgs/{fx.org.slug}/workspaces/{fx.workspace.id}"
    assert bearer(raw).get(url).status_code == 200
    assert client_for(fx.owner).delete(f"{url}/members/{member.id}").status_code == 204
    assert bearer(raw).get(url).status_code == 401


def test_last_used_at_is_recorded(client_for, bearer) -> None:
    fx = make_org()
    key, raw = make_api_key(fx.owner, fx.org)
    assert key.last_used_at is None
    bearer(raw).get(f"/api/orgs/{fx.org.slug}")
    key.refresh_from_db()
    assert key.last_used_at is not None
    assert timezone.now() - key.last_used_at < timedelta(seconds=30)
    listed = client_for(fx.owner).get(f"/api/orgs/{fx.org.slug}/api-keys").json()["results"]
    assert listed[0]["last_used_at"] is not None


@pytest.mark.parametrize(
    "query",
    [
        "api_key={key}",
        "token={key}",
        "q=hello+{key}",
        "key=ff_not_even_a_real_key",
        "{key}",
    ],
)
@pytest.mark.parametrize("path", ["/api/auth/csrf", "/api/orgs/{slug}", "/api/invitations/abc"])
def test_key_in_the_query_string_is_refused(query: str, path: str, bearer) -> None:
    fx = make_org()
    _key, raw = make_api_key(fx.owner, fx.org)
    url = path.format(slug=fx.org.slug) + "?" + query.format(key=raw)
    for client in (Client(), bearer(raw)):
        response = client.get(url)
        assert response.status_code == 401, (url, response.content)
        assert response.json()["code"] == "api_key_in_query"
        assert "revoke it" in response.json()["detail"]


@pytest.mark.parametrize(
    "header",
    [
        "Bearer ff_garbage",
        "Bearer ff_abcdefabcdef_" + "A" * 43,  # well formed, unknown
        "Bearer not-a-key",
        "Bearer ",
        "Basic dXNlcjpwYXNz",
        "ff_abcdefabcdef_" + "A" * 43,
    ],
)
def test_malformed_or_unknown_keys_are_refused(header: str) -> None:
    fx = make_org()
    key, raw = make_api_key(fx.owner, fx.org)
    client = Client(headers={"Authorization": header})
    for url in ("/api/auth/me", f"/api/orgs/{fx.org.slug}"):
        response = client.get(url)
        assert response.status_code == 401, (header, response.content)
    # The right prefix with a wrong secret is as unknown as any other key.
    forged = raw[:-4] + ("AAAA" if not raw.endswith("AAAA") else "BBBB")
    assert (
        Client(headers={"Authorization": f"Bearer {forged}"}).get("/api/auth/me").status_code == 401
    )
    assert key.prefix in forged


def test_bearer_needs_no_csrf_token_but_a_session_does(client_for) -> None:
    fx = make_org()
    _key, raw = make_api_key(fx.owner, fx.org)
    url = f"/api/orgs/{fx.org.slug}/workspaces"
    by_key = Client(enforce_csrf_checks=True, headers={"Authorization": f"Bearer {raw}"})
    created = by_key.post(url, {"name": "By key"}, content_type="application/json")
    assert created.status_code == 201, created.content

    session = Client(enforce_csrf_checks=True)
    session.force_login(fx.owner)
    refused = session.post(url, {"name": "By session"}, content_type="application/json")
    assert refused.status_code == 403
    assert refused.json()["code"] == "csrf_failed"
    for method in ("patch", "delete"):
        response = getattr(session, method)(
            f"/api/orgs/{fx.org.slug}/workspaces/{fx.workspace.id}",
            {"name": "x"},
            content_type="application/json",
        )
        assert response.status_code in (403, 405)
    # A bad bearer header does not excuse the session from CSRF either.
    mixed = Client(enforce_csrf_checks=True, headers={"Authorization": "Bearer ff_garbage"})
    mixed.force_login(fx.owner)
    assert mixed.post(url, {"name": "Mixed"}, content_type="application/json").status_code == 403

    # With the token from the CSRF cookie, the session POST goes through.
    session.get("/api/auth/csrf")
    token = session.cookies["csrftoken"].value
    ok = session.post(
        url, {"name": "By session"}, content_type="application/json", headers={"X-CSRFToken": token}
    )
    assert ok.status_code == 201, ok.content
    names = set(fx.org.workspaces.values_list("name", flat=True))
    assert names == {"Default", "By key", "By session"}
