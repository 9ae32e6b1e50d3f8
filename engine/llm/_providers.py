"""One call path for every LLM call: providers through their official SDKs (OpenAI, and
Gemini, DeepSeek, Groq and self-hosted servers through OpenAI-compatible endpoints;
Anthropic), streamed, normalised to text deltas plus one result with usage.

Credentials are the worker's (environment variables) until the vault lands: never a flow
field, never in a workflow input or a step output. A self-hosted base URL given in a flow is
checked like any URL the HTTP node fetches (SSRF guard and the workspace's allow list)."""

import os
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import anthropic
import openai

from .._net import AllowList, BlockedURL, check_url
from .._registry import NodeError

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
    messages: list[dict[str, str]]
    system: str = ""
    max_tokens: int = 1024
    temperature: float | None = None
    base_url: str | None = None  # openai_compatible only


@dataclass
class ChatResult:
    text: str
    input_tokens: int = 0
    output_tokens: int = 0
    stop_reason: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


OnText = Callable[[str], Awaitable[None]]


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
    raise NodeError(f"no API key for {request.provider}: set {variable} on the workers")


async def chat(request: ChatRequest, allow: AllowList, on_text: OnText | None = None) -> ChatResult:
    """Call the model, streaming text to `on_text` as it arrives; errors a user can act on
    become NodeError with the provider, the model and what to do."""
    if request.provider not in PROVIDERS:
        raise NodeError(f"unknown provider '{request.provider}'; use one of {', '.join(PROVIDERS)}")
    base_url = await _base_url(request, allow)
    key = _key(request)
    try:
        if request.provider == "anthropic":
            return await _anthropic(request, key, base_url, on_text)
        return await _openai(request, key, base_url, on_text)
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
        raise NodeError(f"{request.provider} answered {exc.status_code}") from None


async def _openai(
    request: ChatRequest, key: str, base_url: str | None, on_text: OnText | None
) -> ChatResult:
    client = openai.AsyncOpenAI(api_key=key, base_url=base_url, max_retries=_RETRIES)
    messages: list[Any] = (
        [{"role": "system", "content": request.system}] if request.system else []
    ) + list(request.messages)
    options: dict[str, Any] = {"max_tokens": request.max_tokens}
    if request.temperature is not None:
        options["temperature"] = request.temperature
    result = ChatResult(text="")
    parts: list[str] = []
    async with client:
        stream = await client.chat.completions.create(
            model=request.model,
            messages=messages,
            stream=True,
            stream_options={"include_usage": True},
            **options,
        )
        async for chunk in stream:
            if chunk.usage is not None:
                result.input_tokens = chunk.usage.prompt_tokens
                result.output_tokens = chunk.usage.completion_tokens
            for choice in chunk.choices:
                if choice.delta.content:
                    parts.append(choice.delta.content)
                    if on_text is not None:
                        await on_text(choice.delta.content)
                if choice.finish_reason:
                    result.stop_reason = choice.finish_reason
    result.text = "".join(parts)
    return result


async def _anthropic(
    request: ChatRequest, key: str, base_url: str | None, on_text: OnText | None
) -> ChatResult:
    client = anthropic.AsyncAnthropic(api_key=key, base_url=base_url, max_retries=_RETRIES)
    options: dict[str, Any] = {"max_tokens": request.max_tokens}
    if request.system:
        options["system"] = request.system
    if request.temperature is not None:
        options["temperature"] = request.temperature
    messages: Any = list(request.messages)  # the SDK's MessageParam shape
    async with (
        client,
        client.messages.stream(model=request.model, messages=messages, **options) as stream,
    ):
        async for text in stream.text_stream:
            if on_text is not None:
                await on_text(text)
        final = await stream.get_final_message()
    text = "".join(block.text for block in final.content if block.type == "text")
    return ChatResult(
        text=text,
        input_tokens=final.usage.input_tokens,
        output_tokens=final.usage.output_tokens,
        stop_reason=final.stop_reason,
    )
