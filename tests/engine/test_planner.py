"""The planner: series-parallel trees, deterministic order, any DAG runs correctly."""

import asyncio
import time
from typing import Any, ClassVar

from hypothesis import given, settings
from hypothesis import strategies as st

from engine import (
    Dag,
    NodeContext,
    NodeType,
    Parallel,
    Port,
    PortType,
    Series,
    Step,
    plan,
    plan_nodes,
    run_flow,
    topological_order,
)


def test_diamond_is_series_of_parallel() -> None:
    tree = plan({"a": {"b", "c"}, "b": {"d"}, "c": {"d"}, "d": set()})
    assert tree == Series((Step("a"), Parallel((Step("b"), Step("c"))), Step("d")))


def test_independent_chains_are_parallel() -> None:
    tree = plan({"a": {"b"}, "b": set(), "x": {"y"}, "y": set()})
    assert tree == Parallel((Series((Step("a"), Step("b"))), Series((Step("x"), Step("y")))))


def test_shortcut_edge_keeps_series() -> None:
    assert plan({"a": {"b", "c"}, "b": {"c"}, "c": set()}) == Series(
        (Step("a"), Step("b"), Step("c"))
    )


def test_n_shape_is_not_series_parallel() -> None:
    tree = plan({"a": {"c", "d"}, "b": {"d"}, "c": set(), "d": set()})
    assert isinstance(tree, Dag)
    assert tree.nodes == ("a", "b", "c", "d")


@st.composite
def dags(draw: Any) -> dict[str, set[str]]:
    size = draw(st.integers(min_value=1, max_value=12))
    names = [f"n{i:02d}" for i in range(size)]
    graph: dict[str, set[str]] = {name: set() for name in names}
    for i in range(size):
        for j in range(i + 1, size):
            if draw(st.booleans()) and draw(st.booleans()):
                graph[names[i]].add(names[j])
    return graph


@settings(max_examples=200, deadline=None)
@given(dags())
def test_plans_respect_every_edge_and_are_deterministic(graph: dict[str, set[str]]) -> None:
    order = topological_order(graph)
    position = {node: i for i, node in enumerate(order)}
    for src, targets in graph.items():
        for dst in targets:
            assert position[src] < position[dst]
    tree = plan(graph)
    assert sorted(plan_nodes(tree)) == sorted(graph)
    assert plan(graph) == tree  # same graph, same plan
    assert topological_order({k: set(v) for k, v in reversed(graph.items())}) == order


@settings(max_examples=25, deadline=None)
@given(dags())
def test_random_dags_run_every_node_after_its_inputs(graph: dict[str, set[str]]) -> None:
    """Each node is a merge of its predecessors' values: the run order must respect edges,
    and independent nodes must overlap in time (they run concurrently)."""
    nodes: list[dict[str, Any]] = []
    edges: list[dict[str, str]] = []
    preds: dict[str, list[str]] = {n: [] for n in graph}
    for src, targets in graph.items():
        for dst in sorted(targets):
            preds[dst].append(src)
    for name in graph:
        if preds[name]:
            nodes.append(
                {
                    "id": name,
                    "type": "merge",
                    "config": {"mode": "all", "inputs": max(2, len(preds[name]))},
                }
            )
            edges += [
                {"from": f"{p}.result" if preds[p] else f"{p}.value", "to": f"{name}.in_{i}"}
                for i, p in enumerate(preds[name], 1)
            ]
        else:
            nodes.append({"id": name, "type": "constant", "config": {"value": name}})
    sinks = [n for n in graph if not graph[n]]
    for i, sink in enumerate(sinks):
        nodes.append({"id": f"out{i}", "type": "output", "config": {"name": sink}})
        edges.append(
            {"from": f"{sink}.result" if preds[sink] else f"{sink}.value", "to": f"out{i}.value"}
        )
    result = asyncio.run(run_flow({"schema": 1, "nodes": nodes, "edges": edges}, {}))
    assert result.status == "completed"
    assert set(result.outputs) == set(sinks)
    for sink in sinks:
        assert _leaves(result.outputs[sink]) == _sources_of(sink, preds)


def _leaves(value: Any) -> set[str]:
    if isinstance(value, list):
        return set().union(*(_leaves(v) for v in value)) if value else set()
    return set() if value is None else {value}  # None: an unconnected merge input


def _sources_of(node: str, preds: dict[str, list[str]]) -> set[str]:
    if not preds[node]:
        return {node}
    return set().union(*(_sources_of(p, preds) for p in preds[node]))


class Sleep(NodeType):
    """Test node: waits, then passes its value on."""

    type_name = "test_sleep"
    title = "Sleep (test)"
    config_schema: ClassVar[dict[str, Any]] = {"type": "object"}
    INPUTS = (Port("value", PortType.ANY),)
    OUTPUTS = (Port("value", PortType.ANY),)

    async def execute(self, config: Any, inputs: Any, ctx: NodeContext) -> dict[str, Any]:
        await asyncio.sleep(config.get("seconds", 0.3))
        return {"value": inputs["value"]}


def _fail_fast_flow(fail_fast: bool) -> dict[str, Any]:
    return {
        "schema": 1,
        "settings": {"fail_fast": fail_fast},
        "nodes": [
            {"id": "c", "type": "constant", "config": {"value": 1}},
            {"id": "slow", "type": "test_sleep", "config": {"seconds": 0.5}},
            {"id": "then", "type": "transform", "config": {"expression": "@"}},
            {"id": "pause", "type": "test_sleep", "config": {"seconds": 0.1}},
            {"id": "bad", "type": "transform", "config": {"expression": "abs('x')"}},
            {"id": "m", "type": "merge", "config": {}},
            {"id": "out", "type": "output", "config": {"name": "r"}},
        ],
        "edges": [
            {"from": "c.value", "to": "slow.value"},
            {"from": "slow.value", "to": "then.data"},
            {"from": "c.value", "to": "pause.value"},
            {"from": "pause.value", "to": "bad.data"},
            {"from": "then.result", "to": "m.in_1"},
            {"from": "bad.result", "to": "m.in_2"},
            {"from": "m.result", "to": "out.value"},
        ],
    }


def test_fail_fast_starts_nothing_new_after_a_failure() -> None:
    """A running sibling finishes (cutting a step off mid-call could repeat its effect);
    nodes that had not started are skipped, with the reason."""
    result = asyncio.run(run_flow(_fail_fast_flow(True), {}))
    assert result.status == "failed"
    assert result.nodes["bad"].status == "failed"
    assert result.nodes["slow"].status == "completed"
    assert result.nodes["then"].status == "skipped"
    assert "fail_fast" in (result.nodes["then"].error or "")
    settled = asyncio.run(run_flow(_fail_fast_flow(False), {}))
    assert settled.nodes["then"].status == "completed"  # allSettled: the branch goes on
    assert settled.outputs == {"r": [1, None]}


def test_independent_branches_run_concurrently() -> None:
    """Two slow branches take about the time of one."""
    doc = {
        "schema": 1,
        "nodes": [
            {"id": "c", "type": "constant", "config": {"value": 1}},
            {"id": "s1", "type": "test_sleep"},
            {"id": "s2", "type": "test_sleep"},
            {"id": "m", "type": "merge", "config": {}},
            {"id": "out", "type": "output", "config": {"name": "r"}},
        ],
        "edges": [
            {"from": "c.value", "to": "s1.value"},
            {"from": "c.value", "to": "s2.value"},
            {"from": "s1.value", "to": "m.in_1"},
            {"from": "s2.value", "to": "m.in_2"},
            {"from": "m.result", "to": "out.value"},
        ],
    }
    started = time.monotonic()
    result = asyncio.run(run_flow(doc, {}))
    elapsed = time.monotonic() - started
    assert result.outputs == {"r": [1, 1]}
    assert elapsed < 0.55, f"branches ran one after the other ({elapsed:.2f}s)"
