"""Per-owner key rotation through the API: a new epoch, every secret of that owner
rewrapped under it, values unchanged, the old blobs dead; owners only for shared secrets."""

from typing import Any

import pytest

from tenants.models import AuditEvent
from tenants.roles import WorkspaceRole
from tests.factories import OrgFixture
from vault import services
from vault.envelope import VaultError, header_info, open_sealed
from vault.keys import master_keys
from vault.models import Secret

pytestmark = pytest.mark.django_db


def _add(client: Any, url: str, name: str, value: str) -> str:
    response = client.post(url, {"name": name, "value": value}, content_type="application/json")
    assert response.status_code == 201, response.content
    return str(response.json()["id"])


def test_rotating_my_key_rewraps_my_secrets_under_a_new_epoch(
    org: OrgFixture, client_for: Any
) -> None:
    client = client_for(org.owner)
    url = f"/api/orgs/{org.org.slug}/secrets"
    ids = [_add(client, url, f"key-{i}", f"value-{i}") for i in range(3)]
    colleague = org.add_member("member")
    theirs = _add(client_for(colleague), url, "key-0", "not mine")
    before = {s.id: bytes(s.sealed) for s in Secret.objects.all()}

    rotated = client.post(f"{url}/rotate-key")
    assert rotated.status_code == 200, rotated.content
    assert rotated.json() == {"epoch": 2, "rewrapped": 3}
    for index, secret_id in enumerate(ids):
        secret = Secret.objects.get(id=secret_id)
        assert secret.epoch == 2
        assert header_info(bytes(secret.sealed))[1] == 2
        assert bytes(secret.sealed) != before[secret.id]
        assert services.reveal(secret) == f"value-{index}"
        # The blob of the old epoch opens no more under the owner's current epoch ...
        with pytest.raises(VaultError):
            open_sealed(master_keys(), services.envelope_context(secret), 2, before[secret.id])
    # ... and nobody else's secrets moved.
    other = Secret.objects.get(id=theirs)
    assert (other.epoch, bytes(other.sealed)) == (1, before[other.id])
    # New secrets are sealed under the new epoch.
    assert Secret.objects.get(id=_add(client, url, "later", "v")).epoch == 2
    assert AuditEvent.objects.filter(action="vault.key_rotated", actor=org.owner).count() == 1


def test_only_workspace_owners_rotate_the_shared_key(org: OrgFixture, client_for: Any) -> None:
    url = f"/api/orgs/{org.org.slug}/workspaces/{org.workspace.id}/secrets"
    owner = client_for(org.owner)
    secret_id = _add(owner, url, "bank", "tok")
    editor_user = org.add_member("member")
    org.grant(editor_user, WorkspaceRole.EDITOR)
    assert client_for(editor_user).post(f"{url}/rotate-key").status_code == 403
    assert owner.post(f"{url}/rotate-key").json() == {"epoch": 2, "rewrapped": 1}
    assert services.reveal(Secret.objects.get(id=secret_id)) == "tok"


def test_the_vault_status_is_for_platform_staff_only(org: OrgFixture, client_for: Any) -> None:
    assert client_for(org.owner).get("/api/admin/vault").status_code == 404
    assert client_for(org.owner).post("/api/admin/vault/rewrap").status_code == 404
    org.owner.is_superuser = True
    org.owner.save()
    body = client_for(org.owner).get("/api/admin/vault").json()
    assert body["current_version"] == master_keys().current
    assert body["rows_to_rewrap"] == 0


def test_staff_see_vault_metadata_in_the_admin_but_never_a_value(
    org: OrgFixture, client_for: Any
) -> None:
    owner = client_for(org.owner)
    _add(owner, f"/api/orgs/{org.org.slug}/secrets", "openai", "sk-admin-canary-1234")
    assert owner.get("/django-admin/vault/secret/").status_code == 302  # not staff: to the login
    org.owner.is_superuser = True
    org.owner.is_staff = True
    org.owner.save()
    staff = client_for(org.owner)
    listing = staff.get("/django-admin/vault/secret/")
    assert listing.status_code == 200
    page = listing.content.decode()
    assert "openai" in page
    assert "current version" in page
    detail = staff.get(f"/django-admin/vault/secret/{Secret.objects.get().id}/change/")
    assert detail.status_code == 200
    for response in (listing, detail):
        assert "sk-admin-canary-1234" not in response.content.decode()
    rewrap_action = staff.post(
        "/django-admin/vault/secret/",
        {"action": "rewrap_all", "_selected_action": [str(Secret.objects.get().id)]},
    )
    assert rewrap_action.status_code == 302
