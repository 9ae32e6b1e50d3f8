"""FireFlow's flow engine: flows as typed graphs, validated, planned and run.

This package imports no Django (an import-linter contract enforces it). Everything public
is listed in `__all__`; modules starting with `_` are private."""

from . import nodes as _nodes  # registers the built-in node library
from ._client import EngineClient
from ._document import SCHEMA_VERSION, EdgeSpec, FlowDocument, NodeSpec, PortRef
from ._durable import (
    APPLICATION_VERSION,
    MAX_RECOVERY_ATTEMPTS,
    RUN_QUEUE,
    RUN_WORKFLOW,
    enqueue_job_sql,
    enqueue_run_sql,
    fork_step,
    plan_flow,
    step_order,
)
from ._events import EVENT_PAYLOADS, Event, EventSink, EventType, MemoryEventSink
from ._human import (
    HUMAN_CHANNEL,
    AnswerResult,
    answer_request,
    reopen_requests,
    withdraw_requests,
)
from ._net import DEFAULT_ALLOWABLE, BadAllowEntry, allow_list, check_allow_entry, guarded_fetch
from ._planner import Dag, Parallel, Plan, Series, Step, plan, plan_nodes, topological_order
from ._ports import PortType, accepted_sources, can_connect, compatibility_table
from ._registry import (
    BudgetPaused,
    CallBudget,
    DuplicateNodeType,
    Effect,
    HumanRequests,
    NodeContext,
    NodeError,
    NodeType,
    PolicySource,
    Port,
    SecretSource,
    SpendGate,
    StepPolicy,
    UsageLedger,
    catalogue,
    node_type,
    node_types,
)
from ._runtime import NodeOutcome, RunResult, check_run_inputs, run_flow
from ._store import (
    ENQUEUE_CHANNEL,
    NOTIFY_CHANNEL,
    SHELVED_EXECUTOR,
    PostgresEventStore,
    migrate,
    read_events,
)
from ._transit import RunKeyPair, TransitBinding, TransitError, open_for_run, seal_for_run
from ._validate import FlowInvalid, Issue, flow_ports, parse_flow, validate_flow
from ._worker import MAX_EXECUTOR_THREADS, WorkerConfig, recover_executor_runs, run_worker

del _nodes

__all__ = [
    "APPLICATION_VERSION",
    "DEFAULT_ALLOWABLE",
    "ENQUEUE_CHANNEL",
    "EVENT_PAYLOADS",
    "HUMAN_CHANNEL",
    "MAX_EXECUTOR_THREADS",
    "MAX_RECOVERY_ATTEMPTS",
    "NOTIFY_CHANNEL",
    "RUN_QUEUE",
    "RUN_WORKFLOW",
    "SCHEMA_VERSION",
    "SHELVED_EXECUTOR",
    "AnswerResult",
    "BadAllowEntry",
    "BudgetPaused",
    "CallBudget",
    "Dag",
    "DuplicateNodeType",
    "EdgeSpec",
    "Effect",
    "EngineClient",
    "Event",
    "EventSink",
    "EventType",
    "FlowDocument",
    "FlowInvalid",
    "HumanRequests",
    "Issue",
    "MemoryEventSink",
    "NodeContext",
    "NodeError",
    "NodeOutcome",
    "NodeSpec",
    "NodeType",
    "Parallel",
    "Plan",
    "PolicySource",
    "Port",
    "PortRef",
    "PortType",
    "PostgresEventStore",
    "RunKeyPair",
    "RunResult",
    "SecretSource",
    "Series",
    "SpendGate",
    "Step",
    "StepPolicy",
    "TransitBinding",
    "TransitError",
    "UsageLedger",
    "WorkerConfig",
    "accepted_sources",
    "allow_list",
    "answer_request",
    "can_connect",
    "catalogue",
    "check_allow_entry",
    "check_run_inputs",
    "compatibility_table",
    "enqueue_job_sql",
    "enqueue_run_sql",
    "flow_ports",
    "fork_step",
    "guarded_fetch",
    "migrate",
    "node_type",
    "node_types",
    "open_for_run",
    "parse_flow",
    "plan",
    "plan_flow",
    "plan_nodes",
    "read_events",
    "recover_executor_runs",
    "reopen_requests",
    "run_flow",
    "run_worker",
    "seal_for_run",
    "step_order",
    "topological_order",
    "validate_flow",
    "withdraw_requests",
]
