"""The LLM chat node: messages (or a prompt) in; text, usage out; tokens streamed as
STREAM_CHUNK events while the model writes, and the call's usage and cost as LLM_USAGE."""

import contextlib
from collections.abc import Mapping
from contextlib import AbstractAsyncContextManager
from typing import Any, ClassVar

from .._net import allow_list
from .._ports import PortType
from .._registry import SECRET_REF_PATTERN, Effect, NodeContext, NodeError, NodeType, Port
from .._streams import NULL_WRITER
from ..llm._catalogue import model_info
from ..llm._providers import PROVIDERS, ChatRequest, chat, max_cost_micros

_ROLES = {"user", "assistant"}

# Config property of every node that calls a model: the vault secret holding its API key.
API_KEY_SECRET: dict[str, Any] = {
    "type": "string",
    "pattern": SECRET_REF_PATTERN,
    "description": "the vault secret holding the provider's API key: `name` for the flow "
    "owner's own, `workspace:name` for the workspace's shared one; the workers' key when empty",
}


# The config properties of every node that calls a model (llm_chat, structured_output, agent).
MODEL_PROPERTIES: dict[str, Any] = {
    "provider": {"enum": list(PROVIDERS)},
    "model": {"type": "string", "minLength": 1, "maxLength": 200},
    "system": {"type": "string", "maxLength": 100_000},
    "temperature": {"type": "number", "minimum": 0, "maximum": 2},
    "max_tokens": {"type": "integer", "minimum": 1, "maximum": 200_000, "default": 1024},
    "api_key_secret": API_KEY_SECRET,
    "base_url": {
        "type": "string",
        "maxLength": 2048,
        "description": "openai_compatible only: the server's /v1 URL (vLLM, Ollama, ...)",
    },
}


async def api_key(config: Mapping[str, Any], ctx: NodeContext) -> str | None:
    """The API key a model-calling node was configured with, opened from the vault."""
    name = config.get("api_key_secret")
    if not name:
        return None
    if ctx.secrets is None:
        raise NodeError("api_key_secret needs the vault: run this flow on a worker")
    return await ctx.secrets.reveal(str(name))


def chat_messages(inputs: Mapping[str, Any]) -> list[dict[str, str]]:
    """The turns to send: the `messages` input (validated), then `prompt` as a user turn."""
    messages: list[dict[str, str]] = []
    for index, message in enumerate(inputs.get("messages") or []):
        if (
            not isinstance(message, dict)
            or message.get("role") not in _ROLES
            or not isinstance(message.get("content"), str)
        ):
            raise NodeError(
                f"messages[{index}] must be {{'role': 'user' or 'assistant', 'content': text}}"
            )
        messages.append({"role": message["role"], "content": message["content"]})
    if inputs.get("prompt"):
        messages.append({"role": "user", "content": str(inputs["prompt"])})
    if not messages:
        raise NodeError("nothing to send: connect a prompt or messages")
    return messages


def budget_hold(ctx: NodeContext, request: ChatRequest) -> AbstractAsyncContextManager[None]:
    """Hold the call at its maximum cost against the run's budgets while it is made (emit
    its LLM_USAGE inside: that settles the hold). Nothing to hold outside a platform worker."""
    if ctx.budget is None:
        return contextlib.nullcontext()
    return ctx.budget.hold(request.provider, request.model, max_cost_micros(request))


class LLMChat(NodeType):
    type_name = "llm_chat"
    title = "LLM chat"
    description = (
        "Asks a model (OpenAI, Anthropic, Gemini, DeepSeek, Groq or a self-hosted "
        "OpenAI-compatible server). Tokens stream out as they are written."
    )
    category = "ai"
    effect = Effect.EXTERNAL
    config_schema: ClassVar[dict[str, Any]] = {
        "type": "object",
        "additionalProperties": False,
        "required": ["provider", "model"],
        "properties": {
            **MODEL_PROPERTIES,
        },
    }
    INPUTS = (
        Port("prompt", PortType.TEXT, required=False, description="appended as a user turn"),
        Port("messages", PortType.MESSAGES, required=False),
    )
    OUTPUTS = (
        Port("text", PortType.TEXT),
        Port(
            "stream",
            PortType.STREAM,
            description="the text as the model writes it: a stream input reads it at once",
            mirrors="text",
        ),
        Port("usage", PortType.JSON, description="tokens and cost of the call"),
    )

    async def execute(
        self, config: Mapping[str, Any], inputs: Mapping[str, Any], ctx: NodeContext
    ) -> dict[str, Any]:
        request = ChatRequest(
            provider=config["provider"],
            model=config["model"],
            messages=chat_messages(inputs),
            system=config.get("system", ""),
            max_tokens=int(config.get("max_tokens", 1024)),
            temperature=config.get("temperature"),
            base_url=config.get("base_url"),
            api_key=await api_key(config, ctx),
        )
        emit = ctx.emit
        writer = await ctx.streams.writer("stream") if ctx.streams is not None else NULL_WRITER

        async def on_text(text: str) -> None:
            if emit is not None:
                await emit("STREAM_CHUNK", {"text": text})
            await writer.write(text)

        allow = allow_list(ctx.extra.get("http_allow"), ctx.extra.get("http_allowable"))
        async with budget_hold(ctx, request):
            result = await chat(request, allow, on_text)
            info = model_info(request.provider, request.model)
            usage = {
                "provider": request.provider,
                "model": request.model,
                "input_tokens": result.input_tokens,
                "output_tokens": result.output_tokens,
                "cost_usd": info.cost(result.input_tokens, result.output_tokens) if info else 0.0,
                "cost_micros": info.cost_micros(result.input_tokens, result.output_tokens)
                if info
                else 0,
                "stop_reason": result.stop_reason,
            }
            if emit is not None:
                await emit("LLM_USAGE", usage)
        return {"text": result.text, "usage": usage}
