"""The vault API: personal and shared secrets are stored sealed, shown by name, owner and
times but never by value, rotated, deleted, audited; only workspace owners manage shared
ones, and nobody reaches another person's or another organisation's secrets."""

from typing import Any

import pytest

from tenants.models import AuditEvent
from tenants.roles import WorkspaceRole
from tests.factories import OrgFixture, make_api_key
from tests.helpers import all_tenancy_text
from vault import services
from vault.models import Secret

pytestmark = pytest.mark.django_db

VALUE = "sk-canary-7d1f0c2e9b3a4f5e8d6c"


def _personal(org: OrgFixture) -> str:
    return f"/api/orgs/{org.org.slug}/secrets"


def _shared(org: OrgFixture) -> str:
    return f"/api/orgs/{org.org.slug}/workspaces/{org.workspace.id}/secrets"


def _create(client: Any, url: str, name: str = "openai", value: str = VALUE) -> Any:
    return client.post(url, {"name": name, "value": value}, content_type="application/json")


def test_a_personal_secret_is_stored_sealed_and_never_shown_again(
    org: OrgFixture, client_for: Any
) -> None:
    client = client_for(org.owner)
    created = _create(client, _personal(org))
    assert created.status_code == 201, created.content
    body = created.json()
    assert (body["name"], body["scope"], body["owner_email"]) == (
        "openai",
        "personal",
        org.owner.email,
    )
    assert VALUE not in created.content.decode()
    listed = client.get(_personal(org))
    assert [s["name"] for s in listed.json()] == ["openai"]
    detail = client.get(f"{_personal(org)}/{body['id']}")
    for response in (listed, detail):
        assert VALUE not in response.content.decode()
        assert "value" not in response.content.decode()
    # Stored sealed: the value is in no table, yet it opens.
    assert VALUE not in all_tenancy_text()
    secret = Secret.objects.get(id=body["id"])
    assert VALUE.encode() not in bytes(secret.sealed)
    assert services.reveal(secret) == VALUE
    audit = AuditEvent.objects.get(action="secret.created", target_id=body["id"])
    assert VALUE not in str(audit.after)


def test_rotating_replaces_the_value_and_deleting_forgets_it(
    org: OrgFixture, client_for: Any
) -> None:
    client = client_for(org.owner)
    secret_id = _create(client, _personal(org)).json()["id"]
    rotated = client.put(
        f"{_personal(org)}/{secret_id}/value",
        {"value": "new-value-1"},
        content_type="application/json",
    )
    assert rotated.status_code == 200, rotated.content
    assert rotated.json()["rotated_at"] is not None
    assert services.reveal(Secret.objects.get(id=secret_id)) == "new-value-1"
    assert client.delete(f"{_personal(org)}/{secret_id}").status_code == 204
    assert not Secret.objects.filter(id=secret_id).exists()
    assert client.get(f"{_personal(org)}/{secret_id}").status_code == 404
    actions = list(
        AuditEvent.objects.filter(target_id=secret_id)
        .order_by("created_at")
        .values_list("action", flat=True)
    )
    assert actions == ["secret.created", "secret.rotated", "secret.deleted"]


def test_bad_names_values_and_duplicates_are_refused_with_the_field(
    org: OrgFixture, client_for: Any
) -> None:
    client = client_for(org.owner)
    bad_name = _create(client, _personal(org), name="9 lives")
    assert bad_name.status_code == 422
    assert "name" in bad_name.json()["fields"]
    empty = _create(client, _personal(org), value="")
    assert empty.status_code == 422
    assert "value" in empty.json()["fields"]
    assert _create(client, _personal(org)).status_code == 201
    again = _create(client, _personal(org), value="other")
    assert again.status_code == 409
    assert "rotate" in again.json()["detail"]
    for response in (bad_name, empty, again):
        assert VALUE not in response.content.decode()


def test_personal_secrets_are_their_owners_alone(
    org: OrgFixture, other_org: OrgFixture, client_for: Any
) -> None:
    secret_id = _create(client_for(org.owner), _personal(org)).json()["id"]
    admin = org.add_member("admin")
    colleague = client_for(admin)
    assert colleague.get(_personal(org)).json() == []
    assert colleague.get(f"{_personal(org)}/{secret_id}").status_code == 404
    assert colleague.delete(f"{_personal(org)}/{secret_id}").status_code == 404
    stranger = client_for(other_org.owner)
    assert stranger.get(f"/api/orgs/{other_org.org.slug}/secrets/{secret_id}").status_code == 404
    assert stranger.get(f"{_personal(org)}/{secret_id}").status_code == 404
    assert Secret.objects.filter(id=secret_id).exists()


def test_shared_secrets_members_see_owners_manage(org: OrgFixture, client_for: Any) -> None:
    owner = client_for(org.owner)
    created = _create(owner, _shared(org), name="bank-token")
    assert created.status_code == 201, created.content
    assert created.json()["scope"] == "workspace"
    editor_user = org.add_member("member")
    org.grant(editor_user, WorkspaceRole.EDITOR)
    editor = client_for(editor_user)
    assert [s["name"] for s in editor.get(_shared(org)).json()] == ["bank-token"]
    secret_id = created.json()["id"]
    assert _create(editor, _shared(org), name="mine").status_code == 403
    refused = editor.put(
        f"{_shared(org)}/{secret_id}/value", {"value": "x"}, content_type="application/json"
    )
    assert refused.status_code == 403
    assert editor.delete(f"{_shared(org)}/{secret_id}").status_code == 403
    assert services.reveal(Secret.objects.get(id=secret_id)) == VALUE


def test_a_workspace_scoped_api_key_reaches_no_personal_vault(org: OrgFixture, bearer: Any) -> None:
    _key, raw = make_api_key(org.owner, org.org, role="owner", name="ws", workspace=org.workspace)
    client = bearer(raw)
    assert client.get(_personal(org)).status_code == 403
    assert _create(client, _personal(org)).status_code == 403
    assert _create(client, _shared(org), name="ok").status_code == 201
