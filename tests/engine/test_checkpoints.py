"""Node steps checkpointed in batches (engine/_checkpoints.py) on real workers: they are DBOS
steps to DBOS's own client and forks, and only the execution that owns a run records them."""

import asyncio
import time
from collections import Counter
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from dbos import DBOSClient

import engine
from engine._batches import Batches
from tests.engine.harness import (
    Worker,
    enqueue,
    fresh_database,
    ledger,
    wait_for,
    wait_terminal,
)

pytestmark = pytest.mark.durability
WIDTH = 6


@pytest.fixture(scope="module")
def url() -> Iterator[str]:
    with fresh_database() as database_url:
        yield database_url


def _fan_out(seconds: float = 0.0) -> dict[str, Any]:
    nodes: list[dict[str, Any]] = [
        {"id": "inp", "type": "input", "config": {"fields": [{"name": "x", "type": "text"}]}},
        {"id": "join", "type": "merge", "config": {"mode": "all", "inputs": WIDTH}},
        {"id": "out", "type": "output", "config": {"name": "result"}},
    ]
    edges = [{"from": "join.result", "to": "out.value"}]
    for i in range(WIDTH):
        nodes.append(
            {
                "id": f"b{i}",
                "type": "test_ledger",
                "config": {"seconds": seconds, "suffix": f"-b{i}"},
            }
        )
        edges += [
            {"from": "inp.x", "to": f"b{i}.value"},
            {"from": f"b{i}.value", "to": f"join.in_{i + 1}"},
        ]
    return {"schema": 1, "nodes": nodes, "edges": edges}


def _steps(url: str, run_id: str) -> dict[str, Any]:
    client = DBOSClient(system_database_url=url)
    try:
        return {s["function_name"]: s for s in client.list_workflow_steps(run_id)}
    finally:
        client.destroy()


def test_a_fan_outs_steps_read_back_through_dbos_and_a_fork_replays_them(url: str) -> None:
    document = _fan_out()
    worker = Worker(url, "ckpt-1")
    try:
        run_id = enqueue(url, document, {"x": "v"})
        state, output = wait_terminal(url, run_id)
        assert state == "SUCCESS", output
        expected = [f"v-b{i}" for i in range(WIDTH)]
        assert output["outputs"] == {"result": expected}

        steps = _steps(url, run_id)
        # Each branch is the DBOS step at the id its node reserved, with what the node gave.
        order = engine.step_order(document)
        assert sorted(steps) == sorted(f"node:{n}" for n in order)
        for position, node_id in enumerate(order):
            step = steps[f"node:{node_id}"]
            assert step["function_id"] == position + 1
            assert step["output"] == {"value": f"v-{node_id}"}
            assert step["error"] is None

        # DBOS's fork copies the recorded steps before the fork point: those branches are
        # replayed from their checkpoints, the rest run again.
        start = engine.fork_step(document, "b3")
        forked = engine.EngineClient(url).fork(run_id, start)
        state, output = wait_terminal(url, forked)
        assert state == "SUCCESS", output
        assert output["outputs"] == {"result": expected}
        ran_again = Counter(n for n, phase in ledger(url, forked) if phase == "start")
        assert ran_again == Counter(order[start - 1 :])
    finally:
        worker.stop()


def test_a_step_of_a_run_taken_over_meanwhile_is_not_recorded(url: str) -> None:
    """The fence: a worker whose run was handed to another execution while a node ran
    (a takeover: DBOS gives the run a new owner token) does not record the node's step."""
    worker = Worker(url, "ckpt-2")
    try:
        run_id = enqueue(url, _fan_out(seconds=1.5), {"x": "w"})
        wait_for(lambda: len(ledger(url, run_id)) >= WIDTH, 20, "the branches to start")
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(
                "UPDATE dbos.workflow_status SET owner_xid = 'another-execution' "
                "WHERE workflow_uuid = %s",
                (run_id,),
            )
        wait_for(
            lambda: sum(phase == "end" for _, phase in ledger(url, run_id)) == WIDTH,
            20,
            "the branches to end",
        )
        time.sleep(1.0)  # its records were refused within milliseconds of the ends
        with psycopg.connect(url) as conn:
            recorded = conn.execute(
                "SELECT count(*) FROM dbos.operation_outputs WHERE workflow_uuid = %s",
                (run_id,),
            ).fetchone()
            completed = conn.execute(
                "SELECT count(*) FROM fireflow.run_event WHERE run_id = %s "
                "AND (type IN ('FLOW_COMPLETED', 'FLOW_FAILED') "
                "OR (type = 'NODE_COMPLETED' AND node LIKE 'b%%'))",
                (run_id,),
            ).fetchone()
            status = conn.execute(
                "SELECT status, owner_xid FROM dbos.workflow_status WHERE workflow_uuid = %s",
                (run_id,),
            ).fetchone()
        # Nothing recorded, nothing told as done: the run is left to its new owner.
        assert recorded == (0,)
        assert completed == (0,)
        assert status == ("PENDING", "another-execution")
    finally:
        worker.stop()


def test_a_request_that_cannot_be_written_fails_alone_in_its_batch() -> None:
    """Group commit: requests of one turn share a write; when the write fails, each is
    written again on its own, so the others get their answers and the bad one its error."""
    writes: list[list[int]] = []

    async def write(items: list[int]) -> list[int]:
        writes.append(items)
        if any(i < 0 for i in items):
            raise ValueError(f"cannot write {min(items)}")
        return [i * 2 for i in items]

    async def scenario() -> list[object]:
        batches: Batches[int, int] = Batches(write)
        return await asyncio.gather(
            *(batches.submit(i) for i in (1, -1, 2)), return_exceptions=True
        )

    results = asyncio.run(scenario())
    assert results[0] == 2
    assert results[2] == 4
    assert isinstance(results[1], ValueError)
    assert str(results[1]) == "cannot write -1"
    assert writes == [[1, -1, 2], [1], [-1], [2]]


def test_requests_of_a_batch_whose_writer_is_cancelled_do_not_wait_forever() -> None:
    started = asyncio.Event()

    async def write(items: list[int]) -> list[int]:
        started.set()
        await asyncio.sleep(3600)
        return items

    async def scenario() -> bool:
        batches: Batches[int, int] = Batches(write)
        waiting = asyncio.ensure_future(batches.submit(1))
        await started.wait()
        queued = asyncio.ensure_future(batches.submit(2))  # waits for the next batch
        await asyncio.sleep(0)
        assert batches._drain is not None
        batches._drain.cancel()  # the loop closing, say
        done, _ = await asyncio.wait([waiting, queued], timeout=5)
        return len(done) == 2 and all(f.cancelled() for f in done)

    assert asyncio.run(scenario())
