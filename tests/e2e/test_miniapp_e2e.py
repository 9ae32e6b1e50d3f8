"""A published app end to end, in a real browser against the real API and a real worker: an
anonymous visitor opens the app's page, fills its form, watches the answer stream in and the
run complete, runs again until the app's rate limit says when to come back, and finds "No app
here" once the app is unpublished and at another organisation's address.

The visitor's browser talks to daphne (`web_server`, ASGI, as `make up` serves the app): the
WSGI live server would hold a run's stream back until the run ends."""

import time
from datetime import datetime
from typing import Any

import pytest
from django.test import Client
from playwright.sync_api import Page, expect

from tests.factories import OrgFixture, make_org
from tests.flows.test_flows_api import base, create_flow
from tests.miniapps.test_apps_api import publish

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

FLOW = {
    "schema": 1,
    "nodes": [
        {
            "id": "inp",
            "type": "input",
            "config": {
                "fields": [{"name": "question", "type": "text", "description": "Ask anything"}]
            },
        },
        {"id": "llm", "type": "llm_chat", "config": {"provider": "fake", "model": "fake-echo"}},
        {"id": "out", "type": "output", "config": {"name": "answer"}},
    ],
    "edges": [
        {"from": "inp.question", "to": "llm.prompt"},
        {"from": "llm.text", "to": "out.value"},
    ],
}
QUESTION = "Which rivers cross Lisbon and how wide is the estuary of the Tagus near the city"


def run_once(page: Page, question: str) -> None:
    page.get_by_label("Question").fill(question)
    page.get_by_role("button", name="Run", exact=True).click()


def test_an_anonymous_visitor_runs_a_published_app_up_to_its_rate_limit(
    new_page,  # type: ignore[no-untyped-def]
    engine_worker: str,
    web_server: str,
    fake_llm: Any,
    client_for: Any,
) -> None:
    org: OrgFixture = make_org()
    owner: Client = client_for(org.owner)
    app = publish(
        owner,
        org,
        create_flow(owner, org, FLOW),
        slug="ask",
        title="Ask about Lisbon",
        description="Answers questions about the city.",
        visitor_rate_per_minute=2,
    )
    address = f"{web_server}/apps/{org.org.slug}/ask"

    # --- a stranger (no session, no token) opens the app and runs it --------------------------
    visitor: Page = new_page("visitor")
    visitor.goto(address)
    expect(visitor.get_by_role("heading", name="Ask about Lisbon")).to_be_visible()
    expect(visitor.get_by_text("Answers questions about the city.")).to_be_visible()
    expect(visitor.get_by_test_id("app-org")).to_have_text(org.org.name)
    expect(visitor.get_by_label("Question")).to_have_attribute("aria-required", "true")
    expect(visitor.get_by_text("Ask anything")).to_be_visible()
    token = visitor.evaluate(f"localStorage.getItem('fireflow.visitor.{org.org.slug}/ask')")
    assert token, "the app's visitor token is kept in the browser"

    # An empty required input is caught before anything is sent.
    visitor.get_by_role("button", name="Run", exact=True).click()
    expect(visitor.get_by_label("Question")).to_have_attribute("aria-invalid", "true")

    fake_llm.tokens_per_s = 8  # two to three seconds of writing: the answer is seen growing
    try:
        run_once(visitor, QUESTION)
        answer = visitor.get_by_test_id("app-answer")
        status = visitor.get_by_test_id("app-run-status")
        expect(answer).to_contain_text("Echo: Which rivers", timeout=15_000)
        # Part of the answer is there while the run is still writing it.
        expect(status).to_have_attribute("data-status", "running")
        assert "estuary" not in (answer.text_content() or "")
        expect(status).to_have_attribute("data-status", "completed", timeout=30_000)
    finally:
        fake_llm.tokens_per_s = None
    expect(answer).to_have_text(f"Echo: {QUESTION}")
    expect(visitor.get_by_test_id("app-outputs")).to_contain_text(f"Echo: {QUESTION}")
    rows = visitor.get_by_test_id("app-run-row")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("completed")

    # --- again, until the limit (2 runs a minute, counted per calendar minute) ------------------
    # Late in a minute the refusal's wait would be too short to look at: start the next one.
    second = datetime.now().second
    if second >= 45:
        time.sleep(61 - second)
    limit = visitor.get_by_test_id("app-rate-limit")
    started = 1
    for _ in range(4):
        run_once(visitor, f"Question number {started + 1}")
        expect(limit.or_(rows.nth(started))).to_be_visible(timeout=15_000)
        if limit.is_visible():
            break
        started += 1
    else:
        raise AssertionError("the app never refused a run")
    expect(limit).to_have_attribute("role", "alert")
    expect(limit).to_contain_text("runs of this app in this minute")
    expect(limit).to_contain_text("try again in")
    run_button = visitor.get_by_test_id("app-run-button")
    expect(run_button).to_be_disabled()
    expect(run_button).to_contain_text("wait")
    expect(rows).to_have_count(started)

    # A past run opens again with its answer.
    rows.last.get_by_role("button").click()
    expect(visitor.get_by_test_id("app-run")).to_have_attribute(
        "data-run", rows.last.get_attribute("data-run") or ""
    )
    expect(visitor.get_by_test_id("app-outputs")).to_contain_text(f"Echo: {QUESTION}")

    # --- the same slug under another organisation is not this app ------------------------------
    other: OrgFixture = make_org()
    stranger: Page = new_page("stranger")
    stranger.goto(f"{web_server}/apps/{other.org.slug}/ask")
    expect(stranger.get_by_role("heading", name="No app here")).to_be_visible()
    expect(stranger.get_by_label("Question")).to_have_count(0)

    # --- unpublished, the app is gone for its visitors too ------------------------------------
    response = owner.patch(
        f"{base(org)}/apps/{app['id']}", {"published": False}, content_type="application/json"
    )
    assert response.status_code == 200, response.content
    visitor.goto(f"{address}?embed=1")
    expect(visitor.get_by_role("heading", name="No app here")).to_be_visible()
    expect(visitor.get_by_test_id("app-not-found")).to_contain_text("not published")
