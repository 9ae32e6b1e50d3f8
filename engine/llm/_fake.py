"""A deterministic fake LLM provider: a real HTTP server (standard library only) that speaks
the OpenAI chat-completions and the Anthropic messages wire formats, streamed and not, so
tests and the offline demo drive the official SDKs end to end without the internet.

    with FakeLLMServer() as server:
        server.script.add(match="weather", tool_call={"name": "get_weather",
                                                      "arguments": {"city": "Paris"}})
        server.script.add(match="boom", error=(429, "rate_limit_error"))
        openai.OpenAI(base_url=server.url + "/v1", api_key="k")
        anthropic.Anthropic(base_url=server.url, api_key="k")

Replies are chosen by `FakeScript` rules matched against the last user text (first added
rule first); without a match the reply is "Echo: <last user text>". Token counts come from a
simple tokenizer (words and single punctuation marks), prompt tokens from every message.
The API key "bad-key" (or a missing key) is refused with 401, a model outside
`known_models` with 404, each in the provider's own error shape.

`main()` serves standalone until interrupted (for the offline demo), e.g.
`python -c "from engine.llm._fake import main; main()" --port 8765`."""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import re
import socket
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Self

__all__ = ["BAD_KEY", "DEFAULT_MODELS", "FakeLLMServer", "FakeRequest", "FakeScript"]

JSON = dict[str, Any]

BAD_KEY = "bad-key"
DEFAULT_MODELS: frozenset[str] = frozenset(
    {
        "fake-echo",
        "gpt-4o",
        "gpt-4o-mini",
        "gpt-4.1-mini",
        "claude-haiku-4-5",
        "claude-sonnet-4-5",
    }
)
_CREATED = 1_700_000_000  # a fixed timestamp: responses are deterministic
_TOKEN = re.compile(r"\w+|[^\w\s]")
_PIECE = re.compile(r"\s*(?:\w+|[^\w\s])|\s+")  # pieces joined give the text back
_RETRYABLE = frozenset({408, 409, 429, 500, 502, 503, 504, 529})


def count_tokens(text: str) -> int:
    """Tokens by the fake's tokenizer: each word and each punctuation mark is one."""
    return len(_TOKEN.findall(text))


def _pieces(text: str) -> list[str]:
    """The text cut into one-token pieces (leading whitespace kept), for streaming."""
    return _PIECE.findall(text)


# --- the script ---------------------------------------------------------------------------


@dataclass(frozen=True)
class _ToolCall:
    name: str
    arguments: JSON

    @property
    def arguments_json(self) -> str:
        return json.dumps(self.arguments)


@dataclass
class _Rule:
    match: str | re.Pattern[str]
    reply: str | None
    tool_calls: tuple[_ToolCall, ...]
    error: tuple[int, str, str] | None
    remaining: int | None
    after_result: str | re.Pattern[str] | None = None
    fail_after: int | None = None

    def matches(self, text: str, tool_result: str | None) -> bool:
        if self.after_result is not None and (
            tool_result is None or not _found(self.after_result, tool_result)
        ):
            return False
        return _found(self.match, text)


def _found(pattern: str | re.Pattern[str], text: str) -> bool:
    if isinstance(pattern, re.Pattern):
        return pattern.search(text) is not None
    return pattern.lower() in text.lower()


@dataclass(frozen=True)
class _Turn:
    """What the model answers, whichever wire format carries it."""

    text: str = ""
    tool_calls: tuple[_ToolCall, ...] = ()
    error: tuple[int, str, str] | None = None
    # Streaming only: after this many tokens the stream carries a server error and ends.
    fail_after: int | None = None


def _echo(text: str) -> str:
    return f"Echo: {text}"


def _tool_calls(spec: Mapping[str, Any] | Sequence[Mapping[str, Any]]) -> tuple[_ToolCall, ...]:
    specs = [spec] if isinstance(spec, Mapping) else list(spec)
    calls: list[_ToolCall] = []
    for one in specs:
        name = one.get("name")
        arguments = one.get("arguments", {})
        if not isinstance(name, str) or not name:
            raise ValueError("a tool call needs a 'name'")
        if not isinstance(arguments, Mapping):
            raise ValueError("a tool call's 'arguments' must be a mapping")
        calls.append(_ToolCall(name, dict(arguments)))
    if not calls:
        raise ValueError("tool_call is empty")
    return tuple(calls)


class FakeScript:
    """Deterministic replies: rules matched against the last user text, first added first.

    A rule with a `tool_call` answers with the tool call(s) until the conversation ends in a
    tool result; then it answers with `reply` (or "Tool result: <result text>"). A rule with
    `after_result` only answers conversations that end in a tool result matching it, and
    answers them with its tool call(s) if it has any: a model calling a tool again after
    seeing a result (to retry after an error, or to go on). A rule with
    `error` answers with that HTTP status and error type. `times` limits how often a rule
    answers (e.g. one 429, then the default reply)."""

    def __init__(self, default: Callable[[str], str] = _echo) -> None:
        self.default = default
        self._rules: list[_Rule] = []
        self._lock = threading.Lock()

    def add(
        self,
        match: str | re.Pattern[str],
        *,
        reply: str | None = None,
        tool_call: Mapping[str, Any] | Sequence[Mapping[str, Any]] | None = None,
        error: tuple[int, str] | tuple[int, str, str] | None = None,
        times: int | None = None,
        after_result: str | re.Pattern[str] | None = None,
        fail_after: int | None = None,
    ) -> Self:
        """Add a rule. `match` is a case-insensitive substring or a compiled pattern;
        `tool_call` is {"name": ..., "arguments": {...}} or a list of them; `error` is
        (status, type) or (status, type, message); `after_result` is matched like `match`
        against the tool result the conversation ends in ("" matches any result);
        `fail_after` makes a streamed `reply` break off after that many tokens with a server
        error event (the provider failing mid-answer)."""
        if reply is None and tool_call is None and error is None:
            raise ValueError("a rule needs a reply, a tool_call or an error")
        if times is not None and times < 1:
            raise ValueError("times must be at least 1")
        scripted_error: tuple[int, str, str] | None = None
        if error is not None:
            status, kind = error[0], error[1]
            if not 400 <= status <= 599:
                raise ValueError("an error status is 4xx or 5xx")
            message = error[2] if len(error) == 3 else f"fake {kind} (scripted)"
            scripted_error = (status, kind, message)
        rule = _Rule(
            match=match,
            reply=reply,
            tool_calls=_tool_calls(tool_call) if tool_call is not None else (),
            error=scripted_error,
            remaining=times,
            after_result=after_result,
            fail_after=fail_after,
        )
        with self._lock:
            self._rules.append(rule)
        return self

    def clear(self) -> None:
        with self._lock:
            self._rules.clear()

    def __len__(self) -> int:
        with self._lock:
            return sum(1 for rule in self._rules if rule.remaining != 0)

    def _take(self, text: str, tool_result: str | None) -> _Rule | None:
        with self._lock:
            for rule in self._rules:
                if rule.remaining != 0 and rule.matches(text, tool_result):
                    if rule.remaining is not None:
                        rule.remaining -= 1
                    return rule
        return None

    def answer(self, user_text: str, tool_result: str | None = None) -> _Turn:
        """The turn for a conversation whose last user text is `user_text` and which ends in
        `tool_result` (None when it does not end in a tool result)."""
        rule = self._take(user_text, tool_result)
        if rule is None:
            return _Turn(text=self.default(user_text))
        if rule.error is not None:
            return _Turn(error=rule.error)
        if rule.tool_calls and (tool_result is None or rule.after_result is not None):
            return _Turn(tool_calls=rule.tool_calls)
        if rule.reply is not None:
            return _Turn(text=rule.reply, fail_after=rule.fail_after)
        if tool_result is not None:
            return _Turn(text=f"Tool result: {tool_result}")
        return _Turn(text=self.default(user_text))  # pragma: no cover - a rule has one of them


# --- reading requests ---------------------------------------------------------------------


@dataclass(frozen=True)
class FakeRequest:
    """One request the server received (headers with lower-case names)."""

    method: str
    path: str
    headers: dict[str, str]
    body: JSON | None


@dataclass
class _Prompt:
    texts: list[str] = field(default_factory=list)
    user_text: str = ""
    tool_result: str | None = None

    @property
    def tokens(self) -> int:
        return sum(count_tokens(text) for text in self.texts)


class _BadRequest(Exception):
    pass


def _text_of(content: Any) -> str:
    """The text in a message's content: a string, or text parts / blocks (tool blocks too)."""
    if isinstance(content, str):
        text = content
    elif isinstance(content, list):
        text = "\n".join(part for part in (_text_of(item) for item in content) if part)
    elif isinstance(content, Mapping):
        if isinstance(content.get("text"), str):
            text = str(content["text"])
        elif content.get("type") == "tool_use":
            text = f"{content.get('name', '')} {json.dumps(content.get('input', {}))}"
        else:
            text = _text_of(content.get("content"))
    else:
        text = "" if content is None else str(content)
    return text


def _messages(body: JSON) -> list[JSON]:
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise _BadRequest("'messages' must be a non-empty list")
    if not all(isinstance(message, dict) for message in messages):
        raise _BadRequest("each message must be an object")
    return messages


def _openai_prompt(body: JSON) -> _Prompt:
    prompt = _Prompt()
    messages = _messages(body)
    for message in messages:
        text = _text_of(message.get("content"))
        prompt.texts.append(text)
        for call in message.get("tool_calls") or []:
            function = call.get("function", {}) if isinstance(call, Mapping) else {}
            prompt.texts.append(f"{function.get('name', '')} {function.get('arguments', '')}")
        if message.get("role") == "user":
            prompt.user_text = text
    if messages[-1].get("role") == "tool":
        prompt.tool_result = _text_of(messages[-1].get("content"))
    return prompt


def _is_tool_result(block: Any) -> bool:
    return isinstance(block, Mapping) and block.get("type") == "tool_result"


def _anthropic_prompt(body: JSON) -> _Prompt:
    prompt = _Prompt()
    system = body.get("system")
    if system:
        prompt.texts.append(_text_of(system))
    messages = _messages(body)
    for message in messages:
        content = message.get("content")
        prompt.texts.append(_text_of(content))
        if message.get("role") != "user":
            continue
        if isinstance(content, str):
            prompt.user_text = content
        elif isinstance(content, list):
            said = [block for block in content if not _is_tool_result(block)]
            if said:
                prompt.user_text = _text_of(said)
    last = messages[-1].get("content")
    if messages[-1].get("role") == "user" and isinstance(last, list):
        results = [block for block in last if _is_tool_result(block)]
        if results:
            prompt.tool_result = _text_of(results)
    return prompt


# --- planning a reply ---------------------------------------------------------------------


@dataclass(frozen=True)
class _Reply:
    """A turn cut into stream pieces, truncated at max_tokens."""

    pieces: list[str]
    tool_calls: tuple[_ToolCall, ...]
    truncated: bool
    prompt_tokens: int

    @property
    def text(self) -> str:
        return "".join(self.pieces)

    @property
    def completion_tokens(self) -> int:
        return count_tokens(self.text) + sum(
            count_tokens(f"{call.name} {call.arguments_json}") for call in self.tool_calls
        )


def _plan(turn: _Turn, prompt: _Prompt, max_tokens: Any) -> _Reply:
    pieces = _pieces(turn.text)
    truncated = False
    if isinstance(max_tokens, int) and not isinstance(max_tokens, bool) and max_tokens >= 0:
        kept: list[str] = []
        tokens = 0
        for piece in pieces:
            if not piece.strip():
                kept.append(piece)
                continue
            if tokens == max_tokens:
                truncated = True
                break
            kept.append(piece)
            tokens += 1
        if truncated:
            while kept and not kept[-1].strip():
                kept.pop()
        pieces = kept
    return _Reply(pieces, turn.tool_calls, truncated, prompt.tokens)


# --- the HTTP server ----------------------------------------------------------------------


class _Pacer:
    """Sleeps between streamed deltas (not before the first) at `tokens_per_s`."""

    def __init__(self, tokens_per_s: float | None) -> None:
        self._interval = 1.0 / tokens_per_s if tokens_per_s and tokens_per_s > 0 else 0.0
        self._first = True

    def wait(self) -> None:
        if self._first:
            self._first = False
        elif self._interval:
            time.sleep(self._interval)


class _ClientGone(Exception):
    pass


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], fake: FakeLLMServer) -> None:
        self.fake = fake
        self.connections: set[socket.socket] = set()
        self.connections_lock = threading.Lock()
        super().__init__(address, _Handler)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, chunked streams
    server_version = "FireFlowFakeLLM/1.0"
    server: _HTTPServer

    # - plumbing -

    def setup(self) -> None:
        super().setup()
        with self.server.connections_lock:
            self.server.connections.add(self.connection)

    def finish(self) -> None:
        with self.server.connections_lock:
            self.server.connections.discard(self.connection)
        with contextlib.suppress(OSError):
            super().finish()

    def log_message(self, format: str, *args: Any) -> None:
        pass  # quiet: tests read `FakeLLMServer.requests` instead

    @property
    def fake(self) -> FakeLLMServer:
        return self.server.fake

    def _headers(self) -> dict[str, str]:
        return {name.lower(): value for name, value in self.headers.items()}

    def _read_body(self) -> JSON | None:
        """The request's JSON object, or None (no body, not JSON, not an object)."""
        try:
            length = int(self.headers.get("content-length") or 0)
            body = json.loads(self.rfile.read(length)) if length > 0 else None
        except ValueError:
            return None
        return body if isinstance(body, dict) else None

    def _send_json(
        self, status: int, payload: JSON, headers: Mapping[str, str] | None = None
    ) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def _start_stream(self, headers: Mapping[str, str]) -> None:
        self.send_response(200)
        self.send_header("content-type", "text/event-stream; charset=utf-8")
        self.send_header("cache-control", "no-cache")
        self.send_header("transfer-encoding", "chunked")
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()

    def _chunk(self, text: str) -> None:
        data = text.encode()
        try:
            self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
            self.wfile.flush()
        except OSError as exc:
            raise _ClientGone from exc

    def _end_stream(self) -> None:
        try:
            self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()
        except OSError as exc:
            raise _ClientGone from exc

    # - routing -

    def do_GET(self) -> None:
        self.fake._record(FakeRequest("GET", self.path, self._headers(), None))
        if self.path.split("?")[0].rstrip("/") != "/v1/models":
            self._send_json(404, _openai_error(404, "not_found", f"no route {self.path}"))
            return
        anthropic = "anthropic-version" in self.headers
        if not self._authorised(anthropic):
            return
        models = sorted(self.fake.known_models or ())
        if anthropic:
            self._send_json(
                200,
                {
                    "data": [
                        {"type": "model", "id": m, "display_name": m, "created_at": _iso()}
                        for m in models
                    ],
                    "has_more": False,
                    "first_id": models[0] if models else None,
                    "last_id": models[-1] if models else None,
                },
            )
            return
        data = [
            {"id": m, "object": "model", "created": _CREATED, "owned_by": "fireflow-fake"}
            for m in models
        ]
        self._send_json(200, {"object": "list", "data": data})

    def do_POST(self) -> None:
        path = self.path.split("?")[0].rstrip("/")
        body = self._read_body()
        self.fake._record(FakeRequest("POST", self.path, self._headers(), body))
        if self.fake.latency_s > 0:
            time.sleep(self.fake.latency_s)
        try:
            if path == "/v1/chat/completions":
                self._openai(body)
            elif path == "/v1/messages":
                self._anthropic(body)
            else:
                self._send_json(404, _openai_error(404, "not_found", f"no route {self.path}"))
        except (_ClientGone, OSError):  # the client hung up (or the server is stopping)
            self.close_connection = True

    def _authorised(self, anthropic: bool) -> bool:
        key = self.headers.get("x-api-key") if anthropic else None
        authorization = self.headers.get("authorization") or ""
        if not key and authorization.lower().startswith("bearer "):
            key = authorization[7:].strip()
        allowed = self.fake.api_keys
        if key and key != BAD_KEY and (allowed is None or key in allowed):
            return True
        if anthropic:
            self._send_json(401, _anthropic_error(401, "authentication_error", "invalid x-api-key"))
        else:
            shown = f"{key[:3]}***" if key else "(none)"
            error = _openai_error(401, "invalid_request_error", f"Incorrect API key: {shown}")
            error["error"]["code"] = "invalid_api_key"
            self._send_json(401, error)
        return False

    def _model(self, body: JSON, anthropic: bool) -> str | None:
        model = body.get("model")
        known = self.fake.known_models
        if isinstance(model, str) and model and (known is None or model in known):
            return model
        if anthropic:
            self._send_json(404, _anthropic_error(404, "not_found_error", f"model: {model}"))
        else:
            message = f"The model `{model}` does not exist or you do not have access to it."
            error = _openai_error(404, "invalid_request_error", message)
            error["error"]["code"] = "model_not_found"
            self._send_json(404, error)
        return None

    def _send_scripted_error(self, error: tuple[int, str, str], anthropic: bool) -> None:
        status, kind, message = error
        headers = {"retry-after-ms": "10"} if status in _RETRYABLE else {}
        payload = (
            _anthropic_error(status, kind, message)
            if anthropic
            else _openai_error(status, kind, message)
        )
        self._send_json(status, payload, headers)

    def _prepare(self, body: JSON | None, anthropic: bool) -> tuple[JSON, str, _Prompt] | None:
        if not self._authorised(anthropic):
            return None
        bad = _anthropic_error if anthropic else _openai_error
        if body is None:
            self._send_json(400, bad(400, "invalid_request_error", "the body is not JSON"))
            return None
        model = self._model(body, anthropic)
        if model is None:
            return None
        if anthropic and not isinstance(body.get("max_tokens"), int):
            self._send_json(400, bad(400, "invalid_request_error", "max_tokens: Field required"))
            return None
        try:
            prompt = _anthropic_prompt(body) if anthropic else _openai_prompt(body)
        except _BadRequest as exc:
            self._send_json(400, bad(400, "invalid_request_error", str(exc)))
            return None
        return body, model, prompt

    # - OpenAI chat completions -

    def _openai(self, body: JSON | None) -> None:
        prepared = self._prepare(body, anthropic=False)
        if prepared is None:
            return
        body, model, prompt = prepared
        turn = self.fake.script.answer(prompt.user_text, prompt.tool_result)
        if turn.error is not None:
            self._send_scripted_error(turn.error, anthropic=False)
            return
        max_tokens = body.get("max_completion_tokens", body.get("max_tokens"))
        reply = _plan(turn, prompt, max_tokens)
        seq = self.fake._next_id()
        headers = {"x-request-id": f"req_fake{seq:06d}"}
        if body.get("stream"):
            options = body.get("stream_options") or {}
            usage = isinstance(options, Mapping) and bool(options.get("include_usage"))
            self._start_stream(headers)
            error = _data(_openai_error(500, "server_error", "fake server error mid-stream"))
            self._stream(
                _openai_chunks(reply, model, seq, include_usage=usage), turn.fail_after, error
            )
            return
        self._send_json(200, _openai_completion(reply, model, seq), headers)

    def _anthropic(self, body: JSON | None) -> None:
        prepared = self._prepare(body, anthropic=True)
        if prepared is None:
            return
        body, model, prompt = prepared
        turn = self.fake.script.answer(prompt.user_text, prompt.tool_result)
        if turn.error is not None:
            self._send_scripted_error(turn.error, anthropic=True)
            return
        reply = _plan(turn, prompt, body.get("max_tokens"))
        seq = self.fake._next_id()
        headers = {"request-id": f"req_fake{seq:06d}"}
        if body.get("stream"):
            self._start_stream(headers)
            error = (
                "event: error\ndata: "
                + json.dumps(_anthropic_error(500, "api_error", "fake server error mid-stream"))
                + "\n\n"
            )
            self._stream(_anthropic_events(reply, model, seq), turn.fail_after, error)
            return
        self._send_json(200, _anthropic_message(reply, model, seq), headers)

    def _stream(
        self,
        events: Iterable[tuple[bool, str]],
        fail_after: int | None = None,
        error_event: str = "",
    ) -> None:
        """Write SSE events as chunks, deltas paced at the server's `tokens_per_s`; with
        `fail_after`, the error event replaces everything after that many deltas."""
        pacer = _Pacer(self.fake.tokens_per_s)
        deltas = 0
        for is_delta, event in events:
            if is_delta:
                if fail_after is not None and deltas >= fail_after:
                    self._chunk(error_event)
                    break
                deltas += 1
                pacer.wait()
            self._chunk(event)
        self._end_stream()


def _iso() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(_CREATED))


def _openai_error(status: int, kind: str, message: str) -> JSON:
    return {"error": {"message": message, "type": kind, "param": None, "code": kind}}


def _anthropic_error(status: int, kind: str, message: str) -> JSON:
    return {
        "type": "error",
        "error": {"type": kind, "message": message},
    }


# --- OpenAI wire format -------------------------------------------------------------------


def _openai_finish(reply: _Reply) -> str:
    if reply.tool_calls:
        return "tool_calls"
    return "length" if reply.truncated else "stop"


def _openai_usage(reply: _Reply) -> JSON:
    completion = reply.completion_tokens
    return {
        "prompt_tokens": reply.prompt_tokens,
        "completion_tokens": completion,
        "total_tokens": reply.prompt_tokens + completion,
    }


def _call_id(prefix: str, seq: int, index: int) -> str:
    return f"{prefix}_fake{seq:06d}{index:02d}"


def _openai_completion(reply: _Reply, model: str, seq: int) -> JSON:
    message: JSON = {"role": "assistant", "content": reply.text or None, "refusal": None}
    if reply.tool_calls:
        message["tool_calls"] = [
            {
                "id": _call_id("call", seq, index),
                "type": "function",
                "function": {"name": call.name, "arguments": call.arguments_json},
            }
            for index, call in enumerate(reply.tool_calls)
        ]
    elif message["content"] is None:
        message["content"] = ""
    return {
        "id": f"chatcmpl-fake{seq:06d}",
        "object": "chat.completion",
        "created": _CREATED,
        "model": model,
        "system_fingerprint": "fp_fake",
        "choices": [
            {
                "index": 0,
                "message": message,
                "logprobs": None,
                "finish_reason": _openai_finish(reply),
            }
        ],
        "usage": _openai_usage(reply),
    }


def _openai_chunks(
    reply: _Reply, model: str, seq: int, *, include_usage: bool
) -> Iterator[tuple[bool, str]]:
    """(is a delta, `data: <chunk>` event) pairs, ending with `data: [DONE]`."""
    base: JSON = {
        "id": f"chatcmpl-fake{seq:06d}",
        "object": "chat.completion.chunk",
        "created": _CREATED,
        "model": model,
        "system_fingerprint": "fp_fake",
    }
    if include_usage:
        base["usage"] = None

    def chunk(delta: JSON, finish: str | None = None) -> str:
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
        return _data({**base, "choices": [choice]})

    yield False, chunk({"role": "assistant", "content": "", "refusal": None})
    for piece in reply.pieces:
        yield True, chunk({"content": piece})
    for index, call in enumerate(reply.tool_calls):
        yield (
            True,
            chunk(
                {
                    "tool_calls": [
                        {
                            "index": index,
                            "id": _call_id("call", seq, index),
                            "type": "function",
                            "function": {"name": call.name, "arguments": ""},
                        }
                    ]
                }
            ),
        )
        for fragment in _pieces(call.arguments_json):
            yield (
                True,
                chunk({"tool_calls": [{"index": index, "function": {"arguments": fragment}}]}),
            )
    yield False, chunk({}, _openai_finish(reply))
    if include_usage:
        yield False, _data({**base, "choices": [], "usage": _openai_usage(reply)})
    yield False, "data: [DONE]\n\n"


# --- Anthropic wire format ----------------------------------------------------------------


def _anthropic_stop(reply: _Reply) -> str:
    if reply.tool_calls:
        return "tool_use"
    return "max_tokens" if reply.truncated else "end_turn"


def _anthropic_message(reply: _Reply, model: str, seq: int) -> JSON:
    content: list[JSON] = []
    if reply.text or not reply.tool_calls:
        content.append({"type": "text", "text": reply.text})
    content.extend(
        {
            "type": "tool_use",
            "id": _call_id("toolu", seq, index),
            "name": call.name,
            "input": call.arguments,
        }
        for index, call in enumerate(reply.tool_calls)
    )
    return {
        "id": f"msg_fake{seq:06d}",
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": content,
        "stop_reason": _anthropic_stop(reply),
        "stop_sequence": None,
        "usage": {"input_tokens": reply.prompt_tokens, "output_tokens": reply.completion_tokens},
    }


def _block(index: int, kind: str, body: JSON) -> str:
    """A content_block_start / _delta / _stop event for the block at `index`."""
    name = f"content_block_{kind}"
    return _event(name, {"type": name, "index": index, **body})


def _anthropic_events(reply: _Reply, model: str, seq: int) -> Iterator[tuple[bool, str]]:
    """(is a delta, `event: <name>` + `data: <json>`) pairs, in the API's order."""
    start = _anthropic_message(_Reply([], (), False, reply.prompt_tokens), model, seq)
    start.update(content=[], stop_reason=None)
    start["usage"]["output_tokens"] = 0
    yield False, _event("message_start", {"type": "message_start", "message": start})
    blocks: list[tuple[JSON, list[JSON]]] = []
    if reply.pieces or not reply.tool_calls:
        text_deltas: list[JSON] = [{"type": "text_delta", "text": p} for p in reply.pieces]
        blocks.append(({"type": "text", "text": ""}, text_deltas))
    for number, call in enumerate(reply.tool_calls):
        block: JSON = {
            "type": "tool_use",
            "id": _call_id("toolu", seq, number),
            "name": call.name,
            "input": {},
        }
        json_deltas: list[JSON] = [
            {"type": "input_json_delta", "partial_json": fragment}
            for fragment in _pieces(call.arguments_json)
        ]
        blocks.append((block, json_deltas))
    for index, (block, deltas) in enumerate(blocks):
        yield False, _block(index, "start", {"content_block": block})
        if index == 0:
            yield False, _event("ping", {"type": "ping"})
        for delta in deltas:
            yield True, _block(index, "delta", {"delta": delta})
        yield False, _block(index, "stop", {})
    message_delta: JSON = {
        "type": "message_delta",
        "delta": {"stop_reason": _anthropic_stop(reply), "stop_sequence": None},
        "usage": {"output_tokens": reply.completion_tokens},
    }
    yield False, _event("message_delta", message_delta)
    yield False, _event("message_stop", {"type": "message_stop"})


def _data(payload: JSON) -> str:
    return f"data: {json.dumps(payload)}\n\n"


def _event(name: str, payload: JSON) -> str:
    return f"event: {name}\ndata: {json.dumps(payload)}\n\n"


# --- the server ---------------------------------------------------------------------------


class FakeLLMServer:
    """The fake provider on a real socket, served from a background thread.

    `latency_s` delays the first byte of every POST answer; `tokens_per_s` paces streamed
    deltas (one token each). Both can be changed while the server runs. `known_models` None
    accepts any model; `api_keys` None accepts any key but "bad-key"."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        latency_s: float = 0.0,
        tokens_per_s: float | None = None,
        known_models: Iterable[str] | None = DEFAULT_MODELS,
        api_keys: Iterable[str] | None = None,
        script: FakeScript | None = None,
    ) -> None:
        self.host = host
        self.latency_s = latency_s
        self.tokens_per_s = tokens_per_s
        self.known_models: frozenset[str] | None = (
            frozenset(known_models) if known_models is not None else None
        )
        self.api_keys: frozenset[str] | None = frozenset(api_keys) if api_keys is not None else None
        self.script = script if script is not None else FakeScript()
        self.requests: list[FakeRequest] = []
        self._port = port
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        self._httpd: _HTTPServer | None = None
        self._thread: threading.Thread | None = None

    # - lifecycle -

    def start(self) -> Self:
        if self._httpd is not None:
            raise RuntimeError("the fake LLM server is already running")
        httpd = _HTTPServer((self.host, self._port), self)
        self._httpd = httpd
        self._thread = threading.Thread(
            target=httpd.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"fake-llm:{httpd.server_address[1]}",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and drop open connections (streams in flight end abruptly)."""
        httpd, thread = self._httpd, self._thread
        if httpd is None:
            return
        httpd.shutdown()
        with httpd.connections_lock:
            connections = list(httpd.connections)
        for connection in connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)
        httpd.server_close()
        if thread is not None:
            thread.join(timeout=5)
        self._httpd = self._thread = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        return self._httpd is not None

    @property
    def port(self) -> int:
        if self._httpd is None:
            raise RuntimeError("the fake LLM server is not running: call start()")
        return int(self._httpd.server_address[1])

    @property
    def url(self) -> str:
        """http://host:port, without a path: OpenAI clients take url + "/v1"."""
        host = self.host if ":" not in self.host else f"[{self.host}]"
        return f"http://{host}:{self.port}"

    # - used by the handler -

    def _record(self, request: FakeRequest) -> None:
        with self._lock:
            self.requests.append(request)

    def _next_id(self) -> int:
        with self._lock:
            return next(self._ids)


def main(argv: Sequence[str] | None = None) -> None:
    """Serve until interrupted: the offline demo's LLM provider."""
    parser = argparse.ArgumentParser(description="FireFlow's fake LLM provider")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--latency", type=float, default=0.0, help="seconds before first byte")
    parser.add_argument("--tokens-per-s", type=float, default=None, help="stream pacing")
    parser.add_argument(
        "--any-model", action="store_true", help="accept every model name (no 404s)"
    )
    args = parser.parse_args(argv)
    server = FakeLLMServer(
        args.host,
        args.port,
        latency_s=args.latency,
        tokens_per_s=args.tokens_per_s,
        known_models=None if args.any_model else DEFAULT_MODELS,
    )
    with server:
        print(f"fake LLM provider on {server.url}", flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            threading.Event().wait()
