"""Prompting nodes: `prompt_template` renders a chat prompt from sandboxed Jinja2 templates;
`structured_output` asks a model for JSON matching a JSON Schema and repairs bad replies by
telling the model exactly what was wrong."""

import json
import re
from collections.abc import Iterator, Mapping
from typing import Any, ClassVar

import jinja2
import jsonschema
import referencing.exceptions
from jinja2 import meta

from .._net import allow_list
from .._ports import PortType
from .._registry import Effect, NodeContext, NodeError, NodeType, Port
from ..llm._catalogue import model_info
from ..llm._providers import ChatRequest, ChatResult, chat
from ._core import _FIELD_NAME, _JINJA, _MAX_TEMPLATE_OUTPUT
from ._llm import MODEL_PROPERTIES, api_key, budget_hold, chat_messages

_TEMPLATE_TEXT = {"type": "string", "maxLength": 100_000}
_ROLES = ("user", "assistant")


class PromptTemplate(NodeType):
    type_name = "prompt_template"
    title = "Prompt template"
    description = (
        "Renders a chat prompt (a system text and user/assistant turns) with Jinja2 in a "
        "sandbox; each declared variable becomes an input port."
    )
    category = "ai"
    config_schema: ClassVar[dict[str, Any]] = {
        "type": "object",
        "additionalProperties": False,
        "required": ["messages"],
        "properties": {
            "system": _TEMPLATE_TEXT,
            "messages": {
                "type": "array",
                "minItems": 1,
                "maxItems": 100,
                "items": {
                    "type": "object",
                    "additionalProperties": False,
                    "required": ["role", "content"],
                    "properties": {"role": {"enum": list(_ROLES)}, "content": _TEMPLATE_TEXT},
                },
            },
            "variables": {
                "type": "array",
                "items": _FIELD_NAME,
                "maxItems": 100,
                "uniqueItems": True,
                "default": [],
            },
        },
    }
    OUTPUTS = (
        Port("messages", PortType.MESSAGES, description="the rendered turns"),
        Port(
            "prompt", PortType.TEXT, description="the last user turn, rendered (empty without one)"
        ),
        Port("system", PortType.TEXT, description="the rendered system text"),
    )

    @classmethod
    def inputs(cls, config: Mapping[str, Any]) -> tuple[Port, ...]:
        return tuple(Port(name, PortType.ANY) for name in config.get("variables", []))

    async def execute(
        self, config: Mapping[str, Any], inputs: Mapping[str, Any], ctx: NodeContext
    ) -> dict[str, Any]:
        declared = set(config.get("variables", []))
        budget = _Budget()
        system = _render(config.get("system", ""), inputs, declared, "system", budget)
        messages = [
            {
                "role": message["role"],
                "content": _render(
                    message["content"], inputs, declared, f"messages[{index}]", budget
                ),
            }
            for index, message in enumerate(config["messages"])
        ]
        users = [m["content"] for m in messages if m["role"] == "user"]
        return {"messages": messages, "prompt": users[-1] if users else "", "system": system}


class _Budget:
    """Output characters left for all of a node's templates together."""

    def __init__(self) -> None:
        self.left = _MAX_TEMPLATE_OUTPUT


def _render(
    source: str, variables: Mapping[str, Any], declared: set[str], where: str, budget: _Budget
) -> str:
    if not source:
        return ""
    try:
        template = _JINJA.from_string(source)
    except jinja2.TemplateSyntaxError as exc:
        raise NodeError(f"{where}: template syntax error on line {exc.lineno}: {exc}") from None
    chunks: list[str] = []
    try:
        # Rendered piece by piece, so an oversized prompt stops early.
        for chunk in template.generate(**variables):
            budget.left -= len(chunk)
            if budget.left < 0:
                raise NodeError(
                    f"{where}: the prompt exceeds {_MAX_TEMPLATE_OUTPUT} characters in all"
                )
            chunks.append(chunk)
    except jinja2.UndefinedError as exc:
        raise NodeError(f"{where}: {exc}{_undeclared_hint(source, declared)}") from None
    except jinja2.TemplateError as exc:
        raise NodeError(f"{where}: template error: {exc}") from None
    return "".join(chunks)


def _undeclared_hint(source: str, declared: set[str]) -> str:
    used = meta.find_undeclared_variables(_JINJA.parse(source)) - set(_JINJA.globals)
    missing = sorted(used - declared)
    if not missing:
        return ""
    return f" (add {', '.join(repr(name) for name in missing)} to the node's variables)"


# --- structured output --------------------------------------------------------------------

_MAX_LISTED_ERRORS = 20
_MAX_ERROR_CHARS = 300
_FENCED = re.compile(r"```[ \t]*(?:json)?[ \t]*\n?(.*?)```", re.DOTALL | re.IGNORECASE)
_CUT_OFF = {"length", "max_tokens"}


class StructuredOutput(NodeType):
    type_name = "structured_output"
    title = "Structured output"
    description = (
        "Asks a model for JSON matching a JSON Schema, checks the reply and, when it does not "
        "match, shows the model the exact errors and asks again (up to `max_repairs` times)."
    )
    category = "ai"
    effect = Effect.EXTERNAL
    config_schema: ClassVar[dict[str, Any]] = {
        "type": "object",
        "additionalProperties": False,
        "required": ["provider", "model", "schema"],
        "properties": {
            **MODEL_PROPERTIES,
            "schema": {
                # Checked against the Draft 2020-12 meta-schema when the flow is saved.
                "type": "object",
                "$ref": "https://json-schema.org/draft/2020-12/schema",
                "description": "the JSON Schema (Draft 2020-12) the answer must match",
            },
            "max_repairs": {"type": "integer", "minimum": 0, "maximum": 3, "default": 1},
        },
    }
    INPUTS = (
        Port("prompt", PortType.TEXT, required=False, description="appended as a user turn"),
        Port("messages", PortType.MESSAGES, required=False),
    )
    OUTPUTS = (
        Port("data", PortType.JSON, description="the answer, valid against the schema"),
        Port("usage", PortType.JSON, description="tokens and cost of every attempt together"),
    )

    async def execute(
        self, config: Mapping[str, Any], inputs: Mapping[str, Any], ctx: NodeContext
    ) -> dict[str, Any]:
        schema = config["schema"]
        validator = jsonschema.Draft202012Validator(
            schema, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
        )
        messages = chat_messages(inputs)
        provider, model = config["provider"], config["model"]
        allow = allow_list(ctx.extra.get("http_allow"), ctx.extra.get("http_allowable"))
        max_repairs = int(config.get("max_repairs", 1))
        calls: list[dict[str, Any]] = []
        key = await api_key(config, ctx)
        for _ in range(max_repairs + 1):
            request = ChatRequest(
                provider=provider,
                model=model,
                messages=messages,
                system=_instructions(config.get("system", ""), schema),
                max_tokens=int(config.get("max_tokens", 1024)),
                temperature=config.get("temperature"),
                base_url=config.get("base_url"),
                api_key=key,
            )
            # No streamed chunks: a partial JSON answer means nothing to whoever watches.
            async with budget_hold(ctx, request):
                result = await chat(request, allow)
                calls.append(_call_usage(provider, model, result))
                if ctx.emit is not None:
                    # Each call on its own, as llm_chat reports it: the usage ledger records
                    # every call, including those of a node that fails in the end.
                    await ctx.emit("LLM_USAGE", calls[-1])
            data, problems = _check(result.text, validator)
            if not problems:
                return {"data": data, "usage": _summed_usage(calls)}
            if result.stop_reason in _CUT_OFF:
                problems.append(
                    "the reply was cut off at max_tokens: answer more briefly "
                    "(or raise the node's max_tokens)"
                )
            messages = [
                *messages,
                {"role": "assistant", "content": result.text or "(an empty reply)"},
                {"role": "user", "content": _repair_prompt(problems)},
            ]
        attempts = max_repairs + 1
        raise NodeError(
            f"the model's answer did not match the schema after {attempts} "
            f"{'attempt' if attempts == 1 else 'attempts'}; the last reply's errors: "
            f"{'; '.join(problems)}"
        )


def _instructions(system: str, schema: Mapping[str, Any]) -> str:
    rules = (
        "Answer with JSON only: a single JSON value that matches the JSON Schema below. "
        "No prose before or after it, no comments, no Markdown.\n\n"
        f"JSON Schema:\n{json.dumps(schema, indent=2, sort_keys=True)}"
    )
    return f"{system}\n\n{rules}" if system else rules


def _call_usage(provider: str, model: str, result: ChatResult) -> dict[str, Any]:
    """One call's usage, in the shape of llm_chat's (priced from the model catalogue)."""
    info = model_info(provider, model)
    tokens = (result.input_tokens, result.output_tokens)
    return {
        "provider": provider,
        "model": model,
        "input_tokens": result.input_tokens,
        "output_tokens": result.output_tokens,
        "cost_usd": info.cost(*tokens) if info else 0.0,
        "cost_micros": info.cost_micros(*tokens) if info else 0,
        "stop_reason": result.stop_reason,
    }


def _summed_usage(calls: list[dict[str, Any]]) -> dict[str, Any]:
    """Every attempt together; costs are the sums of what each call was charged."""
    summed = dict(calls[-1])  # provider, model and the final stop reason
    for key in ("input_tokens", "output_tokens", "cost_micros"):
        summed[key] = sum(call[key] for call in calls)
    summed["cost_usd"] = round(sum(call["cost_usd"] for call in calls), 8)
    summed["attempts"] = len(calls)
    return summed


def _check(text: str, validator: jsonschema.Draft202012Validator) -> tuple[Any, list[str]]:
    """The reply's JSON and what is wrong with it (nothing: it is the answer)."""
    try:
        data = _parse(text)
    except ValueError as exc:
        return None, [str(exc)]
    try:
        errors = sorted(validator.iter_errors(data), key=lambda e: list(map(str, e.path)))
    except referencing.exceptions.Unresolvable as exc:
        raise NodeError(f"config schema: cannot resolve the reference {exc.ref!r}") from None
    problems = [f"{error.json_path}: {_shorten(error.message)}" for error in errors]
    if len(problems) > _MAX_LISTED_ERRORS:
        more = len(problems) - _MAX_LISTED_ERRORS
        problems = [*problems[:_MAX_LISTED_ERRORS], f"... and {more} more errors"]
    return data, problems


def _parse(text: str) -> Any:
    """JSON from the reply: the whole reply, or else the first fenced block that parses."""
    stripped = text.strip()
    if not stripped:
        raise ValueError("$: the reply is empty, not JSON")
    try:
        return json.loads(stripped)
    except json.JSONDecodeError as exc:
        error = exc
    # A fenced block's own error says more than the error of the prose around it.
    for block in _fenced_blocks(stripped):
        try:
            return json.loads(block)
        except json.JSONDecodeError as exc:
            error = exc
    raise ValueError(
        f"$: the reply is not valid JSON ({error.msg} at line {error.lineno} column {error.colno})"
    )


def _fenced_blocks(text: str) -> Iterator[str]:
    for match in _FENCED.finditer(text):
        yield match.group(1).strip()


def _shorten(message: str) -> str:
    if len(message) <= _MAX_ERROR_CHARS:
        return message
    return message[: _MAX_ERROR_CHARS - 3] + "..."


def _repair_prompt(problems: list[str]) -> str:
    listed = "\n".join(f"- {problem}" for problem in problems)
    return (
        "Your reply does not match the JSON Schema. The errors, by JSON path:\n"
        f"{listed}\n\n"
        "Answer again with only the corrected JSON, no prose and no Markdown."
    )
