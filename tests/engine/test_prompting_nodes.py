"""The prompting nodes as a user builds them: prompt_template renders chat prompts in the
sandbox; structured_output gets schema-valid JSON from a model (through the real OpenAI and
Anthropic SDKs, against the fake provider), repairing bad replies with the exact errors."""

import asyncio
import json
import re
from collections.abc import Iterator
from typing import Any

import pytest

from engine import MemoryEventSink, RunResult, catalogue, node_type, run_flow, validate_flow
from engine.llm import FakeLLMServer, model_info
from engine.llm._fake import FakeRequest

PERSON = {
    "type": "object",
    "required": ["name", "age"],
    "additionalProperties": False,
    "properties": {"name": {"type": "string"}, "age": {"type": "integer", "minimum": 0}},
}
# Providers whose SDK the node drives, with a model the fake knows and the catalogue prices.
MODELS = [("fake", "fake-echo"), ("openai", "gpt-4o-mini"), ("anthropic", "claude-haiku-4-5")]


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeLLMServer]:
    with FakeLLMServer() as server:
        monkeypatch.setenv("FIREFLOW_FAKE_LLM_URL", server.url)
        monkeypatch.setenv("OPENAI_API_KEY", "k")
        monkeypatch.setenv("OPENAI_BASE_URL", server.url + "/v1")
        monkeypatch.setenv("ANTHROPIC_API_KEY", "k")
        monkeypatch.setenv("ANTHROPIC_BASE_URL", server.url)
        yield server


def flow(
    nodes: list[dict[str, Any]], edges: list[tuple[str, str]], outputs: list[str]
) -> dict[str, Any]:
    return {
        "schema": 1,
        "nodes": [
            *nodes,
            *({"id": f"out_{n}", "type": "output", "config": {"name": n}} for n in outputs),
        ],
        "edges": [{"from": a, "to": b} for a, b in edges],
    }


def run(document: dict[str, Any], inputs: dict[str, Any]) -> tuple[RunResult, MemoryEventSink]:
    sink = MemoryEventSink()
    return asyncio.run(run_flow(document, inputs, events=sink)), sink


def inp(*names: str) -> dict[str, Any]:
    fields = [{"name": n, "type": "text"} for n in names]
    return {"id": "inp", "type": "input", "config": {"fields": fields}}


# --- prompt_template ----------------------------------------------------------------------

PROMPT = {
    "system": "You are a {{ tone }} assistant.",
    "messages": [
        {"role": "user", "content": "Tell me about {{ topic }}."},
        {"role": "assistant", "content": "What about {{ topic | upper }}?"},
        {
            "role": "user",
            "content": "{% for q in questions %}{{ loop.index }}. {{ q }}\n{% endfor %}",
        },
    ],
    "variables": ["tone", "topic", "questions"],
}


def render(config: dict[str, Any], inputs: dict[str, Any]) -> RunResult:
    constants = [
        {"id": f"v_{name}", "type": "constant", "config": {"value": value}}
        for name, value in inputs.items()
    ]
    document = flow(
        [*constants, {"id": "p", "type": "prompt_template", "config": config}],
        [
            *((f"v_{name}.value", f"p.{name}") for name in inputs),
            ("p.messages", "out_messages.value"),
            ("p.prompt", "out_prompt.value"),
            ("p.system", "out_system.value"),
        ],
        ["messages", "prompt", "system"],
    )
    return run(document, {})[0]


def test_prompt_template_renders_system_and_turns() -> None:
    result = render(
        PROMPT, {"tone": "terse", "topic": "owls", "questions": ["Where?", "Why <at night>?"]}
    )
    assert result.status == "completed", result.error
    assert result.outputs == {
        "system": "You are a terse assistant.",
        "messages": [
            {"role": "user", "content": "Tell me about owls."},
            {"role": "assistant", "content": "What about OWLS?"},
            {"role": "user", "content": "1. Where?\n2. Why <at night>?\n"},  # not HTML-escaped
        ],
        "prompt": "1. Where?\n2. Why <at night>?\n",
    }


def test_an_undefined_variable_names_the_variable_and_the_message() -> None:
    config = {
        "messages": [
            {"role": "user", "content": "Hello {{ name }}"},
            {"role": "user", "content": "Write for {{ audience }} about {{ name }}"},
        ],
        "variables": ["name"],
    }
    result = render(config, {"name": "Ada"})
    assert result.status == "failed"
    assert result.nodes["p"].error == (
        "messages[1]: 'audience' is undefined (add 'audience' to the node's variables)"
    )

    in_system = render(
        {**config, "system": "{{ persona }}", "messages": config["messages"][:1]}, {"name": "Ada"}
    )
    assert in_system.nodes["p"].error == (
        "system: 'persona' is undefined (add 'persona' to the node's variables)"
    )


def test_template_errors_and_sandbox_escapes_fail_the_node() -> None:
    broken = render({"messages": [{"role": "user", "content": "Hi {{ name "}]}, {})
    assert (broken.nodes["p"].error or "").startswith(
        "messages[0]: template syntax error on line 1"
    )

    escape = {"role": "user", "content": "{{ name.__class__.__mro__[1].__subclasses__() }}"}
    unsafe = render({"messages": [escape], "variables": ["name"]}, {"name": "x"})
    assert unsafe.status == "failed"
    assert "unsafe" in (unsafe.nodes["p"].error or "")


def test_declared_variables_are_the_input_ports() -> None:
    cls = node_type("prompt_template")
    assert cls is not None
    ports = cls.inputs(PROMPT)
    assert [(p.name, p.type.value, p.required) for p in ports] == [
        ("tone", "any", True),
        ("topic", "any", True),
        ("questions", "any", True),
    ]
    assert [p.name for p in cls.outputs(PROMPT)] == ["messages", "prompt", "system"]
    item = {i["type"]: i for i in catalogue()}["prompt_template"]
    assert item["dynamic_ports"] is True
    assert item["category"] == "ai"
    assert item["effect"] == "pure"

    document = flow(
        [
            inp("topic"),
            {"id": "p", "type": "prompt_template", "config": PROMPT},
        ],
        [("inp.topic", "p.topic"), ("inp.topic", "p.subject"), ("p.prompt", "out_a.value")],
        ["a"],
    )
    messages = {i.message for i in validate_flow(document) if i.severity == "error"}
    assert (
        "node 'p' (prompt_template) has no input port 'subject'; "
        "its inputs are: tone, topic, questions"
    ) in messages
    assert "required input p.tone (any) is not connected" in messages


def test_prompt_template_config_is_checked_when_saved() -> None:
    def errors(config: dict[str, Any]) -> list[str]:
        document = flow(
            [{"id": "p", "type": "prompt_template", "config": config}],
            [("p.prompt", "out_a.value")],
            ["a"],
        )
        return [i.message for i in validate_flow(document) if i.code == "invalid_config"]

    assert errors({"messages": []}) == [
        "node 'p' (prompt_template): config messages: [] should be non-empty"
    ]
    assert errors({"messages": [{"role": "system", "content": "x"}]}) == [
        "node 'p' (prompt_template): config messages/0/role: "
        "'system' is not one of ['user', 'assistant']"
    ]
    assert errors({"messages": [{"role": "user", "content": "x"}], "variables": ["a b"]}) == [
        "node 'p' (prompt_template): config variables/0: "
        "'a b' does not match '^[A-Za-z_][A-Za-z0-9_]{0,63}$'"
    ]


# --- structured_output --------------------------------------------------------------------


def extract(
    provider: str, model: str, prompt: str, **config: Any
) -> tuple[RunResult, MemoryEventSink]:
    document = flow(
        [
            {"id": "q", "type": "constant", "config": {"value": prompt, "type": "text"}},
            {
                "id": "so",
                "type": "structured_output",
                "config": {"provider": provider, "model": model, "schema": PERSON, **config},
            },
        ],
        [("q.value", "so.prompt"), ("so.data", "out_data.value"), ("so.usage", "out_usage.value")],
        ["data", "usage"],
    )
    return run(document, {})


def chat_requests(server: FakeLLMServer) -> list[FakeRequest]:
    return [r for r in server.requests if r.method == "POST"]


def sent(request: FakeRequest) -> tuple[str, list[dict[str, Any]]]:
    """(system text, conversation turns) of a request, in either wire format."""
    assert request.body is not None
    messages = list(request.body["messages"])
    if request.path.startswith("/v1/messages"):
        return request.body.get("system", ""), messages
    if messages and messages[0]["role"] == "system":
        return messages.pop(0)["content"], messages
    return "", messages


def usage_events(sink: MemoryEventSink) -> list[dict[str, Any]]:
    return [e.payload for e in sink.events if e.type.value == "LLM_USAGE"]


@pytest.mark.parametrize(("provider", "model"), MODELS)
def test_a_valid_first_answer_is_the_data(fake: FakeLLMServer, provider: str, model: str) -> None:
    fake.script.add("Ada is 36", reply='{"name": "Ada", "age": 36}')
    result, sink = extract(provider, model, "Ada is 36", system="You extract people.")
    assert result.status == "completed", result.error
    assert result.outputs["data"] == {"name": "Ada", "age": 36}

    [request] = chat_requests(fake)
    system, turns = sent(request)
    assert system.startswith("You extract people.\n\nAnswer with JSON only")
    assert json.dumps(PERSON, indent=2, sort_keys=True) in system
    assert turns == [{"role": "user", "content": "Ada is 36"}]

    usage = result.outputs["usage"]
    assert usage["attempts"] == 1
    assert usage["input_tokens"] > 0
    assert usage["output_tokens"] > 0
    [event] = usage_events(sink)
    assert {k: v for k, v in usage.items() if k != "attempts"} == event
    # The answer is only meaningful whole: nothing is streamed.
    assert not [e for e in sink.events if e.type.value == "STREAM_CHUNK"]


@pytest.mark.parametrize(("provider", "model"), MODELS)
def test_an_invalid_answer_is_repaired_with_the_exact_errors(
    fake: FakeLLMServer, provider: str, model: str
) -> None:
    bad = '{"name": "Ada", "age": "thirty-six"}'
    fake.script.add("Ada is 36", reply=bad, times=1)
    fake.script.add(
        "does not match the JSON Schema",
        reply='Here you go:\n```json\n{"name": "Ada", "age": 36}\n```',
    )
    result, sink = extract(provider, model, "Ada is 36")
    assert result.status == "completed", result.error
    assert result.outputs["data"] == {"name": "Ada", "age": 36}

    first, second = chat_requests(fake)
    _, turns = sent(second)
    assert turns[:2] == [
        {"role": "user", "content": "Ada is 36"},
        {"role": "assistant", "content": bad},
    ]
    assert turns[2]["role"] == "user"
    assert "- $.age: 'thirty-six' is not of type 'integer'" in turns[2]["content"]
    assert sent(first)[0] == sent(second)[0]  # the same instructions both times

    usage = result.outputs["usage"]
    events = usage_events(sink)
    assert usage["attempts"] == len(events) == 2
    assert usage["input_tokens"] == sum(e["input_tokens"] for e in events)
    assert usage["output_tokens"] == sum(e["output_tokens"] for e in events)
    assert events[1]["input_tokens"] > events[0]["input_tokens"]  # the repair carries history
    info = model_info(provider, model)
    assert info is not None
    expected = (
        usage["input_tokens"] * info.input_per_m + usage["output_tokens"] * info.output_per_m
    ) / 1_000_000
    assert usage["cost_usd"] == pytest.approx(expected)
    assert usage["cost_usd"] == pytest.approx(sum(e["cost_usd"] for e in events))
    # What the usage ledger bills (per call, in micro-dollars) adds up to the node's usage.
    assert usage["cost_micros"] == sum(e["cost_micros"] for e in events)
    assert usage["cost_micros"] == pytest.approx(expected * 1_000_000, abs=len(events))


def test_a_reply_that_is_not_json_is_repaired(fake: FakeLLMServer) -> None:
    fake.script.add("Ada is 36", reply="Sure! The person is {name: Ada, age: 36}.", times=1)
    fake.script.add("does not match", reply='{"name": "Ada", "age": 36}')
    result, _ = extract("fake", "fake-echo", "Ada is 36")
    assert result.outputs["data"] == {"name": "Ada", "age": 36}
    _, turns = sent(chat_requests(fake)[1])
    assert (
        "- $: the reply is not valid JSON (Expecting value at line 1 column 1)"
        in (turns[-1]["content"])
    )


@pytest.mark.parametrize(("provider", "model"), [MODELS[0], MODELS[2]])
def test_exhausted_repairs_fail_with_the_last_errors(
    fake: FakeLLMServer, provider: str, model: str
) -> None:
    fake.script.add(re.compile("."), reply='{"name": 7, "age": -1, "extra": true}')
    result, sink = extract(provider, model, "Ada is 36", max_repairs=2)
    assert result.status == "failed"
    assert result.nodes["so"].error == (
        "the model's answer did not match the schema after 3 attempts; the last reply's "
        "errors: $: Additional properties are not allowed ('extra' was unexpected); "
        "$.age: -1 is less than the minimum of 0; $.name: 7 is not of type 'string'"
    )
    assert len(chat_requests(fake)) == 3
    # Every call is accounted for, though the node produced no usage output.
    assert len(usage_events(sink)) == 3
    _, turns = sent(chat_requests(fake)[2])
    assert [t["role"] for t in turns] == ["user", "assistant", "user", "assistant", "user"]


def test_no_repairs_means_one_attempt(fake: FakeLLMServer) -> None:
    fake.script.add("Ada", reply="[]")
    result, _ = extract("fake", "fake-echo", "Ada is 36", max_repairs=0)
    assert result.nodes["so"].error == (
        "the model's answer did not match the schema after 1 attempt; the last reply's "
        "errors: $: [] is not of type 'object'"
    )
    assert len(chat_requests(fake)) == 1


def test_a_cut_off_reply_asks_for_a_shorter_answer(fake: FakeLLMServer) -> None:
    fake.script.add("Ada is 36", reply='{"name": "Ada Lovelace", "age": 36}', times=1)
    fake.script.add("does not match", reply='{"name": "Ada", "age": 36}')
    result, _ = extract("fake", "fake-echo", "Ada is 36", max_tokens=15)
    assert result.outputs["data"] == {"name": "Ada", "age": 36}
    _, turns = sent(chat_requests(fake)[1])
    assert "the reply was cut off at max_tokens" in turns[-1]["content"]


def test_the_schema_is_checked_as_draft_2020_12_when_saved() -> None:
    def errors(**config: Any) -> list[str]:
        document = flow(
            [
                {"id": "q", "type": "constant", "config": {"value": "x", "type": "text"}},
                {
                    "id": "so",
                    "type": "structured_output",
                    "config": {"provider": "fake", "model": "fake-echo", **config},
                },
            ],
            [("q.value", "so.prompt"), ("so.data", "out_a.value")],
            ["a"],
        )
        return [i.message for i in validate_flow(document) if i.code == "invalid_config"]

    assert errors(schema=PERSON) == []
    assert errors(schema={"type": "objekt"}) == [
        "node 'so' (structured_output): config schema/type: "
        "'objekt' is not valid under any of the given schemas"
    ]
    assert errors(schema={"properties": {"age": {"minimum": "zero"}}}) == [
        "node 'so' (structured_output): config schema/properties/age/minimum: "
        "'zero' is not of type 'number'"
    ]
    assert errors(schema=PERSON, max_repairs=4) == [
        "node 'so' (structured_output): config max_repairs: 4 is greater than the maximum of 3"
    ]
    assert errors() == [
        "node 'so' (structured_output): config config: 'schema' is a required property"
    ]
    item = {i["type"]: i for i in catalogue()}["structured_output"]
    assert (item["category"], item["effect"]) == ("ai", "external")


# --- composed -----------------------------------------------------------------------------


def test_prompting_nodes_compose_with_llm_chat(fake: FakeLLMServer) -> None:
    # prompt_template.messages -> llm_chat (which echoes the last user turn) -> its text is
    # the prompt of structured_output (whose model answers in a fenced block).
    fake.script.add("Echo: Extract the person", reply='```json\n{"name": "Grace", "age": 85}\n```')
    prompt = {
        "system": "Be brief.",
        "messages": [
            {"role": "user", "content": "Remember {{ who }}."},
            {"role": "assistant", "content": "Noted."},
            {"role": "user", "content": "Extract the person: {{ who }}, aged {{ age }}."},
        ],
        "variables": ["who", "age"],
    }
    fields = [{"name": "who", "type": "text"}, {"name": "age", "type": "number"}]
    document = flow(
        [
            {"id": "inp", "type": "input", "config": {"fields": fields}},
            {"id": "p", "type": "prompt_template", "config": prompt},
            {"id": "llm", "type": "llm_chat", "config": {"provider": "fake", "model": "fake-echo"}},
            {
                "id": "so",
                "type": "structured_output",
                "config": {"provider": "anthropic", "model": "claude-haiku-4-5", "schema": PERSON},
            },
        ],
        [
            ("inp.who", "p.who"),
            ("inp.age", "p.age"),
            ("p.messages", "llm.messages"),
            ("llm.text", "so.prompt"),
            ("p.prompt", "out_prompt.value"),
            ("llm.text", "out_answer.value"),
            ("so.data", "out_person.value"),
        ],
        ["prompt", "answer", "person"],
    )
    assert [i for i in validate_flow(document) if i.severity == "error"] == []
    result, sink = run(document, {"who": "Grace Hopper", "age": 85})
    assert result.status == "completed", result.error
    assert result.outputs == {
        "prompt": "Extract the person: Grace Hopper, aged 85.",
        "answer": "Echo: Extract the person: Grace Hopper, aged 85.",
        "person": {"name": "Grace", "age": 85},
    }
    llm_request, so_request = chat_requests(fake)
    _, turns = sent(llm_request)
    assert turns == [
        {"role": "user", "content": "Remember Grace Hopper."},
        {"role": "assistant", "content": "Noted."},
        {"role": "user", "content": "Extract the person: Grace Hopper, aged 85."},
    ]
    assert so_request.path.startswith("/v1/messages")
    assert [(e.node, e.payload["model"]) for e in sink.events if e.type.value == "LLM_USAGE"] == [
        ("llm", "fake-echo"),
        ("so", "claude-haiku-4-5"),
    ]
