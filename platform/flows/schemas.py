"""Request and response shapes of the flows and runs API."""

from datetime import datetime
from typing import Annotated, Any, Literal
from uuid import UUID

from ninja import Schema
from pydantic import Field, StringConstraints

from .selectors import status_of

Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
Hash = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")]


class IssueOut(Schema):
    code: str
    message: str
    node: str | None
    port: str | None
    severity: str


class ValidateIn(Schema):
    document: dict[str, Any]


class PortOut(Schema):
    name: str
    type: str
    required: bool
    description: str


class NodePortsOut(Schema):
    inputs: list[PortOut]
    outputs: list[PortOut]


class ValidateOut(Schema):
    valid: bool
    issues: list[IssueOut]
    ports: dict[str, NodePortsOut] = Field(
        description="each node's ports as its config gives them (a template's variables, an "
        "input node's fields), for every node whose type and config are valid: an editor "
        "draws its handles from these"
    )
    plan: Any = Field(
        None,
        description="when valid: the series-parallel plan, e.g. {'series': ['a', "
        "{'parallel': ['b', 'c']}, 'd']}; {'dag': [...]} when the graph is not series-parallel",
    )


class FlowIn(Schema):
    name: Name
    description: str = Field("", max_length=2000)
    document: dict[str, Any] | None = Field(None, description="the first version, if given")
    message: str = Field("", max_length=500)


class FlowPatchIn(Schema):
    name: Name | None = None
    description: str | None = Field(None, max_length=2000)


class VersionIn(Schema):
    document: dict[str, Any]
    message: str = Field("", max_length=500)
    parent: Hash | None = Field(
        None, description="the version you edited; refused (409) if it is no longer current"
    )


class VersionOut(Schema):
    hash: str
    parent: str | None
    author_email: str | None
    message: str
    created_at: datetime

    @staticmethod
    def resolve_parent(obj: Any) -> str | None:
        return obj.parent.hash if obj.parent_id else None

    @staticmethod
    def resolve_author_email(obj: Any) -> str | None:
        return obj.author.email if obj.author_id else None


class VersionDetailOut(VersionOut):
    document: dict[str, Any]


class FlowOut(Schema):
    id: UUID
    name: str
    description: str
    created_at: datetime
    updated_at: datetime
    current_version: str | None

    @staticmethod
    def resolve_current_version(obj: Any) -> str | None:
        return obj.current_version.hash if obj.current_version_id else None


class FlowDetailOut(FlowOut):
    document: dict[str, Any] | None

    @staticmethod
    def resolve_document(obj: Any) -> dict[str, Any] | None:
        return obj.current_version.document if obj.current_version_id else None


class RunIn(Schema):
    inputs: dict[str, Any] = Field(default_factory=dict)
    version: Hash | None = Field(None, description="a version hash; default: the current one")


class ForkIn(Schema):
    node: Annotated[str, StringConstraints(min_length=1, max_length=64)]


class RunOut(Schema):
    id: UUID
    flow_id: UUID
    flow_version: str
    status: str = Field(description="queued, running, completed, failed or cancelled")
    caller_email: str | None
    flow_owner_email: str | None
    inputs: dict[str, Any]
    created_at: datetime
    forked_from_id: UUID | None = None
    forked_at_node: str = ""

    @staticmethod
    def resolve_flow_version(obj: Any) -> str:
        return obj.flow_version.hash  # type: ignore[no-any-return]

    @staticmethod
    def resolve_status(obj: Any) -> str:
        return status_of(getattr(obj, "dbos_status", None), getattr(obj, "result_status", None))

    @staticmethod
    def resolve_caller_email(obj: Any) -> str | None:
        return obj.caller.email if obj.caller_id else None

    @staticmethod
    def resolve_flow_owner_email(obj: Any) -> str | None:
        return obj.flow_owner.email if obj.flow_owner_id else None


class RunDetailOut(RunOut):
    outputs: dict[str, Any] | None
    error: str | None
    nodes: dict[str, Any] = Field(description="each node's status, error and outputs taken")
    recovery_attempts: int

    @staticmethod
    def resolve_status(obj: Any) -> str:
        return obj.state.status  # type: ignore[no-any-return]

    @staticmethod
    def resolve_outputs(obj: Any) -> dict[str, Any] | None:
        return obj.state.outputs  # type: ignore[no-any-return]

    @staticmethod
    def resolve_error(obj: Any) -> str | None:
        return obj.state.error  # type: ignore[no-any-return]

    @staticmethod
    def resolve_nodes(obj: Any) -> dict[str, Any]:
        return obj.state.nodes  # type: ignore[no-any-return]

    @staticmethod
    def resolve_recovery_attempts(obj: Any) -> int:
        return obj.state.recovery_attempts  # type: ignore[no-any-return]


class EventOut(Schema):
    seq: int
    type: str
    node: str | None
    port: str | None
    payload: dict[str, Any]
    created_at: datetime


class UsageCallOut(Schema):
    run_key: str = Field(description="the run that made the call (a child run has its own id)")
    node_id: str
    call_index: int = Field(description="1 for the node's first call, 2 for its second, ...")
    provider: str
    model: str
    input_tokens: int
    output_tokens: int
    cached_tokens: int
    cost_micros: int = Field(description="USD millionths, from the model catalogue")
    created_at: datetime


class RunUsageOut(Schema):
    calls: list[UsageCallOut]
    input_tokens: int
    output_tokens: int
    cached_tokens: int
    cost_micros: int


class NodeTypesOut(Schema):
    models: list[dict[str, Any]] = Field(
        description="the model catalogue: context sizes and USD prices per million tokens"
    )
    node_types: list[dict[str, Any]]
    port_compatibility: dict[str, list[str]] = Field(
        description="output port type -> the input port types it may connect to"
    )
    event_types: dict[str, str]


AllowEntry = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=255)]


class NetworkPolicyIn(Schema):
    http_allow: list[AllowEntry] = Field(
        max_length=100,
        description="host names, IPs or CIDR ranges, each with an optional :port, e.g. "
        "'ollama.internal:11434', '10.0.0.0/8', '127.0.0.1:8000'",
    )


class NetworkPolicyOut(Schema):
    http_allow: list[str]


NodeTypeName = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64)]
ProviderName = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=50)]


class NodeRule(Schema):
    node_type: NodeTypeName = Field(
        description="a node type from GET /api/node-types (e.g. 'http_request'), or '*' for "
        "every type; a rule naming the type overrides rules for '*'"
    )
    roles: list[Literal["owner", "editor", "viewer"]] = Field(
        min_length=1,
        max_length=3,
        description="the workspace roles it applies to: of a flow version's author (checked "
        "when saving and running) and of a run's caller",
    )
    effect: Literal["deny", "allow"] = Field(
        description="deny: refused (deny wins over allow at the same level); allow: the rules "
        "allowing this type (or '*') become an allow list, a node must match one of them"
    )
    providers: list[ProviderName] | None = Field(
        None,
        max_length=20,
        description="only for node types that call a model (llm_chat, agent, "
        "structured_output, or '*'): the rule then matches only nodes calling one of these "
        "providers (allow: 'only these providers')",
    )


class NodeRulesIn(Schema):
    node_rules: list[NodeRule] = Field(
        max_length=200,
        description="the whole list, replacing the current one; empty: every node type allowed",
    )


class NodeRulesOut(Schema):
    node_rules: list[NodeRule]


class ToolCallRequestOut(Schema):
    tool: str = Field(description="the tool (a flow of the workspace) the agent wants to call")
    description: str = Field(description="what the tool does, as the agent was told")
    arguments: dict[str, Any] = Field(description="the arguments the model proposed")
    parameters: dict[str, Any] = Field(
        description="the tool's parameters (JSON Schema): what edited arguments must fit"
    )
    tool_call_id: str = Field(description="the call's id in the run's TOOL_CALL_* events")
    edited_arguments: dict[str, Any] | None = Field(
        description="the arguments the approver gave instead, once approved with edits"
    )


class CardRequestOut(Schema):
    surface: dict[str, Any] = Field(
        description="the A2UI v0.9 surface to render: {version, catalogId, surfaceId, root, "
        "components} (basic catalog components, in the spec's JSON shape)"
    )
    data: dict[str, Any] = Field(description="the surface's data model (what paths bind to)")
    action: dict[str, Any] | None = Field(
        description="the A2UI user action it was answered with, once answered: {name, "
        "surfaceId, sourceComponentId, context}"
    )
    values: dict[str, Any] | None = Field(
        description="the values of the card's inputs it was answered with, by component id"
    )


class HumanRequestOut(Schema):
    run_id: str
    node_id: str = Field(
        description="the request's key in the run (the answer's URL): the node's id, or "
        "`<node>:tool:<turn>:<index>` for an agent's tool call"
    )
    node: str = Field(description="the node of the flow that asks")
    kind: str = Field(
        description="approval (the approval node), budget, tool_call or card (the card node)"
    )
    tool_call: ToolCallRequestOut | None = Field(
        description="for kind tool_call: the proposed call, and any edit it was approved with"
    )
    card: CardRequestOut | None = Field(
        None, description="for kind card: the A2UI surface, its data, and the action taken"
    )
    org_slug: str
    workspace_id: str
    flow_id: UUID
    flow_name: str
    title: str
    message: str = Field(description="rendered from the flow's data")
    data: Any = Field(None, description="what the flow shows the approvers")
    approvers: dict[str, Any] = Field(description="{role, users, caller}: who may answer")
    created_at: datetime
    deadline: datetime | None
    status: str = Field(description="pending, approved, rejected, timed_out or expired")
    answered_by: str | None
    answered_at: datetime | None
    comment: str
    can_answer: bool = Field(description="whether you may answer it now")


class CardActionIn(Schema):
    name: str = Field(
        min_length=1, max_length=200, description="the action of one of the card's buttons"
    )
    values: dict[str, Any] = Field(
        default_factory=dict,
        description="the values of the card's input components, by component id (an input "
        "left out keeps the value the card showed)",
    )


class AnswerIn(Schema):
    decision: Literal["approve", "reject"]
    comment: str = Field("", max_length=2000)
    arguments: dict[str, Any] | None = Field(
        None,
        description="only for a tool call, with `approve`: the arguments to run the tool with "
        "instead of the proposed ones; they must fit the tool's parameters (422 naming the "
        "arguments at fault otherwise)",
    )
    action: CardActionIn | None = Field(
        None,
        description="only for a card, with `approve`: the A2UI user action taken on it; its "
        "values must fit the card's inputs (422 naming `values.<component id>` or `action.name` "
        "otherwise)",
    )
