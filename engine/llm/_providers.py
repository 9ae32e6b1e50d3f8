"""One call path for every LLM call: providers through their official SDKs (OpenAI, and
Gemini, DeepSeek, Groq and self-hosted servers through OpenAI-compatible endpoints;
Anthropic), streamed, normalised to text deltas, tool-call deltas and one result with usage.

Credentials are the worker's (environment variables) until the vault lands: never a flow
field, never in a workflow input or a step output. A self-hosted base URL given in a flow is
checked like any URL the HTTP node fetches (SSRF guard and the workspace's allow list).

Messages and tools are provider-neutral; each provider's adapter maps them to its wire
format (OpenAI: `tools[].function`, assistant `tool_calls`, `role: tool` messages;
Anthropic: `input_schema`, `tool_use` blocks, `tool_result` blocks in a user turn).

    {"role": "user", "content": text}
    {"role": "assistant", "content": text,
     "tool_calls": [{"id": id, "name": tool name, "arguments": {...}}]}   # tool_calls optional
    {"role": "tool", "tool_call_id": id, "name": tool name, "content": text,
     "is_error": bool}                                                      # is_error optional

A tool is {"name", "description", "parameters": a JSON Schema of its arguments (an
object)}. `ChatResult.tool_calls` holds the calls the model made, in order, each
{"id", "name", "arguments": dict}; when the model wrote arguments that are not a JSON
object, "arguments" is {} and "invalid_arguments" holds what it wrote."""

import asyncio
import json
import os
import weakref
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import anthropic
import httpx
import openai
from openai.types.chat.chat_completion_chunk import ChoiceDeltaToolCall

from .._net import AllowList, BlockedURL, check_url
from .._registry import NodeError
from ._catalogue import model_info

# provider -> (API key variable, default base URL or None for the SDK's own)
_OPENAI_STYLE: dict[str, tuple[str, str | None]] = {
    "openai": ("OPENAI_API_KEY", None),
    "gemini": ("GEMINI_API_KEY", "https://generativelanguage.googleapis.com/v1beta/openai/"),
    "deepseek": ("DEEPSEEK_API_KEY", "https://api.deepseek.com"),
    "groq": ("GROQ_API_KEY", "https://api.groq.com/openai/v1"),
    "openai_compatible": ("FIREFLOW_COMPATIBLE_API_KEY", None),
    "fake": ("FIREFLOW_FAKE_LLM_KEY", None),
}
PROVIDERS = (*_OPENAI_STYLE, "anthropic")
_RETRIES = 2  # the SDKs retry 429 and 5xx with backoff, before the first token only


@dataclass(frozen=True)
class ChatRequest:
    provider: str
    model: str
    messages: list[dict[str, Any]]  # the neutral shape (module docstring)
    system: str = ""
    max_tokens: int = 1024
    temperature: float | None = None
    base_url: str | None = None  # openai_compatible only
    tools: list[dict[str, Any]] = field(
        default_factory=list
    )  # {"name", "description", "parameters"}
    # From the vault (a node's `api_key_secret`); else the workers' environment. Never shown.
    api_key: str | None = field(default=None, repr=False)


@dataclass
class ChatResult:
    text: str
    input_tokens: int = 0
    output_tokens: int = 0
    stop_reason: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    tool_calls: list[dict[str, Any]] = field(default_factory=list)  # {"id", "name", "arguments"}


@dataclass(frozen=True)
class ToolCallDelta:
    """A tool call while the model writes it: "start" (id and name known), "args" (the
    next piece of the arguments' JSON text) and "end" (the arguments are complete)."""

    kind: Literal["start", "args", "end"]
    id: str
    name: str
    arguments: str = ""


OnText = Callable[[str], Awaitable[None]]
OnToolCall = Callable[[ToolCallDelta], Awaitable[None]]


async def _base_url(request: ChatRequest, allow: AllowList) -> str | None:
    if request.provider == "fake":
        url = os.environ.get("FIREFLOW_FAKE_LLM_URL")
        if not url:
            raise NodeError(
                "the fake provider is not running on this worker (FIREFLOW_FAKE_LLM_URL is not set)"
            )
        return url.rstrip("/") + "/v1"
    if request.provider == "openai_compatible":
        if not request.base_url:
            raise NodeError("an openai_compatible model needs config.base_url")
        try:
            await check_url(request.base_url, allow)
        except BlockedURL as exc:
            raise NodeError(f"refused base_url: {exc}") from None
        return request.base_url
    return _OPENAI_STYLE[request.provider][1] if request.provider in _OPENAI_STYLE else None


def _key(request: ChatRequest) -> str:
    if request.api_key:
        return request.api_key
    variable = (
        "ANTHROPIC_API_KEY"
        if request.provider == "anthropic"
        else _OPENAI_STYLE[request.provider][0]
    )
    key = os.environ.get(variable)
    if key:
        return key
    if request.provider in ("fake", "openai_compatible"):
        return "not-needed"
    raise NodeError(
        f"no API key for {request.provider}: store one in the vault and name it in the node's "
        f"api_key_secret, or set {variable} on the workers"
    )


def max_cost_micros(request: ChatRequest) -> int:
    """The most the call can cost, held against the run's budgets before it is made: every
    byte sent counted as a token (no tokenizer makes a token of less than a byte) and the
    whole `max_tokens` written. Models without a price in the catalogue cost nothing."""
    info = model_info(request.provider, request.model)
    if info is None:
        return 0
    sent = json.dumps([request.system, request.messages, request.tools], ensure_ascii=False)
    return info.cost_micros(len(sent.encode()), request.max_tokens)


async def chat(
    request: ChatRequest,
    allow: AllowList,
    on_text: OnText | None = None,
    on_tool_call: OnToolCall | None = None,
) -> ChatResult:
    """Call the model, streaming text to `on_text` and tool calls to `on_tool_call` as they
    arrive; errors a user can act on become NodeError with the provider, the model and
    what to do."""
    if request.provider not in PROVIDERS:
        raise NodeError(f"unknown provider '{request.provider}'; use one of {', '.join(PROVIDERS)}")
    base_url = await _base_url(request, allow)
    key = _key(request)
    try:
        if request.provider == "anthropic":
            return await _anthropic(request, key, base_url, on_text, on_tool_call)
        return await _openai(request, key, base_url, on_text, on_tool_call)
    except (openai.AuthenticationError, anthropic.AuthenticationError):
        raise NodeError(
            f"{request.provider} refused the API key: check the workers' key for it"
        ) from None
    except (openai.NotFoundError, anthropic.NotFoundError):
        raise NodeError(f"{request.provider} does not know the model '{request.model}'") from None
    except (openai.RateLimitError, anthropic.RateLimitError):
        raise NodeError(
            f"{request.provider} is rate limiting (retried {_RETRIES} times); try again later"
        ) from None
    except (openai.APIConnectionError, anthropic.APIConnectionError):
        raise NodeError(f"could not reach {request.provider}") from None
    except (openai.APIStatusError, anthropic.APIStatusError) as exc:
        if exc.status_code < 400:  # the answer had begun: an error event inside the stream
            raise NodeError(_broke_off(request, exc)) from None
        raise NodeError(f"{request.provider} answered {exc.status_code}") from None
    except (openai.APIError, anthropic.APIError) as exc:  # an error event inside the stream
        raise NodeError(_broke_off(request, exc)) from None


def _broke_off(request: ChatRequest, exc: Exception) -> str:
    detail = str(getattr(exc, "message", "") or "no detail")[:300]
    return (
        f"{request.provider} broke off its answer with an error ({detail}); run the node "
        "again (it is not retried by itself once text has streamed)"
    )


_HTTP: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, httpx.AsyncClient]" = (
    weakref.WeakKeyDictionary()
)


def _http() -> httpx.AsyncClient:
    """One HTTP client per event loop for every provider call: connections (and their TLS
    sessions) are reused, and no SSL context is built per call (about 40 ms each, measured
    in the worker). The SDK clients made per call are thin wrappers around it."""
    loop = asyncio.get_running_loop()
    client = _HTTP.get(loop)
    if client is None or client.is_closed:
        client = _HTTP[loop] = openai.DefaultAsyncHttpxClient()
    return client


def _tool_call(call_id: str, name: str, arguments: str | Mapping[str, Any]) -> dict[str, Any]:
    """A finished tool call in the neutral shape (arguments parsed when they are text)."""
    if isinstance(arguments, Mapping):
        return {"id": call_id, "name": name, "arguments": dict(arguments)}
    try:
        parsed = json.loads(arguments) if arguments.strip() else {}
    except ValueError:
        parsed = None
    if isinstance(parsed, dict):
        return {"id": call_id, "name": name, "arguments": parsed}
    return {"id": call_id, "name": name, "arguments": {}, "invalid_arguments": arguments}


# --- OpenAI (and OpenAI-compatible) -------------------------------------------------------


def _openai_messages(request: ChatRequest) -> list[dict[str, Any]]:
    wire: list[dict[str, Any]] = (
        [{"role": "system", "content": request.system}] if request.system else []
    )
    for message in request.messages:
        role = message.get("role")
        if role == "tool":
            wire.append(
                {
                    "role": "tool",
                    "tool_call_id": message["tool_call_id"],
                    "content": message.get("content", ""),
                }
            )
        elif role == "assistant" and message.get("tool_calls"):
            wire.append(
                {
                    "role": "assistant",
                    "content": message.get("content") or None,
                    "tool_calls": [
                        {
                            "id": call["id"],
                            "type": "function",
                            "function": {
                                "name": call["name"],
                                "arguments": json.dumps(call.get("arguments") or {}),
                            },
                        }
                        for call in message["tool_calls"]
                    ],
                }
            )
        else:
            wire.append({"role": role, "content": message.get("content", "")})
    return wire


def _openai_tools(tools: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    return [
        {
            "type": "function",
            "function": {
                "name": tool["name"],
                "description": tool.get("description", ""),
                "parameters": tool.get("parameters") or {"type": "object", "properties": {}},
            },
        }
        for tool in tools
    ]


@dataclass
class _PendingCall:
    id: str
    name: str
    arguments: list[str] = field(default_factory=list)


class _OpenAIToolCalls:
    """Tool calls put together from OpenAI's deltas: the first delta of a call carries its
    index, id and name, the next ones pieces of its arguments."""

    def __init__(self, on_tool_call: OnToolCall | None) -> None:
        self._on_tool_call = on_tool_call
        self._calls: dict[int, _PendingCall] = {}

    async def _tell(
        self, kind: Literal["start", "args", "end"], call: _PendingCall, text: str = ""
    ) -> None:
        if self._on_tool_call is not None:
            await self._on_tool_call(ToolCallDelta(kind, call.id, call.name, text))

    async def feed(self, delta: ChoiceDeltaToolCall) -> None:
        # Some compatible servers leave out the index of a call they send whole.
        index = delta.index if delta.index is not None else len(self._calls)
        function = delta.function
        call = self._calls.get(index)
        if call is None:
            name = (function.name if function is not None else None) or ""
            call = self._calls[index] = _PendingCall(delta.id or f"call_{index}", name)
            await self._tell("start", call)
        if function is not None and function.arguments:
            call.arguments.append(function.arguments)
            await self._tell("args", call, function.arguments)

    async def finish(self) -> list[dict[str, Any]]:
        calls = [self._calls[index] for index in sorted(self._calls)]
        for call in calls:
            await self._tell("end", call)
        return [_tool_call(call.id, call.name, "".join(call.arguments)) for call in calls]


async def _openai(
    request: ChatRequest,
    key: str,
    base_url: str | None,
    on_text: OnText | None,
    on_tool_call: OnToolCall | None,
) -> ChatResult:
    client = openai.AsyncOpenAI(
        api_key=key, base_url=base_url, max_retries=_RETRIES, http_client=_http()
    )
    messages: Any = _openai_messages(request)  # the SDK's ChatCompletionMessageParam shape
    options: dict[str, Any] = {"max_tokens": request.max_tokens}
    if request.temperature is not None:
        options["temperature"] = request.temperature
    if request.tools:
        options["tools"] = _openai_tools(request.tools)
    result = ChatResult(text="")
    parts: list[str] = []
    calls = _OpenAIToolCalls(on_tool_call)
    stream = await client.chat.completions.create(
        model=request.model,
        messages=messages,
        stream=True,
        stream_options={"include_usage": True},
        **options,
    )
    async with stream:  # the response goes back to the shared client's pool
        async for chunk in stream:
            if chunk.usage is not None:
                result.input_tokens = chunk.usage.prompt_tokens
                result.output_tokens = chunk.usage.completion_tokens
            for choice in chunk.choices:
                if choice.delta.content:
                    parts.append(choice.delta.content)
                    if on_text is not None:
                        await on_text(choice.delta.content)
                for delta in choice.delta.tool_calls or []:
                    await calls.feed(delta)
                if choice.finish_reason:
                    result.stop_reason = choice.finish_reason
    result.tool_calls = await calls.finish()
    result.text = "".join(parts)
    return result


# --- Anthropic ----------------------------------------------------------------------------


def _anthropic_messages(messages: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The neutral messages as Anthropic turns: tool calls become `tool_use` blocks, tool
    results `tool_result` blocks of a user turn, and turns of one role in a row are merged
    (the API wants user and assistant to alternate)."""
    wire: list[dict[str, Any]] = []
    for message in messages:
        role = message.get("role")
        content: str | list[dict[str, Any]]
        if role == "tool":
            role = "user"
            result: dict[str, Any] = {
                "type": "tool_result",
                "tool_use_id": message["tool_call_id"],
                "content": message.get("content", ""),
            }
            if message.get("is_error"):
                result["is_error"] = True
            content = [result]
        elif role == "assistant" and message.get("tool_calls"):
            text = message.get("content") or ""
            content = [{"type": "text", "text": text}] if text else []
            content += [
                {
                    "type": "tool_use",
                    "id": call["id"],
                    "name": call["name"],
                    "input": call.get("arguments") or {},
                }
                for call in message["tool_calls"]
            ]
        else:
            content = message.get("content", "")
        if wire and wire[-1]["role"] == role:
            wire[-1]["content"] = _blocks(wire[-1]["content"]) + _blocks(content)
        else:
            wire.append({"role": role, "content": content})
    return wire


def _blocks(content: str | list[dict[str, Any]]) -> list[dict[str, Any]]:
    if isinstance(content, str):
        return [{"type": "text", "text": content}] if content else []
    return content


def _anthropic_tools(tools: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    return [
        {
            "name": tool["name"],
            "description": tool.get("description", ""),
            "input_schema": tool.get("parameters") or {"type": "object", "properties": {}},
        }
        for tool in tools
    ]


async def _anthropic(
    request: ChatRequest,
    key: str,
    base_url: str | None,
    on_text: OnText | None,
    on_tool_call: OnToolCall | None,
) -> ChatResult:
    client = anthropic.AsyncAnthropic(
        api_key=key, base_url=base_url, max_retries=_RETRIES, http_client=_http()
    )
    options: dict[str, Any] = {"max_tokens": request.max_tokens}
    if request.system:
        options["system"] = request.system
    if request.temperature is not None:
        options["temperature"] = request.temperature
    if request.tools:
        options["tools"] = _anthropic_tools(request.tools)
    messages: Any = _anthropic_messages(request.messages)  # the SDK's MessageParam shape
    calls: dict[int, _PendingCall] = {}  # tool_use blocks by content-block index
    async with client.messages.stream(model=request.model, messages=messages, **options) as stream:
        async for event in stream:
            if event.type == "content_block_start" and event.content_block.type == "tool_use":
                block = event.content_block
                calls[event.index] = _PendingCall(block.id, block.name)
                if on_tool_call is not None:
                    await on_tool_call(ToolCallDelta("start", block.id, block.name))
            elif event.type == "content_block_delta":
                delta = event.delta
                if delta.type == "text_delta" and on_text is not None:
                    await on_text(delta.text)
                elif delta.type == "input_json_delta" and event.index in calls:
                    call = calls[event.index]
                    if on_tool_call is not None and delta.partial_json:
                        await on_tool_call(
                            ToolCallDelta("args", call.id, call.name, delta.partial_json)
                        )
            elif event.type == "content_block_stop" and event.index in calls:
                call = calls[event.index]
                if on_tool_call is not None:
                    await on_tool_call(ToolCallDelta("end", call.id, call.name))
        final = await stream.get_final_message()
    text = "".join(block.text for block in final.content if block.type == "text")
    tool_calls = [
        _tool_call(block.id, block.name, _input(block.input))
        for block in final.content
        if block.type == "tool_use"
    ]
    return ChatResult(
        text=text,
        input_tokens=final.usage.input_tokens,
        output_tokens=final.usage.output_tokens,
        stop_reason=final.stop_reason,
        tool_calls=tool_calls,
    )


def _input(value: object) -> str | Mapping[str, Any]:
    """A tool_use block's input: the SDK parses it; anything but an object is kept as the
    JSON text the model wrote, so it is reported as invalid arguments."""
    return value if isinstance(value, Mapping) else json.dumps(value)
