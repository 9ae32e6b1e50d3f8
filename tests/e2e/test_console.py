"""The console end to end, in a real browser against the real API: an owner signs an
organisation up, invites a colleague, the colleague joins with a new account, the owner
makes them editor of a workspace, and the change shows in the audit log."""

import re
from urllib.parse import urlsplit

import pytest
from django.core import mail
from playwright.sync_api import Page, expect

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

OWNER_EMAIL = "olivia@example.com"
COLLEAGUE_EMAIL = "carl@example.com"
PASSWORD = "a-long-and-unusual-passphrase"


def test_signup_invite_accept_grant_and_audit(new_page) -> None:  # type: ignore[no-untyped-def]
    owner: Page = new_page("owner")

    # --- the owner signs the organisation up ---------------------------------------------
    owner.goto("/signup")
    owner.get_by_label("Organisation name").fill("Acme E2E")
    expect(owner.get_by_label("URL")).to_have_value("acme-e2e")  # suggested from the name
    owner.get_by_label("Your name").fill("Olivia Owner")
    owner.get_by_label("Work email").fill(OWNER_EMAIL)
    owner.get_by_label("Password").fill(PASSWORD)
    owner.get_by_role("button", name="Create organisation").click()

    owner.wait_for_url("**/orgs/acme-e2e/workspaces")
    expect(owner.get_by_role("heading", name="Workspaces", exact=True)).to_be_visible()
    expect(owner.get_by_test_id("verify-banner")).to_contain_text(OWNER_EMAIL)
    expect(owner.get_by_test_id("workspace-row")).to_have_count(1)  # the default workspace
    workspace_name = owner.get_by_test_id("workspace-row").get_by_role("link").inner_text()

    # --- and invites a colleague ---------------------------------------------------------
    owner.get_by_role("link", name="Invitations", exact=True).click()
    invite = owner.get_by_role("form", name="Invite")
    invite.get_by_label("Email").fill(COLLEAGUE_EMAIL)
    invite.get_by_label("Organisation role").select_option("member")
    invite.get_by_role("button", name="Send invitation").click()
    accept_url = owner.get_by_test_id("accept-url")
    expect(accept_url).to_have_value(re.compile(r"/invitations/[\w-]+$"))
    link = accept_url.input_value()
    expect(owner.get_by_test_id("invitation-row")).to_contain_text(COLLEAGUE_EMAIL)
    assert any(link in message.body for message in mail.outbox if COLLEAGUE_EMAIL in message.to), (
        "the invitation mail carries the same link the page shows"
    )

    # --- the colleague opens the link in another browser and creates an account -----------
    colleague: Page = new_page("colleague")
    colleague.goto(urlsplit(link).path)
    expect(colleague.get_by_test_id("invitation-summary")).to_contain_text("Acme E2E")
    expect(colleague.get_by_test_id("invitation-summary")).to_contain_text(COLLEAGUE_EMAIL)
    colleague.get_by_label("Your name").fill("Carl Colleague")
    colleague.get_by_label("Password").fill(PASSWORD)
    colleague.get_by_role("button", name="Create account and join").click()
    colleague.wait_for_url("**/orgs/acme-e2e/workspaces")
    expect(colleague.get_by_text("No workspaces yet")).to_be_visible()  # no role on any yet
    # members do not see the audit log
    expect(colleague.get_by_role("link", name="Audit log")).to_have_count(0)

    # --- the owner gives them editor on the workspace ------------------------------------
    owner.get_by_role("link", name="Workspaces", exact=True).click()
    owner.get_by_role("link", name=workspace_name, exact=True).click()
    role_select = owner.get_by_label(f"Workspace role for {COLLEAGUE_EMAIL}")
    expect(role_select).to_have_value("")
    role_select.select_option("editor")
    toast = owner.get_by_role("status").filter(has_text=f"{COLLEAGUE_EMAIL} is now editor")
    expect(toast).to_be_visible()
    colleague_row = owner.get_by_test_id("workspace-member-row").filter(has_text=COLLEAGUE_EMAIL)
    expect(colleague_row.get_by_role("combobox")).to_have_value("editor")

    # --- the colleague now sees the workspace, as editor ---------------------------------
    colleague.reload()
    row = colleague.get_by_test_id("workspace-row")
    expect(row).to_have_count(1)
    expect(row).to_contain_text(workspace_name)
    expect(row).to_contain_text("editor")

    # --- and the audit log shows the change, filtered by action --------------------------
    owner.get_by_role("link", name="Audit log", exact=True).click()
    owner.get_by_label("Action").select_option("workspace.member_role_set")
    owner.get_by_role("button", name="Apply filters").click()
    events = owner.get_by_test_id("audit-row")
    expect(events).to_have_count(1)
    event = events.first
    expect(event).to_have_attribute("data-action", "workspace.member_role_set")
    expect(event).to_contain_text(OWNER_EMAIL)  # who
    expect(event).to_contain_text(COLLEAGUE_EMAIL)  # target
    expect(event).to_contain_text("role: editor")  # after
