"""Workspaces: create, rename, archive, restore; names unique among active ones; archived ones
hidden unless asked for; object permissions go with the workspace."""

import pytest

from tenants.models import Workspace, WorkspaceUserObjectPermission
from tenants.roles import OrgRole, WorkspaceRole
from tests.factories import make_org, make_workspace

pytestmark = pytest.mark.django_db


def test_create_rename_archive_restore(client_for) -> None:
    fx = make_org()
    client = client_for(fx.owner)
    base = f"/api/orgs/{fx.org.slug}/workspaces"
    created = client.post(base, {"name": "  Research  "}, content_type="application/json")
    assert created.status_code == 201
    body = created.json()
    assert body["name"] == "Research"
    assert body["archived"] is False
    assert body["role"] == "owner"
    url = f"{base}/{body['id']}"

    renamed = client.patch(url, {"name": "R&D"}, content_type="application/json")
    assert renamed.json()["name"] == "R&D"
    archived = client.patch(url, {"archived": True}, content_type="application/json")
    assert archived.json()["archived"] is True
    names = [w["name"] for w in client.get(base).json()["results"]]
    assert names == ["Default"]
    with_archived = client.get(base, {"include_archived": "true"}).json()["results"]
    assert {w["name"]: w["archived"] for w in with_archived} == {"Default": False, "R&D": True}
    # Still reachable by id, to restore it.
    assert client.get(url).status_code == 200
    restored = client.patch(url, {"archived": False}, content_type="application/json")
    assert restored.json()["archived"] is False
    assert [w["name"] for w in client.get(base).json()["results"]] == ["Default", "R&D"]


def test_duplicate_active_name_is_refused(client_for) -> None:
    fx = make_org()
    client = client_for(fx.owner)
    base = f"/api/orgs/{fx.org.slug}/workspaces"
    dup = client.post(base, {"name": "DEFAULT"}, content_type="application/json")
    assert dup.status_code == 409
    assert dup.json()["code"] == "workspace_name_taken"
    assert dup.json()["fields"] == {"name": "already taken"}
    lab = client.post(base, {"name": "Lab"}, content_type="application/json").json()
    clash = client.patch(f"{base}/{lab['id']}", {"name": "default"}, "application/json")
    assert clash.status_code == 409
    # An archived workspace frees its name; restoring it then clashes.
    client.patch(f"{base}/{lab['id']}", {"archived": True}, content_type="application/json")
    again = client.post(base, {"name": "Lab"}, content_type="application/json")
    assert again.status_code == 201
    restore = client.patch(f"{base}/{lab['id']}", {"archived": False}, "application/json")
    assert restore.status_code == 409
    # Restoring under a new name in the same request works.
    both = client.patch(
        f"{base}/{lab['id']}", {"archived": False, "name": "Lab (old)"}, "application/json"
    )
    assert both.status_code == 200, both.content
    assert both.json()["name"] == "Lab (old)"
    # Other organisations may use the same names.
    other = make_org()
    assert (
        client_for(other.owner)
        .post(f"/api/orgs/{other.org.slug}/workspaces", {"name": "Lab"}, "application/json")
        .status_code
        == 201
    )


def test_blank_name_is_invalid(client_for) -> None:
    fx = make_org()
    response = client_for(fx.owner).post(
        f"/api/orgs/{fx.org.slug}/workspaces", {"name": "   "}, content_type="application/json"
    )
    assert response.status_code == 422
    assert "name" in response.json()["fields"]


def test_object_permissions_are_deleted_with_the_workspace() -> None:
    fx = make_org()
    lab = make_workspace(fx, "Lab")
    member = fx.add_member(OrgRole.MEMBER)
    fx.grant(member, WorkspaceRole.EDITOR, lab)
    assert WorkspaceUserObjectPermission.objects.filter(content_object=lab).count() == 3 + 2
    lab_id = lab.id
    lab.delete()
    assert not WorkspaceUserObjectPermission.objects.filter(content_object_id=lab_id).exists()
    # Guardian's generic table holds none either: permissions live only in the direct table.
    from guardian.models import UserObjectPermission

    assert not UserObjectPermission.objects.filter(object_pk=str(lab_id)).exists()
    assert Workspace.objects.filter(org=fx.org).count() == 1


def test_workspace_role_shown_to_each_member(client_for) -> None:
    fx = make_org()
    member = fx.add_member(OrgRole.MEMBER)
    fx.grant(member, WorkspaceRole.EDITOR)
    members = (
        client_for(member)
        .get(f"/api/orgs/{fx.org.slug}/workspaces/{fx.workspace.id}/members")
        .json()
    )
    roles = {m["user"]["email"]: (m["org_role"], m["role"], m["effective_role"]) for m in members}
    assert roles[member.email] == ("member", "editor", "editor")
    assert roles[fx.owner.email] == ("owner", "owner", "owner")
