"""The flow document: a versioned JSON graph of typed nodes and the edges between ports.

{"schema": 1,
 "nodes": [{"id": "greet", "type": "template", "config": {...}, "position": {"x": 0, "y": 0}}],
 "edges": [{"from": "input.name", "to": "greet.name"}]}
"""

import re
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, field_validator

SCHEMA_VERSION = 1
_NODE_ID = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]{0,63}$")


class Position(BaseModel):
    model_config = ConfigDict(extra="forbid")
    x: float = 0
    y: float = 0


class NodeSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: str
    type: str
    config: dict[str, Any] = Field(default_factory=dict)
    position: Position = Field(default_factory=Position)

    @field_validator("id")
    @classmethod
    def _check_id(cls, value: str) -> str:
        if not _NODE_ID.match(value):
            raise ValueError(
                "a node id starts with a letter or _, then letters, digits, _ or -, "
                "at most 64 characters"
            )
        return value


class PortRef(BaseModel):
    node: str
    port: str

    @classmethod
    def parse(cls, text: str) -> "PortRef":
        node, sep, port = text.partition(".")
        if not sep or not node or not port:
            raise ValueError(f"'{text}' is not 'node.port'")
        return cls(node=node, port=port)

    def __str__(self) -> str:
        return f"{self.node}.{self.port}"


class EdgeSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)
    source: str = Field(alias="from")
    target: str = Field(alias="to")

    @field_validator("source", "target")
    @classmethod
    def _check_ref(cls, value: str) -> str:
        PortRef.parse(value)
        return value

    @property
    def source_ref(self) -> PortRef:
        return PortRef.parse(self.source)

    @property
    def target_ref(self) -> PortRef:
        return PortRef.parse(self.target)


class FlowSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")
    # allSettled (default): a failing branch does not stop its siblings.
    fail_fast: bool = False


class FlowDocument(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)
    schema_version: int = Field(SCHEMA_VERSION, alias="schema")
    nodes: list[NodeSpec] = Field(default_factory=list)
    edges: list[EdgeSpec] = Field(default_factory=list)
    settings: FlowSettings = Field(default_factory=FlowSettings)
    # What validation found (the nodes' types and ports), kept by `parse_flow` for the
    # runtime: a document validated once is not validated again to run it.
    _resolved: Any = PrivateAttr(default=None)

    def node(self, node_id: str) -> NodeSpec | None:
        return next((n for n in self.nodes if n.id == node_id), None)

    def to_json(self) -> dict[str, Any]:
        return self.model_dump(by_alias=True, mode="json")
