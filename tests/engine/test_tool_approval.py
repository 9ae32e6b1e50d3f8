"""Tool calls that need a person's approval, on real workers against the fake provider: the
call waits (no child run) until it is approved, approved with other arguments, or refused;
each call of a turn has its own request; a refusal or a timeout is told to the model, which
answers; a worker killed while the call waits finds the same request after its restart."""

import json
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

import engine
from engine.llm import FakeLLMServer
from tests.engine.harness import (
    Worker,
    chain,
    enqueue,
    fresh_database,
    status,
    wait_for,
    wait_terminal,
)
from tests.engine.test_agent_node import (
    FORECAST_FLOW,
    PARAMETERS,
    agent_events,
    agent_flow,
    env_for,
    started_children,
    tool,
)

SUBFLOWS = {FORECAST_FLOW: chain(("forecast", 0))}  # input x -> "<x>-forecast" as `result`
APPROVERS = {"role": "owner", "users": ["Ana@Example.com"], "caller": False}


@pytest.fixture(scope="module")
def shared_llm() -> Iterator[FakeLLMServer]:
    with FakeLLMServer() as server, pytest.MonkeyPatch.context() as env:
        env_for(server, env)
        yield server


@pytest.fixture
def llm(shared_llm: FakeLLMServer) -> FakeLLMServer:
    shared_llm.script.clear()
    shared_llm.requests.clear()
    return shared_llm


@pytest.fixture(scope="module")
def url(shared_llm: FakeLLMServer) -> Iterator[str]:
    with fresh_database("ff_toolcall") as database_url:
        worker = Worker(database_url, "toolcall-1")
        try:
            yield database_url
        finally:
            worker.stop()


def approval_flow(prompt: str, **tool_approval: Any) -> dict[str, Any]:
    return agent_flow(
        prompt,
        tools=[tool(approval=True)],
        tool_approval={"approvers": APPROVERS, **tool_approval},
    )


def requests_of(url: str, run_id: str) -> dict[str, tuple[dict[str, Any], Any, Any]]:
    """The run's requests by key: (request, created_at, answer)."""
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT node_id, request, created_at, answer FROM fireflow.human_request "
            "WHERE run_id = %s ORDER BY node_id",
            (run_id,),
        ).fetchall()
    return {r[0]: (r[1], r[2], r[3]) for r in rows}


def answer(
    url: str,
    run_id: str,
    key: str,
    outcome: str,
    *,
    comment: str = "",
    arguments: dict[str, Any] | None = None,
) -> engine.AnswerResult:
    with psycopg.connect(url) as conn, conn.cursor() as cursor:
        return engine.answer_request(
            cursor,
            run_id=run_id,
            node_id=key,
            outcome=outcome,  # type: ignore[arg-type]
            by="ana@example.com",
            comment=comment,
            arguments=arguments,
        )


def child_inputs(url: str, child_id: str) -> dict[str, Any]:
    with psycopg.connect(url) as conn:
        row = conn.execute(
            "SELECT inputs FROM dbos.workflow_input WHERE workflow_uuid = %s", (child_id,)
        ).fetchone()
    assert row is not None, f"no child run {child_id}"
    stored = json.loads(row[0])
    args = (
        stored.get("positionalArgs") or stored.get("args") if isinstance(stored, dict) else stored
    )
    assert isinstance(args, list), stored
    inputs: dict[str, Any] = args[2]  # run_workflow(run_id, document, inputs, meta)
    return inputs


def typed(events: list[dict[str, Any]], *types: str) -> list[tuple[str, dict[str, Any]]]:
    return [(e["type"], e["payload"]) for e in events if e["type"] in types]


def test_a_proposed_call_waits_and_runs_once_approved(url: str, llm: FakeLLMServer) -> None:
    llm.script.add("weather in paris", tool_call={"name": "forecast", "arguments": {"x": "Paris"}})
    run_id = enqueue(
        url, approval_flow("What is the weather in Paris?"), {}, meta={"subflows": SUBFLOWS}
    )
    key = "agent:tool:0:0"
    wait_for(lambda: typed(agent_events(url, run_id), "HITL_REQUESTED"), 30, "the call to be asked")
    waiting = requests_of(url, run_id)
    assert list(waiting) == [key]
    request, _, stored_answer = waiting[key]
    assert stored_answer is None
    [(_, start)] = typed(agent_events(url, run_id), "TOOL_CALL_START")
    assert {k: request[k] for k in ("kind", "tool", "description", "arguments", "parameters")} == {
        "kind": "tool_call",
        "tool": "forecast",
        "description": "The weather forecast for a city",
        "arguments": {"x": "Paris"},
        "parameters": PARAMETERS,
    }
    assert (request["tool_call_id"], request["node"]) == (start["tool_call_id"], "agent")
    assert request["approvers"] == {"role": "owner", "users": ["ana@example.com"], "caller": False}
    assert status(url, f"{run_id}:{key}")[0] is None  # nothing ran while the call waits
    assert started_children(url, run_id) == []

    assert answer(url, run_id, key, "approved", comment="go ahead").status == "answered"
    state, output = wait_terminal(url, run_id)
    assert state == "SUCCESS", output
    assert output["status"] == "completed", output
    assert output["outputs"]["answer"] == 'Tool result: {"result": "Paris-forecast"}'
    assert started_children(url, run_id) == [f"{run_id}:{key}"]
    assert child_inputs(url, f"{run_id}:{key}") == {"x": "Paris"}

    # the call as streamed, then the request, its answer and the result, for this call id
    call_id = start["tool_call_id"]
    timeline = [
        (kind, p)
        for kind, p in typed(
            agent_events(url, run_id),
            "TOOL_CALL_END",
            "HITL_REQUESTED",
            "HITL_RESOLVED",
            "TOOL_CALL_RESULT",
        )
        if p.get("tool_call_id") == call_id
    ]
    assert [kind for kind, _ in timeline] == [
        "TOOL_CALL_END",
        "HITL_REQUESTED",
        "HITL_RESOLVED",
        "TOOL_CALL_RESULT",
    ]
    asked, resolved = timeline[1][1], timeline[2][1]
    assert (asked["kind"], asked["request"], asked["tool"], asked["arguments"]) == (
        "tool_call",
        key,
        "forecast",
        {"x": "Paris"},
    )
    assert (resolved["outcome"], resolved["by"], resolved["comment"]) == (
        "approved",
        "ana@example.com",
        "go ahead",
    )
    assert "arguments" not in resolved  # approved as proposed
    # a second answer changes nothing
    again = answer(url, run_id, key, "rejected")
    assert (again.status, (again.answer or {})["outcome"]) == ("already_answered", "approved")


def test_edited_arguments_are_the_ones_the_tool_runs_with(url: str, llm: FakeLLMServer) -> None:
    llm.script.add("weather in nice", tool_call={"name": "forecast", "arguments": {"x": "Nice"}})
    run_id = enqueue(
        url, approval_flow("What is the weather in Nice?"), {}, meta={"subflows": SUBFLOWS}
    )
    key = "agent:tool:0:0"
    wait_for(lambda: requests_of(url, run_id), 30, "the tool call's request")
    result = answer(url, run_id, key, "approved", arguments={"x": "Lyon"})
    assert result.status == "answered"
    state, output = wait_terminal(url, run_id)
    assert state == "SUCCESS", output
    assert output["status"] == "completed", output

    assert child_inputs(url, f"{run_id}:{key}") == {"x": "Lyon"}
    assert output["outputs"]["answer"] == 'Tool result: {"result": "Lyon-forecast"}'
    # the transcript says what was called: the edited arguments
    transcript = output["outputs"]["transcript"]
    assert transcript[1]["tool_calls"][0]["arguments"] == {"x": "Lyon"}
    events = agent_events(url, run_id)
    [(_, resolved)] = typed(events, "HITL_RESOLVED")
    assert resolved["arguments"] == {"x": "Lyon"}
    [(_, outcome)] = typed(events, "TOOL_CALL_RESULT")
    assert outcome["result"] == {"result": "Lyon-forecast"}
    assert outcome["arguments"] == {"x": "Lyon"}
    assert requests_of(url, run_id)[key][2]["arguments"] == {"x": "Lyon"}


def test_each_call_has_its_own_request_and_a_refusal_is_told_to_the_model(
    url: str, llm: FakeLLMServer
) -> None:
    llm.script.add(
        "weather in rome and oslo",
        tool_call=[
            {"name": "forecast", "arguments": {"x": "Rome"}},
            {"name": "forecast", "arguments": {"x": "Oslo"}},
        ],
    )
    document = approval_flow("What is the weather in Rome and Oslo?")
    run_id = enqueue(url, document, {}, meta={"subflows": SUBFLOWS})
    keys = ["agent:tool:0:0", "agent:tool:0:1"]
    wait_for(lambda: list(requests_of(url, run_id)) == keys, 30, "both requests")
    asked = requests_of(url, run_id)
    assert [asked[k][0]["arguments"] for k in keys] == [{"x": "Rome"}, {"x": "Oslo"}]

    assert (
        answer(url, run_id, keys[1], "rejected", comment="Oslo is not on the trip").status
        == "answered"
    )
    assert answer(url, run_id, keys[0], "approved").status == "answered"
    state, output = wait_terminal(url, run_id)
    assert state == "SUCCESS", output
    assert output["status"] == "completed", output

    assert started_children(url, run_id) == [f"{run_id}:{keys[0]}"]  # the refused one: none
    assert status(url, f"{run_id}:{keys[1]}")[0] is None
    refusal = 'a person refused this call; it was not run. Their comment: "Oslo is not on the trip"'
    # the fake model answers with what the last tool result said: it carried on
    assert output["outputs"]["answer"] == f"Tool result: error: {refusal}"
    transcript = output["outputs"]["transcript"]
    assert [m["role"] for m in transcript] == ["user", "assistant", "tool", "tool", "assistant"]
    assert transcript[3]["content"] == f"error: {refusal}"
    assert transcript[3]["is_error"] is True
    results = [p for _, p in typed(agent_events(url, run_id), "TOOL_CALL_RESULT")]
    assert results[1] == {
        "tool_call_id": transcript[1]["tool_calls"][1]["id"],
        "error": refusal,
        "refused": True,
    }
    # what the model was sent on its second turn carried the refusal and the comment
    assert "Oslo is not on the trip" in json.dumps(llm.requests[1].body)


def test_a_call_nobody_answers_in_time_is_refused_by_default(url: str, llm: FakeLLMServer) -> None:
    llm.script.add("weather in bern", tool_call={"name": "forecast", "arguments": {"x": "Bern"}})
    run_id = enqueue(
        url,
        approval_flow("What is the weather in Bern?", timeout_seconds=1),
        {},
        meta={"subflows": SUBFLOWS},
    )
    state, output = wait_terminal(url, run_id)
    assert state == "SUCCESS", output
    assert output["status"] == "completed", output
    assert output["outputs"]["answer"] == (
        "Tool result: error: not run: nobody approved this call before its deadline"
    )
    assert started_children(url, run_id) == []
    late = answer(url, run_id, "agent:tool:0:0", "approved")
    assert (late.status, (late.answer or {})["outcome"]) == ("expired", "timed_out")


def test_the_approval_settings_are_checked_with_the_flow() -> None:
    with pytest.raises(engine.FlowInvalid, match="on_timeout"):
        engine.parse_flow(approval_flow("hi", on_timeout="later"))
    with pytest.raises(engine.FlowInvalid, match="approval"):
        engine.parse_flow(agent_flow("hi", tools=[tool(approval="yes")]))
    with pytest.raises(engine.FlowInvalid, match="role"):
        engine.parse_flow(approval_flow("hi", approvers={"role": "boss"}))


@pytest.mark.durability
def test_a_worker_killed_while_a_call_waits_finds_the_same_request(llm: FakeLLMServer) -> None:
    llm.script.add("weather in lima", tool_call={"name": "forecast", "arguments": {"x": "Lima"}})
    key = "agent:tool:0:0"
    with fresh_database("ff_toolcall") as database_url:
        worker = Worker(database_url, "toolcall-crash")
        try:
            run_id = enqueue(
                database_url,
                approval_flow("What is the weather in Lima?"),
                {},
                meta={"subflows": SUBFLOWS},
            )
            wait_for(lambda: requests_of(database_url, run_id), 30, "the tool call's request")
            first = requests_of(database_url, run_id)
            worker.kill9()
            # After the restart the model proposes another city: the request already made
            # (what the approver sees) is the one that counts.
            llm.script.clear()
            llm.script.add(
                "weather in lima", tool_call={"name": "forecast", "arguments": {"x": "Berlin"}}
            )
            asked = len(llm.requests)
            worker = Worker(database_url, "toolcall-crash")
            # the re-executed step asked the model again (and proposes Berlin now)
            wait_for(lambda: len(llm.requests) > asked, 30, "the step to run again")
            assert requests_of(database_url, run_id) == first  # one request, unchanged
            assert started_children(database_url, run_id) == []
            assert answer(database_url, run_id, key, "approved").status == "answered"
            state, output = wait_terminal(database_url, run_id, timeout=60)
        finally:
            worker.stop()
        assert state == "SUCCESS", output
        assert output["status"] == "completed", output
        assert output["outputs"]["answer"] == 'Tool result: {"result": "Lima-forecast"}'
        assert started_children(database_url, run_id) == [f"{run_id}:{key}"]
        assert child_inputs(database_url, f"{run_id}:{key}") == {"x": "Lima"}
        transcript = output["outputs"]["transcript"]
        assert transcript[1]["tool_calls"][0]["arguments"] == {"x": "Lima"}
        [(_, resolved)] = typed(agent_events(database_url, run_id), "HITL_RESOLVED")
        assert (resolved["outcome"], resolved["request"]) == ("approved", key)
