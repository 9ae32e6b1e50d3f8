"""The planner: a flow's DAG as a series-parallel tree, and a deterministic schedule.

`plan(graph)` reduces the DAG (each node an edge between virtual terminals) by series and
parallel reductions. A series-parallel DAG reduces to one tree; one that is not (an "N"
shape) is planned as `Dag`: it still runs correctly and as parallel as its edges allow,
since the runtime starts every node once all its inputs are ready. Ties are broken by node
id everywhere, so the same flow always gets the same plan and the same order."""

from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass
from heapq import heapify, heappop, heappush
from typing import Any


@dataclass(frozen=True)
class Step:
    node: str

    def to_json(self) -> Any:
        return self.node


@dataclass(frozen=True)
class Series:
    parts: tuple["Plan", ...]

    def to_json(self) -> Any:
        return {"series": [p.to_json() for p in self.parts]}


@dataclass(frozen=True)
class Parallel:
    branches: tuple["Plan", ...]

    def to_json(self) -> Any:
        return {"parallel": [b.to_json() for b in self.branches]}


@dataclass(frozen=True)
class Dag:
    """Not series-parallel: nodes run as soon as their inputs are ready."""

    nodes: tuple[str, ...]

    def to_json(self) -> Any:
        return {"dag": list(self.nodes)}


type Plan = Step | Series | Parallel | Dag
_EMPTY = Series(())


def topological_order(graph: Mapping[str, set[str]]) -> list[str]:
    """Kahn's algorithm with the smallest ready id first: deterministic."""
    indegree = dict.fromkeys(graph, 0)
    for targets in graph.values():
        for target in targets:
            indegree[target] += 1
    ready = [node for node, degree in indegree.items() if degree == 0]
    heapify(ready)
    order = []
    while ready:
        node = heappop(ready)
        order.append(node)
        for target in graph[node]:
            indegree[target] -= 1
            if indegree[target] == 0:
                heappush(ready, target)
    if len(order) != len(graph):
        raise ValueError("graph has a cycle")
    return order


def _series(*parts: Plan) -> Plan:
    flat: list[Plan] = []
    for part in parts:
        if isinstance(part, Series):
            flat.extend(part.parts)
        else:
            flat.append(part)
    return flat[0] if len(flat) == 1 else Series(tuple(flat))


def _parallel(a: Plan, b: Plan) -> Plan:
    # An empty branch (a direct edge beside a longer path) adds nothing but ordering,
    # which the longer path already gives.
    if a == _EMPTY:
        return b
    if b == _EMPTY:
        return a
    branches: list[Plan] = []
    for part in (a, b):
        if isinstance(part, Parallel):
            branches.extend(part.branches)
        else:
            branches.append(part)
    return Parallel(tuple(sorted(branches, key=_sort_key)))


def _sort_key(plan: Plan) -> str:
    if isinstance(plan, Step):
        return plan.node
    if isinstance(plan, Series):
        return _sort_key(plan.parts[0]) if plan.parts else ""
    if isinstance(plan, Parallel):
        return _sort_key(plan.branches[0])
    return plan.nodes[0] if plan.nodes else ""


class _Multigraph:
    """Edges between terminals, each labelled with the plan of what lies along it."""

    def __init__(self) -> None:
        self.edges: dict[int, tuple[Any, Any, Plan]] = {}
        self.out_edges: dict[Any, set[int]] = defaultdict(set)
        self.in_edges: dict[Any, set[int]] = defaultdict(set)
        self._counter = 0

    def add(self, u: Any, w: Any, label: Plan) -> None:
        self.edges[self._counter] = (u, w, label)
        self.out_edges[u].add(self._counter)
        self.in_edges[w].add(self._counter)
        self._counter += 1

    def remove(self, edge_id: int) -> tuple[Any, Any, Plan]:
        u, w, label = self.edges.pop(edge_id)
        self.out_edges[u].discard(edge_id)
        self.in_edges[w].discard(edge_id)
        return u, w, label

    def reduce_parallel(self) -> bool:
        """Merge edges that share both ends."""
        by_ends: dict[tuple[Any, Any], list[int]] = defaultdict(list)
        for edge_id in sorted(self.edges):
            u, w, _ = self.edges[edge_id]
            by_ends[(u, w)].append(edge_id)
        changed = False
        for (u, w), ids in by_ends.items():
            if len(ids) > 1:
                label = self.remove(ids[0])[2]
                for edge_id in ids[1:]:
                    label = _parallel(label, self.remove(edge_id)[2])
                self.add(u, w, label)
                changed = True
        return changed

    def reduce_series(self, terminals: set[Any]) -> bool:
        """Splice out inner vertices with exactly one edge in and one out."""
        vertices = {v for u, w, _ in self.edges.values() for v in (u, w)} - terminals
        changed = False
        for vertex in sorted(vertices, key=repr):
            ins, outs = self.in_edges[vertex], self.out_edges[vertex]
            if len(ins) == 1 and len(outs) == 1 and ins != outs:
                u, _, a = self.remove(next(iter(ins)))
                _, w, b = self.remove(next(iter(outs)))
                self.add(u, w, _series(a, b))
                changed = True
        return changed


def plan(graph: Mapping[str, set[str]]) -> Plan:
    """The series-parallel tree of a DAG given as node -> successors."""
    if not graph:
        return _EMPTY
    order = topological_order(graph)
    source, sink = ("__source__",), ("__sink__",)
    # Each node v becomes the edge (v, in) -> (v, out) labelled Step(v).
    multigraph = _Multigraph()
    has_pred = {t for targets in graph.values() for t in targets}
    for node in order:
        multigraph.add((node, "in"), (node, "out"), Step(node))
        if node not in has_pred:
            multigraph.add(source, (node, "in"), _EMPTY)
        if not graph[node]:
            multigraph.add((node, "out"), sink, _EMPTY)
        for target in sorted(graph[node]):
            multigraph.add((node, "out"), (target, "in"), _EMPTY)
    while multigraph.reduce_parallel() | multigraph.reduce_series({source, sink}):
        pass
    if len(multigraph.edges) == 1:
        ((u, w, label),) = multigraph.edges.values()
        if u == source and w == sink:
            return label
    return Dag(tuple(order))


def plan_nodes(tree: Plan) -> list[str]:
    """The nodes of a plan in its (deterministic) order."""
    if isinstance(tree, Step):
        return [tree.node]
    if isinstance(tree, Dag):
        return list(tree.nodes)
    children = tree.parts if isinstance(tree, Series) else tree.branches
    return [node for child in children for node in plan_nodes(child)]
