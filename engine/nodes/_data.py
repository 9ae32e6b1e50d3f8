"""The workspace data store: a put node whose writes happen exactly once per run (even when
its worker dies mid-write) and a query node. Each run sees only its own workspace's data."""

from collections.abc import Mapping
from typing import Any, ClassVar

from .._ports import PortType
from .._registry import Effect, NodeContext, NodeError, NodeType, Port

_NAME = {"type": "string", "pattern": "^[A-Za-z0-9_.-]{1,64}$"}


def _store(ctx: NodeContext) -> Any:
    if ctx.data is None:
        raise NodeError("the data store needs the durable runtime (run this flow on a worker)")
    return ctx.data


class DataPut(NodeType):
    type_name = "data_put"
    title = "Store data"
    description = (
        "Writes a value under a key of a collection in this workspace's data store: `set` "
        "replaces it, `append` adds to a list, `increment` adds a number. Exactly once per run."
    )
    category = "data"
    effect = Effect.WRITE
    config_schema: ClassVar[dict[str, Any]] = {
        "type": "object",
        "additionalProperties": False,
        "required": ["collection"],
        "properties": {
            "collection": _NAME,
            "key": {"type": "string", "maxLength": 200, "description": "unless wired in"},
            "operation": {"enum": ["set", "append", "increment"], "default": "set"},
        },
    }
    INPUTS = (
        Port("value", PortType.ANY),
        Port("key", PortType.TEXT, required=False, description="overrides config.key"),
    )
    OUTPUTS = (Port("stored", PortType.ANY, description="the value now stored"),)

    async def execute(
        self, config: Mapping[str, Any], inputs: Mapping[str, Any], ctx: NodeContext
    ) -> dict[str, Any]:
        key = inputs.get("key") or config.get("key")
        if not key:
            raise NodeError("no key: set config.key or connect the key input")
        operation = config.get("operation", "set")
        value = inputs["value"]
        if operation == "increment" and (
            isinstance(value, bool) or not isinstance(value, int | float)
        ):
            raise NodeError(f"increment needs a number, got {type(value).__name__}")
        record = await _store(ctx).write(operation, config["collection"], str(key), value)
        await self.after_write()
        return {"stored": record["value"]}

    async def after_write(self) -> None:
        """Called after the write has committed (a seam for fault tests)."""


class DataQuery(NodeType):
    type_name = "data_query"
    title = "Read data"
    description = "Reads one key of a collection, or its newest records, from this workspace."
    category = "data"
    effect = Effect.READ
    config_schema: ClassVar[dict[str, Any]] = {
        "type": "object",
        "additionalProperties": False,
        "required": ["collection"],
        "properties": {
            "collection": _NAME,
            "key": {"type": "string", "maxLength": 200},
            "limit": {"type": "integer", "minimum": 1, "maximum": 1000, "default": 100},
        },
    }
    INPUTS = (Port("key", PortType.TEXT, required=False),)
    OUTPUTS = (
        Port("value", PortType.ANY, description="the value under the key (null if none)"),
        Port("records", PortType.LIST, description="[{key, value, updated_at}]"),
    )

    async def execute(
        self, config: Mapping[str, Any], inputs: Mapping[str, Any], ctx: NodeContext
    ) -> dict[str, Any]:
        key = inputs.get("key") or config.get("key")
        records = await _store(ctx).read(
            config["collection"], str(key) if key else None, int(config.get("limit", 100))
        )
        value = records[0]["value"] if key and records else None
        return {"value": value, "records": records}
