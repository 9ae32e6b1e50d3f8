"""The pure node library, run through the engine as a user would build it."""

import asyncio
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from engine import (
    DuplicateNodeType,
    FlowInvalid,
    MemoryEventSink,
    NodeType,
    RunResult,
    catalogue,
    run_flow,
)

ROOT = Path(__file__).resolve().parents[2]


def run(
    nodes: list[dict[str, Any]],
    edges: list[tuple[str, str]],
    inputs: dict[str, Any],
    **settings: Any,
) -> RunResult:
    doc = {
        "schema": 1,
        "nodes": nodes,
        "edges": [{"from": a, "to": b} for a, b in edges],
        "settings": settings,
    }
    return asyncio.run(run_flow(doc, inputs))


def inp(*fields: tuple[str, str]) -> dict[str, Any]:
    return {
        "id": "inp",
        "type": "input",
        "config": {"fields": [{"name": n, "type": t} for n, t in fields]},
    }


def out(name: str, node_id: str = "out") -> dict[str, Any]:
    return {"id": node_id, "type": "output", "config": {"name": name}}


def test_template_renders_inputs_in_a_sandbox() -> None:
    result = run(
        [
            inp(("name", "text")),
            {"id": "t", "type": "template", "config": {"template": "Hi {{ name | upper }}"}},
            out("text"),
        ],
        [("inp.name", "t.name"), ("t.text", "out.value")],
        {"name": "ada"},
    )
    assert result.outputs == {"text": "Hi ADA"}

    unsafe = run(
        [
            inp(("name", "text")),
            {
                "id": "t",
                "type": "template",
                "config": {"template": "{{ name.__class__.__mro__[1].__subclasses__() }}"},
            },
            out("text"),
        ],
        [("inp.name", "t.name"), ("t.text", "out.value")],
        {"name": "x"},
    )
    assert unsafe.status == "failed"
    assert "t: template error" in (unsafe.error or "")
    assert "unsafe" in (unsafe.error or "")


def test_transform_with_jmespath() -> None:
    result = run(
        [
            inp(("orders", "list")),
            {"id": "t", "type": "transform", "config": {"expression": "[?total > `10`].id"}},
            out("big"),
        ],
        [("inp.orders", "t.data"), ("t.result", "out.value")],
        {"orders": [{"id": "a", "total": 5}, {"id": "b", "total": 50}]},
    )
    assert result.outputs == {"big": ["b"]}


def test_condition_takes_one_branch_and_skips_the_other() -> None:
    nodes = [
        inp(("score", "number")),
        {"id": "if", "type": "condition", "config": {"expression": "@ > `5`"}},
        {"id": "hi", "type": "template", "config": {"template": "high {{ v }}"}},
        {"id": "lo", "type": "template", "config": {"template": "low {{ v }}"}},
        {"id": "m", "type": "merge", "config": {"mode": "first"}},
        out("verdict"),
    ]
    edges = [
        ("inp.score", "if.value"),
        ("if.true", "hi.v"),
        ("if.false", "lo.v"),
        ("hi.text", "m.in_1"),
        ("lo.text", "m.in_2"),
        ("m.result", "out.value"),
    ]
    high = run(nodes, edges, {"score": 9})
    assert high.outputs == {"verdict": "high 9"}
    assert high.nodes["lo"].status == "skipped"
    assert run(nodes, edges, {"score": 1}).outputs == {"verdict": "low 1"}


def test_switch_routes_by_key_with_default() -> None:
    nodes = [
        inp(("ticket", "json")),
        {"id": "sw", "type": "switch", "config": {"expression": "kind", "cases": ["bug", "idea"]}},
        {"id": "b", "type": "constant", "config": {"value": "to engineering"}},
        {"id": "bug", "type": "transform", "config": {"expression": "'engineering'"}},
        {"id": "idea", "type": "transform", "config": {"expression": "'product'"}},
        {"id": "other", "type": "transform", "config": {"expression": "'support'"}},
        {"id": "m", "type": "merge", "config": {"mode": "first", "inputs": 3}},
        out("team"),
    ]
    nodes = [n for n in nodes if n["id"] != "b"]
    edges = [
        ("inp.ticket", "sw.value"),
        ("sw.bug", "bug.data"),
        ("sw.idea", "idea.data"),
        ("sw.default", "other.data"),
        ("bug.result", "m.in_1"),
        ("idea.result", "m.in_2"),
        ("other.result", "m.in_3"),
        ("m.result", "out.value"),
    ]
    assert run(nodes, edges, {"ticket": {"kind": "bug"}}).outputs == {"team": "engineering"}
    assert run(nodes, edges, {"ticket": {"kind": "idea"}}).outputs == {"team": "product"}
    assert run(nodes, edges, {"ticket": {"kind": "??"}}).outputs == {"team": "support"}


def test_failing_branch_does_not_cancel_siblings_by_default() -> None:
    nodes = [
        inp(("x", "json")),
        {"id": "bad", "type": "transform", "config": {"expression": "abs(@)"}},
        {"id": "good", "type": "transform", "config": {"expression": "keys(@)"}},
        out("bad", "o1"),
        out("good", "o2"),
    ]
    edges = [
        ("inp.x", "bad.data"),
        ("inp.x", "good.data"),
        ("bad.result", "o1.value"),
        ("good.result", "o2.value"),
    ]
    sink = MemoryEventSink()
    doc = {"schema": 1, "nodes": nodes, "edges": [{"from": a, "to": b} for a, b in edges]}
    result = asyncio.run(run_flow(doc, {"x": {"k": 1}}, events=sink))
    assert result.status == "failed"
    assert result.outputs == {"good": ["k"]}  # the sibling finished
    assert result.nodes["bad"].status == "failed"
    assert "JMESPath expression 'abs(@)' failed" in (result.nodes["bad"].error or "")
    assert result.nodes["o1"].status == "skipped"
    types = [(e.type.value, e.node) for e in sink.events]
    assert types[0] == ("FLOW_STARTED", None)
    assert ("NODE_FAILED", "bad") in types
    assert types[-1] == ("FLOW_FAILED", None)
    assert sink.events[-1].payload["failed_nodes"] == ["bad"]


def test_run_inputs_are_checked_against_the_flow() -> None:
    nodes = [inp(("q", "text")), out("a")]
    with pytest.raises(FlowInvalid) as caught:
        run(nodes, [("inp.q", "out.value")], {"qq": 1})
    messages = [i.message for i in caught.value.issues]
    assert "input 'q' (text) is required" in messages
    assert "input 'qq' is not an input of this flow; its inputs are: q" in messages


def test_catalogue_lists_every_node_type_with_schema_and_ports() -> None:
    items = {item["type"]: item for item in catalogue()}
    assert {
        "input",
        "output",
        "constant",
        "template",
        "transform",
        "condition",
        "switch",
        "merge",
    } <= set(items)
    assert items["transform"]["effect"] == "pure"
    assert items["transform"]["inputs"][0] == {
        "name": "data",
        "type": "any",
        "required": True,
        "description": "",
    }
    assert items["template"]["dynamic_ports"] is True
    assert items["transform"]["dynamic_ports"] is False
    assert items["switch"]["config_schema"]["required"] == ["expression", "cases"]


def test_duplicate_node_type_names_fail_at_import() -> None:
    with pytest.raises(DuplicateNodeType, match="'template' is registered twice"):
        type("Imposter", (NodeType,), {"type_name": "template", "title": "x"})


def test_engine_imports_no_django() -> None:
    code = (
        "import sys, engine; bad = sorted(m for m in sys.modules if m.split('.')[0] in "
        "{'django', 'ninja', 'guardian', 'channels', 'tenants', 'fireflow'}); print(bad)"
    )
    out_ = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert out_.stdout.strip() == "[]"
    contract = subprocess.run(
        [str(Path(sys.executable).parent / "lint-imports")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert contract.returncode == 0, contract.stdout + contract.stderr


def test_merge_all_keeps_positions_when_a_branch_has_no_value() -> None:
    nodes = [
        inp(("x", "json")),
        {"id": "ok1", "type": "transform", "config": {"expression": "a"}},
        {"id": "bad", "type": "transform", "config": {"expression": "abs(@)"}},
        {"id": "ok2", "type": "transform", "config": {"expression": "b"}},
        {"id": "m", "type": "merge", "config": {"mode": "all", "inputs": 3}},
        out("parts"),
    ]
    edges = [
        ("inp.x", "ok1.data"),
        ("inp.x", "bad.data"),
        ("inp.x", "ok2.data"),
        ("ok1.result", "m.in_1"),
        ("bad.result", "m.in_2"),
        ("ok2.result", "m.in_3"),
        ("m.result", "out.value"),
    ]
    result = run(nodes, edges, {"x": {"a": 1, "b": 2}})
    assert result.outputs == {"parts": [1, None, 2]}
    assert result.status == "failed"  # the failed branch is still reported


def test_values_are_checked_against_the_input_port_type() -> None:
    nodes = [
        inp(("n", "number")),
        {"id": "wrap", "type": "transform", "config": {"expression": "{v: @}"}},
        {"id": "each", "type": "output", "config": {"name": "count", "type": "list"}},
        {"id": "txt", "type": "template", "config": {"template": "{{ n }}"}},
        out("text", "o2"),
    ]
    edges = [
        ("inp.n", "wrap.data"),
        ("wrap.result", "each.value"),
        ("inp.n", "txt.n"),
        ("txt.text", "o2.value"),
    ]
    result = run(nodes, edges, {"n": 3})
    assert result.nodes["each"].status == "failed"
    assert result.nodes["each"].error == "each.value expected list, got object (from wrap.result)"
    assert result.outputs == {"text": "3"}  # a number into text is fine

    with pytest.raises(FlowInvalid) as caught:
        run(nodes, edges, {"n": "three"})
    assert [i.message for i in caught.value.issues] == ["input 'n' expected number, got text"]


@pytest.mark.parametrize(
    ("template", "message"),
    [
        ("{{ 'x' * 200000000 }}", "repeating a sequence past"),
        ("{{ [1] * 10000000 }}", "repeating a sequence past"),
        ("{{ 9 ** 99999999 }}", "exponents above 1000"),
        ("{% for i in range(2000) %}{{ 'y' * 1000 }}{% endfor %}", "output exceeds"),
    ],
)
def test_templates_cannot_build_huge_values(template: str, message: str) -> None:
    started = time.monotonic()
    result = run(
        [{"id": "t", "type": "template", "config": {"template": template}}, out("text")],
        [("t.text", "out.value")],
        {},
    )
    assert result.status == "failed"
    assert message in (result.nodes["t"].error or "")
    assert time.monotonic() - started < 2  # refused, not computed
