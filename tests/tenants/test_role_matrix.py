"""Who may do what: each organisation role against each console action, each workspace role
against each workspace action, and the rules that keep an organisation (and a workspace)
from losing its last owner."""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from django.test import Client

from tenants.models import ApiKey, Invitation, Membership, Workspace
from tenants.roles import OrgRole, WorkspaceRole
from tests.factories import OrgFixture, make_api_key, make_invitation, make_org, make_workspace
from tests.helpers import db_snapshot

pytestmark = pytest.mark.django_db


@dataclass
class World:
    """An organisation with one person per role, plus targets for the actions."""

    fx: OrgFixture
    role: OrgRole
    actor_client: Client
    target_member: Membership  # a plain member, acted upon
    second_owner: Membership
    invitation: Invitation
    owner_key: ApiKey

    @property
    def base(self) -> str:
        return f"/api/orgs/{self.fx.org.slug}"

    @property
    def ws(self) -> str:
        return f"{self.base}/workspaces/{self.fx.workspace.id}"


def _world(role: OrgRole, client_for: Callable[[Any], Client]) -> World:
    fx = make_org()
    actor = fx.owner if role == OrgRole.OWNER else fx.add_member(role)
    target = fx.add_member(OrgRole.MEMBER)
    second_owner = fx.add_member(OrgRole.OWNER)
    invitation, _ = make_invitation(fx)
    owner_key, _ = make_api_key(fx.owner, fx.org, name="the owner's key")
    return World(
        fx=fx,
        role=role,
        actor_client=client_for(actor),
        target_member=Membership.objects.get(org=fx.org, user=target),
        second_owner=Membership.objects.get(org=fx.org, user=second_owner),
        invitation=invitation,
        owner_key=owner_key,
    )


def _json(client: Client, method: str, url: str, body: dict[str, Any]) -> Any:
    return getattr(client, method)(url, body, content_type="application/json")


# action -> (call, expected status for owner, admin, billing, member)
ACTIONS: dict[str, tuple[Callable[[World], Any], tuple[int, int, int, int]]] = {
    "list members": (lambda w: w.actor_client.get(f"{w.base}/members"), (200, 200, 403, 200)),
    "invite member": (
        lambda w: _json(
            w.actor_client, "post", f"{w.base}/invitations", {"email": "new@example.com"}
        ),
        (201, 201, 403, 403),
    ),
    "invite owner": (
        lambda w: _json(
            w.actor_client,
            "post",
            f"{w.base}/invitations",
            {"email": "boss@example.com", "role": "owner"},
        ),
        (201, 403, 403, 403),
    ),
    "change role": (
        lambda w: _json(
            w.actor_client, "patch", f"{w.base}/members/{w.target_member.id}", {"role": "admin"}
        ),
        (200, 200, 403, 403),
    ),
    "make owner": (
        lambda w: _json(
            w.actor_client, "patch", f"{w.base}/members/{w.target_member.id}", {"role": "owner"}
        ),
        (200, 403, 403, 403),
    ),
    "demote owner": (
        lambda w: _json(
            w.actor_client, "patch", f"{w.base}/members/{w.second_owner.id}", {"role": "member"}
        ),
        (200, 403, 403, 403),
    ),
    "remove member": (
        lambda w: w.actor_client.delete(f"{w.base}/members/{w.target_member.id}"),
        (204, 204, 403, 403),
    ),
    "remove owner": (
        lambda w: w.actor_client.delete(f"{w.base}/members/{w.second_owner.id}"),
        (204, 403, 403, 403),
    ),
    "list invitations": (
        lambda w: w.actor_client.get(f"{w.base}/invitations"),
        (200, 200, 403, 403),
    ),
    "revoke invitation": (
        lambda w: w.actor_client.delete(f"{w.base}/invitations/{w.invitation.id}"),
        (204, 204, 403, 403),
    ),
    "create workspace": (
        lambda w: _json(w.actor_client, "post", f"{w.base}/workspaces", {"name": "Lab"}),
        (201, 201, 403, 403),
    ),
    "list workspaces": (lambda w: w.actor_client.get(f"{w.base}/workspaces"), (200,) * 4),
    # Workspaces a member holds no role on are hidden: 404, as if they did not exist.
    "view workspace": (lambda w: w.actor_client.get(w.ws), (200, 200, 404, 404)),
    "rename workspace": (
        lambda w: _json(w.actor_client, "patch", w.ws, {"name": "Renamed"}),
        (200, 200, 404, 404),
    ),
    "archive workspace": (
        lambda w: _json(w.actor_client, "patch", w.ws, {"archived": True}),
        (200, 200, 404, 404),
    ),
    "set workspace role": (
        lambda w: _json(
            w.actor_client,
            "put",
            f"{w.ws}/members/{w.target_member.user_id}",
            {"role": "editor"},
        ),
        (204, 204, 404, 404),
    ),
    "read audit log": (lambda w: w.actor_client.get(f"{w.base}/audit"), (200, 200, 403, 403)),
    "list API keys": (lambda w: w.actor_client.get(f"{w.base}/api-keys"), (200,) * 4),
    "create API key at own role": (
        lambda w: _json(
            w.actor_client,
            "post",
            f"{w.base}/api-keys",
            {"name": "mine", "role": w.role.value},
        ),
        (201,) * 4,
    ),
    "revoke another's API key": (
        lambda w: w.actor_client.delete(f"{w.base}/api-keys/{w.owner_key.id}"),
        (204, 204, 404, 404),
    ),
}
ROLES = (OrgRole.OWNER, OrgRole.ADMIN, OrgRole.BILLING, OrgRole.MEMBER)


@pytest.mark.parametrize("role", ROLES, ids=[r.value for r in ROLES])
@pytest.mark.parametrize("action", list(ACTIONS))
def test_org_role_matrix(role: OrgRole, action: str, client_for) -> None:
    world = _world(role, client_for)
    call, expected = ACTIONS[action]
    response = call(world)
    want = expected[ROLES.index(role)]
    assert response.status_code == want, (role, action, response.content)
    if want == 403:
        assert response.json()["code"] == "role_required"
        assert response.json()["detail"].startswith("Only ")


@pytest.mark.parametrize("role", ROLES, ids=[r.value for r in ROLES])
def test_denied_actions_change_nothing(role: OrgRole, client_for) -> None:
    """A refused action leaves members, invitations, workspaces and keys as they were."""
    for action, (call, expected) in ACTIONS.items():
        if expected[ROLES.index(role)] < 400:
            continue
        world = _world(role, client_for)
        before = db_snapshot()
        assert call(world).status_code >= 400, action
        assert db_snapshot() == before, action


def test_what_each_role_sees_in_the_workspace_list(client_for) -> None:
    fx = make_org()
    lab = make_workspace(fx, "Lab")
    make_workspace(fx, "Hidden")
    billing = fx.add_member(OrgRole.BILLING)
    member = fx.add_member(OrgRole.MEMBER)
    admin = fx.add_member(OrgRole.ADMIN)
    fx.grant(member, WorkspaceRole.VIEWER, lab)

    def names(user: Any) -> dict[str, str]:
        response = client_for(user).get(f"/api/orgs/{fx.org.slug}/workspaces")
        assert response.status_code == 200
        return {w["name"]: w["role"] for w in response.json()["results"]}

    assert names(fx.owner) == {"Default": "owner", "Lab": "owner", "Hidden": "owner"}
    assert names(admin) == {"Default": "owner", "Lab": "owner", "Hidden": "owner"}
    assert names(member) == {"Lab": "viewer"}
    assert names(billing) == {}


# --- workspace roles of a plain organisation member ----------------------------------------

WS_ROLES = (WorkspaceRole.OWNER, WorkspaceRole.EDITOR, WorkspaceRole.VIEWER, None)
# action -> expected status for workspace owner, editor, viewer, no role
WS_ACTIONS: dict[str, tuple[str, str, dict[str, Any] | None, tuple[int, int, int, int]]] = {
    "view workspace": ("get", "", None, (200, 200, 200, 404)),
    "list its members": ("get", "/members", None, (200, 200, 200, 404)),
    "rename": ("patch", "", {"name": "Renamed"}, (200, 403, 403, 404)),
    "archive": ("patch", "", {"archived": True}, (200, 403, 403, 404)),
    "give someone a role": ("put", "/members/{peer}", {"role": "viewer"}, (204, 403, 403, 404)),
    "remove someone's role": ("delete", "/members/{peer}", None, (204, 403, 403, 404)),
}


@pytest.mark.parametrize("ws_role", WS_ROLES, ids=[r.value if r else "none" for r in WS_ROLES])
@pytest.mark.parametrize("action", list(WS_ACTIONS))
def test_workspace_role_matrix(ws_role: WorkspaceRole | None, action: str, client_for) -> None:
    fx = make_org()
    lab = make_workspace(fx, "Lab")
    user = fx.add_member(OrgRole.MEMBER)
    peer = fx.add_member(OrgRole.MEMBER)
    fx.grant(peer, WorkspaceRole.VIEWER, lab)
    if ws_role is not None:
        fx.grant(user, ws_role, lab)
    method, suffix, body, expected = WS_ACTIONS[action]
    url = f"/api/orgs/{fx.org.slug}/workspaces/{lab.id}" + suffix.format(peer=peer.id)
    client = client_for(user)
    if body is None:
        response = getattr(client, method)(url)
    else:
        response = getattr(client, method)(url, body, content_type="application/json")
    want = expected[WS_ROLES.index(ws_role)]
    assert response.status_code == want, (ws_role, action, response.content)
    if want == 403:
        assert response.json()["code"] == "role_required"
    if want == 404:
        assert response.json()["code"] == "not_found"


def test_editor_cannot_promote_itself(client_for) -> None:
    fx = make_org()
    editor = fx.add_member(OrgRole.MEMBER)
    fx.grant(editor, WorkspaceRole.EDITOR)
    url = f"/api/orgs/{fx.org.slug}/workspaces/{fx.workspace.id}/members/{editor.id}"
    response = client_for(editor).put(url, {"role": "owner"}, content_type="application/json")
    assert response.status_code == 403
    detail = client_for(editor).get(f"/api/orgs/{fx.org.slug}/workspaces/{fx.workspace.id}")
    assert detail.json()["role"] == "editor"


def test_member_cannot_promote_itself_in_the_org(client_for) -> None:
    fx = make_org()
    member = fx.add_member(OrgRole.MEMBER)
    membership = Membership.objects.get(org=fx.org, user=member)
    for role in ("admin", "owner"):
        response = client_for(member).patch(
            f"/api/orgs/{fx.org.slug}/members/{membership.id}",
            {"role": role},
            content_type="application/json",
        )
        assert response.status_code == 403
    membership.refresh_from_db()
    assert membership.role == "member"


def test_admin_cannot_make_itself_owner(client_for) -> None:
    fx = make_org()
    admin = fx.add_member(OrgRole.ADMIN)
    membership = Membership.objects.get(org=fx.org, user=admin)
    response = client_for(admin).patch(
        f"/api/orgs/{fx.org.slug}/members/{membership.id}",
        {"role": "owner"},
        content_type="application/json",
    )
    assert response.status_code == 403
    assert "owners" in response.json()["detail"]
    membership.refresh_from_db()
    assert membership.role == "admin"


# --- last owners ------------------------------------------------------------------------


def test_last_owner_cannot_leave_or_be_demoted(client_for) -> None:
    fx = make_org()
    owner_membership = Membership.objects.get(org=fx.org, user=fx.owner)
    client = client_for(fx.owner)
    url = f"/api/orgs/{fx.org.slug}/members/{owner_membership.id}"
    leave = client.delete(url)
    assert leave.status_code == 409
    assert leave.json()["code"] == "last_owner"
    assert "Make another member an owner first" in leave.json()["detail"]
    demote = client.patch(url, {"role": "admin"}, content_type="application/json")
    assert demote.status_code == 409
    assert demote.json()["code"] == "last_owner"
    owner_membership.refresh_from_db()
    assert owner_membership.role == "owner"

    # With a second owner, the first may step down, and then leave.
    fx.add_member(OrgRole.OWNER)
    assert client.patch(url, {"role": "admin"}, content_type="application/json").status_code == 200
    assert client.delete(url).status_code == 204
    assert not Membership.objects.filter(org=fx.org, user=fx.owner).exists()


def test_members_may_leave_on_their_own(client_for) -> None:
    fx = make_org()
    member = fx.add_member(OrgRole.MEMBER)
    fx.grant(member, WorkspaceRole.EDITOR)
    membership = Membership.objects.get(org=fx.org, user=member)
    response = client_for(member).delete(f"/api/orgs/{fx.org.slug}/members/{membership.id}")
    assert response.status_code == 204
    assert client_for(member).get(f"/api/orgs/{fx.org.slug}").status_code == 404
    # Their workspace role went with them: rejoining does not bring it back.
    Membership.objects.create(org=fx.org, user=member, role=OrgRole.MEMBER)
    assert (
        client_for(member).get(f"/api/orgs/{fx.org.slug}/workspaces/{fx.workspace.id}").status_code
        == 404
    )


def test_last_explicit_workspace_owner_cannot_be_demoted(client_for) -> None:
    fx = make_org()
    lab = make_workspace(fx, "Lab")  # its creator (the org owner) is its explicit owner
    url = f"/api/orgs/{fx.org.slug}/workspaces/{lab.id}/members/{fx.owner.id}"
    client = client_for(fx.owner)
    demote = client.put(url, {"role": "editor"}, content_type="application/json")
    assert demote.status_code == 409
    assert demote.json()["code"] == "last_owner"
    assert "last owner" in demote.json()["detail"]
    assert client.delete(url).status_code == 409

    other = fx.add_member(OrgRole.MEMBER)
    fx.grant(other, WorkspaceRole.OWNER, lab)
    assert client.put(url, {"role": "editor"}, content_type="application/json").status_code == 204
    members = client.get(f"/api/orgs/{fx.org.slug}/workspaces/{lab.id}/members").json()
    roles = {m["user"]["id"]: (m["role"], m["effective_role"]) for m in members}
    # The organisation owner still acts as owner of every workspace.
    assert roles[str(fx.owner.id)] == ("editor", "owner")
    assert roles[str(other.id)] == ("owner", "owner")


def test_billing_members_get_no_workspace_role(client_for) -> None:
    fx = make_org()
    billing = fx.add_member(OrgRole.BILLING)
    response = client_for(fx.owner).put(
        f"/api/orgs/{fx.org.slug}/workspaces/{fx.workspace.id}/members/{billing.id}",
        {"role": "viewer"},
        content_type="application/json",
    )
    assert response.status_code == 409
    assert response.json()["code"] == "billing_member"
    assert Workspace.objects.filter(org=fx.org).count() == 1
