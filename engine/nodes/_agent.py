"""The agent node: a model that may call tools, each tool a flow of the workspace run as a
child run, in a loop until the model answers without calling one (or runs out of turns).

Every model call streams its text as STREAM_CHUNK events and reports its usage as
LLM_USAGE; every tool call is TOOL_CALL_START, TOOL_CALL_ARGS (pieces of the arguments as
the model writes them), TOOL_CALL_END, then TOOL_CALL_RESULT with the tool's outputs or the
error the model was told about. Arguments that do not match a tool's parameters, an unknown
tool and a failed child run are answered to the model as an error result, so it can correct
itself; only running out of turns fails the node.

Tool runs have deterministic ids, `<run>:<node>:tool:<turn>:<index>` (both from 0), so a
node re-executed after a crash finds the runs it already started instead of starting them
again (and takes their results, even if the model asks again with other arguments: a tool
that already ran is not run a second time). Their flows are pinned when the parent run
starts, like ExecuteFlow's."""

import asyncio
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import jsonschema
from jsonschema.exceptions import best_match

from .._net import allow_list
from .._ports import PortType
from .._registry import ChildRuns, Effect, NodeContext, NodeError, NodeType, Port
from ..llm._catalogue import model_info
from ..llm._providers import ChatRequest, ChatResult, ToolCallDelta, chat
from ._flow import _FLOW_REF, _children, _subflow
from ._llm import MODEL_PROPERTIES, api_key, budget_hold

MAX_TURNS = 20
_NO_PARAMETERS: dict[str, Any] = {"type": "object", "properties": {}}
_TOOL_NAME = "^[a-zA-Z0-9_-]{1,64}$"  # what both OpenAI and Anthropic accept


@dataclass(frozen=True)
class _Tool:
    name: str
    description: str
    parameters: dict[str, Any]
    document: dict[str, Any]
    validator: jsonschema.Draft202012Validator

    def spec(self) -> dict[str, Any]:
        return {"name": self.name, "description": self.description, "parameters": self.parameters}


@dataclass(frozen=True)
class _Outcome:
    """What a tool call came to: the child run's outputs, or why there are none."""

    result: dict[str, Any] | None = None
    error: str | None = None

    def message(self, call: Mapping[str, Any]) -> dict[str, Any]:
        """The tool message that tells the model."""
        message: dict[str, Any] = {"role": "tool", "tool_call_id": call["id"], "name": call["name"]}
        if self.error is not None:
            message.update(content=f"error: {self.error}", is_error=True)
        else:
            message["content"] = json.dumps(self.result)
        return message

    def event(self, call: Mapping[str, Any]) -> dict[str, Any]:
        if self.error is not None:
            return {"tool_call_id": call["id"], "error": self.error}
        return {"tool_call_id": call["id"], "result": self.result}


def _tools(config: Mapping[str, Any], ctx: NodeContext) -> dict[str, _Tool]:
    """The configured tools with their pinned flows; config mistakes are reported before
    what the run lacks (a durable runtime, a pinned flow)."""
    specs: list[tuple[str, dict[str, Any], dict[str, Any]]] = []
    for index, tool in enumerate(config.get("tools") or []):
        name = str(tool["name"])
        where = f"config.tools[{index}] ('{name}')"
        if any(name == seen for seen, _, _ in specs):
            raise NodeError(f"{where}: another tool is named '{name}'; tool names must differ")
        parameters = dict(tool.get("parameters") or _NO_PARAMETERS)
        if parameters.get("type", "object") != "object":
            raise NodeError(f"{where}.parameters must describe an object (type 'object')")
        try:
            jsonschema.Draft202012Validator.check_schema(parameters)
        except jsonschema.SchemaError as exc:
            raise NodeError(
                f"{where}.parameters is not a valid JSON Schema: {exc.message}"
            ) from None
        specs.append((name, parameters, dict(tool)))
    if specs:
        _children(ctx)  # fails clearly outside the durable runtime
    tools: dict[str, _Tool] = {}
    for index, (name, parameters, tool) in enumerate(specs):
        try:
            document = _subflow(ctx, str(tool["flow_id"]))
        except NodeError as exc:
            raise NodeError(f"config.tools[{index}] ('{name}'): {exc}") from None
        tools[name] = _Tool(
            name=name,
            description=str(tool.get("description", "")),
            parameters=parameters,
            document=document,
            validator=jsonschema.Draft202012Validator(parameters),
        )
    return tools


_MESSAGE_SHAPES = (
    "{'role': 'user', 'content': text}, "
    "{'role': 'assistant', 'content': text, 'tool_calls': [{'id', 'name', 'arguments'}]} or "
    "{'role': 'tool', 'tool_call_id': id, 'content': text}"
)


def _message(message: Any) -> dict[str, Any] | None:
    """The message in the neutral shape, or None when it is not one."""
    content = (message.get("content") or "") if isinstance(message, dict) else None
    if not isinstance(content, str):  # None content: an assistant turn that only calls tools
        return None
    role = message.get("role")
    if role == "user":
        return {"role": "user", "content": content}
    if role == "assistant":
        calls = message.get("tool_calls") or []
        if not isinstance(calls, list) or not all(
            isinstance(call, dict)
            and isinstance(call.get("id"), str)
            and isinstance(call.get("name"), str)
            and isinstance(call.get("arguments", {}), dict)
            for call in calls
        ):
            return None
        cleaned: dict[str, Any] = {"role": "assistant", "content": content}
        if calls:
            cleaned["tool_calls"] = [
                {"id": c["id"], "name": c["name"], "arguments": c.get("arguments", {})}
                for c in calls
            ]
        return cleaned
    if role == "tool" and isinstance(message.get("tool_call_id"), str):
        cleaned = {"role": "tool", "tool_call_id": message["tool_call_id"], "content": content}
        if isinstance(message.get("name"), str):
            cleaned["name"] = message["name"]
        if message.get("is_error") is True:
            cleaned["is_error"] = True
        return cleaned
    return None


def _transcript(inputs: Mapping[str, Any]) -> list[dict[str, Any]]:
    messages: list[dict[str, Any]] = []
    for index, message in enumerate(inputs.get("messages") or []):
        cleaned = _message(message)
        if cleaned is None:
            raise NodeError(f"messages[{index}] must be {_MESSAGE_SHAPES}")
        messages.append(cleaned)
    if inputs.get("prompt"):
        messages.append({"role": "user", "content": str(inputs["prompt"])})
    if not messages:
        raise NodeError("nothing to send: connect a prompt or messages")
    return messages


def _argument_error(tool: _Tool, call: Mapping[str, Any]) -> str | None:
    if "invalid_arguments" in call:
        written = str(call["invalid_arguments"])[:500]
        return f"the arguments must be a JSON object, got: {written}"
    error = best_match(tool.validator.iter_errors(call["arguments"]))
    if error is None:
        return None
    where = "/".join(str(part) for part in error.absolute_path) or "(the arguments)"
    return f"the arguments do not match the tool's parameters: at {where}: {error.message}"


class Agent(NodeType):
    type_name = "agent"
    title = "Agent"
    description = (
        "A model that can call tools (flows of this workspace, each run as a child run) "
        "until it has an answer. Tokens and tool calls stream out as they happen."
    )
    category = "ai"
    effect = Effect.EXTERNAL
    config_schema: ClassVar[dict[str, Any]] = {
        "type": "object",
        "additionalProperties": False,
        "required": ["provider", "model"],
        "properties": {
            **MODEL_PROPERTIES,
            "max_turns": {
                "type": "integer",
                "minimum": 1,
                "maximum": MAX_TURNS,
                "default": 5,
                "description": "model calls at most; the node fails if it still wants a tool",
            },
            "tools": {
                "type": "array",
                "maxItems": 64,
                "items": {
                    "type": "object",
                    "additionalProperties": False,
                    "required": ["name", "flow_id"],
                    "properties": {
                        "name": {"type": "string", "pattern": _TOOL_NAME},
                        "description": {"type": "string", "maxLength": 4000},
                        "parameters": {
                            "type": "object",
                            "description": "a JSON Schema of the arguments (the flow's inputs)",
                        },
                        "flow_id": _FLOW_REF,
                    },
                },
            },
        },
    }
    INPUTS = (
        Port("prompt", PortType.TEXT, required=False, description="appended as a user turn"),
        Port("messages", PortType.MESSAGES, required=False),
    )
    OUTPUTS = (
        Port("text", PortType.TEXT, description="the model's final answer"),
        Port("messages", PortType.MESSAGES, description="the whole transcript, tool calls too"),
        Port("usage", PortType.JSON, description="tokens and cost of all the model calls"),
    )

    @classmethod
    def called_flows(cls, config: Mapping[str, Any]) -> list[str]:
        return [str(tool.get("flow_id", "")) for tool in config.get("tools") or []]

    async def execute(
        self, config: Mapping[str, Any], inputs: Mapping[str, Any], ctx: NodeContext
    ) -> dict[str, Any]:
        tools = _tools(config, ctx)
        children: ChildRuns | None = ctx.children if tools else None
        messages = _transcript(inputs)
        max_turns = int(config.get("max_turns", 5))
        allow = allow_list(ctx.extra.get("http_allow"), ctx.extra.get("http_allowable"))
        usage = _Usage(str(config["provider"]), str(config["model"]))
        events = _Events(ctx)
        key = await api_key(config, ctx)
        for turn in range(max_turns):
            request = ChatRequest(
                provider=config["provider"],
                model=config["model"],
                messages=list(messages),
                system=config.get("system", ""),
                max_tokens=int(config.get("max_tokens", 1024)),
                temperature=config.get("temperature"),
                base_url=config.get("base_url"),
                api_key=key,
                tools=[tool.spec() for tool in tools.values()],
            )
            async with budget_hold(ctx, request):
                result = await chat(request, allow, events.text, events.tool_call)
                await events.emit("LLM_USAGE", usage.add(result, turn))
            assistant: dict[str, Any] = {"role": "assistant", "content": result.text}
            if result.tool_calls:
                assistant["tool_calls"] = [
                    {"id": c["id"], "name": c["name"], "arguments": c["arguments"]}
                    for c in result.tool_calls
                ]
            messages.append(assistant)
            if not result.tool_calls:
                return {"text": result.text, "messages": messages, "usage": usage.total()}
            if turn == max_turns - 1:
                break
            outcomes = await self._call_tools(
                calls=result.tool_calls,
                tools=tools,
                children=children,
                turn=turn,
                ctx=ctx,
                events=events,
            )
            messages.extend(
                outcome.message(call)
                for call, outcome in zip(result.tool_calls, outcomes, strict=True)
            )
        wanted = ", ".join(sorted({str(c["name"]) for c in result.tool_calls}))
        for call in result.tool_calls:
            refused = _Outcome(error=f"not run: the agent reached max_turns ({max_turns})")
            await events.emit("TOOL_CALL_RESULT", refused.event(call))
        raise NodeError(
            f"the agent reached max_turns ({max_turns}) and still wanted to call {wanted}: "
            f"raise config.max_turns (at most {MAX_TURNS}), or ask for an answer within "
            "fewer tool calls in the system prompt"
        )

    async def _call_tools(
        self,
        *,
        calls: list[dict[str, Any]],
        tools: Mapping[str, _Tool],
        children: ChildRuns | None,
        turn: int,
        ctx: NodeContext,
        events: "_Events",
    ) -> list[_Outcome]:
        """The turn's tool calls, run side by side; results are reported in call order."""

        async def one(index: int, call: Mapping[str, Any]) -> _Outcome:
            tool = tools.get(str(call["name"]))
            if tool is None or children is None:
                known = ", ".join(tools) or "none"
                return _Outcome(error=f"there is no tool named '{call['name']}' (tools: {known})")
            error = _argument_error(tool, call)
            if error is not None:
                return _Outcome(error=error)
            child_id = f"{ctx.run_id}:{ctx.node_id}:tool:{turn}:{index}"
            result = await children.run(child_id, tool.document, dict(call["arguments"]))
            status = result.get("status", "failed")
            if status == "cancelled":
                raise NodeError(f"tool run {child_id} was cancelled")
            if status != "completed":
                return _Outcome(error=f"the tool failed: {result.get('error') or 'no detail'}")
            return _Outcome(result=dict(result.get("outputs") or {}))

        tasks = [asyncio.ensure_future(one(index, call)) for index, call in enumerate(calls)]
        outcomes: list[_Outcome] = []
        try:
            for call, task in zip(calls, tasks, strict=True):
                outcome = await task
                await events.emit("TOOL_CALL_RESULT", outcome.event(call))
                outcomes.append(outcome)
        finally:  # a cancelled run stops the calls still going
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        return outcomes


class _Usage:
    """Tokens and cost, per call and summed over the node's calls."""

    def __init__(self, provider: str, model: str) -> None:
        self.provider, self.model = provider, model
        self.info = model_info(provider, model)
        self.input_tokens = self.output_tokens = self.calls = self.cost_micros = 0
        self.cost_usd = 0.0
        self.stop_reason: str | None = None

    def add(self, result: ChatResult, turn: int) -> dict[str, Any]:
        """Counts one call in; returns its LLM_USAGE payload."""
        tokens = (result.input_tokens, result.output_tokens)
        cost = self.info.cost(*tokens) if self.info else 0.0
        micros = self.info.cost_micros(*tokens) if self.info else 0  # what the ledger bills
        self.input_tokens += result.input_tokens
        self.output_tokens += result.output_tokens
        self.cost_usd = round(self.cost_usd + cost, 8)
        self.cost_micros += micros
        self.calls += 1
        self.stop_reason = result.stop_reason
        return {
            "provider": self.provider,
            "model": self.model,
            "input_tokens": result.input_tokens,
            "output_tokens": result.output_tokens,
            "cost_usd": cost,
            "cost_micros": micros,
            "stop_reason": result.stop_reason,
            "turn": turn,
        }

    def total(self) -> dict[str, Any]:
        return {
            "provider": self.provider,
            "model": self.model,
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "cost_usd": self.cost_usd,
            "cost_micros": self.cost_micros,
            "stop_reason": self.stop_reason,
            "calls": self.calls,
        }


class _Events:
    """The node's events: streamed text and tool calls as the model writes them."""

    def __init__(self, ctx: NodeContext) -> None:
        self._emit = ctx.emit

    async def emit(self, event_type: str, payload: dict[str, Any]) -> None:
        if self._emit is not None:
            await self._emit(event_type, payload)

    async def text(self, text: str) -> None:
        await self.emit("STREAM_CHUNK", {"text": text})

    async def tool_call(self, delta: ToolCallDelta) -> None:
        if delta.kind == "start":
            await self.emit("TOOL_CALL_START", {"tool_call_id": delta.id, "name": delta.name})
        elif delta.kind == "args":
            await self.emit(
                "TOOL_CALL_ARGS", {"tool_call_id": delta.id, "arguments": delta.arguments}
            )
        else:
            await self.emit("TOOL_CALL_END", {"tool_call_id": delta.id})
