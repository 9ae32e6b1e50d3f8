"""The flow builder end to end, in real browsers against the real API and a real worker: an
owner builds input -> LLM chat -> output by dragging nodes from the palette and wiring their
ports, sees an incompatible connection refused with its reason, configures the LLM node for
the fake provider, saves, runs the flow with an input and watches the tokens stream into the
LLM node until the run completes. A viewer opening the same flow cannot change it. A run
waiting for an approval is answered on the canvas."""

import re
from typing import Any

import pytest
from playwright.sync_api import Locator, Page, expect

from tenants.roles import OrgRole, WorkspaceRole
from tests.e2e.test_approval_e2e import FLOW, api_post, log_in
from tests.factories import OrgFixture, make_org, make_user

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

OWNER_EMAIL = "bea.builder@example.com"
VIEWER_EMAIL = "vic.viewer@example.com"
QUESTION = "What does the builder draw?"
# The approvals e2e test's flow, where whoever started the run may also approve it.
APPROVAL_FLOW = {
    **FLOW,
    "nodes": [
        {**n, "config": {**n["config"], "approvers": {"role": "editor", "caller": True}}}
        if n["type"] == "approval"
        else n
        for n in FLOW["nodes"]
    ],
}


def node(page: Page, node_id: str) -> Locator:
    return page.locator(f'[data-testid="flow-node"][data-node-id="{node_id}"]')


def drop_from_palette(page: Page, node_type: str, x: int, y: int) -> None:
    """An HTML5 drag of a palette item onto the canvas, at (x, y) inside it."""
    page.get_by_test_id(f"palette-{node_type}").drag_to(
        page.get_by_test_id("canvas"), target_position={"x": x, "y": y}
    )


def wire(page: Page, source: Locator, target: Locator) -> None:
    """Drag with the mouse from one handle to another, as a person connects two ports."""
    start, end = source.bounding_box(), target.bounding_box()
    assert start is not None
    assert end is not None
    page.mouse.move(start["x"] + start["width"] / 2, start["y"] + start["height"] / 2)
    page.mouse.down()
    page.mouse.move(end["x"] + end["width"] / 2, end["y"] + end["height"] / 2, steps=12)
    page.mouse.up()


def select(page: Page, node_id: str) -> None:
    node(page, node_id).locator(".fb-node-title").click()
    expect(page.get_by_test_id("node-inspector")).to_contain_text(node_id)


def test_an_owner_builds_saves_and_runs_a_flow_and_a_viewer_only_reads_it(
    new_page,  # type: ignore[no-untyped-def]
    engine_worker: str,
    web_server: str,
    fake_llm: Any,
) -> None:
    org: OrgFixture = make_org(owner=make_user(email=OWNER_EMAIL, name="Bea Builder"))
    viewer = org.add_member(OrgRole.MEMBER, email=VIEWER_EMAIL)
    org.grant(viewer, WorkspaceRole.VIEWER)
    workspace_url = f"/orgs/{org.org.slug}/workspaces/{org.workspace.id}"

    # --- a new flow, from the workspace page ---------------------------------------------
    # daphne, as `make up` serves the console: it streams the run's tokens as they come.
    page: Page = new_page("owner", web_server)
    log_in(page, OWNER_EMAIL)
    page.goto(workspace_url)
    page.get_by_role("button", name="New flow").click()
    page.get_by_label("Name").fill("Answers")
    page.get_by_role("button", name="Create and open").click()
    page.wait_for_url(re.compile(r".*/flows/[0-9a-f-]{36}$"))
    flow_url = page.url

    # --- three nodes, dragged from the (searchable) palette ------------------------------
    page.get_by_label("Search nodes").fill("llm")
    expect(page.get_by_test_id("palette-input")).to_have_count(0)
    drop_from_palette(page, "llm_chat", 210, 60)
    page.get_by_label("Search nodes").fill("")
    drop_from_palette(page, "input", 10, 330)
    drop_from_palette(page, "output", 230, 470)
    expect(page.get_by_test_id("flow-node")).to_have_count(3)
    expect(page.get_by_test_id("unsaved")).to_be_visible()
    # Unsaved work holds the browser's back button: leaving asks first.
    page.go_back()
    leave = page.get_by_role("dialog", name="Leave without saving?")
    expect(leave).to_be_visible()
    leave.get_by_role("button", name="Cancel").click()
    expect(page).to_have_url(flow_url)
    expect(page.get_by_test_id("flow-node")).to_have_count(3)

    # The input node gets a text field `q`: it becomes the node's output port.
    select(page, "input_1")
    form = page.get_by_test_id("config-form")
    form.get_by_role("button", name="Add").click()
    page.locator("#cfg-input_1_fields_0_name").fill("q")
    page.locator("#cfg-input_1_fields_0_type").select_option("text")
    q_port = node(page, "input_1").get_by_test_id("handle-output-q")
    expect(q_port).to_have_attribute("data-port-type", "text")

    # The LLM node talks to the fake provider.
    select(page, "llm_chat_1")
    page.locator("#cfg-llm_chat_1_provider").select_option("fake")
    page.locator("#cfg-llm_chat_1_model").fill("fake-echo")

    # --- an incompatible connection is refused, with its reason --------------------------
    llm = node(page, "llm_chat_1")
    wire(page, q_port, llm.get_by_test_id("handle-input-messages"))
    refused = llm.get_by_test_id("connection-refused")
    expect(refused).to_contain_text("input_1.q (text) cannot feed llm_chat_1.messages (messages)")
    expect(refused).to_contain_text("that input accepts messages, any")
    expect(page.locator(".react-flow__edge")).to_have_count(0)

    # --- the right connections are made -------------------------------------------------
    wire(page, q_port, llm.get_by_test_id("handle-input-prompt"))
    wire(
        page,
        llm.get_by_test_id("handle-output-text"),
        node(page, "output_1").get_by_test_id("handle-input-value"),
    )
    expect(page.locator(".react-flow__edge")).to_have_count(2)
    page.get_by_role("button", name="Auto-layout").click()
    expect(node(page, "input_1")).to_be_in_viewport()
    expect(page.get_by_test_id("problems-count")).to_have_text(
        "none: the flow can run", timeout=10_000
    )

    # --- saved as a version ----------------------------------------------------------------
    page.get_by_role("button", name="Save", exact=True).click()
    page.get_by_label("What changed (optional)").fill("first draft")
    page.get_by_role("button", name="Save version").click()
    expect(page.get_by_test_id("unsaved")).to_have_count(0)
    page.get_by_role("button", name="Versions").click()
    expect(page.get_by_test_id("version-row")).to_contain_text("first draft")
    expect(page.get_by_test_id("version-row")).to_contain_text(OWNER_EMAIL)

    # --- run with an input: tokens stream into the LLM node, the run completes -----------
    page.get_by_role("button", name="Run", exact=True).click()
    page.get_by_role("dialog", name="Run the flow").get_by_label("q", exact=True).fill(QUESTION)
    fake_llm.tokens_per_s = 6  # about two seconds of writing: the text is seen growing
    try:
        page.get_by_role("button", name="Start run").click()
        stream = llm.get_by_test_id("node-stream")
        expect(stream).to_contain_text("Echo: What", timeout=30_000)
        # Part of the answer is in the node while the model is still writing it.
        expect(page.get_by_test_id("builder-run-status")).to_have_attribute(
            "data-status", "running"
        )
        assert "draw?" not in (stream.text_content() or "")
        expect(stream).to_contain_text(f"Echo: {QUESTION}", timeout=30_000)
        expect(page.get_by_test_id("builder-run-status")).to_have_attribute(
            "data-status", "completed", timeout=30_000
        )
    finally:
        fake_llm.tokens_per_s = None
    for node_id in ("input_1", "llm_chat_1", "output_1"):
        expect(node(page, node_id)).to_have_attribute("data-run-state", "done")
    # The LLM node's details: what went in and out, its events and its cost.
    select_run = llm.locator(".fb-node-title")
    select_run.click()
    panel = page.get_by_test_id("node-run-panel")
    expect(panel).to_contain_text(QUESTION)
    expect(panel).to_contain_text("NODE_COMPLETED")
    expect(panel).to_contain_text("$")

    # --- a finished run replays from its events, in another page -------------------------
    expect(page).to_have_url(re.compile(r"[?&]run=[0-9a-f-]{36}"))
    replay: Page = new_page("replay", web_server)
    log_in(replay, OWNER_EMAIL)
    replay.goto(page.url)
    for node_id in ("input_1", "llm_chat_1", "output_1"):
        expect(node(replay, node_id)).to_have_attribute("data-run-state", "done")
    expect(node(replay, "llm_chat_1").get_by_test_id("node-stream")).to_contain_text(
        f"Echo: {QUESTION}"
    )
    expect(replay.get_by_test_id("builder-run-status")).to_have_attribute(
        "data-status", "completed"
    )

    # --- a second version; the first one opens read-only -----------------------------------
    first_version = page.get_by_test_id("version-row").first.get_attribute("data-hash")
    page.get_by_role("button", name="Close run view").click()
    select(page, "output_1")
    page.locator("#cfg-output_1_name").fill("reply")
    page.get_by_role("button", name="Save", exact=True).click()
    page.get_by_label("What changed (optional)").fill("renamed the output")
    page.get_by_role("button", name="Save version").click()
    expect(page.get_by_test_id("unsaved")).to_have_count(0)
    expect(page.get_by_test_id("version-row")).to_have_count(2)
    page.goto(f"{flow_url}?version={first_version}")
    expect(page.get_by_test_id("old-version")).to_be_visible()
    expect(page.get_by_test_id("read-only")).to_be_visible()
    expect(page.get_by_test_id("palette")).to_have_count(0)
    expect(page.get_by_test_id("flow-node")).to_have_count(3)
    select(page, "output_1")
    expect(page.locator("#cfg-output_1_name")).to_have_value("output_1")
    expect(page.locator("#cfg-output_1_name")).to_be_disabled()

    # --- a viewer reads the flow but cannot change it -------------------------------------
    reader: Page = new_page("viewer", web_server)
    log_in(reader, VIEWER_EMAIL)
    reader.goto(flow_url)
    expect(reader.get_by_test_id("flow-node")).to_have_count(3)
    expect(reader.get_by_test_id("read-only")).to_be_visible()
    expect(reader.get_by_test_id("palette")).to_have_count(0)
    expect(reader.get_by_role("button", name="Save", exact=True)).to_have_count(0)
    expect(reader.get_by_role("button", name="Run", exact=True)).to_have_count(0)
    handle = node(reader, "input_1").get_by_test_id("handle-output-q")
    expect(handle).not_to_have_class(re.compile(r"\bconnectable\b"))
    expect(reader.locator(".react-flow__node.draggable")).to_have_count(0)
    wire(reader, handle, node(reader, "llm_chat_1").get_by_test_id("handle-input-messages"))
    expect(reader.locator(".react-flow__edge")).to_have_count(2)
    node(reader, "llm_chat_1").locator(".fb-node-title").click()
    expect(reader.locator("#cfg-llm_chat_1_model")).to_be_disabled()


def test_a_run_waiting_for_approval_is_answered_on_the_canvas(
    new_page,  # type: ignore[no-untyped-def]
    engine_worker: str,
    web_server: str,
) -> None:
    """The live run view shows the node paused for a person, and the approval is answered
    right there; the run goes on to its end without a reload."""
    org: OrgFixture = make_org(owner=make_user(email="pia.pauses@example.com", name="Pia"))
    base = f"/api/orgs/{org.org.slug}/workspaces/{org.workspace.id}"
    page: Page = new_page("owner", web_server)
    log_in(page, "pia.pauses@example.com")
    flow = api_post(page, f"{base}/flows", {"name": "Payments", "document": APPROVAL_FLOW})
    run = api_post(page, f"{base}/flows/{flow['id']}/runs", {"inputs": {"amount": 120}})
    page.goto(
        f"/orgs/{org.org.slug}/workspaces/{org.workspace.id}/flows/{flow['id']}?run={run['id']}"
    )

    expect(node(page, "ask")).to_have_attribute("data-run-state", "paused", timeout=30_000)
    expect(node(page, "inp")).to_have_attribute("data-run-state", "done")
    waiting = page.get_by_role("region", name="Waiting for approval")
    expect(waiting).to_contain_text("Pay 120 EUR?")
    waiting.get_by_role("button", name="Approve").click()

    expect(page.get_by_test_id("builder-run-status")).to_have_attribute(
        "data-status", "completed", timeout=30_000
    )
    for node_id in ("inp", "ask", "paid"):
        expect(node(page, node_id)).to_have_attribute("data-run-state", "done")
    expect(waiting.get_by_test_id("run-request")).to_have_attribute("data-status", "approved")
