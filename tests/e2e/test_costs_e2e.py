"""Costs end to end, in a real browser against the real API and a real worker: an owner
sets a daily budget with an 80 % alert on the Costs page, runs flows until the spend
crosses it, and sees the alert arrive and the spend chart move without reloading."""

import time
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from billing.models import BudgetAlert
from tests.e2e.test_approval_e2e import api_post, log_in
from tests.factories import OrgFixture, make_org, make_user

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

OWNER_EMAIL = "carla.costs@example.com"
QUESTION = "Tell me everything about budgets, spending limits and alerts in one long answer"
FLOW = {
    "schema": 1,
    "nodes": [
        {"id": "inp", "type": "input", "config": {"fields": [{"name": "q", "type": "text"}]}},
        {
            "id": "ask",
            "type": "llm_chat",
            "config": {"provider": "fake", "model": "fake-echo", "max_tokens": 16},
        },
        {"id": "out", "type": "output", "config": {"name": "answer"}},
    ],
    "edges": [{"from": "inp.q", "to": "ask.prompt"}, {"from": "ask.text", "to": "out.value"}],
}


def run_to_end(page: Page, base: str, flow_id: str) -> dict[str, Any]:
    run = api_post(page, f"{base}/flows/{flow_id}/runs", {"inputs": {"q": QUESTION}})
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        body: dict[str, Any] = page.request.get(f"{base}/runs/{run['id']}").json()
        if body["status"] not in ("queued", "running"):
            return body
        time.sleep(0.1)
    raise AssertionError(f"run {run['id']} did not finish")


def test_an_owner_sets_a_budget_and_sees_its_alert_fire_and_the_chart_move(
    new_page,  # type: ignore[no-untyped-def]
    engine_worker: str,
) -> None:
    org: OrgFixture = make_org(owner=make_user(email=OWNER_EMAIL, name="Carla Costs"))
    base = f"/api/orgs/{org.org.slug}/workspaces/{org.workspace.id}"
    page: Page = new_page("owner")
    log_in(page, OWNER_EMAIL)
    flow = api_post(page, f"{base}/flows", {"name": "Answers", "document": FLOW})

    page.get_by_role("link", name="Costs").click()
    chart = page.get_by_test_id("spend-chart")
    expect(chart).to_have_attribute("data-total-micros", "0")

    form = page.get_by_role("form", name="New budget")
    form.get_by_label("Name").fill("Team daily")
    form.get_by_label("Scope").select_option("workspace")
    form.get_by_label("Workspace").select_option(label=org.workspace.name)
    form.get_by_label("Period").select_option("day")
    form.get_by_label("Limit (USD)").fill("0.001")
    form.get_by_label("Alert at (% of limit)").fill("80")
    form.get_by_role("button", name="Create budget").click()
    row = page.get_by_test_id("budget-Team daily")
    expect(row).to_contain_text(f"workspace {org.workspace.name}")

    # Runs until the spend crosses 80 % of the limit (each call costs about 5 %).
    for _ in range(30):
        assert run_to_end(page, base, flow["id"])["status"] == "completed"
        if BudgetAlert.objects.filter(budget__org=org.org, threshold=80).exists():
            break
    else:
        raise AssertionError("the spend never crossed 80 % of the budget")

    # The page, never reloaded, shows the alert and the spend (it refreshes every 5 s).
    expect(page.get_by_test_id("cost-notifications")).to_contain_text(
        "Budget 'Team daily' reached 80%", timeout=15_000
    )
    deadline = time.monotonic() + 15
    while int(chart.get_attribute("data-total-micros") or 0) < 800:  # 80 % of $0.001
        assert time.monotonic() < deadline, "the chart did not follow the spend"
        time.sleep(0.2)
    expect(row).to_contain_text("80")
