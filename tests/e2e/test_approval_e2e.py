"""Approvals end to end, in real browsers against the real API and a real worker: an owner
starts a run that waits for an editor's approval and watches its run page; the editor, in
another browser, finds the request in their inbox and approves it; the owner's page shows the
run go on to completed, with its outputs, without a reload."""

import time
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from tenants.roles import OrgRole, WorkspaceRole
from tests.factories import PASSWORD, OrgFixture, make_org, make_user

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

OWNER_EMAIL = "olivia.approvals@example.com"
EDITOR_EMAIL = "eddie.approvals@example.com"

FLOW = {
    "schema": 1,
    "nodes": [
        {
            "id": "inp",
            "type": "input",
            "config": {"fields": [{"name": "amount", "type": "number"}]},
        },
        {
            "id": "ask",
            "type": "approval",
            "config": {
                "title": "Pay the supplier",
                "message": "Pay {{ data }} EUR?",
                "approvers": {"role": "editor", "caller": False},
            },
        },
        {"id": "paid", "type": "output", "config": {"name": "paid"}},
    ],
    "edges": [
        {"from": "inp.amount", "to": "ask.data"},
        {"from": "ask.approved", "to": "paid.value"},
    ],
}


def log_in(page: Page, email: str) -> None:
    page.goto("/login")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url("**/orgs/*/workspaces")


def api_post(page: Page, path: str, body: dict[str, Any]) -> dict[str, Any]:
    """A call of the API as the browser makes it: the page's session cookie and CSRF token."""
    token = next(c["value"] for c in page.context.cookies() if c["name"] == "csrftoken")
    response = page.request.post(path, data=body, headers={"X-CSRFToken": token})
    assert response.ok, f"{path}: {response.status} {response.text()}"
    result: dict[str, Any] = response.json()
    return result


def wait_for_request(page: Page, base: str, run_id: str) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if page.request.get(f"{base}/runs/{run_id}/requests").json():
            return
        time.sleep(0.2)
    raise AssertionError(f"run {run_id} did not reach its approval")


def test_editor_approves_from_the_inbox_and_the_run_page_follows(
    new_page,  # type: ignore[no-untyped-def]
    engine_worker: str,
) -> None:
    org: OrgFixture = make_org(owner=make_user(email=OWNER_EMAIL, name="Olivia Owner"))
    editor = org.add_member(OrgRole.MEMBER, email=EDITOR_EMAIL)
    org.grant(editor, WorkspaceRole.EDITOR)
    base = f"/api/orgs/{org.org.slug}/workspaces/{org.workspace.id}"

    # --- the owner saves the flow, starts a run, and opens its page ----------------------
    owner: Page = new_page("owner")
    log_in(owner, OWNER_EMAIL)
    flow = api_post(owner, f"{base}/flows", {"name": "Payments", "document": FLOW})
    run = api_post(owner, f"{base}/flows/{flow['id']}/runs", {"inputs": {"amount": 120}})
    wait_for_request(owner, base, run["id"])
    owner.goto(f"/orgs/{org.org.slug}/workspaces/{org.workspace.id}/runs/{run['id']}")
    waiting = owner.get_by_role("region", name="Waiting for approval")
    expect(waiting).to_contain_text("Pay the supplier")
    expect(waiting).to_contain_text("Pay 120 EUR?")
    expect(owner.get_by_test_id("run-status")).not_to_have_attribute("data-status", "completed")
    expect(owner.get_by_test_id("run-outputs")).to_have_count(0)

    # --- the editor finds it in their inbox and approves it ------------------------------
    colleague: Page = new_page("editor")
    log_in(colleague, EDITOR_EMAIL)
    expect(colleague.get_by_test_id("inbox-count")).to_have_text("1")
    colleague.get_by_role("link", name="Inbox").click()
    card = colleague.get_by_role("article", name="Pay the supplier")
    expect(card).to_contain_text("Payments")
    expect(card).to_contain_text("Pay 120 EUR?")
    card.get_by_label("Comment").fill("paid by transfer")
    card.get_by_role("button", name="Approve").click()
    expect(colleague.get_by_test_id("inbox-status")).to_contain_text(
        "Approved “Pay the supplier” (Payments)"
    )
    expect(colleague.get_by_test_id("approval-card")).to_have_count(0)

    # --- the owner's page, never reloaded, follows the run to its end -----------------------
    expect(owner.get_by_test_id("run-status")).to_have_attribute(
        "data-status", "completed", timeout=30_000
    )
    expect(owner.get_by_test_id("run-outputs")).to_contain_text('"paid": 120')
    answered = waiting.get_by_test_id("run-request")
    expect(answered).to_have_attribute("data-status", "approved")
    expect(answered).to_contain_text(f"by {EDITOR_EMAIL}")
    expect(answered).to_contain_text("paid by transfer")
