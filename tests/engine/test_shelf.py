"""Runs that wait long for people leave the worker's memory (engine/_shelf.py): an answer, or
the deadline, brings them back on any worker, without running anything twice."""

from collections import Counter
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

import engine
from tests.engine.harness import Worker, enqueue, fresh_database, ledger, wait_for, wait_terminal
from tests.engine.test_human import (
    _answer,
    _approval_flow,
    _event_types,
    _parallel_flow,
    _request,
    _starts,
    _timeout_flow,
)

pytestmark = pytest.mark.durability

SHELVE_AFTER = 0.3  # seconds: the worker's default is 5


@pytest.fixture(scope="module")
def url() -> Iterator[str]:
    with fresh_database("ff_shelf") as database_url:
        yield database_url


def _shelf(url: str, run_id: str) -> tuple[Any, ...] | None:
    """(executor of the run's DBOS row, its status, wake_at) while the run is on the shelf."""
    with psycopg.connect(url) as conn:
        return conn.execute(
            "SELECT ws.executor_id, ws.status, s.wake_at FROM fireflow.shelved_run s "
            "JOIN dbos.workflow_status ws ON ws.workflow_uuid = s.run_id WHERE s.run_id = %s",
            (run_id,),
        ).fetchone()


def test_a_long_wait_leaves_the_worker_and_the_answer_resumes_it_on_another(url: str) -> None:
    worker = Worker(url, "shelf-a", shelve_after=SHELVE_AFTER)
    run_id = enqueue(url, _approval_flow(), {"x": "42 EUR"})
    executor, status, wake_at = wait_for(lambda: _shelf(url, run_id), 30, "the run shelved")
    # Nobody's run now: no recovery takes it, and its worker may go away.
    assert (executor, status, wake_at) == (engine.SHELVED_EXECUTOR, "PENDING", None)
    worker.kill9()
    other = Worker(url, "shelf-b", shelve_after=SHELVE_AFTER)
    try:
        assert _answer(url, run_id, "approved", comment="fine").status == "answered"
        state, output = wait_terminal(url, run_id, timeout=30)
    finally:
        other.stop()
    assert state == "SUCCESS"
    assert output["outputs"]["approved"] == "42 EUR-before-yes"
    assert output["outputs"]["decision"]["comment"] == "fine"
    # The step before the approval ran once; the approval was asked once and resolved once.
    assert _starts(url, run_id) == Counter({"before": 1, "yes": 1})
    types = _event_types(url, run_id)
    assert (types.count("HITL_REQUESTED"), types.count("HITL_RESOLVED")) == (1, 1)
    assert types[-1] == "FLOW_COMPLETED"
    assert _shelf(url, run_id) is None


def test_a_shelved_request_times_out_at_its_deadline(url: str) -> None:
    worker = Worker(url, "shelf-deadline", shelve_after=SHELVE_AFTER)
    try:
        run_id = enqueue(url, _timeout_flow(timeout_seconds=3, on_timeout="branch"), {"x": "slow"})
        deadline = wait_for(lambda: _request(url, run_id), 30, "the request")[2]
        shelved = wait_for(lambda: _shelf(url, run_id), 30, "the run shelved")
        assert shelved[2] == deadline  # woken when the request is due
        state, output = wait_terminal(url, run_id, timeout=30)
    finally:
        worker.stop()
    assert state == "SUCCESS"
    assert output["outputs"]["timed_out"] == "slow-before-late"
    assert output["outputs"]["decision"]["outcome"] == "timed_out"
    assert _starts(url, run_id) == Counter({"before": 1, "late": 1})


def test_parallel_waits_shelve_together_and_each_answer_resumes_the_run(url: str) -> None:
    worker = Worker(url, "shelf-parallel", shelve_after=SHELVE_AFTER)
    try:
        run_id = enqueue(url, _parallel_flow(), {"x": "v"})
        wait_for(lambda: _shelf(url, run_id), 30, "the run shelved")
        assert _answer(url, run_id, "rejected", node_id="ask_b").status == "answered"
        wait_for(lambda: ("no_b", "end") in ledger(url, run_id), 30, "the answered branch")
        # Back with one wait left: it shelves again, and the last answer ends the run.
        wait_for(lambda: _shelf(url, run_id), 30, "the run shelved again")
        assert _answer(url, run_id, "approved", node_id="ask_a").status == "answered"
        state, output = wait_terminal(url, run_id, timeout=30)
    finally:
        worker.stop()
    assert state == "SUCCESS"
    assert output["outputs"] == {"yes_a": "v-a-yes", "no_b": "v-b-no"}
    assert _starts(url, run_id) == Counter({"yes_a": 1, "no_b": 1})


def test_a_run_still_working_in_another_branch_is_not_shelved(url: str) -> None:
    flow = _approval_flow()
    flow["nodes"] += [
        {"id": "slow", "type": "test_ledger", "config": {"suffix": "-slow", "seconds": 3}},
        {"id": "out_slow", "type": "output", "config": {"name": "slow"}},
    ]
    flow["edges"] += [
        {"from": "inp.x", "to": "slow.value"},
        {"from": "slow.value", "to": "out_slow.value"},
    ]
    worker = Worker(url, "shelf-busy", shelve_after=SHELVE_AFTER)
    try:
        run_id = enqueue(url, flow, {"x": "w"})
        wait_for(lambda: ("slow", "start") in ledger(url, run_id), 30, "the slow branch")
        wait_for(lambda: _request(url, run_id), 30, "the request")
        # The slow branch works for 3 s: the run stays in memory until it is done.
        assert ("slow", "end") not in ledger(url, run_id)
        assert _shelf(url, run_id) is None
        wait_for(lambda: _shelf(url, run_id), 30, "the run shelved once only waits are left")
        assert ("slow", "end") in ledger(url, run_id)
        assert _answer(url, run_id, "approved").status == "answered"
        state, output = wait_terminal(url, run_id, timeout=30)
    finally:
        worker.stop()
    assert state == "SUCCESS"
    assert output["outputs"]["slow"] == "w-slow"
    assert output["outputs"]["approved"] == "w-before-yes"
    assert _starts(url, run_id) == Counter({"before": 1, "slow": 1, "yes": 1})


def test_a_cancelled_shelved_run_leaves_the_shelf_and_answers_change_nothing(url: str) -> None:
    worker = Worker(url, "shelf-cancel", shelve_after=SHELVE_AFTER)
    try:
        run_id = enqueue(url, _approval_flow(), {"x": "stop"})
        wait_for(lambda: _shelf(url, run_id), 30, "the run shelved")
        client = engine.EngineClient(url)
        try:
            client.cancel(run_id)
        finally:
            client.close()
        with psycopg.connect(url) as conn, conn.cursor() as cursor:
            assert engine.withdraw_requests(cursor, run_id) == 1
        assert _shelf(url, run_id) is None
        late = _answer(url, run_id, "approved")
        assert (late.status, (late.answer or {}).get("outcome")) == (
            "already_answered",
            "cancelled",
        )
    finally:
        worker.stop()
    with psycopg.connect(url) as conn:
        row = conn.execute(
            "SELECT status FROM dbos.workflow_status WHERE workflow_uuid = %s", (run_id,)
        ).fetchone()
    assert row == ("CANCELLED",)
    assert _starts(url, run_id) == Counter({"before": 1})
    # The run's events say why the approval ended, as its step would have in memory.
    with psycopg.connect(url) as conn:
        failed = conn.execute(
            "SELECT payload->>'error' FROM fireflow.run_event "
            "WHERE run_id = %s AND node = 'ask' AND type = 'NODE_FAILED'",
            (run_id,),
        ).fetchall()
    assert failed == [("the run was cancelled while node 'ask' waited",)]
