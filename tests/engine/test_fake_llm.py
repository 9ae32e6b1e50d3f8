"""The fake LLM provider, driven through the real openai and anthropic SDKs over HTTP."""

import asyncio
import json
import time
from collections.abc import Iterator

import anthropic
import httpx
import openai
import pytest

from engine.llm import FakeLLMServer, FakeScript
from engine.llm._fake import count_tokens

GPT = "gpt-4o-mini"
CLAUDE = "claude-haiku-4-5"
WEATHER = {"name": "get_weather", "arguments": {"city": "Paris", "unit": "celsius"}}
OPENAI_TOOLS: list = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
        },
    }
]
ANTHROPIC_TOOLS: list = [
    {
        "name": "get_weather",
        "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}},
    }
]


@pytest.fixture(scope="module")
def shared() -> Iterator[FakeLLMServer]:
    with FakeLLMServer() as server:
        yield server


@pytest.fixture
def server(shared: FakeLLMServer) -> FakeLLMServer:
    """One server for the module (fast); each test starts with an empty script and log."""
    shared.script.clear()
    shared.requests.clear()
    shared.latency_s, shared.tokens_per_s = 0.0, None
    return shared


def oai(server: FakeLLMServer, key: str = "k") -> openai.OpenAI:
    return openai.OpenAI(base_url=server.url + "/v1", api_key=key, max_retries=0)


def claude(server: FakeLLMServer, key: str = "k") -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=server.url, api_key=key, max_retries=0)


def user(text: str) -> list:
    return [{"role": "user", "content": text}]


# --- OpenAI -------------------------------------------------------------------------------


def test_openai_text_and_usage(server: FakeLLMServer) -> None:
    messages: list = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Hello there, fake!"},
    ]
    done = oai(server).chat.completions.create(model=GPT, messages=messages)

    assert done.object == "chat.completion"
    assert done.model == GPT
    assert done.choices[0].message.content == "Echo: Hello there, fake!"
    assert done.choices[0].finish_reason == "stop"
    assert done.usage is not None
    assert done.usage.prompt_tokens == count_tokens("Be brief.") + count_tokens(
        "Hello there, fake!"
    )
    assert done.usage.completion_tokens == count_tokens("Echo: Hello there, fake!") == 7
    assert done.usage.total_tokens == done.usage.prompt_tokens + done.usage.completion_tokens
    # the request log: path, headers and the JSON body the SDK sent
    sent = server.requests[-1]
    assert sent.path == "/v1/chat/completions"
    assert sent.headers["authorization"] == "Bearer k"
    assert sent.body is not None
    assert sent.body["messages"] == messages


def test_openai_stream_deltas_join_to_the_reply_and_usage_arrives(server: FakeLLMServer) -> None:
    server.script.add(match="poem", reply="Roses are red,\n  violets are blue.")
    stream = oai(server).chat.completions.create(
        model=GPT,
        messages=user("write a poem"),
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)

    assert chunks[0].choices[0].delta.role == "assistant"
    deltas = [c.choices[0].delta.content for c in chunks if c.choices and c.choices[0].delta]
    assert "".join(d for d in deltas if d) == "Roses are red,\n  violets are blue."
    assert len([d for d in deltas if d]) == count_tokens("Roses are red, violets are blue.")
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices]
    assert finishes[-1] == "stop"
    assert chunks[-1].choices == []
    assert chunks[-1].usage is not None
    assert chunks[-1].usage.completion_tokens == 8
    assert all(c.usage is None for c in chunks[:-1])


def test_openai_stream_without_include_usage_has_no_usage_chunk(server: FakeLLMServer) -> None:
    response = httpx.post(
        server.url + "/v1/chat/completions",
        headers={"authorization": "Bearer k"},
        json={"model": GPT, "messages": user("hi"), "stream": True},
    )
    assert response.headers["content-type"].startswith("text/event-stream")
    lines = [line for line in response.text.splitlines() if line]
    assert lines[-1] == "data: [DONE]"
    payloads = [json.loads(line.removeprefix("data: ")) for line in lines[:-1]]
    assert all(p["object"] == "chat.completion.chunk" and "usage" not in p for p in payloads)
    assert payloads[-1]["choices"][0]["finish_reason"] == "stop"


def test_openai_tool_call_and_the_turn_after_the_tool_result(server: FakeLLMServer) -> None:
    server.script.add(match="weather", tool_call=WEATHER, reply="It is 21 °C in Paris.")
    client = oai(server)
    first = client.chat.completions.create(
        model=GPT, messages=user("What is the weather in Paris?"), tools=OPENAI_TOOLS
    )
    choice = first.choices[0]
    assert choice.finish_reason == "tool_calls"
    call = choice.message.tool_calls[0]  # type: ignore[index]
    assert call.type == "function"
    assert call.function.name == "get_weather"
    assert json.loads(call.function.arguments) == WEATHER["arguments"]

    # the conversation now ends in the tool's result: the rule answers with its reply
    messages: list = [
        *user("What is the weather in Paris?"),
        choice.message.model_dump(exclude_none=True),
        {"role": "tool", "tool_call_id": call.id, "content": '{"temp": 21}'},
    ]
    second = client.chat.completions.create(model=GPT, messages=messages, tools=OPENAI_TOOLS)
    assert second.choices[0].finish_reason == "stop"
    assert second.choices[0].message.content == "It is 21 °C in Paris."


def test_openai_streamed_tool_call_fragments(server: FakeLLMServer) -> None:
    server.script.add(match="weather", tool_call=WEATHER)
    stream = oai(server).chat.completions.create(
        model=GPT, messages=user("weather?"), tools=OPENAI_TOOLS, stream=True
    )
    fragments: list[str] = []
    names, ids, finish = [], [], None
    for chunk in stream:
        choice = chunk.choices[0]
        for call in choice.delta.tool_calls or []:
            assert call.index == 0
            if call.id:
                ids.append(call.id)
            if call.function and call.function.name:
                names.append(call.function.name)
            if call.function and call.function.arguments:
                fragments.append(call.function.arguments)
        finish = choice.finish_reason or finish
    assert names == ["get_weather"]
    assert len(ids) == 1
    assert len(fragments) > 3  # streamed in pieces
    assert json.loads("".join(fragments)) == WEATHER["arguments"]
    assert finish == "tool_calls"


def test_openai_max_tokens_truncates_with_finish_reason_length(server: FakeLLMServer) -> None:
    done = oai(server).chat.completions.create(
        model=GPT, messages=user("one two three four"), max_tokens=3
    )
    assert done.choices[0].message.content == "Echo: one"
    assert done.choices[0].finish_reason == "length"
    assert done.usage is not None
    assert done.usage.completion_tokens == 3


def test_openai_errors(server: FakeLLMServer) -> None:
    server.script.add(match="boom", error=(429, "rate_limit_error"))
    with pytest.raises(openai.RateLimitError) as limited:
        oai(server).chat.completions.create(model=GPT, messages=user("boom"))
    assert limited.value.status_code == 429
    assert isinstance(limited.value.body, dict)
    assert limited.value.body["type"] == "rate_limit_error"  # the SDK unwraps {"error": ...}

    with pytest.raises(openai.AuthenticationError) as refused:
        oai(server, key="bad-key").chat.completions.create(model=GPT, messages=user("hi"))
    assert refused.value.code == "invalid_api_key"

    with pytest.raises(openai.NotFoundError) as unknown:
        oai(server).chat.completions.create(model="gpt-9-imaginary", messages=user("hi"))
    assert unknown.value.code == "model_not_found"
    assert "gpt-9-imaginary" in unknown.value.message

    with pytest.raises(openai.RateLimitError):  # streamed requests fail before the stream
        oai(server).chat.completions.create(model=GPT, messages=user("boom"), stream=True)


def test_openai_sdk_retries_a_429_scripted_once(server: FakeLLMServer) -> None:
    server.script.add(match="flaky", error=(429, "rate_limit_error"), times=1)
    client = openai.OpenAI(base_url=server.url + "/v1", api_key="k", max_retries=1)
    done = client.chat.completions.create(model=GPT, messages=user("flaky"))
    assert done.choices[0].message.content == "Echo: flaky"
    assert len(server.requests) == 2
    assert len(server.script) == 0  # the rule is used up


def test_async_openai_stream(server: FakeLLMServer) -> None:
    async def run() -> tuple[str, int]:
        client = openai.AsyncOpenAI(base_url=server.url + "/v1", api_key="k", max_retries=0)
        async with client:
            stream = await client.chat.completions.create(
                model="fake-echo",
                messages=user("async please"),
                stream=True,
                stream_options={"include_usage": True},
            )
            parts, tokens = [], 0
            async for chunk in stream:
                if chunk.usage:
                    tokens = chunk.usage.completion_tokens
                parts.extend(c.delta.content or "" for c in chunk.choices)
            return "".join(parts), tokens

    text, tokens = asyncio.run(run())
    assert text == "Echo: async please"
    assert tokens == 4


# --- Anthropic ----------------------------------------------------------------------------


def test_anthropic_text_and_usage(server: FakeLLMServer) -> None:
    message = claude(server).messages.create(
        model=CLAUDE, max_tokens=100, system="Be brief.", messages=user("Hello, Claude")
    )
    assert message.type == "message"
    assert message.role == "assistant"
    assert message.content[0].type == "text"
    assert message.content[0].text == "Echo: Hello, Claude"
    assert message.stop_reason == "end_turn"
    assert message.usage.input_tokens == count_tokens("Be brief.") + count_tokens("Hello, Claude")
    assert message.usage.output_tokens == 5
    sent = server.requests[-1]
    assert sent.path == "/v1/messages"
    assert sent.headers["x-api-key"] == "k"
    assert "anthropic-version" in sent.headers


def test_anthropic_stream_events_and_text(server: FakeLLMServer) -> None:
    server.script.add(match=r"story", reply="Once upon a time, the end.")
    with claude(server).messages.stream(
        model=CLAUDE, max_tokens=100, messages=user("tell a story")
    ) as stream:
        texts = list(stream.text_stream)
        final = stream.get_final_message()
    assert "".join(texts) == "Once upon a time, the end."
    assert len(texts) == count_tokens("Once upon a time, the end.") == 8
    assert final.content[0].text == "Once upon a time, the end."  # type: ignore[union-attr]
    assert final.usage.output_tokens == 8
    assert final.usage.input_tokens == 3
    assert final.stop_reason == "end_turn"

    # the raw wire: `event: <name>` / `data: <json>` in the API's order
    response = httpx.post(
        server.url + "/v1/messages",
        headers={"x-api-key": "k", "anthropic-version": "2023-06-01"},
        json={"model": CLAUDE, "max_tokens": 9, "stream": True, "messages": user("a b")},
    )
    events = [
        line.removeprefix("event: ")
        for line in response.text.splitlines()
        if line.startswith("event: ")
    ]
    assert events == [
        "message_start",
        "content_block_start",
        "ping",
        *["content_block_delta"] * count_tokens("Echo: a b"),
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]


def test_anthropic_tool_use(server: FakeLLMServer) -> None:
    server.script.add(match="weather", tool_call=WEATHER)
    client = claude(server)
    message = client.messages.create(
        model=CLAUDE, max_tokens=100, messages=user("weather in Paris?"), tools=ANTHROPIC_TOOLS
    )
    assert message.stop_reason == "tool_use"
    block = message.content[0]
    assert block.type == "tool_use"
    assert block.name == "get_weather"
    assert block.input == WEATHER["arguments"]

    # streamed: input_json_delta fragments, put together by the SDK
    with client.messages.stream(
        model=CLAUDE, max_tokens=100, messages=user("weather in Paris?"), tools=ANTHROPIC_TOOLS
    ) as stream:
        kinds = [event.type for event in stream]
        final = stream.get_final_message()
    assert kinds.count("input_json") > 3
    assert final.content[0].type == "tool_use"
    assert final.content[0].input == WEATHER["arguments"]
    assert final.stop_reason == "tool_use"

    # after the tool result (no user text in that turn), the default tool-result reply
    followup = client.messages.create(
        model=CLAUDE,
        max_tokens=100,
        tools=ANTHROPIC_TOOLS,
        messages=[
            *user("weather in Paris?"),
            {"role": "assistant", "content": [block.model_dump()]},
            {
                "role": "user",
                "content": [{"type": "tool_result", "tool_use_id": block.id, "content": "21 C"}],
            },
        ],
    )
    assert followup.stop_reason == "end_turn"
    assert followup.content[0].text == "Tool result: 21 C"  # type: ignore[union-attr]


def test_anthropic_errors(server: FakeLLMServer) -> None:
    server.script.add(match="boom", error=(429, "rate_limit_error", "slow down"))
    server.script.add(match="melt", error=(529, "overloaded_error"))
    client = claude(server)
    with pytest.raises(anthropic.RateLimitError) as limited:
        client.messages.create(model=CLAUDE, max_tokens=10, messages=user("boom"))
    assert limited.value.body == {
        "type": "error",
        "error": {"type": "rate_limit_error", "message": "slow down"},
    }
    with pytest.raises(anthropic.OverloadedError) as overloaded:
        client.messages.create(model=CLAUDE, max_tokens=10, messages=user("melt"))
    assert overloaded.value.status_code == 529

    with pytest.raises(anthropic.AuthenticationError) as refused:
        claude(server, key="bad-key").messages.create(
            model=CLAUDE, max_tokens=10, messages=user("hi")
        )
    assert refused.value.body["error"]["type"] == "authentication_error"  # type: ignore[index]

    with pytest.raises(anthropic.NotFoundError) as unknown:
        client.messages.create(model="claude-imaginary", max_tokens=10, messages=user("hi"))
    assert unknown.value.body["error"]["type"] == "not_found_error"  # type: ignore[index]

    with (
        pytest.raises(anthropic.RateLimitError),
        client.messages.stream(model=CLAUDE, max_tokens=10, messages=user("boom")) as stream,
    ):
        stream.get_final_message()


def test_async_anthropic_stream(server: FakeLLMServer) -> None:
    async def run() -> tuple[list[str], int]:
        client = anthropic.AsyncAnthropic(base_url=server.url, api_key="k", max_retries=0)
        async with (
            client,
            client.messages.stream(
                model=CLAUDE, max_tokens=100, messages=user("async, please")
            ) as stream,
        ):
            texts = [text async for text in stream.text_stream]
            final = await stream.get_final_message()
        return texts, final.usage.output_tokens

    texts, tokens = asyncio.run(run())
    assert "".join(texts) == "Echo: async, please"
    assert tokens == 5


# --- auth, models, pacing -----------------------------------------------------------------


def test_a_missing_key_is_refused_in_each_shape(server: FakeLLMServer) -> None:
    body = {"model": GPT, "max_tokens": 5, "messages": user("hi")}
    response = httpx.post(server.url + "/v1/chat/completions", json=body)
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "invalid_api_key"
    response = httpx.post(server.url + "/v1/messages", json={**body, "model": CLAUDE})
    assert response.status_code == 401
    assert response.json()["type"] == "error"


def test_known_models_and_keys_are_configurable() -> None:
    with FakeLLMServer(known_models=None, api_keys={"only-this"}) as server:
        done = oai(server, key="only-this").chat.completions.create(
            model="anything-at-all", messages=user("x")
        )
        assert done.model == "anything-at-all"
        with pytest.raises(openai.AuthenticationError):
            oai(server, key="k").chat.completions.create(model=GPT, messages=user("x"))
        listed = oai(server, key="only-this").models.list()
        assert listed.data == []


def test_script_rules_are_checked(server: FakeLLMServer) -> None:
    script = FakeScript(default=lambda text: text.upper())
    script.add(match="x", reply="first").add(match="x", reply="second")
    assert script.answer("an x").text == "first"
    assert script.answer("nothing").text == "NOTHING"
    with pytest.raises(ValueError, match="needs a reply"):
        script.add(match="x")
    with pytest.raises(ValueError, match="4xx or 5xx"):
        script.add(match="x", error=(200, "fine"))
    with pytest.raises(ValueError, match="name"):
        script.add(match="x", tool_call={"arguments": {}})


def test_latency_delays_the_first_byte(server: FakeLLMServer) -> None:
    server.latency_s = 0.2
    started = time.monotonic()
    oai(server).chat.completions.create(model=GPT, messages=user("hi"))
    assert time.monotonic() - started >= 0.2


def test_paced_stream_is_read_before_the_producer_ends(server: FakeLLMServer) -> None:
    reply = " ".join(f"w{i}" for i in range(20))
    server.script.add(match="slow", reply=reply)
    server.tokens_per_s = 50  # 20 deltas -> about 0.4 s
    started = time.monotonic()
    first_delta_at = None
    parts = []
    for chunk in oai(server).chat.completions.create(model=GPT, messages=user("slow"), stream=True):
        for choice in chunk.choices:
            if choice.delta.content:
                first_delta_at = first_delta_at or time.monotonic() - started
                parts.append(choice.delta.content)
    ended_at = time.monotonic() - started
    assert "".join(parts) == reply
    assert first_delta_at is not None
    assert ended_at >= 19 / 50
    assert first_delta_at < ended_at / 3


def test_stop_ends_open_connections_and_can_restart() -> None:
    server = FakeLLMServer(tokens_per_s=20).start()
    server.script.add(match="long", reply=" ".join(["word"] * 200))  # ~10 s if read to the end
    client = oai(server)
    stream = client.chat.completions.create(model=GPT, messages=user("long"), stream=True)
    next(iter(stream))
    started = time.monotonic()
    server.stop()
    with pytest.raises((openai.APIError, httpx.HTTPError)):
        for _ in stream:
            pass
    assert time.monotonic() - started < 2
    assert not server.running
    with server:
        assert oai(server).models.list().data  # default known models are listed
