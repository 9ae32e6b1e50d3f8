"""Streams between nodes: a consumer starts while its producer is still writing (two-phase
execution), in memory and on real workers through DBOS streams; a worker killed mid-stream
leaves no gap and no duplicate in the run's events, and the consumer ends up with the text
of the producer's last attempt."""

import asyncio
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import psycopg
import pytest

import engine
from engine import MemoryEventSink, run_flow
from engine.llm import FakeLLMServer, FakeScript
from tests.engine import plugin_nodes
from tests.engine.harness import (
    Worker,
    chain,
    enqueue,
    fresh_database,
    ledger,
    ledger_like,
    wait_for,
    wait_terminal,
)

pytestmark = pytest.mark.durability
CHILD_FLOW_ID = "6f1c5c1e-0000-4000-8000-0000000057e4"


@pytest.fixture(scope="module")
def url() -> Iterator[str]:
    with fresh_database() as database_url:
        with psycopg.connect(database_url, autocommit=True) as conn:
            conn.execute(plugin_nodes.LEDGER_DDL)
        yield database_url


def producer_consumer(lines: int, seconds: float) -> dict[str, Any]:
    return {
        "schema": 1,
        "nodes": [
            {
                "id": "talk",
                "type": "test_slow_stream",
                "config": {"lines": lines, "seconds": seconds},
            },
            {"id": "read", "type": "test_stream_collect"},
            {"id": "seen", "type": "output", "config": {"name": "seen"}},
            {"id": "attempts", "type": "output", "config": {"name": "attempts"}},
            {"id": "text", "type": "output", "config": {"name": "text"}},
        ],
        "edges": [
            {"from": "talk.stream", "to": "read.stream"},
            {"from": "read.text", "to": "seen.value"},
            {"from": "read.attempts", "to": "attempts.value"},
            # A stream into a text input waits for the whole text.
            {"from": "talk.stream", "to": "text.value"},
        ],
    }


def _times(url: str, run_id: str) -> dict[str, datetime]:
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT node || ':' || phase, min(at) FROM fireflow_test.ledger WHERE run_id = %s "
            "GROUP BY 1",
            (run_id,),
        ).fetchall()
    return dict(rows)


def test_a_consumer_reads_while_its_producer_writes_in_memory(
    url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FIREFLOW_TEST_LEDGER_URL", url)
    sink = MemoryEventSink()
    result = asyncio.run(run_flow(producer_consumer(4, 0.1), {}, run_id="mem-stream", events=sink))
    assert result.status == "completed", result.error
    full = "".join(f"line {i}\n" for i in range(4))
    assert result.outputs == {"seen": full, "attempts": [1], "text": full}
    order = [(e.type.value, e.node) for e in sink.events]
    assert order.index(("NODE_STARTED", "read")) < order.index(("NODE_COMPLETED", "talk"))
    times = _times(url, "mem-stream")
    assert times["read:first-chunk-1"] < times["talk:end"]


def test_a_consumer_reads_while_its_producer_writes_on_a_worker(url: str) -> None:
    worker = Worker(url, "stream-1")
    try:
        run_id = enqueue(url, producer_consumer(5, 0.25), {})
        state, output = wait_terminal(url, run_id)
    finally:
        worker.stop()
    assert state == "SUCCESS", output
    full = "".join(f"line {i}\n" for i in range(5))
    assert output["outputs"] == {"seen": full, "attempts": [1], "text": full}
    times = _times(url, run_id)
    # The consumer had its first chunk a second before the producer finished.
    assert (times["talk:end"] - times["read:first-chunk-1"]).total_seconds() > 0.5


def test_kill_mid_stream_leaves_no_gap_and_no_duplicate(url: str) -> None:
    worker = Worker(url, "stream-kill")
    run_id = enqueue(url, producer_consumer(12, 0.25), {})

    def chunks() -> list[dict[str, Any]]:
        return [e for e in engine.read_events(url, run_id) if e["type"] == "STREAM_CHUNK"]

    wait_for(lambda: len(chunks()) >= 3, 30, "the first chunks in the event table")
    worker.kill9()
    worker = Worker(url, "stream-kill")
    try:
        state, output = wait_terminal(url, run_id, timeout=90)
    finally:
        worker.stop()
    assert state == "SUCCESS", output
    full = "".join(f"line {i}\n" for i in range(12))
    # The consumer read the first attempt, was told it was superseded, read the second.
    assert output["outputs"] == {"seen": full, "attempts": [1, 2], "text": full}

    events = engine.read_events(url, run_id)
    seqs = [e["seq"] for e in events]
    assert seqs == list(range(1, len(events) + 1)), "a gap or a duplicate in the sequence"
    restarted = [e for e in events if e["type"] == "NODE_RESTARTED"]
    assert [(e["node"], e["payload"]) for e in restarted] == [("talk", {"attempt": 2})]
    streamed = [e for e in events if e["type"] == "STREAM_CHUNK"]
    first = [e["payload"]["text"] for e in streamed if e["payload"]["attempt"] == 1]
    second = [e["payload"]["text"] for e in streamed if e["payload"]["attempt"] == 2]
    assert first, "nothing of attempt 1 reached the events before the kill"
    assert "".join(first) == full[: len("".join(first))], "attempt 1 is a prefix"
    assert "".join(second) == full, "the last attempt's chunks are the whole text, once each"
    assert max(e["seq"] for e in streamed if e["payload"]["attempt"] == 1) < restarted[0]["seq"]
    assert restarted[0]["seq"] < min(e["seq"] for e in streamed if e["payload"]["attempt"] == 2)
    # The producer ran twice (killed once); the consumer's first read began before the kill.
    assert [p for n, p in ledger(url, run_id) if n == "talk"].count("start") == 2


def _flat_map(producer: dict[str, Any]) -> dict[str, Any]:
    return {
        "schema": 1,
        "nodes": [
            producer,
            {
                "id": "each",
                "type": "stream_flat_map",
                "config": {
                    "flow_id": CHILD_FLOW_ID,
                    "item_input": "x",
                    "result_output": "result",
                    "concurrency": 2,
                },
            },
            {"id": "out", "type": "output", "config": {"name": "results"}},
        ],
        "edges": [
            {"from": f"{producer['id']}.stream", "to": "each.stream"},
            {"from": "each.results", "to": "out.value"},
        ],
    }


def test_stream_flat_map_starts_children_before_the_stream_ends(url: str) -> None:
    child = chain(("mark", 0))
    worker = Worker(url, "flatmap-1")
    try:
        run_id = enqueue(
            url,
            _flat_map(
                {"id": "talk", "type": "test_slow_stream", "config": {"lines": 4, "seconds": 0.4}}
            ),
            {},
            meta={"subflows": {CHILD_FLOW_ID: child}},
        )
        state, output = wait_terminal(url, run_id)
    finally:
        worker.stop()
    assert state == "SUCCESS", output
    assert output["outputs"] == {"results": [f"line {i}-mark" for i in range(4)]}
    times = _times(url, run_id)
    with psycopg.connect(url) as conn:
        (first_child,) = conn.execute(
            "SELECT min(at) FROM fireflow_test.ledger WHERE run_id LIKE %s",
            (f"{run_id}:each:%",),
        ).fetchone()  # type: ignore[misc]
    assert first_child < times["talk:end"], "the first child waited for the whole stream"
    children = sorted({r for r, _, _ in ledger_like(url, f"{run_id}:each:")})
    assert children == [f"{run_id}:each:1:{i}" for i in range(4)]


def test_an_llm_streams_into_a_flat_map(url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    script = FakeScript().add("list three", reply='{"n": 1}\n{"n": 2}\n{"n": 3}\n')
    with FakeLLMServer(tokens_per_s=30, script=script) as server:
        monkeypatch.setenv("FIREFLOW_FAKE_LLM_URL", server.url)  # inherited by the worker
        worker = Worker(url, "flatmap-llm")
        child = {
            "schema": 1,
            "nodes": [
                {
                    "id": "inp",
                    "type": "input",
                    "config": {"fields": [{"name": "x", "type": "json"}]},
                },
                {"id": "n", "type": "transform", "config": {"expression": "[n, n]"}},
                {"id": "out", "type": "output", "config": {"name": "pair"}},
            ],
            "edges": [{"from": "inp.x", "to": "n.data"}, {"from": "n.result", "to": "out.value"}],
        }
        llm = {
            "id": "llm",
            "type": "llm_chat",
            "config": {"provider": "fake", "model": "fake-echo"},
        }
        document = _flat_map(llm)
        document["nodes"][1]["config"].update(split="jsonl", result_output="pair")
        document["nodes"].append(
            {"id": "q", "type": "constant", "config": {"value": "list three", "type": "text"}}
        )
        document["edges"].append({"from": "q.value", "to": "llm.prompt"})
        try:
            run_id = enqueue(url, document, {}, meta={"subflows": {CHILD_FLOW_ID: child}})
            state, output = wait_terminal(url, run_id)
        finally:
            worker.stop()
    assert state == "SUCCESS", output
    assert output["outputs"] == {"results": [1, 1, 2, 2, 3, 3]}


STREAM_READER_FLOW = {  # a child flow whose input is a stream: it reads it as it is written
    "schema": 1,
    "nodes": [
        {"id": "inp", "type": "input", "config": {"fields": [{"name": "text", "type": "stream"}]}},
        {"id": "read", "type": "test_stream_collect"},
        {"id": "seen", "type": "output", "config": {"name": "seen"}},
    ],
    "edges": [{"from": "inp.text", "to": "read.stream"}, {"from": "read.text", "to": "seen.value"}],
}


def test_a_child_flow_reads_its_parents_stream_while_it_is_written(url: str) -> None:
    parent = {
        "schema": 1,
        "nodes": [
            {"id": "talk", "type": "test_slow_stream", "config": {"lines": 5, "seconds": 0.25}},
            {
                "id": "sub",
                "type": "execute_flow",
                "config": {"flow_id": CHILD_FLOW_ID, "stream_inputs": ["text"]},
            },
            {"id": "out", "type": "output", "config": {"name": "child"}},
        ],
        "edges": [
            {"from": "talk.stream", "to": "sub.text"},
            {"from": "sub.outputs", "to": "out.value"},
        ],
    }
    assert [i for i in engine.validate_flow(parent) if i.severity == "error"] == []
    clash = {
        **parent["nodes"][1],
        "config": {"flow_id": CHILD_FLOW_ID, "stream_inputs": ["inputs"]},
    }
    refused = engine.validate_flow(
        {**parent, "nodes": [parent["nodes"][0], clash, parent["nodes"][2]]}
    )
    assert any(
        i.node == "sub" and "stream_inputs: 'inputs' is this node's port" in i.message
        for i in refused
    ), refused
    worker = Worker(url, "stream-child")
    try:
        run_id = enqueue(url, parent, {}, meta={"subflows": {CHILD_FLOW_ID: STREAM_READER_FLOW}})
        state, output = wait_terminal(url, run_id)
    finally:
        worker.stop()
    assert state == "SUCCESS", output
    full = "".join(f"line {i}\n" for i in range(5))
    assert output["outputs"] == {"child": {"seen": full}}
    child_times = _times(url, f"{run_id}:sub")
    # The child had its first chunk while the parent's producer was still writing.
    gap = _times(url, run_id)["talk:end"] - child_times["read:first-chunk-1"]
    assert gap.total_seconds() > 0.5


def test_a_stream_of_another_run_cannot_be_read(url: str) -> None:
    """A stream reference given as a run's input reaches only its own run's streams and its
    ancestors': not another run's (whose id it could name)."""
    worker = Worker(url, "stream-other")
    try:
        writer = enqueue(url, producer_consumer(2, 0.05), {})
        assert wait_terminal(url, writer)[0] == "SUCCESS"
        ref = {"$stream": {"run": writer, "key": "talk.stream"}}
        reader = enqueue(url, STREAM_READER_FLOW, {"text": ref})
        state, output = wait_terminal(url, reader)
    finally:
        worker.stop()
    assert (state, output["status"]) == ("SUCCESS", "failed"), output
    assert output["nodes"]["read"]["error"] == (
        "a stream can only be read by its own run and the child runs it starts; this one "
        "belongs to another run"
    )
