"""The agent node: a model that may call tools, in a loop until the model answers without
calling one (or runs out of turns). A tool is a flow of the workspace (`flow_id`) or a single
node (`node`: its type and config, e.g. an HTTP request); either runs as a child run, a node
tool as a one-node flow whose inputs are the node's input ports (what the model fills in:
its parameters, unless given, are made from those ports) and whose outputs are the node's
outputs. Node rules judge a node tool's type as they judge the flow's own nodes.

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
starts, like ExecuteFlow's.

A tool marked `"approval": true` runs only once a person says so: after TOOL_CALL_END the
node opens a durable human request of kind `tool_call` (the tool, its description, the
proposed arguments and its parameters schema), keyed `<node>:tool:<turn>:<index>` like the
tool's child run, so a re-executed step finds the same request (and its answer) instead of
asking again, and emits HITL_REQUESTED / HITL_RESOLVED with the tool call's id. Approved,
the tool runs with the proposed arguments, or with the person's edited ones (checked against
the parameters when the answer is given; the transcript then carries them, as what was
called); rejected (or timed out, by default), it does not run and the model is told that a
person refused the call, with their comment. `tool_approval` says who may answer (as the
approval node's `approvers`) and what a timeout means. Once a request exists its tool and
arguments are the ones that count: a model asked again after a crash cannot change what the
person was shown."""

import asyncio
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import jsonschema
from jsonschema.exceptions import best_match

from .._net import allow_list
from .._ports import PortType
from .._registry import (
    ChildRuns,
    Effect,
    NodeContext,
    NodeError,
    NodeType,
    Port,
    node_type,
)
from ..llm._catalogue import model_info
from ..llm._providers import ChatRequest, ChatResult, ToolCallDelta, chat
from ._flow import _FLOW_REF, _children, _subflow
from ._human import Approval, announce, normal_approvers, settle
from ._llm import MODEL_PROPERTIES, api_key, budget_hold

MAX_TURNS = 20
_NO_PARAMETERS: dict[str, Any] = {"type": "object", "properties": {}}
_TOOL_NAME = "^[a-zA-Z0-9_-]{1,64}$"  # what both OpenAI and Anthropic accept
_MAX_APPROVAL_SECONDS = 60 * 60 * 24 * 90  # ninety days, as the approval node


@dataclass(frozen=True)
class _Tool:
    name: str
    description: str
    parameters: dict[str, Any]
    document: dict[str, Any]
    validator: jsonschema.Draft202012Validator
    approval: bool = False  # a person approves, edits or refuses each call first

    def spec(self) -> dict[str, Any]:
        return {"name": self.name, "description": self.description, "parameters": self.parameters}


@dataclass(frozen=True)
class _Outcome:
    """What a tool call came to: the child run's outputs, or why there are none."""

    result: dict[str, Any] | None = None
    error: str | None = None
    arguments: dict[str, Any] | None = None  # what the tool ran with, when not the model's
    refused: bool = False  # a person (or the deadline) refused the call

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
            payload: dict[str, Any] = {"tool_call_id": call["id"], "error": self.error}
            if self.refused:
                payload["refused"] = True
            return payload
        payload = {"tool_call_id": call["id"], "result": self.result}
        if self.arguments is not None:
            payload["arguments"] = self.arguments
        return payload


def _parameters(tool: Mapping[str, Any], where: str) -> dict[str, Any]:
    """The tool's parameters as the model is told them (a node tool's default: its ports)."""
    if "node" in tool and "parameters" not in tool:
        try:
            return node_tool_parameters(tool["node"])
        except NodeError as exc:
            raise NodeError(f"{where}: {exc}") from None
    parameters = dict(tool.get("parameters") or _NO_PARAMETERS)
    if parameters.get("type", "object") != "object":
        raise NodeError(f"{where}.parameters must describe an object (type 'object')")
    try:
        jsonschema.Draft202012Validator.check_schema(parameters)
    except jsonschema.SchemaError as exc:
        raise NodeError(f"{where}.parameters is not a valid JSON Schema: {exc.message}") from None
    return parameters


def _tools(config: Mapping[str, Any], ctx: NodeContext) -> dict[str, _Tool]:
    """The configured tools with their pinned flows; config mistakes are reported before
    what the run lacks (a durable runtime, a pinned flow)."""
    specs: list[tuple[str, dict[str, Any], dict[str, Any]]] = []
    for index, tool in enumerate(config.get("tools") or []):
        name = str(tool["name"])
        where = f"config.tools[{index}] ('{name}')"
        if any(name == seen for seen, _, _ in specs):
            raise NodeError(f"{where}: another tool is named '{name}'; tool names must differ")
        parameters = _parameters(tool, where)
        specs.append((name, parameters, dict(tool)))
    if specs:
        _children(ctx)  # fails clearly outside the durable runtime
    if any(tool.get("approval") for _, _, tool in specs) and ctx.human is None:
        raise NodeError("tool approvals need the durable runtime (run this flow on a worker)")
    tools: dict[str, _Tool] = {}
    for index, (name, parameters, tool) in enumerate(specs):
        try:
            if "node" in tool:
                document = node_tool_document(tool["node"])
            else:
                document = _subflow(ctx, str(tool["flow_id"]))
        except NodeError as exc:
            raise NodeError(f"config.tools[{index}] ('{name}'): {exc}") from None
        tools[name] = _Tool(
            name=name,
            description=str(tool.get("description", "")),
            parameters=parameters,
            document=document,
            validator=jsonschema.Draft202012Validator(parameters),
            approval=bool(tool.get("approval", False)),
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
        "A model that can call tools (flows of this workspace or single nodes, each run as "
        "a child run) "
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
                    "required": ["name"],
                    "oneOf": [
                        {"title": "a flow", "required": ["flow_id"]},
                        {"title": "a single node", "required": ["node"]},
                    ],
                    "properties": {
                        "name": {"type": "string", "pattern": _TOOL_NAME},
                        "description": {"type": "string", "maxLength": 4000},
                        "parameters": {
                            "type": "object",
                            "description": "a JSON Schema of the arguments (the flow's inputs, "
                            "or the node's input ports); a node tool's default: its ports",
                        },
                        "flow_id": _FLOW_REF,
                        "node": {
                            "type": "object",
                            "additionalProperties": False,
                            "required": ["type"],
                            "description": "a single node as the tool (instead of flow_id): "
                            "the model's arguments are its inputs, its outputs the result",
                            "properties": {
                                "type": {"type": "string", "minLength": 1},
                                "config": {"type": "object", "default": {}},
                            },
                        },
                        "approval": {
                            "type": "boolean",
                            "default": False,
                            "description": "a person approves each call before it runs (and "
                            "may edit its arguments, or refuse it); see tool_approval",
                        },
                    },
                },
            },
            "tool_approval": {
                "type": "object",
                "additionalProperties": False,
                "description": "for the tools marked `approval`: who may answer, for how long",
                "properties": {
                    # the same shape as the approval node's, read by the same inbox rules
                    "approvers": Approval.config_schema["properties"]["approvers"],
                    "timeout_seconds": {
                        "type": "integer",
                        "minimum": 1,
                        "maximum": _MAX_APPROVAL_SECONDS,
                        "description": "how long the approvers have; none: no deadline",
                    },
                    "on_timeout": {
                        "enum": ["reject", "approve", "fail"],
                        "default": "reject",
                        "description": "when nobody answered in time: refuse the call (the "
                        "model is told), run it as proposed, or fail the node",
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
        called: list[str] = []
        for tool in config.get("tools") or []:
            if "flow_id" in tool:
                called.append(str(tool["flow_id"]))
            elif (inner := node_type(str(tool["node"]["type"]))) is not None:
                called += inner.called_flows(tool["node"].get("config") or {})
        return called

    @classmethod
    def inner_nodes(cls, config: Mapping[str, Any]) -> list[dict[str, Any]]:
        return [
            {"id": f"tools.{tool['name']}", **tool["node"]}
            for tool in config.get("tools") or []
            if "node" in tool
        ]

    @classmethod
    def check_config(cls, config: Mapping[str, Any]) -> list[str]:
        problems: list[str] = []
        for index, tool in enumerate(config.get("tools") or []):
            if "node" in tool:
                where = f"tools/{index}/node ('{tool['name']}')"
                problems += [f"{where}: {p}" for p in node_tool_problems(tool["node"])]
        return problems

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
                approval=dict(config.get("tool_approval") or {}),
            )
            for written, outcome in zip(assistant.get("tool_calls", []), outcomes, strict=True):
                if outcome.arguments is not None:  # what ran is what the transcript says
                    written["arguments"] = outcome.arguments
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
        approval: Mapping[str, Any],
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
            arguments = dict(call["arguments"])
            edited: dict[str, Any] | None = None
            if tool.approval:
                asked = await _ask_person(
                    tool, tools, call, key=f"tool:{turn}:{index}", settings=approval, ctx=ctx
                )
                if isinstance(asked, _Outcome):
                    return asked
                tool, arguments = asked
                if arguments != call["arguments"]:
                    edited = arguments
            child_id = f"{ctx.run_id}:{ctx.node_id}:tool:{turn}:{index}"
            result = await children.run(child_id, tool.document, arguments)
            status = result.get("status", "failed")
            if status == "cancelled":
                raise NodeError(f"tool run {child_id} was cancelled")
            if status != "completed":
                return _Outcome(
                    error=f"the tool failed: {result.get('error') or 'no detail'}",
                    arguments=edited,
                )
            return _Outcome(result=dict(result.get("outputs") or {}), arguments=edited)

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


async def _ask_person(
    tool: _Tool,
    tools: Mapping[str, _Tool],
    call: Mapping[str, Any],
    *,
    key: str,
    settings: Mapping[str, Any],
    ctx: NodeContext,
) -> "tuple[_Tool, dict[str, Any]] | _Outcome":
    """Ask whether the call may run, and wait (durably) for the answer: the tool and the
    arguments to run it with, or the outcome that tells the model it was refused."""
    if ctx.human is None:  # pragma: no cover (checked with the config, before any call)
        raise NodeError("tool approvals need the durable runtime (run this flow on a worker)")
    desk = ctx.human.keyed(key)
    request = {
        "kind": "tool_call",
        "title": f"Run the tool '{tool.name}'?",
        "message": f"The agent wants to call '{tool.name}'"
        + (f": {tool.description}" if tool.description else "."),
        "data": dict(call["arguments"]),
        "tool": tool.name,
        "description": tool.description,
        "arguments": dict(call["arguments"]),
        "parameters": tool.parameters,
        "tool_call_id": str(call["id"]),
        "node": ctx.node_id,
        "approvers": normal_approvers(settings.get("approvers")),
        "on_timeout": settings.get("on_timeout", "reject"),
    }
    timeout = settings.get("timeout_seconds")
    opened = await desk.open(request, float(timeout) if timeout else None)
    stored = opened["request"]
    # The request as first made is the one that counts (a re-executed step's model may
    # propose otherwise; the person answered what they were shown).
    tool = tools.get(str(stored.get("tool")), tool)
    proposed = dict(stored.get("arguments") or {})
    request_id = f"{ctx.node_id}:{key}"
    await announce(
        ctx,
        opened,
        kind="tool_call",
        request=request_id,
        tool_call_id=call["id"],
        tool=tool.name,
        arguments=proposed,
    )
    decision = await desk.wait()
    outcome = decision.get("outcome")
    edited = decision.get("arguments")
    await settle(
        ctx,
        decision,
        kind="tool_call",
        request=request_id,
        tool_call_id=call["id"],
        **({"arguments": edited} if edited is not None else {}),
    )
    if outcome == "timed_out":
        on_timeout = stored.get("on_timeout", "reject")
        if on_timeout == "fail":
            raise NodeError(f"nobody answered whether to run the tool '{tool.name}' in time")
        if on_timeout != "approve":
            return _Outcome(
                error="not run: nobody approved this call before its deadline", refused=True
            )
        outcome = "approved"
    if outcome != "approved":
        comment = str(decision.get("comment") or "").strip()
        said = f' Their comment: "{comment}"' if comment else " They gave no reason."
        return _Outcome(error=f"a person refused this call; it was not run.{said}", refused=True)
    return tool, (dict(edited) if isinstance(edited, dict) else proposed)


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


# What a model may fill in as a node tool's argument (streams, files and secret references
# are the flow's to connect, not the model's to name), as JSON Schema.
_ARGUMENT_SCHEMAS: dict[PortType, dict[str, Any]] = {
    PortType.TEXT: {"type": "string"},
    PortType.NUMBER: {"type": "number"},
    PortType.BOOLEAN: {"type": "boolean"},
    PortType.JSON: {},
    PortType.LIST: {"type": "array"},
    PortType.MESSAGES: {"type": "array", "items": {"type": "object"}},
    PortType.ANY: {},
}
_NOT_A_TOOL = frozenset({"input", "output"})
_TOOL_ARGUMENTS = "arguments"
_TOOL_NODE = "tool"


def _node_tool_ports(node: Mapping[str, Any]) -> tuple[type[NodeType], list[Port], list[Port]]:
    cls = node_type(str(node["type"]))
    if cls is None:
        raise NodeError(f"node type '{node['type']}' is not installed")
    config = node.get("config") or {}
    inputs = [p for p in cls.inputs(config) if p.type in _ARGUMENT_SCHEMAS]
    outputs = [p for p in cls.outputs(config) if p.type in _ARGUMENT_SCHEMAS]
    return cls, inputs, outputs


def node_tool_parameters(node: Mapping[str, Any]) -> dict[str, Any]:
    """The arguments a node tool takes, as JSON Schema: its input ports."""
    _, inputs, _ = _node_tool_ports(node)
    return {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            p.name: {**_ARGUMENT_SCHEMAS[p.type], **_described(p.description)} for p in inputs
        },
        "required": [p.name for p in inputs if p.required],
    }


def _described(description: str) -> dict[str, str]:
    return {"description": description} if description else {}


def node_tool_document(node: Mapping[str, Any]) -> dict[str, Any]:
    """The one-node flow a node tool runs as: an input node with a field per argument, the
    node, and an output per output port."""
    _, inputs, outputs = _node_tool_ports(node)
    fields = [{"name": p.name, "type": p.type.value, "required": p.required} for p in inputs]
    return {
        "schema": 1,
        "nodes": [
            {"id": _TOOL_ARGUMENTS, "type": "input", "config": {"fields": fields}},
            {"id": _TOOL_NODE, "type": str(node["type"]), "config": dict(node.get("config") or {})},
            *(
                {"id": f"result_{p.name}", "type": "output", "config": {"name": p.name}}
                for p in outputs
            ),
        ],
        "edges": [
            *(
                {"from": f"{_TOOL_ARGUMENTS}.{p.name}", "to": f"{_TOOL_NODE}.{p.name}"}
                for p in inputs
            ),
            *({"from": f"{_TOOL_NODE}.{p.name}", "to": f"result_{p.name}.value"} for p in outputs),
        ],
    }


def node_tool_problems(node: Mapping[str, Any]) -> list[str]:
    """Why `node` cannot be a tool: an unknown type, a config that does not fit it, an input
    the model could not fill in, or no output to answer with."""
    if str(node["type"]) in _NOT_A_TOOL:
        return [f"a node of type '{node['type']}' cannot be a tool"]
    cls = node_type(str(node["type"]))
    if cls is None:
        return [f"unknown node type '{node['type']}'"]
    from .._validate import validate_flow  # the registry's nodes validate their own kind

    config = node.get("config") or {}
    problems = [
        f"input '{p.name}' ({p.type.value}) is required, and a model cannot fill it in"
        for p in cls.inputs(config)
        if p.required and p.type not in _ARGUMENT_SCHEMAS
    ]
    if problems:
        return problems
    prefix = f"node '{_TOOL_NODE}' ({node['type']}): "
    for issue in validate_flow(node_tool_document(node)):
        if issue.severity == "error" and issue.node == _TOOL_NODE:
            problems.append(issue.message.removeprefix(prefix))
    if not problems and not _node_tool_ports(node)[2]:
        problems.append("the node has no output the model could be told")
    return problems
