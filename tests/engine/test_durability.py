"""Durable execution under faults (SECURITY.md "Durable execution" 1, 2, 5, 6), with real
worker processes and PostgreSQL: kill -9 before and during nodes, a second worker taking
over a dead one, duplicate starts, and a poison node."""

import time
from collections import Counter
from collections.abc import Iterator

import pytest

import engine
from tests.engine.harness import (
    Worker,
    chain,
    enqueue,
    fresh_database,
    ledger,
    status,
    wait_for,
    wait_terminal,
)

pytestmark = pytest.mark.durability


CHAIN = ("a", "b", "c")


@pytest.fixture(scope="module")
def url() -> Iterator[str]:
    with fresh_database() as database_url:
        yield database_url


def starts(url: str, run_id: str) -> Counter[str]:
    return Counter(node for node, phase in ledger(url, run_id) if phase == "start")


def assert_clean_stream(url: str, run_id: str, chain_nodes: tuple[str, ...]) -> None:
    """The whole story, once and in causal order: every node of the chain started, passed
    its value and completed, each after the one before it completed."""
    events = engine.read_events(url, run_id)
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1)), "gaps in the stream"
    story = [(e["type"], e["node"]) for e in events if e["type"] != "PORT_VALUE_CHANGED"]
    expected = [("FLOW_STARTED", None)]
    for node in ("inp", *chain_nodes, "out"):
        expected += [("NODE_STARTED", node), ("NODE_COMPLETED", node)]
    expected.append(("FLOW_COMPLETED", None))
    assert story == expected
    values = [(e["node"], e["port"]) for e in events if e["type"] == "PORT_VALUE_CHANGED"]
    assert values == [("inp", "x"), *((n, "value") for n in chain_nodes)]


def test_clean_run_reference(url: str) -> None:
    worker = Worker(url, "ref-1")
    try:
        run_id = enqueue(url, chain(("a", 0), ("b", 0), ("c", 0)), {"x": "go"})
        state, output = wait_terminal(url, run_id)
    finally:
        worker.stop()
    assert state == "SUCCESS"
    assert output["outputs"] == {"result": "go-a-b-c"}
    assert starts(url, run_id) == Counter({"a": 1, "b": 1, "c": 1})
    assert_clean_stream(url, run_id, CHAIN)


def test_run_queued_before_any_worker_runs_once_one_starts(url: str) -> None:
    run_id = enqueue(url, chain(("a", 0), ("b", 0)), {"x": "q"})
    time.sleep(0.5)
    assert status(url, run_id)[0] == "ENQUEUED"
    worker = Worker(url, "late-1")
    try:
        state, output = wait_terminal(url, run_id)
    finally:
        worker.stop()
    assert (state, output["outputs"]) == ("SUCCESS", {"result": "q-a-b"})


@pytest.mark.parametrize("kill_during", ["a", "b"])
def test_kill_9_during_a_node_resumes_where_it_left(url: str, kill_during: str) -> None:
    """The node in flight runs again (steps are at-least-once); completed nodes do not."""
    document = chain(("a", 2 if kill_during == "a" else 0), ("b", 2), ("c", 0))
    worker = Worker(url, f"kill-{kill_during}")
    run_id = enqueue(url, document, {"x": "k"})
    wait_for(lambda: (kill_during, "start") in ledger(url, run_id), 20, f"{kill_during} to start")
    worker.kill9()
    assert status(url, run_id)[0] == "PENDING"
    restarted = Worker(url, f"kill-{kill_during}")  # same executor id: DBOS recovers it
    try:
        state, output = wait_terminal(url, run_id)
    finally:
        restarted.stop()
    assert (state, output["outputs"]) == ("SUCCESS", {"result": "k-a-b-c"})
    expected = Counter({"a": 1, "b": 1, "c": 1})
    expected[kill_during] = 2
    assert starts(url, run_id) == expected
    assert_clean_stream(url, run_id, CHAIN)


def test_dead_worker_runs_are_taken_over_by_a_live_one(url: str) -> None:
    first, second = Worker(url, "pool-1", dead_after=3), Worker(url, "pool-2", dead_after=3)
    try:
        run_id = enqueue(url, chain(("a", 0), ("b", 4), ("c", 0)), {"x": "t"})
        wait_for(lambda: ("b", "start") in ledger(url, run_id), 20, "b to start")
        owner = status(url, run_id)[2]
        victim, survivor = (first, second) if owner == "pool-1" else (second, first)
        killed_at = time.monotonic()
        victim.kill9()
        state, output = wait_terminal(url, run_id, timeout=45)
        took = time.monotonic() - killed_at
        assert survivor.alive()
        assert not victim.alive()
    finally:
        first.stop()
        second.stop()
    assert (state, output["outputs"]) == ("SUCCESS", {"result": "t-a-b-c"})
    assert status(url, run_id)[2] == survivor.executor_id
    assert took < 30, f"takeover took {took:.1f}s"
    assert starts(url, run_id) == Counter({"a": 1, "b": 2, "c": 1})
    assert_clean_stream(url, run_id, CHAIN)


def test_duplicate_start_runs_once(url: str) -> None:
    run_id = enqueue(
        url,
        chain(
            ("a", 0.5),
        ),
        {"x": "d"},
    )
    assert (
        enqueue(
            url,
            chain(
                ("a", 0.5),
            ),
            {"x": "d"},
            run_id=run_id,
        )
        == run_id
    )
    worker = Worker(url, "dup-1")
    try:
        state, _ = wait_terminal(url, run_id)
        time.sleep(1)  # room for a second execution to show up, were there one
    finally:
        worker.stop()
    assert state == "SUCCESS"
    assert starts(url, run_id) == Counter({"a": 1})


def test_poison_node_stops_after_bounded_attempts(url: str) -> None:
    document = {
        "schema": 1,
        "nodes": [
            {"id": "inp", "type": "input", "config": {"fields": [{"name": "x", "type": "text"}]}},
            {"id": "boom", "type": "test_crash"},
            {"id": "out", "type": "output", "config": {"name": "result"}},
        ],
        "edges": [{"from": "inp.x", "to": "boom.value"}, {"from": "boom.value", "to": "out.value"}],
    }
    run_id = enqueue(url, document, {"x": "p"})
    restarts = 0
    while status(url, run_id)[0] != "MAX_RECOVERY_ATTEMPTS_EXCEEDED":
        assert restarts <= engine.MAX_RECOVERY_ATTEMPTS + 3, "the poison run was never stopped"
        worker = Worker(url, "poison-1")
        wait_for(
            lambda w=worker: not w.alive() or status(url, run_id)[0] not in ("PENDING", "ENQUEUED"),
            30,
            "the worker to crash or the run to stop",
        )
        worker.stop()
        restarts += 1
    attempts = starts(url, run_id)["boom"]
    assert 1 <= attempts <= engine.MAX_RECOVERY_ATTEMPTS + 1


def test_a_running_node_shows_in_the_stream_while_it_runs(url: str) -> None:
    worker = Worker(url, "live-1")
    try:
        run_id = enqueue(url, chain(("a", 0), ("slow", 3)), {"x": "l"})
        wait_for(lambda: ("slow", "start") in ledger(url, run_id), 20, "slow to start")
        started = wait_for(
            lambda: [
                e
                for e in engine.read_events(url, run_id)
                if (e["type"], e["node"]) == ("NODE_STARTED", "slow")
            ],
            2.0,  # well inside the node's 3 s: the checks below see it still running
            "NODE_STARTED of the running node",
        )
        assert started
        assert status(url, run_id)[0] == "PENDING"  # still running when it showed up
        assert not any(
            e["type"] == "NODE_COMPLETED" and e["node"] == "slow"
            for e in engine.read_events(url, run_id)
        )
        assert wait_terminal(url, run_id)[0] == "SUCCESS"
    finally:
        worker.stop()
