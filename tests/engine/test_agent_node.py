"""Tool calls through the real OpenAI and Anthropic SDKs against the fake provider, and the
agent node end to end: tools are flows run as child runs by a real worker, every tool call
is a run event, bad arguments and failed tools go back to the model, and running out of
turns says what to do."""

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import pytest

import engine
from engine import MemoryEventSink, RunResult, run_flow
from engine._net import allow_list
from engine.llm import FakeLLMServer
from engine.llm._providers import ChatRequest, ChatResult, ToolCallDelta, chat
from tests.engine.harness import (
    Worker,
    chain,
    enqueue,
    fresh_database,
    ledger_like,
    status,
    wait_for,
    wait_terminal,
)

FORECAST_FLOW = "6f1c5c1e-0000-4000-8000-00000000a9e1"
BROKEN_FLOW = "6f1c5c1e-0000-4000-8000-00000000a9e2"
NOWHERE_FLOW = "6f1c5c1e-0000-4000-8000-00000000a9e3"  # never pinned
PARAMETERS = {
    "type": "object",
    "properties": {"x": {"type": "string", "description": "a city"}},
    "required": ["x"],
    "additionalProperties": False,
}
FORECAST = {
    "name": "forecast",
    "description": "The weather forecast for a city",
    "parameters": PARAMETERS,
}
MODELS = {"openai": "gpt-4o-mini", "anthropic": "claude-haiku-4-5", "fake": "fake-echo"}


def env_for(server: FakeLLMServer, env: pytest.MonkeyPatch) -> None:
    env.setenv("FIREFLOW_FAKE_LLM_URL", server.url)
    env.setenv("OPENAI_API_KEY", "k")
    env.setenv("OPENAI_BASE_URL", server.url + "/v1")
    env.setenv("ANTHROPIC_API_KEY", "k")
    env.setenv("ANTHROPIC_BASE_URL", server.url)


@pytest.fixture(scope="module")
def shared_llm() -> Iterator[FakeLLMServer]:
    """One fake provider for the module, its address in the environment the worker
    inherits."""
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
    """A database of the module's own, with one worker serving it."""
    with fresh_database("ff_agent") as database_url:
        worker = Worker(database_url, "agent-1")
        try:
            yield database_url
        finally:
            worker.stop()


# --- the provider layer: tool calls on the wire -------------------------------------------


class Recorder:
    def __init__(self) -> None:
        self.text: list[str] = []
        self.deltas: list[ToolCallDelta] = []

    async def on_text(self, text: str) -> None:
        self.text.append(text)

    async def on_tool_call(self, delta: ToolCallDelta) -> None:
        self.deltas.append(delta)


def call(request: ChatRequest, recorder: Recorder | None = None) -> ChatResult:
    recorder = recorder or Recorder()
    return asyncio.run(chat(request, allow_list(None), recorder.on_text, recorder.on_tool_call))


@pytest.mark.parametrize(
    ("provider", "stop", "wire_tools"),
    [
        (
            "openai",
            "tool_calls",
            [{"type": "function", "function": FORECAST}],
        ),
        (
            "anthropic",
            "tool_use",
            [
                {
                    "name": "forecast",
                    "description": FORECAST["description"],
                    "input_schema": PARAMETERS,
                }
            ],
        ),
    ],
)
def test_streamed_tool_calls_come_back_whole_and_as_deltas(
    llm: FakeLLMServer, provider: str, stop: str, wire_tools: list[dict[str, Any]]
) -> None:
    llm.script.add(
        "weather",
        tool_call=[
            {"name": "forecast", "arguments": {"x": "Paris"}},
            {"name": "forecast", "arguments": {"x": "Rome"}},
        ],
    )
    recorder = Recorder()
    request = ChatRequest(
        provider=provider,
        model=MODELS[provider],
        messages=[{"role": "user", "content": "weather in Paris and Rome?"}],
        tools=[FORECAST],
    )
    result = call(request, recorder)

    assert result.stop_reason == stop
    assert [(c["name"], c["arguments"]) for c in result.tool_calls] == [
        ("forecast", {"x": "Paris"}),
        ("forecast", {"x": "Rome"}),
    ]
    ids = [c["id"] for c in result.tool_calls]
    assert all(ids)
    assert len(set(ids)) == 2
    for tool_call in result.tool_calls:
        mine = [d for d in recorder.deltas if d.id == tool_call["id"]]
        kinds = [d.kind for d in mine]
        assert (kinds[0], kinds[-1]) == ("start", "end")
        assert set(kinds[1:-1]) == {"args"}
        assert len(kinds) > 4  # streamed in pieces
        assert mine[0].name == "forecast"
        assert json.loads("".join(d.arguments for d in mine)) == tool_call["arguments"]
    assert result.input_tokens > 0
    assert result.output_tokens > 0
    assert result.text == "".join(recorder.text) == ""
    body = llm.requests[-1].body
    assert body is not None
    assert body["stream"] is True
    assert body["tools"] == wire_tools


def test_openai_tool_results_go_back_in_its_wire_format(llm: FakeLLMServer) -> None:
    llm.script.add("weather", tool_call={"name": "forecast", "arguments": {}}, reply="Sunny.")
    messages: list[dict[str, Any]] = [
        {"role": "user", "content": "weather in Paris and Rome?"},
        {
            "role": "assistant",
            "content": "",
            "tool_calls": [
                {"id": "call_1", "name": "forecast", "arguments": {"x": "Paris"}},
                {"id": "call_2", "name": "forecast", "arguments": {"x": "Rome"}},
            ],
        },
        {"role": "tool", "tool_call_id": "call_1", "name": "forecast", "content": "21 C"},
        {"role": "tool", "tool_call_id": "call_2", "content": "error: down", "is_error": True},
    ]
    request = ChatRequest("openai", "gpt-4o-mini", messages, system="Be brief.", tools=[FORECAST])
    result = call(request)

    assert (result.text, result.tool_calls, result.stop_reason) == ("Sunny.", [], "stop")
    body = llm.requests[-1].body
    assert body is not None
    assert body["messages"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "weather in Paris and Rome?"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "forecast", "arguments": '{"x": "Paris"}'},
                },
                {
                    "id": "call_2",
                    "type": "function",
                    "function": {"name": "forecast", "arguments": '{"x": "Rome"}'},
                },
            ],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": "21 C"},
        {"role": "tool", "tool_call_id": "call_2", "content": "error: down"},
    ]


def test_anthropic_tool_results_go_back_in_its_wire_format(llm: FakeLLMServer) -> None:
    llm.script.add("weather", tool_call={"name": "forecast", "arguments": {}})
    messages: list[dict[str, Any]] = [
        {"role": "user", "content": "weather in Paris and Rome?"},
        {
            "role": "assistant",
            "content": "Let me look.",
            "tool_calls": [
                {"id": "toolu_1", "name": "forecast", "arguments": {"x": "Paris"}},
                {"id": "toolu_2", "name": "forecast", "arguments": {"x": "Rome"}},
            ],
        },
        {"role": "tool", "tool_call_id": "toolu_1", "name": "forecast", "content": "21 C"},
        {"role": "tool", "tool_call_id": "toolu_2", "content": "error: down", "is_error": True},
    ]
    result = call(ChatRequest("anthropic", "claude-haiku-4-5", messages, tools=[FORECAST]))

    # the fake answers a conversation ending in tool results with what they said
    assert result.text == "Tool result: 21 C\nerror: down"
    assert (result.tool_calls, result.stop_reason) == ([], "end_turn")
    body = llm.requests[-1].body
    assert body is not None
    assert body["messages"] == [
        {"role": "user", "content": "weather in Paris and Rome?"},
        {
            "role": "assistant",
            "content": [
                {"type": "text", "text": "Let me look."},
                {"type": "tool_use", "id": "toolu_1", "name": "forecast", "input": {"x": "Paris"}},
                {"type": "tool_use", "id": "toolu_2", "name": "forecast", "input": {"x": "Rome"}},
            ],
        },
        {  # results of one turn share one user message: the API wants turns to alternate
            "role": "user",
            "content": [
                {"type": "tool_result", "tool_use_id": "toolu_1", "content": "21 C"},
                {
                    "type": "tool_result",
                    "tool_use_id": "toolu_2",
                    "content": "error: down",
                    "is_error": True,
                },
            ],
        },
    ]


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
def test_calls_without_tools_send_none(llm: FakeLLMServer, provider: str) -> None:
    messages = [{"role": "user", "content": "hello"}]
    result = call(ChatRequest(provider, MODELS[provider], messages))
    assert (result.text, result.tool_calls) == ("Echo: hello", [])
    body = llm.requests[-1].body
    assert body is not None
    assert "tools" not in body
    assert body["messages"][-1] == {"role": "user", "content": "hello"}


# --- the agent node in process (no tools: no child runs) ----------------------------------


def agent_flow(prompt: str, **config: Any) -> dict[str, Any]:
    config = {"provider": "fake", "model": "fake-echo", **config}
    return {
        "schema": 1,
        "nodes": [
            {"id": "q", "type": "constant", "config": {"value": prompt, "type": "text"}},
            {"id": "agent", "type": "agent", "config": config},
            {"id": "answer", "type": "output", "config": {"name": "answer"}},
            {"id": "transcript", "type": "output", "config": {"name": "transcript"}},
            {"id": "usage", "type": "output", "config": {"name": "usage"}},
        ],
        "edges": [
            {"from": "q.value", "to": "agent.prompt"},
            {"from": "agent.text", "to": "answer.value"},
            {"from": "agent.messages", "to": "transcript.value"},
            {"from": "agent.usage", "to": "usage.value"},
        ],
    }


def tool(flow_id: str = FORECAST_FLOW, **overrides: Any) -> dict[str, Any]:
    return {**FORECAST, "flow_id": flow_id, **overrides}


def run_here(document: dict[str, Any]) -> tuple[RunResult, MemoryEventSink]:
    sink = MemoryEventSink()
    return asyncio.run(run_flow(document, {}, events=sink)), sink


def test_an_agent_without_tools_answers_like_a_chat(llm: FakeLLMServer) -> None:
    result, sink = run_here(agent_flow("Say hello to the team"))
    assert result.status == "completed", result.error
    assert result.outputs["answer"] == "Echo: Say hello to the team"
    assert result.outputs["transcript"] == [
        {"role": "user", "content": "Say hello to the team"},
        {"role": "assistant", "content": "Echo: Say hello to the team"},
    ]
    chunks = [e.payload["text"] for e in sink.events if e.type == "STREAM_CHUNK"]
    assert len(chunks) > 1
    assert "".join(chunks) == result.outputs["answer"]
    usage = result.outputs["usage"]
    assert usage["calls"] == 1
    assert usage["input_tokens"] > 0
    assert usage["output_tokens"] > 0
    assert usage["cost_usd"] > 0
    assert "tools" not in (llm.requests[-1].body or {})


def test_an_earlier_transcript_carries_on(llm: FakeLLMServer) -> None:
    earlier = [
        {"role": "user", "content": "weather in Paris?"},
        {
            "role": "assistant",
            "content": None,  # as OpenAI writes a turn that only calls tools
            "tool_calls": [{"id": "call_1", "name": "forecast", "arguments": {"x": "Paris"}}],
        },
        {"role": "tool", "tool_call_id": "call_1", "name": "forecast", "content": "21 C"},
        {"role": "assistant", "content": "It is 21 C."},
    ]
    document = agent_flow("And tomorrow?")
    document["nodes"].append(
        {"id": "history", "type": "constant", "config": {"value": earlier, "type": "messages"}}
    )
    document["edges"].append({"from": "history.value", "to": "agent.messages"})
    result, _ = run_here(document)

    assert result.status == "completed", result.error
    transcript = result.outputs["transcript"]
    assert transcript[1] == {**earlier[1], "content": ""}
    assert transcript[:4] == [earlier[0], transcript[1], *earlier[2:]]
    assert transcript[4:] == [
        {"role": "user", "content": "And tomorrow?"},
        {"role": "assistant", "content": "Echo: And tomorrow?"},
    ]
    body = llm.requests[-1].body
    assert body is not None
    assert [m["role"] for m in body["messages"]] == [
        "user",
        "assistant",
        "tool",
        "assistant",
        "user",
    ]

    document["nodes"][-1]["config"]["value"] = [{"role": "robot", "content": "beep"}]
    result, _ = run_here(document)
    assert (result.nodes["agent"].error or "").startswith("messages[0] must be {'role': 'user'")


@pytest.mark.parametrize(
    ("tools", "error"),
    [
        (
            [tool(), tool()],
            "config.tools[1] ('forecast'): another tool is named 'forecast'",
        ),
        (
            [tool(parameters={"type": "object", "properties": {"x": {"type": "strng"}}})],
            "config.tools[0] ('forecast').parameters is not a valid JSON Schema",
        ),
        (
            [tool(parameters={"type": "array"})],
            "config.tools[0] ('forecast').parameters must describe an object",
        ),
        ([tool()], "child runs need the durable runtime (run this flow on a worker)"),
    ],
)
def test_tool_mistakes_are_named_before_the_model_is_called(
    llm: FakeLLMServer, tools: list[dict[str, Any]], error: str
) -> None:
    result, _ = run_here(agent_flow("hi", tools=tools))
    assert error in (result.nodes["agent"].error or "")
    assert llm.requests == []  # nothing paid for


def test_max_turns_is_bounded_by_the_config_schema() -> None:
    with pytest.raises(engine.FlowInvalid, match="max_turns"):
        engine.parse_flow(agent_flow("hi", max_turns=21))


# --- the agent node on a worker: tools are child runs -------------------------------------


def run_on_worker(url: str, document: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    subflows = {
        FORECAST_FLOW: chain(("forecast", 0)),  # input x -> "<x>-forecast" as `result`
        BROKEN_FLOW: {  # calls a flow that was never pinned: the child run fails
            "schema": 1,
            "nodes": [
                {
                    "id": "inp",
                    "type": "input",
                    "config": {"fields": [{"name": "x", "type": "text"}]},
                },
                {"id": "sub", "type": "execute_flow", "config": {"flow_id": NOWHERE_FLOW}},
                {"id": "out", "type": "output", "config": {"name": "result"}},
            ],
            "edges": [
                {"from": "inp.x", "to": "sub.inputs"},
                {"from": "sub.outputs", "to": "out.value"},
            ],
        },
    }
    run_id = enqueue(url, document, {}, meta={"subflows": subflows})
    state, output = wait_terminal(url, run_id)
    assert state == "SUCCESS", output  # the workflow ends; the node reports any failure
    return run_id, output


def agent_events(url: str, run_id: str) -> list[dict[str, Any]]:
    return [e for e in engine.read_events(url, run_id) if e["node"] == "agent"]


def tool_events(events: list[dict[str, Any]]) -> list[tuple[str, dict[str, Any]]]:
    return [(e["type"], e["payload"]) for e in events if e["type"].startswith("TOOL_CALL_")]


def started_children(url: str, run_id: str) -> list[str]:
    return sorted(r for r, _, phase in ledger_like(url, f"{run_id}:agent:") if phase == "start")


@pytest.mark.parametrize("provider", ["fake", "anthropic"])
def test_the_agent_runs_flows_as_tools_and_answers(
    url: str, llm: FakeLLMServer, provider: str
) -> None:
    llm.script.add(
        "weather in paris and rome",
        tool_call=[
            {"name": "forecast", "arguments": {"x": "Paris"}},
            {"name": "forecast", "arguments": {"x": "Rome"}},
        ],
    )
    document = agent_flow(
        "What is the weather in Paris and Rome?",
        provider=provider,
        model=MODELS[provider],
        tools=[tool()],
    )
    run_id, output = run_on_worker(url, document)

    assert output["status"] == "completed", output
    outputs = output["outputs"]
    # the fake answers a conversation ending in tool results with what they said
    assert outputs["answer"].startswith("Tool result: ")
    assert "Rome-forecast" in outputs["answer"]
    transcript = outputs["transcript"]
    assert [m["role"] for m in transcript] == ["user", "assistant", "tool", "tool", "assistant"]
    calls = transcript[1]["tool_calls"]
    assert [(c["name"], c["arguments"]) for c in calls] == [
        ("forecast", {"x": "Paris"}),
        ("forecast", {"x": "Rome"}),
    ]
    assert [(m["tool_call_id"], json.loads(m["content"])) for m in transcript[2:4]] == [
        (calls[0]["id"], {"result": "Paris-forecast"}),
        (calls[1]["id"], {"result": "Rome-forecast"}),
    ]
    assert transcript[4] == {"role": "assistant", "content": outputs["answer"]}

    # each tool call is a child run with a deterministic id
    assert started_children(url, run_id) == [
        f"{run_id}:agent:tool:0:0",
        f"{run_id}:agent:tool:0:1",
    ]

    # each tool call is START, its ARGS pieces, END, then RESULT (results in call order)
    events = agent_events(url, run_id)
    assert [e["seq"] for e in events] == sorted(e["seq"] for e in events)
    timeline = tool_events(events)
    for tool_call, city in zip(calls, ("Paris", "Rome"), strict=True):
        mine = [(kind, p) for kind, p in timeline if p["tool_call_id"] == tool_call["id"]]
        kinds = [kind for kind, _ in mine]
        assert mine[0] == ("TOOL_CALL_START", {"tool_call_id": tool_call["id"], "name": "forecast"})
        assert kinds[-2:] == ["TOOL_CALL_END", "TOOL_CALL_RESULT"]
        assert set(kinds[1:-2]) == {"TOOL_CALL_ARGS"}
        pieces = "".join(p["arguments"] for kind, p in mine if kind == "TOOL_CALL_ARGS")
        assert json.loads(pieces) == {"x": city}
        assert mine[-1][1] == {
            "tool_call_id": tool_call["id"],
            "result": {"result": f"{city}-forecast"},
        }
    results = [p["tool_call_id"] for kind, p in timeline if kind == "TOOL_CALL_RESULT"]
    assert results == [c["id"] for c in calls]

    # text streamed; usage per model call, and summed
    chunks = [e["payload"]["text"] for e in events if e["type"] == "STREAM_CHUNK"]
    assert "".join(chunks) == outputs["answer"]
    per_call = [e["payload"] for e in events if e["type"] == "LLM_USAGE"]
    assert [u["turn"] for u in per_call] == [0, 1]
    usage = outputs["usage"]
    assert usage["calls"] == 2
    assert usage["input_tokens"] == sum(u["input_tokens"] for u in per_call) > 0
    assert usage["output_tokens"] == sum(u["output_tokens"] for u in per_call) > 0
    assert usage["cost_usd"] == pytest.approx(sum(u["cost_usd"] for u in per_call))
    assert usage["cost_micros"] == sum(u["cost_micros"] for u in per_call) > 0
    assert usage["cost_usd"] > 0


@pytest.mark.parametrize("provider", ["fake", "anthropic"])
def test_bad_arguments_go_back_to_the_model_which_corrects_them(
    url: str, llm: FakeLLMServer, provider: str
) -> None:
    # a model that calls again once it sees the error, then answers from the result
    good = {"name": "forecast", "arguments": {"x": "Oslo"}}
    llm.script.add("weather in oslo", after_result="do not match", tool_call=good)
    llm.script.add("weather in oslo", tool_call={"name": "forecast", "arguments": {"x": 42}})
    document = agent_flow(
        "What is the weather in Oslo?", provider=provider, model=MODELS[provider], tools=[tool()]
    )
    run_id, output = run_on_worker(url, document)

    assert output["status"] == "completed", output
    assert "Oslo-forecast" in output["outputs"]["answer"]
    results = [
        p for kind, p in tool_events(agent_events(url, run_id)) if kind == "TOOL_CALL_RESULT"
    ]
    assert results[0]["error"] == (
        "the arguments do not match the tool's parameters: at x: 42 is not of type 'string'"
    )
    assert results[1]["result"] == {"result": "Oslo-forecast"}
    # the bad call ran nothing; the corrected one (turn 1) ran the flow
    assert started_children(url, run_id) == [f"{run_id}:agent:tool:1:0"]
    transcript = output["outputs"]["transcript"]
    assert transcript[2]["is_error"] is True
    assert transcript[2]["content"] == f"error: {results[0]['error']}"
    # what the model was sent on its second turn carried the error
    second_turn = json.dumps(llm.requests[1].body)
    assert "42 is not of type 'string'" in second_turn


def test_a_failed_tool_run_and_an_unknown_tool_go_back_to_the_model(
    url: str, llm: FakeLLMServer
) -> None:
    llm.script.add(
        "use the broken tool",
        tool_call=[
            {"name": "broken", "arguments": {"x": "a"}},
            {"name": "teleport", "arguments": {}},
        ],
    )
    document = agent_flow(
        "Please use the broken tool",
        provider="anthropic",
        model=MODELS["anthropic"],
        tools=[tool(BROKEN_FLOW, name="broken")],
    )
    run_id, output = run_on_worker(url, document)

    assert output["status"] == "completed", output
    failed, unknown = [
        p["error"]
        for kind, p in tool_events(agent_events(url, run_id))
        if kind == "TOOL_CALL_RESULT"
    ]
    assert failed.startswith("the tool failed: sub: flow ")
    assert "was not pinned for this run" in failed
    assert unknown == "there is no tool named 'teleport' (tools: broken)"
    child_state, child = status(url, f"{run_id}:agent:tool:0:0")[:2]
    assert child_state == "SUCCESS"
    assert child is not None
    assert child["status"] == "failed"
    assert status(url, f"{run_id}:agent:tool:0:1")[0] is None  # no run for an unknown tool
    answer = output["outputs"]["answer"]
    assert answer.startswith("Tool result: error: the tool failed")
    assert "error: there is no tool named 'teleport'" in answer


def test_running_out_of_turns_fails_and_says_what_to_do(url: str, llm: FakeLLMServer) -> None:
    again = {"name": "forecast", "arguments": {"x": "again"}}
    llm.script.add("keep going", after_result="", tool_call=again)  # after every result
    llm.script.add("keep going", tool_call=again)
    run_id, output = run_on_worker(url, agent_flow("keep going", max_turns=2, tools=[tool()]))

    assert output["status"] == "failed"
    error = output["nodes"]["agent"]["error"]
    assert error == (
        "the agent reached max_turns (2) and still wanted to call forecast: raise "
        "config.max_turns (at most 20), or ask for an answer within fewer tool calls in the "
        "system prompt"
    )
    events = agent_events(url, run_id)
    assert [e["type"] for e in events if e["type"] == "LLM_USAGE"] == ["LLM_USAGE"] * 2
    results = [p for kind, p in tool_events(events) if kind == "TOOL_CALL_RESULT"]
    assert results[0]["result"] == {"result": "again-forecast"}
    assert results[1]["error"] == "not run: the agent reached max_turns (2)"
    assert started_children(url, run_id) == [f"{run_id}:agent:tool:0:0"]  # not the last call
    assert events[-1]["type"] == "NODE_FAILED"


def test_a_tool_flow_not_pinned_for_the_run_is_named(url: str, llm: FakeLLMServer) -> None:
    _, output = run_on_worker(url, agent_flow("hi", tools=[tool(NOWHERE_FLOW)]))
    assert output["nodes"]["agent"]["error"] == (
        f"config.tools[0] ('forecast'): flow {NOWHERE_FLOW} was not pinned for this run: "
        "is it in this workspace?"
    )
    assert llm.requests == []


@pytest.mark.durability
def test_a_crash_during_a_tool_run_does_not_start_the_tool_twice(llm: FakeLLMServer) -> None:
    llm.script.add("slow weather", tool_call={"name": "forecast", "arguments": {"x": "Lima"}})
    document = agent_flow("slow weather in Lima?", tools=[tool()])
    with fresh_database("ff_agent") as database_url:
        worker = Worker(database_url, "agent-crash")
        run_id = enqueue(
            database_url, document, {}, meta={"subflows": {FORECAST_FLOW: chain(("slow", 3))}}
        )
        wait_for(lambda: started_children(database_url, run_id), 30, "the tool's child run")
        worker.kill9()
        worker = Worker(database_url, "agent-crash")  # recovers the parent and the child
        try:
            state, output = wait_terminal(database_url, run_id, timeout=90)
        finally:
            worker.stop()
        children = {
            r for r, _, phase in ledger_like(database_url, f"{run_id}:agent:") if phase == "end"
        }
    assert state == "SUCCESS", output
    assert output["status"] == "completed", output
    assert "Lima-slow" in output["outputs"]["answer"]
    assert len(llm.requests) == 3  # turn 0, turn 0 again after the crash, turn 1
    assert children == {f"{run_id}:agent:tool:0:0"}  # the re-executed agent found its child


# --- node tools: a single node as a tool ----------------------------------------------------

MARK_TOOL = {
    "name": "mark",
    "description": "Marks a value",
    "node": {"type": "test_ledger", "config": {"suffix": "-marked"}},
}


def test_a_node_tool_is_checked_with_the_flow() -> None:
    tools = [
        {"name": "a", "node": {"type": "no_such_node"}},
        {"name": "b", "node": {"type": "input", "config": {}}},
        {"name": "c", "node": {"type": "test_ledger", "config": {"seconds": "soon"}}},
        {"name": "d", "node": {"type": "test_stream_collect"}},
        {"name": "e", "flow_id": FORECAST_FLOW, "node": {"type": "test_ledger"}},
    ]
    issues = [i for i in engine.validate_flow(agent_flow("hi", tools=tools)) if i.node == "agent"]
    messages = [i.message for i in issues]
    assert {i.code for i in issues} == {"invalid_config"}
    # a tool is a flow or a node, not both
    assert any("tools/4" in m and "is valid under each of" in m for m in messages), messages
    tools = tools[:4]
    messages = [
        i.message for i in engine.validate_flow(agent_flow("hi", tools=tools)) if i.node == "agent"
    ]
    prefix = "node 'agent' (agent): config "
    assert messages == [
        prefix + "tools/0/node ('a'): unknown node type 'no_such_node'",
        prefix + "tools/1/node ('b'): a node of type 'input' cannot be a tool",
        prefix + "tools/2/node ('c'): config seconds: 'soon' is not of type 'number'",
        prefix + "tools/3/node ('d'): input 'stream' (stream) is required, and a model "
        "cannot fill it in",
    ]


def test_a_single_node_is_a_tool_run_as_a_child_run(url: str, llm: FakeLLMServer) -> None:
    llm.script.add(
        "mark paris",
        tool_call=[{"name": "mark", "arguments": {"value": "Paris"}}],
    )
    run_id, output = run_on_worker(url, agent_flow("Please mark Paris", tools=[MARK_TOOL]))
    assert output["status"] == "completed", output
    # the model was offered the node's input port as the tool's parameter
    offered = llm.requests[0].body["tools"]
    assert offered == [
        {
            "type": "function",
            "function": {
                "name": "mark",
                "description": "Marks a value",
                "parameters": {
                    "type": "object",
                    "additionalProperties": False,
                    "properties": {"value": {}},
                    "required": ["value"],
                },
            },
        }
    ]
    transcript = output["outputs"]["transcript"]
    assert json.loads(transcript[2]["content"]) == {"value": "Paris-marked"}
    assert "Paris-marked" in output["outputs"]["answer"]
    # the node ran once, in a child run with the tool call's deterministic id
    child = f"{run_id}:agent:tool:0:0"
    assert ledger_like(url, f"{run_id}:agent:") == [
        (child, "tool", "start"),
        (child, "tool", "end"),
    ]
