"""Interactive cards: a human request that shows a person an A2UI surface and waits for the
action they take on it.

A card is an A2UI v0.9 surface (https://a2ui.org, the Agent-to-User Interface spec) in the
spec's own JSON shape: a flat list of components from the basic catalog (Row, Column, List,
Card, Tabs, Modal, Divider, Text, Image, Icon, Video, AudioPlayer, Button, TextField,
CheckBox, ChoicePicker, DateTimeInput, Slider) and the id of the root one. The node's `data`
input becomes the surface's data model, which components bind to by JSON Pointer paths
(`{"path": "/customer/name"}`). The config is validated, when the flow is saved, against the
catalog's JSON Schema as the official `a2ui-core` package publishes it; how the components
refer to each other (ids, root, children) is checked when the node runs.

The node is one step, like the approval node (engine/nodes/_human.py): it opens a durable
request of kind `card`, waits through ctx.human, and returns the person's A2UI user action
(`action`: name, sourceComponentId, surfaceId, context) and the values of the card's input
components (`values`, by component id). The platform checks an answer against the card's
input components before it stores it, as the answer's `arguments` (engine/_human.py)."""

from collections.abc import Iterator, Mapping
from typing import Any, ClassVar

import regex
from a2ui.core.basic_catalog.v0_9 import BasicCatalog

from .._ports import PortType
from .._registry import Effect, NodeContext, NodeError, NodeType, Port
from ._human import _APPROVERS, _MAX_TIMEOUT, announce, normal_approvers, settle

A2UI_VERSION = "v0.9"
CATALOG_ID = "https://a2ui.org/specification/v0_9/catalogs/basic/catalog.json"
INPUT_COMPONENTS = frozenset({"TextField", "CheckBox", "ChoicePicker", "DateTimeInput", "Slider"})
_MAX_COMPONENTS = 500


def _catalog_schema() -> dict[str, Any]:
    """The basic catalog's validation schema (a2ui-core), as an embedded resource."""
    schema = BasicCatalog().validation_schema
    schema.pop("$schema", None)
    schema["$id"] = CATALOG_ID
    return schema


_CATALOG = _catalog_schema()
COMPONENT_NAMES: tuple[str, ...] = tuple(_CATALOG["components"])

# One branch per component type, so that an error names what is wrong with that component
# instead of "not valid under any of the given schemas".
_COMPONENT: dict[str, Any] = {
    "type": "object",
    "required": ["id", "component"],
    "properties": {
        "id": {"type": "string", "minLength": 1},
        "component": {"enum": list(COMPONENT_NAMES)},
    },
    "allOf": [
        {
            "if": {"properties": {"component": {"const": name}}, "required": ["component"]},
            "then": {"$ref": f"{CATALOG_ID}#/components/{name}"},
        }
        for name in COMPONENT_NAMES
    ],
}


class Card(NodeType):
    type_name = "card"
    title = "Card"
    description = (
        "Shows a person an interactive card (an A2UI v0.9 surface bound to the `data` input) "
        "and waits, durably, for the action they take on it; outputs the action and the "
        "values of the card's inputs."
    )
    category = "human"
    effect = Effect.WRITE  # writes the request; its answer is checkpointed
    config_schema: ClassVar[dict[str, Any]] = {
        "type": "object",
        "additionalProperties": False,
        "required": ["title", "surface"],
        "properties": {
            "title": {"type": "string", "minLength": 1, "maxLength": 200},
            "surface": {
                "type": "object",
                "additionalProperties": False,
                "required": ["components"],
                "description": "an A2UI v0.9 surface: its components (basic catalog) and root",
                "properties": {
                    "root": {
                        "type": "string",
                        "minLength": 1,
                        "default": "root",
                        "description": "the id of the component the card starts at",
                    },
                    "components": {
                        "type": "array",
                        "minItems": 1,
                        "maxItems": _MAX_COMPONENTS,
                        "items": _COMPONENT,
                    },
                },
            },
            "approvers": _APPROVERS,
            "timeout_seconds": {
                "type": "integer",
                "minimum": 1,
                "maximum": _MAX_TIMEOUT,
                "description": "how long the approvers have; none: no deadline",
            },
            "on_timeout": {
                "enum": ["fail", "branch"],
                "default": "fail",
                "description": "when nobody answered in time: fail the node, or take the "
                "`timed_out` branch",
            },
        },
        "$defs": {"a2ui_basic_catalog_v0_9": _CATALOG},
    }
    INPUTS = (
        Port(
            "data",
            PortType.ANY,
            required=False,
            description="the card's data model (an object): components bind to it by path",
        ),
    )
    OUTPUTS = (
        Port("action", PortType.JSON, description="{name, sourceComponentId, surfaceId, context}"),
        Port("values", PortType.JSON, description="the card's input values, by component id"),
        Port(
            "timed_out",
            PortType.ANY,
            description="the data, when nobody answered in time (on_timeout: branch)",
        ),
        Port("decision", PortType.JSON, description="{outcome, by, at, escalated}"),
    )

    @classmethod
    def check_config(cls, config: Mapping[str, Any]) -> list[str]:
        components = config["surface"]["components"]
        problems = surface_problems(components, str(config["surface"].get("root") or "root"))
        return [f"surface: {p}" for p in problems] + pattern_problems(components)

    async def execute(
        self, config: Mapping[str, Any], inputs: Mapping[str, Any], ctx: NodeContext
    ) -> dict[str, Any]:
        if ctx.human is None:
            raise NodeError("cards need the durable runtime (run this flow on a worker)")
        data = inputs.get("data")
        if data is None:
            data = {}
        if not isinstance(data, dict):
            raise NodeError(
                f"the card's data must be an object (its data model), not {type(data).__name__}"
            )
        surface = dict(config["surface"])
        root = str(surface.get("root") or "root")
        problems = surface_problems(surface["components"], root)
        if problems:
            raise NodeError(f"card '{config['title']}': " + "; ".join(problems))
        on_timeout = config.get("on_timeout", "fail")
        request: dict[str, Any] = {
            "kind": "card",
            "title": config["title"],
            "message": "",
            "surface": {
                "version": A2UI_VERSION,
                "catalogId": CATALOG_ID,
                "surfaceId": ctx.node_id,
                "root": root,
                "components": list(surface["components"]),
            },
            "data": data,
            "approvers": normal_approvers(config.get("approvers")),
            "on_timeout": on_timeout,
        }
        timeout = config.get("timeout_seconds")
        opened = await ctx.human.open(request, float(timeout) if timeout else None)
        await announce(ctx, opened, kind="card")
        decision = await ctx.human.wait(shelvable=True)
        answer = decision.pop("arguments", None)
        await settle(
            ctx,
            decision,
            escalated=decision.get("escalated"),
            action=(answer or {}).get("action", {}).get("name"),
        )
        if decision["outcome"] == "timed_out":
            if on_timeout == "branch":
                return {"timed_out": data, "decision": decision}
            raise NodeError(f"nobody answered the card '{config['title']}' before its deadline")
        if not isinstance(answer, dict) or "action" not in answer:
            raise NodeError(
                f"the card '{config['title']}' was answered without an action "
                f"({decision['outcome']}); a card is answered by one of its buttons"
            )
        return {
            "action": answer["action"],
            "values": answer.get("values", {}),
            "decision": decision,
        }


def component_references(component: Mapping[str, Any]) -> Iterator[str]:
    """The ids of the components `component` contains (children, child, tabs, modal)."""
    children = component.get("children")
    if isinstance(children, list):
        yield from (str(child) for child in children)
    elif isinstance(children, dict) and "componentId" in children:
        yield str(children["componentId"])  # a template repeated over a data list
    for key in ("child", "trigger", "content"):
        if isinstance(component.get(key), str):
            yield component[key]
    for tab in component.get("tabs") or ():
        if isinstance(tab, dict) and isinstance(tab.get("child"), str):
            yield tab["child"]


def surface_problems(components: list[dict[str, Any]], root: str) -> list[str]:
    """What makes catalog-valid components an unusable surface: duplicate ids, a missing
    root, references to components that are not there, cycles, no button to answer with."""
    problems: list[str] = []
    by_id: dict[str, dict[str, Any]] = {}
    for component in components:
        if component["id"] in by_id:
            problems.append(f"component id '{component['id']}' is used twice")
        by_id[component["id"]] = component
    if root not in by_id:
        problems.append(f"the root component '{root}' is not in the card")
    for component in components:
        for ref in component_references(component):
            if ref not in by_id:
                problems.append(
                    f"component '{component['id']}' refers to '{ref}', which is missing"
                )
    if not any(
        c["component"] == "Button" and "event" in (c.get("action") or {}) for c in components
    ):
        problems.append("the card has no Button with an event action, so nobody could answer it")
    if not problems:
        seen: set[str] = set()

        def visit(node: str, path: tuple[str, ...]) -> None:
            if node in path:
                problems.append(f"components refer to each other in a cycle at '{node}'")
                return
            if node in seen:
                return
            seen.add(node)
            for ref in component_references(by_id[node]):
                visit(ref, (*path, node))

        visit(root, ())
    return problems


def pattern_problems(components: list[dict[str, Any]]) -> list[str]:
    """Patterns of the card's inputs (`validationRegexp`, `regex` checks) that do not compile:
    an answer could never be checked against them."""
    problems: list[str] = []
    for component in components:
        patterns = [("validationRegexp", component.get("validationRegexp"))]
        for index, check in enumerate(component.get("checks") or ()):
            condition = check.get("condition") if isinstance(check, dict) else None
            if isinstance(condition, dict) and condition.get("call") == "regex":
                pattern = (condition.get("args") or {}).get("pattern")
                patterns.append((f"checks/{index}/condition/args/pattern", pattern))
        for where, pattern in patterns:
            if not isinstance(pattern, str):
                continue
            try:
                regex.compile(pattern)
            except regex.error as exc:
                problems.append(
                    f"surface/components '{component['id']}' {where}: not a valid regular "
                    f"expression ({exc})"
                )
    return problems
