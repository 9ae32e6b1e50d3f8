"""The LLM chat node through the real OpenAI and Anthropic SDKs, against the fake provider
(a real HTTP server speaking both wire formats): text, streamed chunks, usage and cost,
and the errors a user can act on."""

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest

import engine
from engine import MemoryEventSink, RunResult, run_flow
from engine.llm import FakeLLMServer
from tests.engine.harness import Worker, enqueue, fresh_database, wait_for, wait_terminal


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeLLMServer]:
    with FakeLLMServer() as server:
        monkeypatch.setenv("FIREFLOW_FAKE_LLM_URL", server.url)
        monkeypatch.setenv("OPENAI_API_KEY", "k")
        monkeypatch.setenv("OPENAI_BASE_URL", server.url + "/v1")
        monkeypatch.setenv("ANTHROPIC_API_KEY", "k")
        monkeypatch.setenv("ANTHROPIC_BASE_URL", server.url)
        yield server


def ask(provider: str, model: str, prompt: str, **config: Any) -> tuple[RunResult, MemoryEventSink]:
    document = {
        "schema": 1,
        "nodes": [
            {"id": "q", "type": "constant", "config": {"value": prompt, "type": "text"}},
            {
                "id": "llm",
                "type": "llm_chat",
                "config": {"provider": provider, "model": model, **config},
            },
            {"id": "answer", "type": "output", "config": {"name": "answer"}},
            {"id": "usage", "type": "output", "config": {"name": "usage"}},
        ],
        "edges": [
            {"from": "q.value", "to": "llm.prompt"},
            {"from": "llm.text", "to": "answer.value"},
            {"from": "llm.usage", "to": "usage.value"},
        ],
    }
    sink = MemoryEventSink()
    return asyncio.run(run_flow(document, {}, events=sink)), sink


@pytest.mark.parametrize(
    ("provider", "model"),
    [("openai", "gpt-4o-mini"), ("anthropic", "claude-haiku-4-5"), ("fake", "fake-echo")],
)
def test_answer_streams_and_costs(fake: FakeLLMServer, provider: str, model: str) -> None:
    result, sink = ask(provider, model, "Say hello to the team")
    assert result.status == "completed", result.error
    answer = result.outputs["answer"]
    assert answer  # the fake answers deterministically
    chunks = [e.payload["text"] for e in sink.events if e.type.value == "STREAM_CHUNK"]
    assert len(chunks) > 1
    assert "".join(chunks) == answer
    usage = result.outputs["usage"]
    assert usage["input_tokens"] > 0
    assert usage["output_tokens"] > 0
    assert usage["cost_usd"] > 0
    [recorded] = [e.payload for e in sink.events if e.type.value == "LLM_USAGE"]
    assert recorded == usage


def test_cost_comes_from_the_catalogue(fake: FakeLLMServer) -> None:
    result, _ = ask("fake", "fake-echo", "count these five words")
    usage = result.outputs["usage"]
    # fake-echo is priced at 1 USD per million input tokens and 2 per million output ones.
    expected = (usage["input_tokens"] * 1.0 + usage["output_tokens"] * 2.0) / 1_000_000
    assert usage["cost_usd"] == pytest.approx(expected)


def test_errors_say_what_to_do(fake: FakeLLMServer, monkeypatch: pytest.MonkeyPatch) -> None:
    fake.script.add(match="overload", error=(429, "rate_limit_error"))
    result, _ = ask("openai", "gpt-4o-mini", "please overload")
    assert "openai is rate limiting" in (result.nodes["llm"].error or "")
    result, _ = ask("anthropic", "claude-nonexistent", "hi")
    assert "anthropic does not know the model 'claude-nonexistent'" in (
        result.nodes["llm"].error or ""
    )
    monkeypatch.setenv("OPENAI_API_KEY", "bad-key")
    result, _ = ask("openai", "gpt-4o-mini", "hi")
    assert "openai refused the API key" in (result.nodes["llm"].error or "")
    monkeypatch.delenv("GROQ_API_KEY", raising=False)
    result, _ = ask("groq", "llama-3.3-70b-versatile", "hi")
    assert result.nodes["llm"].error == (
        "no API key for groq: store one in the vault and name it in the node's "
        "api_key_secret, or set GROQ_API_KEY on the workers"
    )


def test_self_hosted_endpoints_pass_the_ssrf_guard(fake: FakeLLMServer) -> None:
    result, _ = ask("openai_compatible", "fake-echo", "hi", base_url=fake.url + "/v1")
    assert "refused base_url" in (result.nodes["llm"].error or "")
    assert "loopback" in (result.nodes["llm"].error or "")


def test_tokens_reach_the_event_stream_while_the_model_writes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with FakeLLMServer(tokens_per_s=20) as server, fresh_database() as url:
        monkeypatch.setenv("FIREFLOW_FAKE_LLM_URL", server.url)  # inherited by the worker
        worker = Worker(url, "llm-1")
        prompt = " ".join(f"word{i}" for i in range(40))
        document = {
            "schema": 1,
            "nodes": [
                {"id": "q", "type": "constant", "config": {"value": prompt, "type": "text"}},
                {
                    "id": "llm",
                    "type": "llm_chat",
                    "config": {"provider": "fake", "model": "fake-echo"},
                },
                {"id": "answer", "type": "output", "config": {"name": "answer"}},
            ],
            "edges": [
                {"from": "q.value", "to": "llm.prompt"},
                {"from": "llm.text", "to": "answer.value"},
            ],
        }
        run_id = enqueue(url, document, {})

        def chunks() -> list[dict[str, Any]]:
            return [e for e in engine.read_events(url, run_id) if e["type"] == "STREAM_CHUNK"]

        early = wait_for(chunks, 20, "the first tokens")
        running = not any(
            e["type"] == "NODE_COMPLETED" and e["node"] == "llm"
            for e in engine.read_events(url, run_id)
        )
        state, output = wait_terminal(url, run_id)
        worker.stop()
        streamed = chunks()
    assert early
    assert running, "tokens only showed up once the call had finished"
    assert state == "SUCCESS"
    assert "".join(e["payload"]["text"] for e in streamed) == output["outputs"]["answer"]
    assert [e["seq"] for e in streamed] == sorted(e["seq"] for e in streamed)


@pytest.mark.parametrize(
    ("provider", "model"), [("openai", "gpt-4o-mini"), ("anthropic", "claude-haiku-4-5")]
)
def test_a_server_error_mid_stream_fails_the_node_clearly(
    fake: FakeLLMServer, provider: str, model: str
) -> None:
    fake.script.add("tell a long story", reply="Once upon a time there was a fox", fail_after=3)
    result, sink = ask(provider, model, "Tell a long story")
    assert result.status == "failed"
    error = result.nodes["llm"].error or ""
    assert f"{provider} broke off its answer with an error" in error
    assert "fake server error mid-stream" in error
    streamed = "".join(e.payload["text"] for e in sink.events if e.type.value == "STREAM_CHUNK")
    assert streamed == "Once upon a"  # what arrived before the break was shown, nothing more
    # One request: an answer that had begun is not retried behind the user's back.
    assert len([r for r in fake.requests if r.method == "POST"]) == 1
