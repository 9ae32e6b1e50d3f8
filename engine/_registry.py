"""Node types: one base class, registered by name. Duplicate names fail at import."""

from collections.abc import Awaitable, Callable, Mapping
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

from ._ports import PortType

if TYPE_CHECKING:
    from ._streams import NodeStreams
    from ._transit import TransitBinding


class Effect(StrEnum):
    """What running a node does to the world; decides how it is checkpointed.

    pure: deterministic, no I/O (recomputed on replay, no checkpoint of its own);
    read: reads outside state; write: changes our data; external: talks to the world."""

    PURE = "pure"
    READ = "read"
    WRITE = "write"
    EXTERNAL = "external"


@dataclass(frozen=True)
class Port:
    name: str
    type: PortType
    required: bool = True
    description: str = ""
    # An output that carries the same final value as another output of the node (a stream
    # and its text): filled in by the runtime, so the value is checkpointed only once.
    mirrors: str = ""

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "type": self.type.value,
            "required": self.required,
            "description": self.description,
        }


def with_mirrors(ports: Mapping[str, Port], outputs: Mapping[str, Any]) -> dict[str, Any]:
    """`outputs` with every mirroring output filled in from the output it mirrors."""
    full = dict(outputs)
    for name, port in ports.items():
        if port.mirrors and name not in full and port.mirrors in full:
            full[name] = full[port.mirrors]
    return full


@dataclass(frozen=True)
class NodeContext:
    """What a node may know about where it runs (ids only: nothing secret).

    `children` starts and awaits child runs (ExecuteFlow, Map); `checkpoint` runs a
    function as the node's own durable step (nodes that run in workflow code, like Delay).
    Both are provided by the runtime that executes the node."""

    run_id: str
    node_id: str
    extra: Mapping[str, Any] = field(default_factory=dict)
    children: "ChildRuns | None" = None
    checkpoint: Callable[..., Awaitable[Any]] | None = None
    data: "WorkspaceData | None" = None
    # Emit an execution event from inside the node (`STREAM_CHUNK`, `LLM_USAGE`, ...).
    emit: Callable[[str, dict[str, Any]], Awaitable[None]] | None = None
    # Write this node's STREAM outputs while it runs; read the streams on its inputs.
    streams: "NodeStreams | None" = None
    # Secrets by name, opened inside the step that uses them (see SecretSource).
    secrets: "NodeSecrets | None" = None
    # Human-in-the-loop: this node's request to a person, and the wait for the answer.
    human: "HumanRequests | None" = None
    # Budgets and kill switches: every LLM call is held against them before it is made.
    budget: "CallBudget | None" = None


class WorkspaceData(Protocol):
    """Port: the run's workspace data store (collections of JSON values by key)."""

    async def write(self, operation: str, collection: str, key: str, value: Any) -> dict[str, Any]:
        """Apply a write exactly once per node of a run; returns the stored value."""
        ...

    async def read(self, collection: str, key: str | None, limit: int) -> list[dict[str, Any]]:
        """One record by key, or the newest `limit` records of the collection."""
        ...


class HumanRequests(Protocol):
    """A step's request to a person (`NodeContext.human`; engine/_human.py): created once
    per (run, node), answered through the platform, waited for durably."""

    async def open(
        self, request: Mapping[str, Any], timeout_seconds: float | None
    ) -> dict[str, Any]:
        """Create the request (once: a step that runs again finds it, deadline unchanged);
        returns {"request", "created_at", "deadline"} as stored."""
        ...

    def keyed(self, key: str) -> "HumanRequests":
        """Another request of this step, under its own key (stable across a re-executed
        step): for a node that asks more than once, as the agent does per tool call."""
        ...

    async def wait(
        self,
        on_escalated: Callable[[dict[str, Any]], Awaitable[None]] | None = None,
        *,
        shelvable: bool = False,
    ) -> dict[str, Any]:
        """Wait, holding no thread or connection, for the answer or the deadline; returns
        {"outcome": approved|rejected|timed_out, "by", "comment", "at", "escalated"}. A
        request that says `escalate` passes, at its deadline, to the escalation's approvers
        with a deadline further on (`on_escalated(request)` is told, with the new deadline).
        `shelvable`: the step does nothing before its wait that it may not do again, so a long
        wait may end the run's execution and run the step again when answered
        (engine/_shelf.py)."""
        ...


@dataclass(frozen=True)
class StepPolicy:
    """The workspace's rules for one node as it is about to run."""

    http_allow: list[str]  # the HTTP node's allow list
    refusal: str | None = None  # why the node rules refuse the node; None: it may run


class PolicySource(Protocol):
    """Port: the platform's current rules for a workspace, read when a node runs (not when
    the run was queued), so a rule tightened since applies to runs in flight and to forks."""

    async def for_step(
        self,
        workspace_id: str,
        *,
        run_id: str,
        node_id: str,
        node_type: str,
        config: Mapping[str, Any],
        meta: Mapping[str, Any],
    ) -> StepPolicy:
        """The allow list, and whether the node rules refuse this node in this run (its
        flow owner and caller are in `meta`): read together, once per step."""
        ...


class UsageLedger(Protocol):
    """Port: where every LLM call's usage is recorded, once per (run, node, call index)
    however often the node's step re-executes."""

    async def record(
        self,
        run_id: str,
        node_id: str,
        call_index: int,
        meta: Mapping[str, Any],
        usage: Mapping[str, Any],
    ) -> None:
        """Record one call (`usage` is an LLM_USAGE payload); a second record of the same
        (run, node, call index) changes nothing. Settles the call's hold (SpendGate) with
        its actual cost, in the same transaction."""
        ...


class SpendGate(Protocol):
    """Port: budgets and kill switches, asked before every LLM call (DESIGN: the budget
    gate). A call is held against every budget that covers it, at its maximum cost, before
    it is made; its usage record settles the hold with the actual cost."""

    async def reserve(
        self,
        run_id: str,
        node_id: str,
        call_index: int,
        meta: Mapping[str, Any],
        *,
        provider: str,
        model: str,
        max_cost_micros: int,
        approved: bool = False,
    ) -> None:
        """Hold `max_cost_micros` against every budget covering the call, all or none,
        atomically; NodeError naming the budget (or kill switch) that refuses it, or
        BudgetPaused when the budget that refuses it pauses for approval (`approved`: a
        person approved spend past those). Holding the same (run, node, call index) again,
        as a re-executed step does, replaces the hold."""
        ...

    async def release(self, run_id: str, node_id: str, call_index: int) -> None:
        """The call reported no usage (it failed before the model answered): free its hold."""
        ...


class CallBudget(Protocol):
    """A node's budget for its LLM calls (`NodeContext.budget`): hold each call first."""

    def hold(
        self, provider: str, model: str, max_cost_micros: int
    ) -> AbstractAsyncContextManager[None]:
        """Reserve the call's maximum cost (NodeError when refused); inside the block, make
        the call and emit its LLM_USAGE; leaving the block without usage frees the hold."""
        ...


# How a node names a secret, and whose it is: `name` is the flow owner's own secret (the
# owner wrote the version that names it), `workspace:name` the workspace's shared one. A
# caller's own secrets are never used for someone else's flow.
SECRET_REF_PATTERN = "^(workspace:)?[A-Za-z][A-Za-z0-9_.-]{0,99}$"


class NodeSecrets(Protocol):
    """A node's access to the secrets the rules allow its run (`NodeContext.secrets`)."""

    async def reveal(self, name: str) -> str:
        """The value of secret `name` (see SECRET_REF_PATTERN), or NodeError saying why it
        may not be used. Use it in the step and drop it: never return it, emit it or put it
        in an error."""
        ...


class SecretSource(Protocol):
    """Port: the platform's vault. Finds the secret `name` that the rules allow for this
    run (its flow owner, caller and workspace, in `meta`) and seals it to the step's
    ephemeral public key (engine transit); NodeError when there is none it may use."""

    async def seal_for_step(
        self,
        run_id: str,
        node_id: str,
        name: str,
        meta: Mapping[str, Any],
        public_key: bytes,
    ) -> tuple[bytes, "TransitBinding"]: ...


class ChildRuns(Protocol):
    """Port: child runs of a run, each a run of its own with a deterministic id."""

    async def run(
        self, child_id: str, document: dict[str, Any], inputs: dict[str, Any]
    ) -> dict[str, Any]:
        """Start the child (once, however often this is called) and return its result."""
        ...


class NodeError(Exception):
    """A node failed for a reason its user can act on (the message says which)."""


class BudgetPaused(NodeError):
    """A budget that pauses at its limit refused an LLM call: a person may approve more
    spend (the step asks through its human-in-the-loop request, and waits)."""


class NodeType:
    """Base class of every node type. Subclasses set the class attributes and `execute`;
    nodes whose ports depend on their config override `inputs` / `outputs`."""

    type_name: ClassVar[str]
    title: ClassVar[str]
    description: ClassVar[str] = ""
    category: ClassVar[str] = "general"
    effect: ClassVar[Effect] = Effect.PURE
    config_schema: ClassVar[dict[str, Any]] = {"type": "object", "additionalProperties": False}
    INPUTS: ClassVar[tuple[Port, ...]] = ()
    OUTPUTS: ClassVar[tuple[Port, ...]] = ()
    # True: `execute` runs in workflow code (not inside a step) and checkpoints through
    # ctx.checkpoint. For nodes that wait durably (Delay).
    runs_in_workflow: ClassVar[bool] = False

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "type_name" in cls.__dict__:
            streaming = [p.name for p in (*cls.INPUTS, *cls.OUTPUTS) if p.type is PortType.STREAM]
            if streaming and (cls.effect is Effect.PURE or cls.runs_in_workflow):
                raise TypeError(
                    f"node type '{cls.type_name}' has stream ports {streaming}: it must run as "
                    "a step (an effect other than pure), since streams are read and written "
                    "outside workflow code"
                )
            register(cls)

    @classmethod
    def inputs(cls, config: Mapping[str, Any]) -> tuple[Port, ...]:
        return cls.INPUTS

    @classmethod
    def outputs(cls, config: Mapping[str, Any]) -> tuple[Port, ...]:
        return cls.OUTPUTS

    @classmethod
    def check_config(cls, config: Mapping[str, Any]) -> list[str]:
        """What is wrong with a config that fits `config_schema`, beyond what a schema can
        say (e.g. components referring to each other): each problem a message that names
        where it is. Checked when a flow is saved, so that the run does not find it."""
        return []

    @classmethod
    def inner_nodes(cls, config: Mapping[str, Any]) -> list[dict[str, Any]]:
        """Nodes this node runs as part of itself (`{"id", "type", "config"}`, the id naming
        where in its config), such as an agent's node tools: node rules judge them too."""
        return []

    @classmethod
    def called_flows(cls, config: Mapping[str, Any]) -> list[str]:
        """The ids of the flows this node runs as child runs (the platform pins their
        documents into the run when it starts)."""
        return []

    async def execute(
        self, config: Mapping[str, Any], inputs: Mapping[str, Any], ctx: NodeContext
    ) -> dict[str, Any]:
        """Compute the node's outputs (a dict: output port name -> value). An output port
        left out of the dict is not taken (its downstream is skipped)."""
        raise NotImplementedError


class DuplicateNodeType(Exception):
    pass


_REGISTRY: dict[str, type[NodeType]] = {}


def register(cls: type[NodeType]) -> type[NodeType]:
    name = cls.type_name
    existing = _REGISTRY.get(name)
    if existing is not None and existing is not cls:
        raise DuplicateNodeType(
            f"node type '{name}' is registered twice: {existing.__module__}.{existing.__name__} "
            f"and {cls.__module__}.{cls.__name__}"
        )
    _REGISTRY[name] = cls
    return cls


def node_type(name: str) -> type[NodeType] | None:
    return _REGISTRY.get(name)


def node_types() -> dict[str, type[NodeType]]:
    return dict(sorted(_REGISTRY.items()))


def catalogue() -> list[dict[str, Any]]:
    """Every node type as the builder and API users see it."""
    items = []
    for name, cls in node_types().items():
        items.append(
            {
                "type": name,
                "title": cls.title,
                "description": cls.description,
                "category": cls.category,
                "effect": cls.effect.value,
                "config_schema": cls.config_schema,
                "inputs": [p.to_json() for p in cls.inputs({})],
                "outputs": [p.to_json() for p in cls.outputs({})],
                "dynamic_ports": "inputs" in _overrides(cls) or "outputs" in _overrides(cls),
            }
        )
    return items


def _overrides(cls: type[NodeType]) -> set[str]:
    return {
        name
        for klass in cls.__mro__
        if klass is not NodeType and issubclass(klass, NodeType)
        for name in ("inputs", "outputs")
        if name in klass.__dict__
    }
