"""Every validation error kind, with the message a user sees."""

import json
from typing import Any

import pytest

from engine import FlowInvalid, parse_flow, validate_flow
from engine._validate import parse_known_flow, resolve_nodes


def flow(nodes: list[dict[str, Any]], edges: list[tuple[str, str]]) -> dict[str, Any]:
    return {"schema": 1, "nodes": nodes, "edges": [{"from": a, "to": b} for a, b in edges]}


INPUT = {"id": "inp", "type": "input", "config": {"fields": [{"name": "q", "type": "text"}]}}
OUTPUT = {"id": "out", "type": "output", "config": {"name": "answer"}}


def errors(doc: dict[str, Any]) -> list[tuple[str, str | None, str | None, str]]:
    return [
        (i.code, i.node, i.port, i.message) for i in validate_flow(doc) if i.severity == "error"
    ]


def test_a_good_flow_has_no_issues() -> None:
    assert validate_flow(flow([INPUT, OUTPUT], [("inp.q", "out.value")])) == []


def test_unknown_type_suggests_the_closest() -> None:
    doc = flow(
        [INPUT, {"id": "t", "type": "templat", "config": {}}, OUTPUT], [("inp.q", "out.value")]
    )
    [(code, node, _, message)] = errors(doc)
    assert (code, node) == ("unknown_node_type", "t")
    assert "unknown type 'templat'" in message
    assert "Did you mean 'template'?" in message


def test_bad_config_names_node_and_field() -> None:
    doc = flow(
        [INPUT, {"id": "t", "type": "transform", "config": {"expression": 5}}, OUTPUT],
        [("inp.q", "out.value")],
    )
    [(code, node, _, message)] = errors(doc)
    assert (code, node) == ("invalid_config", "t")
    assert "config expression" in message
    assert "is not of type 'string'" in message


def test_missing_required_input_names_port() -> None:
    doc = flow([INPUT, OUTPUT], [])
    [(code, node, port, message)] = errors(doc)
    assert (code, node, port) == ("missing_input", "out", "value")
    assert message == "required input out.value (any) is not connected"


def test_incompatible_connection_says_what_is_accepted() -> None:
    num = {"id": "n", "type": "constant", "config": {"value": {"a": 1}, "type": "json"}}
    typed_out = {"id": "out", "type": "output", "config": {"name": "x", "type": "number"}}
    doc = flow([num, typed_out], [("n.value", "out.value")])
    codes = errors(doc)
    assert codes[0][:3] == ("incompatible_ports", "out", "value")
    assert "n.value (json) cannot feed out.value (number)" in codes[0][3]
    assert "accepts number, any" in codes[0][3]


def test_secret_refs_only_flow_into_secret_inputs() -> None:
    secret = {"id": "inp", "type": "input", "config": {"fields": [{"name": "key", "type": "text"}]}}
    doc = flow(
        [secret, {"id": "t", "type": "template", "config": {"template": "{{ k }}"}}, OUTPUT],
        [("inp.key", "t.k"), ("t.text", "out.value")],
    )
    assert errors(doc) == []


def test_cycle_names_its_path() -> None:
    doc = flow(
        [
            INPUT,
            {"id": "a", "type": "transform", "config": {"expression": "@"}},
            {"id": "b", "type": "transform", "config": {"expression": "@"}},
            {"id": "m", "type": "merge", "config": {}},
            OUTPUT,
        ],
        [
            ("inp.q", "m.in_1"),
            ("m.result", "a.data"),
            ("a.result", "b.data"),
            ("b.result", "m.in_2"),
            ("b.result", "out.value"),
        ],
    )
    cycle = [e for e in errors(doc) if e[0] == "cycle"]
    assert cycle
    assert "a -> b -> m -> a" in cycle[0][3]


def test_dangling_edge_and_unknown_port() -> None:
    doc = flow([INPUT, OUTPUT], [("inp.q", "out.value"), ("ghost.x", "out.value")])
    assert ("dangling_edge", "ghost") in [(c, n) for c, n, _, _ in errors(doc)]
    doc = flow([INPUT, OUTPUT], [("inp.nope", "out.value")])
    [(code, node, port, message)] = [e for e in errors(doc) if e[0] == "unknown_port"]
    assert (code, node, port) == ("unknown_port", "inp", "nope")
    assert "its outputs are: q" in message


def test_two_edges_into_one_input() -> None:
    doc = flow(
        [INPUT, {"id": "c", "type": "constant", "config": {"value": "x"}}, OUTPUT],
        [("inp.q", "out.value"), ("c.value", "out.value")],
    )
    [(code, _, port, message)] = errors(doc)
    assert code == "input_already_connected"
    assert port == "value"
    assert "join them with a merge node" in message


def test_no_output_and_dead_end_warning() -> None:
    doc = flow(
        [INPUT, {"id": "t", "type": "transform", "config": {"expression": "@"}}],
        [("inp.q", "t.data")],
    )
    assert [c for c, *_ in errors(doc)] == ["no_output"]
    doc = flow(
        [INPUT, {"id": "t", "type": "transform", "config": {"expression": "@"}}, OUTPUT],
        [("inp.q", "t.data"), ("inp.q", "out.value")],
    )
    [warning] = validate_flow(doc)
    assert (warning.code, warning.node, warning.severity) == ("dead_end", "t", "warning")


def test_duplicate_ids_bad_schema_and_bad_document() -> None:
    doc = flow([INPUT, dict(INPUT), OUTPUT], [("inp.q", "out.value")])
    assert ("duplicate_node", "inp") in [(c, n) for c, n, _, _ in errors(doc)]
    assert [i.code for i in validate_flow({"schema": 99, "nodes": []})] == ["unsupported_schema"]
    bad = validate_flow({"schema": 1, "nodes": [{"id": "1 bad", "type": "input"}]})
    assert bad[0].code == "invalid_document"
    assert "nodes.0.id" in bad[0].message


def test_parse_flow_raises_with_every_error() -> None:
    with pytest.raises(FlowInvalid) as caught:
        parse_flow(flow([{"id": "x", "type": "nope"}, OUTPUT], []))
    assert {i.code for i in caught.value.issues} == {"unknown_node_type", "missing_input"}


def test_two_outputs_with_one_name() -> None:
    doc = flow(
        [INPUT, OUTPUT, {**OUTPUT, "id": "out2"}], [("inp.q", "out.value"), ("inp.q", "out2.value")]
    )
    [(code, node, _, message)] = errors(doc)
    assert (code, node) == ("duplicate_output", "out2")
    assert "both publish 'answer'" in message


def test_a_worker_validates_a_document_once_and_never_keeps_a_bad_one() -> None:
    good = flow([INPUT, OUTPUT], [("inp.q", "out.value")])
    first = parse_known_flow(good)
    # The same content again (as a worker reads it again from the next run's inputs) is the
    # document already validated, with its nodes resolved.
    again = parse_known_flow(json.loads(json.dumps(good)))
    assert again is first
    assert set(resolve_nodes(again)) == {"inp", "out"}
    # Other content is validated on its own; a bad document fails every time.
    other = flow([INPUT, {**OUTPUT, "config": {"name": "other"}}], [("inp.q", "out.value")])
    assert parse_known_flow(other) is not first
    bad = flow([INPUT, {**OUTPUT, "type": "outptu"}], [("inp.q", "out.value")])
    for _ in range(2):
        with pytest.raises(FlowInvalid, match="unknown type 'outptu'"):
            parse_known_flow(bad)
