"""Pure nodes: flow input and output, constant, template, transform, condition, switch and
merge. Deterministic and free of I/O, so replay recomputes them exactly."""

from collections.abc import Mapping
from typing import Any, ClassVar

import jinja2
import jmespath
import jmespath.exceptions
from jinja2 import meta
from jinja2.sandbox import ImmutableSandboxedEnvironment

from .._ports import PortType
from .._registry import NodeContext, NodeError, NodeType, Port

_PORT_TYPES = [t.value for t in PortType if t not in (PortType.STREAM, PortType.SECRET_REF)]
# A flow's input may also be a stream, which only a parent run gives (ExecuteFlow's
# `stream_inputs`): the child reads its parent's stream while the parent still writes it.
_INPUT_TYPES = [*_PORT_TYPES, PortType.STREAM.value]
_FIELD_NAME = {"type": "string", "pattern": "^[A-Za-z_][A-Za-z0-9_]{0,63}$"}
_MAX_TEMPLATE_OUTPUT = 1_000_000
_MAX_OPERAND = 100_000  # longest string or list `*` may build, largest `**` exponent


class _BoundedSandbox(ImmutableSandboxedEnvironment):
    """Jinja's immutable sandbox, where `*` cannot build huge strings or lists and `**`
    cannot build huge numbers (templates run in workflow code: they must stay cheap)."""

    intercepted_binops = frozenset({"*", "**"})

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        if operator == "*":
            for seq, times in ((left, right), (right, left)):
                repeats = isinstance(seq, str | list | tuple) and isinstance(times, int)
                if repeats and len(seq) * times > _MAX_OPERAND:
                    raise jinja2.sandbox.SecurityError(
                        f"repeating a sequence past {_MAX_OPERAND} items is not allowed"
                    )
        elif isinstance(right, int | float) and abs(right) > 1000:
            raise jinja2.sandbox.SecurityError("exponents above 1000 are not allowed")
        return super().call_binop(context, operator, left, right)


_JINJA = _BoundedSandbox(undefined=jinja2.StrictUndefined, autoescape=False)


class FlowInput(NodeType):
    type_name = "input"
    title = "Flow input"
    description = "The values a run starts with; each field becomes an output port."
    category = "flow"
    config_schema: ClassVar[dict[str, Any]] = {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "fields": {
                "type": "array",
                "items": {
                    "type": "object",
                    "additionalProperties": False,
                    "required": ["name", "type"],
                    "properties": {
                        "name": _FIELD_NAME,
                        "type": {"enum": _INPUT_TYPES},
                        "required": {"type": "boolean", "default": True},
                        "default": {},
                        "description": {"type": "string"},
                    },
                },
            }
        },
    }

    @classmethod
    def outputs(cls, config: Mapping[str, Any]) -> tuple[Port, ...]:
        return tuple(
            Port(f["name"], PortType(f["type"]), f.get("required", True), f.get("description", ""))
            for f in config.get("fields", [])
        )

    async def execute(
        self, config: Mapping[str, Any], inputs: Mapping[str, Any], ctx: NodeContext
    ) -> dict[str, Any]:
        run_inputs: Mapping[str, Any] = ctx.extra.get("run_inputs", {})
        values = {}
        for field in config.get("fields", []):
            name = field["name"]
            if name in run_inputs:
                values[name] = run_inputs[name]
            elif "default" in field:
                values[name] = field["default"]
        return values


class FlowOutput(NodeType):
    type_name = "output"
    title = "Flow output"
    description = "Publishes its value as one of the run's outputs, under `name`."
    category = "flow"
    config_schema: ClassVar[dict[str, Any]] = {
        "type": "object",
        "additionalProperties": False,
        "required": ["name"],
        "properties": {"name": _FIELD_NAME, "type": {"enum": _PORT_TYPES, "default": "any"}},
    }

    @classmethod
    def inputs(cls, config: Mapping[str, Any]) -> tuple[Port, ...]:
        return (Port("value", PortType(config.get("type", "any"))),)

    async def execute(
        self, config: Mapping[str, Any], inputs: Mapping[str, Any], ctx: NodeContext
    ) -> dict[str, Any]:
        return {}


class Constant(NodeType):
    type_name = "constant"
    title = "Constant"
    description = "A fixed value."
    config_schema: ClassVar[dict[str, Any]] = {
        "type": "object",
        "additionalProperties": False,
        "required": ["value"],
        "properties": {"value": {}, "type": {"enum": _PORT_TYPES, "default": "any"}},
    }

    @classmethod
    def outputs(cls, config: Mapping[str, Any]) -> tuple[Port, ...]:
        return (Port("value", PortType(config.get("type", "any"))),)

    async def execute(
        self, config: Mapping[str, Any], inputs: Mapping[str, Any], ctx: NodeContext
    ) -> dict[str, Any]:
        return {"value": config.get("value")}


def template_variables(source: str) -> list[str]:
    """The variables a template reads, which become the node's input ports."""
    try:
        parsed = _JINJA.parse(source)
    except jinja2.TemplateSyntaxError:
        return []
    return sorted(meta.find_undeclared_variables(parsed))


class Template(NodeType):
    type_name = "template"
    title = "Template"
    description = (
        "Renders text with Jinja2 in a sandbox; every variable it uses becomes an input port."
    )
    category = "text"
    config_schema: ClassVar[dict[str, Any]] = {
        "type": "object",
        "additionalProperties": False,
        "required": ["template"],
        "properties": {"template": {"type": "string", "maxLength": 100_000}},
    }
    OUTPUTS = (Port("text", PortType.TEXT),)

    @classmethod
    def inputs(cls, config: Mapping[str, Any]) -> tuple[Port, ...]:
        return tuple(
            Port(name, PortType.ANY) for name in template_variables(config.get("template", ""))
        )

    async def execute(
        self, config: Mapping[str, Any], inputs: Mapping[str, Any], ctx: NodeContext
    ) -> dict[str, Any]:
        chunks: list[str] = []
        size = 0
        try:
            # Rendered piece by piece, so an oversized output stops early instead of being
            # built whole first.
            for chunk in _JINJA.from_string(config["template"]).generate(**inputs):
                size += len(chunk)
                if size > _MAX_TEMPLATE_OUTPUT:
                    raise NodeError(f"template output exceeds {_MAX_TEMPLATE_OUTPUT} characters")
                chunks.append(chunk)
        except jinja2.TemplateError as exc:
            raise NodeError(f"template error: {exc}") from None
        text = "".join(chunks)
        return {"text": text}


_EXPRESSION = {"type": "string", "minLength": 1, "maxLength": 10_000}
# Config of the nodes driven by one JMESPath expression (transform, if).
_EXPRESSION_CONFIG: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["expression"],
    "properties": {"expression": _EXPRESSION},
}


def _compile(expression: str) -> Any:
    try:
        return jmespath.compile(expression)
    except jmespath.exceptions.JMESPathError as exc:
        raise NodeError(f"invalid JMESPath expression {expression!r}: {exc}") from None


def _search(expression: str, data: Any) -> Any:
    try:
        return _compile(expression).search(data)
    except jmespath.exceptions.JMESPathError as exc:
        raise NodeError(f"JMESPath expression {expression!r} failed: {exc}") from None


class Transform(NodeType):
    type_name = "transform"
    title = "Transform"
    description = "Reshapes JSON with a JMESPath expression."
    category = "data"
    config_schema: ClassVar[dict[str, Any]] = _EXPRESSION_CONFIG
    INPUTS = (Port("data", PortType.ANY),)
    OUTPUTS = (Port("result", PortType.ANY),)

    async def execute(
        self, config: Mapping[str, Any], inputs: Mapping[str, Any], ctx: NodeContext
    ) -> dict[str, Any]:
        return {"result": _search(config["expression"], inputs["data"])}


class Condition(NodeType):
    type_name = "condition"
    title = "If"
    description = (
        "Sends its value out of `true` or `false` by a JMESPath test; the other side is skipped."
    )
    category = "control"
    config_schema: ClassVar[dict[str, Any]] = _EXPRESSION_CONFIG
    INPUTS = (Port("value", PortType.ANY),)
    OUTPUTS = (Port("true", PortType.ANY), Port("false", PortType.ANY))

    async def execute(
        self, config: Mapping[str, Any], inputs: Mapping[str, Any], ctx: NodeContext
    ) -> dict[str, Any]:
        value = inputs["value"]
        taken = "true" if _truthy(_search(config["expression"], value)) else "false"
        return {taken: value}


def _truthy(value: Any) -> bool:
    # JMESPath truthiness: empty strings, lists, objects, false and null are false.
    return value not in (None, False, "", [], {})


class Switch(NodeType):
    type_name = "switch"
    title = "Switch"
    description = "Routes its value to the case its JMESPath key matches, else `default`."
    category = "control"
    config_schema: ClassVar[dict[str, Any]] = {
        "type": "object",
        "additionalProperties": False,
        "required": ["expression", "cases"],
        "properties": {
            "expression": _EXPRESSION,
            "cases": {
                "type": "array",
                "items": _FIELD_NAME,
                "minItems": 1,
                "maxItems": 50,
                "uniqueItems": True,
            },
        },
    }
    INPUTS = (Port("value", PortType.ANY),)

    @classmethod
    def outputs(cls, config: Mapping[str, Any]) -> tuple[Port, ...]:
        cases = [c for c in config.get("cases", []) if c != "default"]
        return (*(Port(c, PortType.ANY) for c in cases), Port("default", PortType.ANY))

    async def execute(
        self, config: Mapping[str, Any], inputs: Mapping[str, Any], ctx: NodeContext
    ) -> dict[str, Any]:
        value = inputs["value"]
        key = _search(config["expression"], value)
        taken = str(key) if str(key) in config["cases"] else "default"
        return {taken: value}


class Merge(NodeType):
    type_name = "merge"
    title = "Merge"
    description = (
        "Joins branches: `first` passes the first input that has a value (e.g. after an If), "
        "`all` waits for every branch and outputs the list of their values, in input order "
        "(null for a branch that produced none)."
    )
    category = "control"
    config_schema: ClassVar[dict[str, Any]] = {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "mode": {"enum": ["first", "all"], "default": "all"},
            "inputs": {"type": "integer", "minimum": 2, "maximum": 32, "default": 2},
        },
    }
    OUTPUTS = (Port("result", PortType.ANY),)

    @classmethod
    def inputs(cls, config: Mapping[str, Any]) -> tuple[Port, ...]:
        count = int(config.get("inputs", 2))
        return tuple(Port(f"in_{i}", PortType.ANY, required=False) for i in range(1, count + 1))

    async def execute(
        self, config: Mapping[str, Any], inputs: Mapping[str, Any], ctx: NodeContext
    ) -> dict[str, Any]:
        ports = self.inputs(config)
        if config.get("mode", "all") == "first":
            present = [inputs[p.name] for p in ports if p.name in inputs]
            return {"result": present[0]} if present else {}
        return {"result": [inputs.get(p.name) for p in ports]}
