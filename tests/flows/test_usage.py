"""LLM usage: one ledger record per call, with the tenant, flow, owner and caller of the run,
the tokens the provider reported and the cost from the model catalogue."""

import asyncio
import uuid
from typing import Any

import pytest

from billing.worker import CostControl
from engine.llm import model_info
from flows.models import LLMUsage
from tenants.roles import WorkspaceRole
from tests.factories import OrgFixture, make_org
from tests.flows.test_flows_api import base, create_flow, wait_run

ASK = {
    "schema": 1,
    "nodes": [
        {"id": "inp", "type": "input", "config": {"fields": [{"name": "q", "type": "text"}]}},
        {"id": "ask", "type": "llm_chat", "config": {"provider": "fake", "model": "fake-echo"}},
        {"id": "out", "type": "output", "config": {"name": "answer"}},
    ],
    "edges": [{"from": "inp.q", "to": "ask.prompt"}, {"from": "ask.text", "to": "out.value"}],
}


def _start(client: Any, org: OrgFixture, flow_id: str, q: str) -> dict[str, Any]:
    response = client.post(
        f"{base(org)}/flows/{flow_id}/runs", {"inputs": {"q": q}}, content_type="application/json"
    )
    assert response.status_code == 201, response.content
    return dict(response.json())


@pytest.mark.django_db(transaction=True)
def test_each_llm_call_is_recorded_once_with_its_catalogue_cost(
    engine_worker: str, org: OrgFixture, client_for: Any
) -> None:
    client = client_for(org.owner)
    flow_id = create_flow(client, org, ASK)
    run = _start(client, org, flow_id, "How long is a piece of string?")
    assert wait_run(client, org, run["id"])["status"] == "completed"

    usage = client.get(f"{base(org)}/runs/{run['id']}/usage")
    assert usage.status_code == 200, usage.content
    body = usage.json()
    [call] = body["calls"]
    events = client.get(f"{base(org)}/runs/{run['id']}/events").json()
    [reported] = [e["payload"] for e in events if e["type"] == "LLM_USAGE"]
    assert (call["provider"], call["model"], call["node_id"], call["call_index"]) == (
        "fake",
        "fake-echo",
        "ask",
        1,
    )
    assert call["input_tokens"] == reported["input_tokens"] > 0
    assert call["output_tokens"] == reported["output_tokens"] > 0
    info = model_info("fake", "fake-echo")
    assert info is not None
    expected = info.cost_micros(call["input_tokens"], call["output_tokens"])
    assert call["cost_micros"] == expected == reported["cost_micros"] > 0
    assert body["cost_micros"] == expected
    assert body["input_tokens"] == call["input_tokens"]

    row = LLMUsage.objects.get(run_id=run["id"])
    assert (row.organization_id, row.workspace_id, str(row.flow_id)) == (
        org.org.id,
        org.workspace.id,
        flow_id,
    )
    assert row.caller_id == org.owner.id
    assert row.flow_owner_id == org.owner.id

    # Another organisation cannot read it.
    other = make_org()
    stranger = client_for(other.owner).get(
        f"/api/orgs/{other.org.slug}/workspaces/{other.workspace.id}/runs/{run['id']}/usage"
    )
    assert stranger.status_code == 404


@pytest.mark.django_db(transaction=True)
def test_a_fork_is_billed_to_whoever_forked_it(
    engine_worker: str, org: OrgFixture, client_for: Any
) -> None:
    owner = client_for(org.owner)
    flow_id = create_flow(owner, org, ASK)
    run = _start(owner, org, flow_id, "Tell me about forks")
    assert wait_run(owner, org, run["id"])["status"] == "completed"
    editor_user = org.add_member("member")
    org.grant(editor_user, WorkspaceRole.EDITOR)
    editor = client_for(editor_user)
    forked = editor.post(
        f"{base(org)}/runs/{run['id']}/fork", {"node": "ask"}, content_type="application/json"
    )
    assert forked.status_code == 201, forked.content
    assert wait_run(editor, org, forked.json()["id"])["status"] == "completed"

    original = LLMUsage.objects.get(run_id=run["id"])
    fork = LLMUsage.objects.get(run_id=forked.json()["id"])
    assert original.caller_id == org.owner.id
    assert fork.caller_id == editor_user.id
    assert fork.flow_owner_id == org.owner.id  # the version's author, as in the original
    assert fork.cost_micros == original.cost_micros > 0


@pytest.mark.django_db(transaction=True)
def test_the_ledger_records_a_call_once_however_often_it_is_reported(
    test_database_url: str, org: OrgFixture, client_for: Any
) -> None:
    """A step that re-executes reports its calls again under the same numbers: the ledger
    keeps the first record of each. A child run's calls go to the run a user started."""
    from flows.models import Run

    client = client_for(org.owner)
    flow_id = create_flow(client, org, ASK)
    flow = org.workspace.flows.get(id=flow_id)
    run = Run.objects.create(
        workspace=org.workspace,
        flow=flow,
        flow_version=flow.current_version,
        flow_owner=org.owner,
        caller=org.owner,
    )
    ledger = CostControl(test_database_url)
    usage = {
        "provider": "openai",
        "model": "gpt-4o-mini",
        "input_tokens": 1200,
        "output_tokens": 300,
        "cost_micros": 360,
    }

    async def report() -> None:
        await ledger.record(str(run.id), "ask", 1, {}, usage)
        await ledger.record(str(run.id), "ask", 1, {}, {**usage, "output_tokens": 999})
        await ledger.record(str(run.id), "ask", 2, {}, usage)
        await ledger.record(f"{run.id}:map:3", "ask", 1, {}, usage)  # a child run's call
        await ledger.record(str(uuid.uuid4()), "ask", 1, {}, usage)  # no such run: nothing
        await ledger.record("not-a-run", "ask", 1, {}, usage)

    asyncio.run(report())
    rows = list(
        LLMUsage.objects.order_by("id").values_list("run_key", "call_index", "output_tokens")
    )
    assert rows == [(str(run.id), 1, 300), (str(run.id), 2, 300), (f"{run.id}:map:3", 1, 300)]
    assert {r.run_id for r in LLMUsage.objects.all()} == {run.id}
    assert client.get(f"{base(org)}/runs/{run.id}/usage").json()["cost_micros"] == 3 * 360


@pytest.mark.django_db(transaction=True)
def test_usage_is_recorded_once_per_call_when_the_worker_dies_between_two_calls(
    session_worker_paused: str, fake_llm: Any, org: OrgFixture, client_for: Any
) -> None:
    """A structured-output node makes two calls (a bad reply, then its repair). The worker is
    killed after the first call was recorded, while the second is being written; the step
    runs again from the start and makes both calls again, yet the ledger has one record per
    call and the run's cost is that of two calls."""
    import time

    import psycopg

    from tests.engine.harness import Worker

    client = client_for(org.owner)
    document = {
        "schema": 1,
        "nodes": [
            {"id": "q", "type": "input", "config": {"fields": [{"name": "q", "type": "text"}]}},
            {
                "id": "extract",
                "type": "structured_output",
                "config": {
                    "provider": "fake",
                    "model": "fake-echo",
                    "schema": {
                        "type": "object",
                        "required": ["n"],
                        "properties": {"n": {"type": "integer"}, "note": {"type": "string"}},
                    },
                },
            },
            {"id": "out", "type": "output", "config": {"name": "data"}},
        ],
        "edges": [
            {"from": "q.q", "to": "extract.prompt"},
            {"from": "extract.data", "to": "out.value"},
        ],
    }
    flow_id = create_flow(client, org, document)
    note = " ".join(f"word{i}" for i in range(40))
    fake_llm.script.add("count the moons", reply="nope")
    fake_llm.script.add("does not match the json schema", reply=f'{{"n": 7, "note": "{note}"}}')
    seen_before = len(fake_llm.requests)
    worker = Worker(session_worker_paused, f"usage-kill-{org.org.slug}", platform=True)
    fake_llm.tokens_per_s = 15  # the repair takes about three seconds to write
    try:
        run = _start(client, org, flow_id, "Count the moons of Mars")
        with psycopg.connect(session_worker_paused, autocommit=True) as conn:

            def recorded() -> int:
                row = conn.execute(
                    "SELECT count(*) FROM flows_llmusage WHERE run_key = %s", (run["id"],)
                ).fetchone()
                return int(row[0]) if row else 0

            until = time.monotonic() + 30
            while recorded() < 1:
                assert time.monotonic() < until, "the first call was never recorded"
                time.sleep(0.02)
            assert recorded() == 1  # the repair call is still being written
        worker.kill9()
        worker = Worker(session_worker_paused, f"usage-kill-{org.org.slug}", platform=True)
        done = wait_run(client, org, run["id"], timeout=60)
    finally:
        fake_llm.tokens_per_s = None
        worker.stop()
    assert done["status"] == "completed", done["error"]
    assert done["outputs"]["data"]["n"] == 7
    calls = len(fake_llm.requests) - seen_before
    assert calls >= 3, "the step did not run again after the kill"
    rows = list(LLMUsage.objects.filter(run_id=run["id"]).order_by("call_index"))
    assert [(r.node_id, r.call_index) for r in rows] == [("extract", 1), ("extract", 2)]
    info = model_info("fake", "fake-echo")
    assert info is not None
    for row in rows:
        assert row.cost_micros == info.cost_micros(row.input_tokens, row.output_tokens) > 0
    usage = client.get(f"{base(org)}/runs/{run['id']}/usage").json()
    assert usage["cost_micros"] == sum(r.cost_micros for r in rows)
