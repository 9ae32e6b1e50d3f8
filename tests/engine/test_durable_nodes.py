"""Delay, ExecuteFlow and Map on real workers: a delay is not restarted by a crash, child
runs have deterministic ids and are not started twice."""

import base64
import pickle
from collections import Counter
from collections.abc import Iterator

import psycopg
import pytest

import engine
from engine._worker import dispatcher_name
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
CHILD_FLOW_ID = "6f1c5c1e-0000-4000-8000-00000000c41d"


@pytest.fixture(scope="module")
def url() -> Iterator[str]:
    with fresh_database() as database_url:
        yield database_url


def test_delay_keeps_its_deadline_across_a_crash(url: str) -> None:
    document = {
        "schema": 1,
        "nodes": [
            {"id": "inp", "type": "input", "config": {"fields": [{"name": "x", "type": "text"}]}},
            {"id": "wait", "type": "delay", "config": {"seconds": 8}},
            {"id": "after", "type": "test_ledger", "config": {"suffix": "!"}},
            {"id": "out", "type": "output", "config": {"name": "result"}},
        ],
        "edges": [
            {"from": "inp.x", "to": "wait.value"},
            {"from": "wait.value", "to": "after.value"},
            {"from": "after.value", "to": "out.value"},
        ],
    }
    worker = Worker(url, "delay-1")
    run_id = enqueue(url, document, {"x": "late"})
    deadline = wait_for(lambda: _checkpointed_deadline(url, run_id), 20, "the deadline")
    worker.kill9()
    worker = Worker(url, "delay-1")  # back long before the deadline
    try:
        state, output = wait_terminal(url, run_id)
    finally:
        worker.stop()
    assert (state, output["outputs"]) == ("SUCCESS", {"result": "late!"})
    assert _checkpointed_deadline(url, run_id) == deadline  # replayed, not drawn again
    with psycopg.connect(url) as conn:
        (after_started,) = conn.execute(
            "SELECT extract(epoch FROM at) FROM fireflow_test.ledger "
            "WHERE run_id = %s AND node = 'after' AND phase = 'start'",
            (run_id,),
        ).fetchone()  # type: ignore[misc]
    # The next node ran at the original deadline: started over, it would have waited the
    # full 8 s again from the restart (well past the deadline).
    assert deadline <= float(after_started) < deadline + 2.5
    assert Counter(n for n, p in ledger(url, run_id) if p == "start") == Counter({"after": 1})


def _checkpointed_deadline(url: str, run_id: str) -> float | None:
    with psycopg.connect(url) as conn:
        row = conn.execute(
            "SELECT output FROM dbos.operation_outputs "
            "WHERE workflow_uuid = %s AND function_name = 'node:wait'",
            (run_id,),
        ).fetchone()
    if not row or not row[0]:
        return None
    # DBOS keeps step outputs pickled (base64); this one is the float the step returned.
    return float(pickle.loads(base64.b64decode(row[0])))


def _parent(flow_node: dict[str, object]) -> dict[str, object]:
    return {
        "schema": 1,
        "nodes": [
            {
                "id": "inp",
                "type": "input",
                "config": {"fields": [{"name": "items", "type": "list"}]},
            },
            flow_node,
            {"id": "out", "type": "output", "config": {"name": "result"}},
        ],
        "edges": [
            {"from": "inp.items", "to": f"{flow_node['id']}.items"},
            {"from": f"{flow_node['id']}.results", "to": "out.value"},
        ],
    }


def test_map_runs_a_child_per_item_and_a_crash_starts_none_twice(url: str) -> None:
    child = chain(("mark", 1.5))
    parent = _parent(
        {
            "id": "each",
            "type": "map",
            "config": {"flow_id": CHILD_FLOW_ID, "item_input": "x", "concurrency": 2},
        }
    )
    worker = Worker(url, "map-1")
    run_id = enqueue(
        url, parent, {"items": ["a", "b", "c", "d"]}, meta={"subflows": {CHILD_FLOW_ID: child}}
    )
    wait_for(lambda: len(ledger_like(url, f"{run_id}:each:")) >= 2, 30, "two children")
    worker.kill9()
    worker = Worker(url, "map-1")
    try:
        state, output = wait_terminal(url, run_id, timeout=90)
    finally:
        worker.stop()
    assert state == "SUCCESS", output
    assert output["status"] == "completed", output
    assert output["outputs"] == {"result": [{"result": f"{x}-mark"} for x in "abcd"]}
    children = Counter(
        run for run, _, phase in ledger_like(url, f"{run_id}:each:") if phase == "end"
    )
    assert sorted(children) == [f"{run_id}:each:{i}" for i in range(4)]
    assert set(children.values()) == {1}, "a finished child ran again"


def test_execute_flow_returns_the_childs_outputs(url: str) -> None:
    child = chain(("inner", 0))
    parent = {
        "schema": 1,
        "nodes": [
            {"id": "args", "type": "constant", "config": {"value": {"x": "call"}, "type": "json"}},
            {"id": "sub", "type": "execute_flow", "config": {"flow_id": CHILD_FLOW_ID}},
            {"id": "pick", "type": "transform", "config": {"expression": "result"}},
            {"id": "out", "type": "output", "config": {"name": "result"}},
        ],
        "edges": [
            {"from": "args.value", "to": "sub.inputs"},
            {"from": "sub.outputs", "to": "pick.data"},
            {"from": "pick.result", "to": "out.value"},
        ],
    }
    worker = Worker(url, "exec-1")
    try:
        run_id = enqueue(url, parent, {}, meta={"subflows": {CHILD_FLOW_ID: child}})
        state, output = wait_terminal(url, run_id)
        missing = enqueue(url, parent, {}, meta={"subflows": {}})
        missing_state, missing_output = wait_terminal(url, missing)
        assert missing_state == "SUCCESS"  # the workflow ends; the node reports the failure
        # Inputs the called flow does not take: the node says which, not "internal error".
        wrong = {**parent, "nodes": [dict(n) for n in parent["nodes"]]}
        wrong["nodes"][0]["config"] = {"value": {"x": "call", "y": 1}, "type": "json"}
        misfit = enqueue(url, wrong, {}, meta={"subflows": {CHILD_FLOW_ID: child}})
        _misfit_state, misfit_output = wait_terminal(url, misfit)
    finally:
        worker.stop()
    assert misfit_output["status"] == "failed"
    assert "its inputs do not fit" in misfit_output["error"]
    assert "input 'y' is not an input of this flow" in misfit_output["error"]
    assert (state, output["outputs"]) == ("SUCCESS", {"result": "call-inner"})
    assert [(r, n) for r, n, p in ledger_like(url, run_id) if p == "start"] == [
        (f"{run_id}:sub", "inner")
    ]
    assert missing_output["status"] == "failed"
    assert "was not pinned for this run" in missing_output["error"]


def test_cancelling_a_run_cancels_its_children(url: str) -> None:
    child = chain(("slow", 20))
    parent = _parent(
        {"id": "each", "type": "map", "config": {"flow_id": CHILD_FLOW_ID, "item_input": "x"}}
    )
    worker = Worker(url, "cancel-1")
    client = engine.EngineClient(url)
    try:
        run_id = enqueue(
            url, parent, {"items": ["a", "b"]}, meta={"subflows": {CHILD_FLOW_ID: child}}
        )
        wait_for(lambda: len(ledger_like(url, f"{run_id}:each:")) >= 2, 30, "children to start")
        client.cancel(run_id)
        assert wait_terminal(url, run_id)[0] == "CANCELLED"
        for index in (0, 1):
            assert wait_terminal(url, f"{run_id}:each:{index}")[0] == "CANCELLED"
    finally:
        client.close()
        worker.stop()


def test_data_store_write_happens_once_when_the_worker_dies_after_it(url: str) -> None:
    """The write commits, the worker dies before DBOS records the step: the step runs again
    on restart, and finds its recorded result instead of incrementing a second time."""
    document = {
        "schema": 1,
        "nodes": [
            {"id": "one", "type": "constant", "config": {"value": 5, "type": "number"}},
            {
                "id": "add",
                "type": "test_slow_put",
                "config": {"collection": "counters", "key": "visits", "operation": "increment"},
            },
            {"id": "read", "type": "data_query", "config": {"collection": "counters"}},
            {"id": "out", "type": "output", "config": {"name": "records"}},
        ],
        "edges": [
            {"from": "one.value", "to": "add.value"},
            {"from": "add.stored", "to": "read.key"},
            {"from": "read.records", "to": "out.value"},
        ],
    }
    meta = {"workspace": "ws-data-test"}
    worker = Worker(url, "data-1")
    run_id = enqueue(url, document, {}, meta=meta)
    wait_for(lambda: ("slow_put", "committed") in ledger(url, "-"), 20, "the write to commit")
    worker.kill9()
    worker = Worker(url, "data-1")
    try:
        state, output = wait_terminal(url, run_id)
        second = enqueue(url, document, {}, meta=meta)
        wait_terminal(url, second)
    finally:
        worker.stop()
    assert state == "SUCCESS", output
    with psycopg.connect(url) as conn:
        value = conn.execute(
            "SELECT value FROM fireflow.data_record WHERE workspace_id = 'ws-data-test' "
            "AND collection = 'counters' AND key = 'visits'"
        ).fetchone()
    assert value == (10,)  # 5 by the first run (once, despite the crash), 5 by the second
    assert output["outputs"]["records"] == []  # read.key was the number 5: no such key


def test_a_failing_child_fails_the_map_and_starts_no_more(url: str) -> None:
    child = {
        "schema": 1,
        "nodes": [
            {"id": "inp", "type": "input", "config": {"fields": [{"name": "x", "type": "json"}]}},
            {"id": "abs", "type": "transform", "config": {"expression": "abs(@)"}},
            {"id": "out", "type": "output", "config": {"name": "result"}},
        ],
        "edges": [{"from": "inp.x", "to": "abs.data"}, {"from": "abs.result", "to": "out.value"}],
    }
    parent = _parent(
        {
            "id": "each",
            "type": "map",
            "config": {"flow_id": CHILD_FLOW_ID, "item_input": "x", "concurrency": 1},
        }
    )
    worker = Worker(url, "mapfail-1")
    try:
        run_id = enqueue(
            url, parent, {"items": [-1, "bad", -3, -4]}, meta={"subflows": {CHILD_FLOW_ID: child}}
        )
        state, output = wait_terminal(url, run_id)
    finally:
        worker.stop()
    assert state == "SUCCESS"
    assert output["status"] == "failed"
    error = output["nodes"]["each"]["error"]
    assert error.startswith(f"child run {run_id}:each:1 failed")
    assert "abs" in error
    with psycopg.connect(url) as conn:
        started = {
            r[0]
            for r in conn.execute(
                "SELECT workflow_uuid FROM dbos.workflow_status WHERE workflow_uuid LIKE %s",
                (f"{run_id}:each:%",),
            )
        }
    assert started == {f"{run_id}:each:0", f"{run_id}:each:1"}


def test_queued_runs_and_their_children_start_without_waiting_for_a_poll(url: str) -> None:
    """A queued run (and each child run it queues) wakes the worker: with the queue polled
    only every two minutes, a run over a map of three children finishes long before the
    first poll would have found it."""
    child = chain(("mark", 0))
    parent = _parent(
        {"id": "each", "type": "map", "config": {"flow_id": CHILD_FLOW_ID, "item_input": "x"}}
    )
    worker = Worker(url, "wake-1", poll_seconds=120)
    try:
        wait_for(lambda: _listening(url), 30, "the worker's wake-up listener")
        run_id = enqueue(
            url, parent, {"items": ["a", "b", "c"]}, meta={"subflows": {CHILD_FLOW_ID: child}}
        )
        state, output = wait_terminal(url, run_id, timeout=30)
    finally:
        worker.stop()
    assert (state, output["outputs"]) == (
        "SUCCESS",
        {"result": [{"result": f"{x}-mark"} for x in "abc"]},
    )


def _listening(url: str) -> bool:
    """The worker's dispatcher connection has run a statement: LISTEN is its first."""
    with psycopg.connect(url) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
            "AND application_name = %s AND query <> ''",
            (dispatcher_name("wake-1"),),
        ).fetchone()
    return bool(row and row[0])
