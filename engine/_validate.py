"""Flow validation with errors a person can act on: each names the node, the port and the fix.

Error kinds: invalid_document, unsupported_schema, duplicate_node, unknown_node_type,
invalid_config, dangling_edge, unknown_port, incompatible_ports, input_already_connected,
missing_input, cycle, no_output, duplicate_output. Warnings: dead_end (a node whose results
reach no output)."""

import difflib
import hashlib
import json
from collections import defaultdict
from dataclasses import dataclass
from typing import Any, Literal

import jsonschema
from pydantic import ValidationError

from ._document import SCHEMA_VERSION, FlowDocument, NodeSpec, PortRef
from ._ports import accepted_sources, can_connect
from ._registry import NodeType, Port, node_type, node_types


@dataclass(frozen=True)
class Issue:
    code: str
    message: str
    node: str | None = None
    port: str | None = None
    severity: Literal["error", "warning"] = "error"

    def to_json(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "message": self.message,
            "node": self.node,
            "port": self.port,
            "severity": self.severity,
        }


class FlowInvalid(Exception):
    """Raised by `parse_flow` when a document has errors; `issues` lists them all."""

    def __init__(self, issues: list[Issue]) -> None:
        self.issues = issues
        first = issues[0].message if issues else "invalid flow"
        more = f" (and {len(issues) - 1} more)" if len(issues) > 1 else ""
        super().__init__(first + more)


@dataclass(frozen=True)
class ResolvedNode:
    spec: NodeSpec
    cls: type[NodeType]
    inputs: dict[str, Port]
    outputs: dict[str, Port]


def validate_flow(raw: Any) -> list[Issue]:
    """Every problem of a flow document, errors first; an empty list means it can run."""
    try:
        document = FlowDocument.model_validate(raw)
    except ValidationError as exc:
        return [_document_issue(error) for error in exc.errors()]
    return _validate(document)[0]


def flow_ports(raw: Any) -> tuple[list[Issue], dict[str, dict[str, list[dict[str, Any]]]]]:
    """`validate_flow`'s issues, and the ports of every node whose type and config are valid,
    as its config gives them (a template's variables, an input node's fields, ...): what an
    editor draws as the node's handles, so it never guesses the engine's rules."""
    try:
        document = FlowDocument.model_validate(raw)
    except ValidationError as exc:
        return [_document_issue(error) for error in exc.errors()], {}
    issues, resolved = _validate(document)
    ports = {
        node_id: {
            "inputs": [port.to_json() for port in node.inputs.values()],
            "outputs": [port.to_json() for port in node.outputs.values()],
        }
        for node_id, node in resolved.items()
    }
    return issues, ports


def parse_flow(raw: Any) -> FlowDocument:
    """The document, if it has no errors; raises FlowInvalid otherwise."""
    try:
        document = FlowDocument.model_validate(raw)
    except ValidationError as exc:
        raise FlowInvalid([_document_issue(error) for error in exc.errors()]) from None
    found, resolved = _validate(document)
    issues = [i for i in found if i.severity == "error"]
    if issues:
        raise FlowInvalid(issues)
    document._resolved = resolved
    return document


# Documents found valid lately, by content (a digest of their JSON): a worker runs the same
# few flow versions again and again, and validating one (every node's config against its
# JSON Schema, twice) was a fifth of a queued run's time on the worker's event loop. Node
# types are only ever added (registering a name twice fails), so a valid document stays so.
_KNOWN: dict[bytes, FlowDocument] = {}
_KNOWN_MOST = 256


def parse_known_flow(raw: Any) -> FlowDocument:
    """`parse_flow`, remembering valid documents: the same content again returns the same
    parsed document, which is shared and must be treated as read-only (the runtime only
    reads it)."""
    try:
        key = hashlib.blake2b(
            json.dumps(raw, separators=(",", ":")).encode(), digest_size=16
        ).digest()
    except (TypeError, ValueError):  # not JSON: nothing to remember it by
        return parse_flow(raw)
    known = _KNOWN.get(key)
    if known is None:
        known = parse_flow(raw)
        if len(_KNOWN) >= _KNOWN_MOST:
            _KNOWN.pop(next(iter(_KNOWN)), None)  # the oldest
        _KNOWN[key] = known
    return known


def resolve_nodes(document: FlowDocument) -> dict[str, ResolvedNode]:
    """Node types and concrete ports of a valid document's nodes."""
    resolved: dict[str, ResolvedNode] | None = document._resolved
    return resolved if resolved is not None else _validate(document)[1]


def _document_issue(error: Any) -> Issue:
    loc = ".".join(str(part) for part in error.get("loc", ()))
    return Issue("invalid_document", f"{loc or 'document'}: {error.get('msg', 'invalid')}")


def _validate(document: FlowDocument) -> tuple[list[Issue], dict[str, ResolvedNode]]:
    if document.schema_version != SCHEMA_VERSION:
        message = (
            f"schema version {document.schema_version} is not supported; "
            f"this server reads version {SCHEMA_VERSION}"
        )
        return [Issue("unsupported_schema", message)], {}
    issues: list[Issue] = []
    resolved = _resolve(document, issues)
    incoming, graph = _check_edges(document, resolved, issues)
    _check_inputs(resolved, incoming, issues)
    _check_shape(resolved, graph, issues)
    issues.sort(key=lambda i: i.severity != "error")
    return issues, resolved


def _resolve(document: FlowDocument, issues: list[Issue]) -> dict[str, ResolvedNode]:
    """Node types and concrete ports, for every node whose type and config are valid."""
    resolved: dict[str, ResolvedNode] = {}
    seen: set[str] = set()
    for spec in document.nodes:
        if spec.id in seen:
            message = f"node id '{spec.id}' is used twice; ids must be unique"
            issues.append(Issue("duplicate_node", message, node=spec.id))
            continue
        seen.add(spec.id)
        cls = node_type(spec.type)
        if cls is None:
            close = difflib.get_close_matches(spec.type, list(node_types()), n=1)
            hint = f" Did you mean '{close[0]}'?" if close else ""
            message = f"node '{spec.id}' has unknown type '{spec.type}'.{hint}"
            issues.append(Issue("unknown_node_type", message, node=spec.id))
            continue
        config_errors = sorted(
            _config_validator(cls).iter_errors(spec.config),
            key=lambda e: list(e.absolute_path),
        )
        for error in config_errors:
            where = "/".join(str(p) for p in error.absolute_path) or "config"
            message = f"node '{spec.id}' ({spec.type}): config {where}: {error.message}"
            issues.append(Issue("invalid_config", message, node=spec.id))
        problems = [] if config_errors else cls.check_config(spec.config)
        for problem in problems:
            message = f"node '{spec.id}' ({spec.type}): config {problem}"
            issues.append(Issue("invalid_config", message, node=spec.id))
        if not config_errors and not problems:
            resolved[spec.id] = ResolvedNode(
                spec=spec,
                cls=cls,
                inputs={p.name: p for p in cls.inputs(spec.config)},
                outputs={p.name: p for p in cls.outputs(spec.config)},
            )
    return resolved


_VALIDATORS: dict[str, jsonschema.Draft202012Validator] = {}


def _config_validator(cls: type[NodeType]) -> jsonschema.Draft202012Validator:
    """Compiled once per node type: validation runs on every save and every run."""
    validator = _VALIDATORS.get(cls.type_name)
    if validator is None or validator.schema is not cls.config_schema:
        validator = _VALIDATORS[cls.type_name] = jsonschema.Draft202012Validator(cls.config_schema)
    return validator


def _check_edges(
    document: FlowDocument, resolved: dict[str, ResolvedNode], issues: list[Issue]
) -> tuple[dict[tuple[str, str], list[str]], dict[str, set[str]]]:
    """Edges must join existing ports of compatible types; returns what feeds each input
    and the node graph."""
    known_ids = {spec.id for spec in document.nodes}
    incoming: dict[tuple[str, str], list[str]] = defaultdict(list)
    graph: dict[str, set[str]] = {node_id: set() for node_id in resolved}
    for edge in document.edges:
        source, target = edge.source_ref, edge.target_ref
        missing = [ref for ref in (source, target) if ref.node not in known_ids]
        if missing:
            message = (
                f"edge {edge.source} -> {edge.target} points at node '{missing[0].node}', "
                "which is not in the flow: remove the edge or add the node"
            )
            issues.append(Issue("dangling_edge", message, node=missing[0].node))
            continue
        if source.node not in resolved or target.node not in resolved:
            continue  # the node's own error is reported already
        issue = _edge_issue(edge.source, edge.target, resolved)
        if issue is not None:
            issues.append(issue)
            continue
        incoming[(target.node, target.port)].append(edge.source)
        if source.node == target.node:
            issues.append(Issue("cycle", f"node '{source.node}' feeds itself", node=source.node))
        else:
            graph[source.node].add(target.node)
    return incoming, graph


def _edge_issue(source: str, target: str, resolved: dict[str, ResolvedNode]) -> Issue | None:
    src, dst = PortRef.parse(source), PortRef.parse(target)
    out_port = resolved[src.node].outputs.get(src.port)
    if out_port is None:
        return _unknown_port(resolved[src.node], src.port, "output")
    in_port = resolved[dst.node].inputs.get(dst.port)
    if in_port is None:
        return _unknown_port(resolved[dst.node], dst.port, "input")
    if can_connect(out_port.type, in_port.type):
        return None
    accepted = ", ".join(t.value for t in accepted_sources(in_port.type))
    message = (
        f"{source} ({out_port.type}) cannot feed {target} ({in_port.type}); "
        f"that input accepts {accepted}"
    )
    return Issue("incompatible_ports", message, node=dst.node, port=dst.port)


def _check_inputs(
    resolved: dict[str, ResolvedNode],
    incoming: dict[tuple[str, str], list[str]],
    issues: list[Issue],
) -> None:
    for (node_id, port_name), sources in incoming.items():
        if len(sources) > 1:
            message = (
                f"input {node_id}.{port_name} has {len(sources)} incoming edges "
                f"({', '.join(sources)}); an input takes one: join them with a merge node"
            )
            issues.append(Issue("input_already_connected", message, node=node_id, port=port_name))
    for node_id, node in resolved.items():
        for port in node.inputs.values():
            if port.required and (node_id, port.name) not in incoming:
                message = f"required input {node_id}.{port.name} ({port.type}) is not connected"
                issues.append(Issue("missing_input", message, node=node_id, port=port.name))


def _check_shape(
    resolved: dict[str, ResolvedNode], graph: dict[str, set[str]], issues: list[Issue]
) -> None:
    cycle = _find_cycle(graph)
    if cycle:
        path = " -> ".join([*cycle, cycle[0]])
        message = f"the flow has a cycle: {path}; flows must be acyclic"
        issues.append(Issue("cycle", message, node=cycle[0]))
    outputs = {n.spec.id for n in resolved.values() if n.spec.type == "output"}
    names: dict[str, str] = {}
    for node_id in sorted(outputs):
        name = resolved[node_id].spec.config.get("name", "")
        if name in names:
            message = (
                f"output nodes '{names[name]}' and '{node_id}' both publish '{name}': "
                "give each output a name of its own"
            )
            issues.append(Issue("duplicate_output", message, node=node_id))
        names.setdefault(name, node_id)
    if resolved and not outputs and not any(i.code == "unknown_node_type" for i in issues):
        message = "the flow has no output node, so a run would return nothing: add an 'output' node"
        issues.append(Issue("no_output", message))
    elif not cycle:
        issues.extend(_dead_ends(graph, outputs))


def _unknown_port(node: ResolvedNode, port: str, side: str) -> Issue:
    ports = node.outputs if side == "output" else node.inputs
    names = ", ".join(ports) or "none"
    return Issue(
        "unknown_port",
        f"node '{node.spec.id}' ({node.spec.type}) has no {side} port '{port}'; "
        f"its {side}s are: {names}",
        node=node.spec.id,
        port=port,
    )


def _find_cycle(graph: dict[str, set[str]]) -> list[str]:
    white, grey, black = 0, 1, 2
    color = dict.fromkeys(graph, white)
    stack: list[str] = []

    def visit(node: str) -> list[str]:
        color[node] = grey
        stack.append(node)
        for nxt in sorted(graph[node]):
            if color[nxt] == grey:
                return stack[stack.index(nxt) :]
            if color[nxt] == white and (found := visit(nxt)):
                return found
        stack.pop()
        color[node] = black
        return []

    for node in sorted(graph):
        if color[node] == white and (found := visit(node)):
            return found
    return []


def _dead_ends(graph: dict[str, set[str]], outputs: set[str]) -> list[Issue]:
    reaches: set[str] = set(outputs)
    reverse: dict[str, set[str]] = defaultdict(set)
    for src, targets in graph.items():
        for dst in targets:
            reverse[dst].add(src)
    frontier = list(outputs)
    while frontier:
        node = frontier.pop()
        for prev in reverse[node]:
            if prev not in reaches:
                reaches.add(prev)
                frontier.append(prev)
    return [
        Issue(
            "dead_end",
            f"node '{node}' does not lead to any output; its results are unused",
            node=node,
            severity="warning",
        )
        for node in sorted(graph)
        if node not in reaches
    ]
