"""Interactive cards end to end, in real browsers against the real API and a real worker: a
run shows an editor an A2UI card; the editor fills it in their inbox (a required note left
empty is refused by the card itself first) and answers with one of its buttons; the owner's
run page, never reloaded, shows the run complete with the action and values, and the card
read-only."""

import pytest
from playwright.sync_api import Page, expect

from tenants.roles import OrgRole, WorkspaceRole
from tests.e2e.test_approval_e2e import api_post, log_in, wait_for_request
from tests.factories import OrgFixture, make_org, make_user

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

OWNER_EMAIL = "olivia.cards@example.com"
EDITOR_EMAIL = "eddie.cards@example.com"

COMPONENTS = [
    {"id": "root", "component": "Column", "children": ["who", "note", "tier", "buttons"]},
    {"id": "who", "component": "Text", "text": {"path": "/customer"}, "variant": "h3"},
    {
        "id": "note",
        "component": "TextField",
        "label": "Note",
        "value": {"path": "/note"},
        "checks": [
            {
                "condition": {"call": "required", "args": {"value": {"path": "/note"}}},
                "message": "a note is required",
            }
        ],
    },
    {
        "id": "tier",
        "component": "ChoicePicker",
        "options": [{"label": "Gold", "value": "gold"}, {"label": "Silver", "value": "silver"}],
        "value": {"path": "/tier"},
    },
    {"id": "buttons", "component": "Row", "children": ["ok"]},
    {"id": "ok_label", "component": "Text", "text": "Refund"},
    {
        "id": "ok",
        "component": "Button",
        "child": "ok_label",
        "action": {"event": {"name": "refund", "context": {"note": {"path": "/note"}}}},
    },
]

FLOW = {
    "schema": 1,
    "nodes": [
        {"id": "inp", "type": "input", "config": {"fields": [{"name": "case", "type": "json"}]}},
        {
            "id": "ask",
            "type": "card",
            "config": {
                "title": "Refund the customer?",
                "surface": {"components": COMPONENTS},
                "approvers": {"role": "editor", "caller": False},
            },
        },
        {"id": "action", "type": "output", "config": {"name": "action"}},
        {"id": "values", "type": "output", "config": {"name": "values"}},
    ],
    "edges": [
        {"from": "inp.case", "to": "ask.data"},
        {"from": "ask.action", "to": "action.value"},
        {"from": "ask.values", "to": "values.value"},
    ],
}


def test_editor_answers_a_card_in_the_inbox_and_the_run_page_follows(
    new_page,  # type: ignore[no-untyped-def]
    engine_worker: str,
) -> None:
    org: OrgFixture = make_org(owner=make_user(email=OWNER_EMAIL, name="Olivia Owner"))
    editor = org.add_member(OrgRole.MEMBER, email=EDITOR_EMAIL)
    org.grant(editor, WorkspaceRole.EDITOR)
    base = f"/api/orgs/{org.org.slug}/workspaces/{org.workspace.id}"

    owner: Page = new_page("owner")
    log_in(owner, OWNER_EMAIL)
    flow = api_post(owner, f"{base}/flows", {"name": "Refunds", "document": FLOW})
    case = {"customer": "Ana Lima", "note": "", "tier": ["silver"]}
    run = api_post(owner, f"{base}/flows/{flow['id']}/runs", {"inputs": {"case": case}})
    wait_for_request(owner, base, run["id"])
    owner.goto(f"/orgs/{org.org.slug}/workspaces/{org.workspace.id}/runs/{run['id']}")
    waiting = owner.get_by_role("region", name="Waiting for approval")
    expect(waiting.get_by_test_id("a2ui-card")).to_contain_text("Ana Lima")  # not theirs to answer

    colleague: Page = new_page("editor")
    log_in(colleague, EDITOR_EMAIL)
    colleague.get_by_role("link", name="Inbox").click()
    card = colleague.get_by_test_id("a2ui-card")
    expect(card).to_contain_text("Ana Lima")  # bound to the run's data
    card.get_by_test_id("a2ui-ok").click()  # the note is required: the card says so first
    expect(card.get_by_test_id("a2ui-error-note")).to_contain_text("a note is required")
    card.get_by_test_id("a2ui-note").fill("damaged in transit")
    card.get_by_test_id("a2ui-tier-gold").click()
    card.get_by_test_id("a2ui-ok").click()
    expect(colleague.get_by_test_id("inbox-status")).to_contain_text("Refund the customer?")

    expect(owner.get_by_test_id("run-status")).to_have_attribute(
        "data-status", "completed", timeout=30_000
    )
    outputs = owner.get_by_test_id("run-outputs")
    expect(outputs).to_contain_text('"name": "refund"')
    expect(outputs).to_contain_text('"note": "damaged in transit"')
    answered = waiting.get_by_test_id("run-request")
    expect(answered).to_have_attribute("data-status", "approved")
    expect(answered.get_by_test_id("a2ui-action-taken")).to_have_text("refund")
