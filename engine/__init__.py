"""FireFlow's flow engine: flows as typed graphs, validated, planned and run.

This package imports no Django (an import-linter contract enforces it). Everything public
is listed in `__all__`; modules starting with `_` are private."""

from . import nodes as _nodes  # registers the built-in node library
from ._document import SCHEMA_VERSION, EdgeSpec, FlowDocument, NodeSpec, PortRef
from ._events import EVENT_PAYLOADS, Event, EventSink, EventType, MemoryEventSink
from ._planner import Dag, Parallel, Plan, Series, Step, plan, plan_nodes, topological_order
from ._ports import PortType, accepted_sources, can_connect, compatibility_table
from ._registry import (
    DuplicateNodeType,
    Effect,
    NodeContext,
    NodeError,
    NodeType,
    Port,
    catalogue,
    node_type,
    node_types,
)
from ._runtime import NodeOutcome, RunResult, check_run_inputs, run_flow
from ._validate import FlowInvalid, Issue, parse_flow, validate_flow

del _nodes

__all__ = [
    "EVENT_PAYLOADS",
    "SCHEMA_VERSION",
    "Dag",
    "DuplicateNodeType",
    "EdgeSpec",
    "Effect",
    "Event",
    "EventSink",
    "EventType",
    "FlowDocument",
    "FlowInvalid",
    "Issue",
    "MemoryEventSink",
    "NodeContext",
    "NodeError",
    "NodeOutcome",
    "NodeSpec",
    "NodeType",
    "Parallel",
    "Plan",
    "Port",
    "PortRef",
    "PortType",
    "RunResult",
    "Series",
    "Step",
    "accepted_sources",
    "can_connect",
    "catalogue",
    "check_run_inputs",
    "compatibility_table",
    "node_type",
    "node_types",
    "parse_flow",
    "plan",
    "plan_nodes",
    "run_flow",
    "topological_order",
    "validate_flow",
]
