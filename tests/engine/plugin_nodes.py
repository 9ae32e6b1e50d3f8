"""Node types for fault tests, loaded into worker processes through FIREFLOW_NODE_MODULES.

`test_ledger` records every execution in fireflow_test.ledger (so tests can prove a node did
or did not run again) and can wait before finishing, to be killed mid-step. `test_crash`
kills its worker process every time: a poison node."""

import asyncio
import os
import signal
from collections.abc import Mapping
from typing import Any, ClassVar

import psycopg

from engine import Effect, NodeContext, NodeError, NodeType, Port, PortType
from engine.nodes._data import DataPut

LEDGER_DDL = """
CREATE SCHEMA IF NOT EXISTS fireflow_test;
CREATE TABLE IF NOT EXISTS fireflow_test.ledger (
    id bigserial PRIMARY KEY, run_id text NOT NULL, node text NOT NULL,
    phase text NOT NULL, pid int NOT NULL, at timestamptz NOT NULL DEFAULT clock_timestamp()
);
"""


def ledger_url() -> str:
    return os.environ["FIREFLOW_TEST_LEDGER_URL"]


async def _record(run_id: str, node: str, phase: str) -> None:
    async with await psycopg.AsyncConnection.connect(ledger_url(), autocommit=True) as conn:
        await conn.execute(
            "INSERT INTO fireflow_test.ledger (run_id, node, phase, pid) VALUES (%s, %s, %s, %s)",
            (run_id, node, phase, os.getpid()),
        )


class Ledger(NodeType):
    type_name = "test_ledger"
    title = "Ledger (test)"
    effect = Effect.WRITE
    config_schema: ClassVar[dict[str, Any]] = {
        "type": "object",
        "properties": {"seconds": {"type": "number"}, "suffix": {"type": "string"}},
    }
    INPUTS = (Port("value", PortType.ANY),)
    OUTPUTS = (Port("value", PortType.ANY),)

    async def execute(
        self, config: Mapping[str, Any], inputs: Mapping[str, Any], ctx: NodeContext
    ) -> dict[str, Any]:
        await _record(ctx.run_id, ctx.node_id, "start")
        await asyncio.sleep(float(config.get("seconds", 0)))
        await _record(ctx.run_id, ctx.node_id, "end")
        return {"value": f"{inputs['value']}{config.get('suffix', '')}"}


class Crash(NodeType):
    type_name = "test_crash"
    title = "Crash the worker (test)"
    effect = Effect.EXTERNAL
    config_schema: ClassVar[dict[str, Any]] = {"type": "object"}
    INPUTS = (Port("value", PortType.ANY),)
    OUTPUTS = (Port("value", PortType.ANY),)

    async def execute(
        self, config: Mapping[str, Any], inputs: Mapping[str, Any], ctx: NodeContext
    ) -> dict[str, Any]:
        await _record(ctx.run_id, ctx.node_id, "start")
        os.kill(os.getpid(), signal.SIGKILL)
        return {}


class Wait(NodeType):
    """Waits inside its step, touching no database (for outage tests)."""

    type_name = "test_wait"
    title = "Wait (test)"
    effect = Effect.EXTERNAL
    config_schema: ClassVar[dict[str, Any]] = {
        "type": "object",
        "properties": {"seconds": {"type": "number"}},
    }
    INPUTS = (Port("value", PortType.ANY),)
    OUTPUTS = (Port("value", PortType.ANY),)

    async def execute(
        self, config: Mapping[str, Any], inputs: Mapping[str, Any], ctx: NodeContext
    ) -> dict[str, Any]:
        await asyncio.sleep(float(config.get("seconds", 0)))
        return {"value": inputs["value"]}


class SlowPut(DataPut):
    """data_put that lingers after its write commits, so a test can kill the worker between
    the write and the step's checkpoint."""

    type_name = "test_slow_put"
    title = "Store data, slowly (test)"

    async def after_write(self) -> None:
        await _record("-", "slow_put", "committed")
        await asyncio.sleep(3)


class SlowStream(NodeType):
    """Streams `lines` lines, one every `seconds`, recording when it starts and ends."""

    type_name = "test_slow_stream"
    title = "Slow stream (test)"
    effect = Effect.EXTERNAL
    config_schema: ClassVar[dict[str, Any]] = {
        "type": "object",
        "properties": {"lines": {"type": "integer"}, "seconds": {"type": "number"}},
    }
    INPUTS = (Port("value", PortType.ANY, required=False),)
    OUTPUTS = (Port("text", PortType.TEXT), Port("stream", PortType.STREAM, mirrors="text"))

    async def execute(
        self, config: Mapping[str, Any], inputs: Mapping[str, Any], ctx: NodeContext
    ) -> dict[str, Any]:
        await _record(ctx.run_id, ctx.node_id, "start")
        assert ctx.streams is not None
        writer = await ctx.streams.writer("stream")
        lines = [f"line {i}\n" for i in range(int(config.get("lines", 5)))]
        for line in lines:
            if ctx.emit is not None:
                await ctx.emit("STREAM_CHUNK", {"text": line})
            await writer.write(line)
            await asyncio.sleep(float(config.get("seconds", 0.2)))
        await _record(ctx.run_id, ctx.node_id, "end")
        return {"text": "".join(lines)}


class StreamCollect(NodeType):
    """Reads a stream, recording when its first chunk arrived; returns the text of the
    producer's last attempt."""

    type_name = "test_stream_collect"
    title = "Collect a stream (test)"
    effect = Effect.EXTERNAL
    config_schema: ClassVar[dict[str, Any]] = {"type": "object"}
    INPUTS = (Port("stream", PortType.STREAM),)
    OUTPUTS = (Port("text", PortType.TEXT), Port("attempts", PortType.LIST))

    async def execute(
        self, config: Mapping[str, Any], inputs: Mapping[str, Any], ctx: NodeContext
    ) -> dict[str, Any]:
        await _record(ctx.run_id, ctx.node_id, "start")
        assert ctx.streams is not None
        attempts: list[int] = []
        parts: list[str] = []
        async for chunk in ctx.streams.read(inputs["stream"]):
            if not attempts or attempts[-1] != chunk.attempt:
                attempts.append(chunk.attempt)
                parts = []
                await _record(ctx.run_id, ctx.node_id, f"first-chunk-{chunk.attempt}")
            parts.append(chunk.text)
        await _record(ctx.run_id, ctx.node_id, "end")
        return {"text": "".join(parts), "attempts": attempts}


class Leaky(NodeType):
    """Opens a secret and then tries to leak it: in a stream chunk, then in its error."""

    type_name = "test_leaky"
    title = "Leaky (test)"
    effect = Effect.EXTERNAL
    config_schema: ClassVar[dict[str, Any]] = {
        "type": "object",
        "properties": {"secret": {"type": "string"}},
    }
    INPUTS = (Port("value", PortType.ANY, required=False),)
    OUTPUTS = (Port("value", PortType.ANY),)

    async def execute(
        self, config: Mapping[str, Any], inputs: Mapping[str, Any], ctx: NodeContext
    ) -> dict[str, Any]:
        assert ctx.secrets is not None
        value = await ctx.secrets.reveal(str(config["secret"]))
        if ctx.emit is not None:
            await ctx.emit("STREAM_CHUNK", {"text": f"the key is {value}!"})
        raise NodeError(f"the bank refused key {value}")
