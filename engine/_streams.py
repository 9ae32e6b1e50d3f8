"""Streams between nodes: a producer's STREAM output is readable while the producer runs.

Two-phase execution: when a node with a connected STREAM output starts, the runtime hands
its consumers a *stream reference* at once (`{"$stream": {"run": ..., "key": ...}}`); they
start and read chunks as the producer writes them. When the producer finishes, its STREAM
output holds the whole text (checkpointed once, with its step), which is what a TEXT input
fed by a stream receives.

In a durable run the stream is a DBOS stream of the producer's workflow, so a consumer on
another worker (a child run) reads it too, and a recovered consumer reads it again from the
start. Chunks are batched into frames (`FRAME_SECONDS`), never a write per token. Every frame
carries the producer's *attempt*: a producer whose worker died runs again with the next
attempt, and a consumer that sees the attempt change knows that what it read before is
superseded (its own partial work with it).

Nodes that read or write streams have an effect (they run as steps): a pure node runs in
workflow code, where a stream read would be a checkpoint of its own."""

import asyncio
import contextlib
import functools
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from ._ports import is_stream_ref
from ._registry import NodeError

FRAME_SECONDS = 0.04


@dataclass(frozen=True)
class StreamChunk:
    attempt: int
    text: str


def stream_ref(run_id: str, node_id: str, port: str) -> dict[str, Any]:
    return {"$stream": {"run": run_id, "key": f"{node_id}.{port}"}}


def parse_ref(value: Any) -> tuple[str, str]:
    """(run, key) of a stream reference, or NodeError for anything else."""
    if not is_stream_ref(value):
        raise NodeError("expected a stream (connect a node's stream output)")
    return value["$stream"]["run"], value["$stream"]["key"]


class StreamWriter(Protocol):
    async def write(self, text: str) -> None: ...

    async def close(self, error: str | None = None) -> None:
        """End the stream; with `error`, consumers fail with it."""
        ...


class NodeStreams(Protocol):
    """Port: a node's access to streams, given to it in `NodeContext.streams`."""

    async def writer(self, port: str) -> StreamWriter:
        """The writer of this node's STREAM output `port` (a no-op when nothing reads it)."""
        ...

    def read(self, ref: Any) -> AsyncIterator[StreamChunk]:
        """The chunks of a stream, from its start, until its producer closes it."""
        ...

    async def finish(self, outputs: dict[str, Any], error: str | None) -> None:
        """Called by the runtime when the node has returned (or failed): closes every stream
        output something reads. A stream output the node returned without writing it is
        sent whole, so any node may declare one."""
        ...


class StreamHub(Protocol):
    def for_node(self, node_id: str) -> NodeStreams | None: ...


class _NullWriter:
    async def write(self, text: str) -> None:
        return None

    async def close(self, error: str | None = None) -> None:
        return None


NULL_WRITER: StreamWriter = _NullWriter()


class FramedWriter:
    """Batches text into frames of about FRAME_SECONDS; `send` writes one frame (a dict) and
    `finish` ends the stream. Frames go out in order, one at a time."""

    def __init__(
        self,
        attempt: int,
        send: Callable[[dict[str, Any]], Awaitable[None]],
        finish: Callable[[], Awaitable[None]],
        interval: float = FRAME_SECONDS,
    ) -> None:
        self._attempt = attempt
        self._send = send
        self._finish = finish
        self._interval = interval
        self._pending: list[str] = []
        self._lock = asyncio.Lock()
        self._timer: asyncio.Task[None] | None = None
        self._closed = False

    async def write(self, text: str) -> None:
        if self._closed:
            raise RuntimeError("write to a closed stream")
        if not text:
            return
        self._pending.append(text)
        if self._timer is None or self._timer.done():
            self._timer = asyncio.ensure_future(self._flush_later())

    async def _flush_later(self) -> None:
        await asyncio.sleep(self._interval)
        await self._flush()

    async def _flush(self) -> None:
        async with self._lock:
            if self._pending:
                text, self._pending = "".join(self._pending), []
                await self._send({"a": self._attempt, "t": text})

    async def close(self, error: str | None = None) -> None:
        if self._closed:
            return
        self._closed = True
        if self._timer is not None and not self._timer.done():
            self._timer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._timer
        await self._flush()
        if error is not None:
            await self._send({"a": self._attempt, "error": error})
        await self._finish()


def frame_chunk(key: str, frame: Any) -> StreamChunk:
    if not isinstance(frame, dict):
        raise NodeError(f"stream {key} holds something that is not a frame")
    if "error" in frame:
        raise NodeError(f"the stream {key} ended with an error: {frame['error']}")
    return StreamChunk(int(frame.get("a", 1)), str(frame.get("t", "")))


@dataclass
class _MemoryStream:
    frames: list[dict[str, Any]] = field(default_factory=list)
    closed: bool = False
    changed: asyncio.Condition = field(default_factory=asyncio.Condition)


def _ready(stream: _MemoryStream, offset: int) -> bool:
    return len(stream.frames) > offset or stream.closed


class MemoryStreams:
    """Streams of a run that is not durable (tests, local runs): frames in memory."""

    def __init__(self, run_id: str, connected: dict[str, set[str]]) -> None:
        self._run_id = run_id
        self._connected = connected  # node id -> its STREAM outputs that something reads
        self._streams: dict[str, _MemoryStream] = {}

    def _stream(self, key: str) -> _MemoryStream:
        return self._streams.setdefault(key, _MemoryStream())

    def for_node(self, node_id: str) -> NodeStreams | None:
        return _MemoryNodeStreams(self, node_id)

    async def _send(self, key: str, frame: dict[str, Any]) -> None:
        stream = self._stream(key)
        async with stream.changed:
            stream.frames.append(frame)
            stream.changed.notify_all()

    async def _finish(self, key: str) -> None:
        stream = self._stream(key)
        async with stream.changed:
            stream.closed = True
            stream.changed.notify_all()

    async def _read(self, key: str) -> AsyncIterator[StreamChunk]:
        stream = self._stream(key)
        offset = 0
        while True:
            async with stream.changed:
                await stream.changed.wait_for(functools.partial(_ready, stream, offset))
                frames = stream.frames[offset:]
                closed = stream.closed
            offset += len(frames)
            for frame in frames:
                yield frame_chunk(key, frame)
            if closed and offset >= len(stream.frames):
                return


class WritersOfNode:
    """The writers a node opened, one per connected STREAM output, and their closing."""

    def __init__(self, connected: set[str]) -> None:
        self.connected = connected
        self.writers: dict[str, FramedWriter] = {}
        self.written: set[str] = set()

    async def writer(self, port: str, make: Callable[[], Awaitable[FramedWriter]]) -> StreamWriter:
        if port not in self.connected:
            return NULL_WRITER
        if port not in self.writers:
            self.writers[port] = await make()
        writer = self.writers[port]
        self.written.add(port)
        return writer

    async def finish(
        self,
        outputs: dict[str, Any],
        error: str | None,
        make: Callable[[str], Awaitable[FramedWriter]],
    ) -> None:
        for port in sorted(self.connected):
            writer = self.writers.get(port)
            if writer is None:
                writer = self.writers[port] = await make(port)
            if port not in self.written and isinstance(outputs.get(port), str):
                await writer.write(outputs[port])
            await writer.close(error)


class _MemoryNodeStreams:
    def __init__(self, hub: MemoryStreams, node_id: str) -> None:
        self._hub = hub
        self._node_id = node_id
        self._own = WritersOfNode(hub._connected.get(node_id, set()))

    async def _make(self, port: str) -> FramedWriter:
        key = f"{self._node_id}.{port}"

        async def send(frame: dict[str, Any]) -> None:
            await self._hub._send(key, frame)

        async def finish() -> None:
            await self._hub._finish(key)

        return FramedWriter(1, send, finish)

    async def writer(self, port: str) -> StreamWriter:
        return await self._own.writer(port, lambda: self._make(port))

    def read(self, ref: Any) -> AsyncIterator[StreamChunk]:
        _, key = parse_ref(ref)
        return self._hub._read(key)

    async def finish(self, outputs: dict[str, Any], error: str | None) -> None:
        await self._own.finish(outputs, error, self._make)


async def collect(chunks: AsyncIterator[StreamChunk]) -> str:
    """The whole text of a stream, as its producer's last attempt wrote it."""
    attempt, parts = 0, list[str]()
    async for chunk in chunks:
        if chunk.attempt != attempt:
            attempt, parts = chunk.attempt, []
        parts.append(chunk.text)
    return "".join(parts)
