"""A "new release" of the code for the deploy test: a node type and a DBOS workflow that the
old release did not have (DBOS would derive another application version from the code; the
engine pins its own, so runs parked by the old release are this one's to resume)."""

from collections.abc import Mapping
from typing import Any, ClassVar

from dbos import DBOS

from engine import Effect, NodeContext, NodeType, Port, PortType


class ReleaseTwo(NodeType):
    type_name = "test_release_2"
    title = "Only in release 2"
    effect = Effect.PURE
    config_schema: ClassVar[dict[str, Any]] = {"type": "object"}
    INPUTS = (Port("value", PortType.ANY),)
    OUTPUTS = (Port("value", PortType.ANY),)

    async def execute(
        self, config: Mapping[str, Any], inputs: Mapping[str, Any], ctx: NodeContext
    ) -> dict[str, Any]:
        return {"value": inputs["value"]}


@DBOS.workflow(name="test_release_2_job")
async def release_two_job() -> str:
    return "new"
