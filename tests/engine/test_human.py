"""The approval node on real workers: a wait survives kill -9 and restarts, an answer given
while no worker runs is picked up, the deadline is fixed once, and parallel approvals each
get their own answer."""

import time
from collections import Counter
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import psycopg
import pytest

import engine
from tests.engine.harness import (
    Worker,
    chain,
    enqueue,
    fresh_database,
    ledger,
    wait_for,
    wait_terminal,
)

pytestmark = pytest.mark.durability


@pytest.fixture(scope="module")
def url() -> Iterator[str]:
    with fresh_database() as database_url:
        yield database_url


def _approval_flow(**approval: Any) -> dict[str, Any]:
    """input x -> before (ledger) -> ask (approval) -> yes / no (ledger) -> outputs."""
    return {
        "schema": 1,
        "nodes": [
            {"id": "inp", "type": "input", "config": {"fields": [{"name": "x", "type": "text"}]}},
            {"id": "before", "type": "test_ledger", "config": {"suffix": "-before"}},
            {
                "id": "ask",
                "type": "approval",
                "config": {"title": "Pay?", "message": "Pay {{ data }}?", **approval},
            },
            {"id": "yes", "type": "test_ledger", "config": {"suffix": "-yes"}},
            {"id": "no", "type": "test_ledger", "config": {"suffix": "-no"}},
            {"id": "out_yes", "type": "output", "config": {"name": "approved"}},
            {"id": "out_no", "type": "output", "config": {"name": "rejected"}},
            {"id": "out_decision", "type": "output", "config": {"name": "decision"}},
        ],
        "edges": [
            {"from": "inp.x", "to": "before.value"},
            {"from": "before.value", "to": "ask.data"},
            {"from": "ask.approved", "to": "yes.value"},
            {"from": "ask.rejected", "to": "no.value"},
            {"from": "yes.value", "to": "out_yes.value"},
            {"from": "no.value", "to": "out_no.value"},
            {"from": "ask.decision", "to": "out_decision.value"},
        ],
    }


def _request(url: str, run_id: str, node_id: str = "ask") -> tuple[Any, ...] | None:
    with psycopg.connect(url) as conn:
        return conn.execute(
            "SELECT request, created_at, deadline, answer FROM fireflow.human_request "
            "WHERE run_id = %s AND node_id = %s",
            (run_id, node_id),
        ).fetchone()


def _answer(
    url: str, run_id: str, outcome: str, node_id: str = "ask", comment: str = ""
) -> engine.AnswerResult:
    with psycopg.connect(url) as conn, conn.cursor() as cursor:
        return engine.answer_request(
            cursor,
            run_id=run_id,
            node_id=node_id,
            outcome=outcome,  # type: ignore[arg-type]
            by="ana@example.com",
            comment=comment,
        )


def _recoveries(url: str, run_id: str) -> int:
    with psycopg.connect(url) as conn:
        row = conn.execute(
            "SELECT recovery_attempts FROM dbos.workflow_status WHERE workflow_uuid = %s",
            (run_id,),
        ).fetchone()
    return int(row[0]) if row and row[0] is not None else 0


def _starts(url: str, run_id: str) -> Counter[str]:
    return Counter(node for node, phase in ledger(url, run_id) if phase == "start")


def test_a_wait_survives_two_restarts_and_continues_from_the_approval(url: str) -> None:
    worker = Worker(url, "hitl-restarts")
    run_id = enqueue(url, _approval_flow(), {"x": "42 EUR"})
    wait_for(lambda: _request(url, run_id), 30, "the request")
    for _ in range(2):
        seen = _recoveries(url, run_id)
        worker.kill9()
        worker = Worker(url, "hitl-restarts")
        wait_for(lambda: _recoveries(url, run_id) > seen, 30, "the run to be recovered")  # noqa: B023
    request, _created, deadline, answer = _request(url, run_id)  # type: ignore[misc]
    assert (request["title"], request["message"], deadline, answer) == (
        "Pay?",
        "Pay 42 EUR-before?",
        None,
        None,
    )
    assert _answer(url, run_id, "approved", comment="ok").status == "answered"
    try:
        state, output = wait_terminal(url, run_id, timeout=30)
    finally:
        worker.stop()
    assert state == "SUCCESS"
    outputs = output["outputs"]
    assert outputs["approved"] == "42 EUR-before-yes"
    assert "rejected" not in outputs
    assert {k: outputs["decision"][k] for k in ("outcome", "by", "comment")} == {
        "outcome": "approved",
        "by": "ana@example.com",
        "comment": "ok",
    }
    # The node before the approval ran once; only the approved branch ran after it.
    assert _starts(url, run_id) == Counter({"before": 1, "yes": 1})
    # A second answer, or the same one replayed, changes nothing.
    again = _answer(url, run_id, "rejected")
    assert (again.status, again.answer and again.answer["outcome"]) == (
        "already_answered",
        "approved",
    )
    events = engine.read_events(url, run_id)
    types = [e["type"] for e in events if e["node"] == "ask"]
    assert types.count("HITL_REQUESTED") == 1
    assert types.count("HITL_RESOLVED") == 1
    resolved = next(e for e in events if e["type"] == "HITL_RESOLVED")
    assert resolved["payload"]["outcome"] == "approved"


def test_an_answer_given_while_no_worker_runs_is_picked_up(url: str) -> None:
    worker = Worker(url, "hitl-offline")
    run_id = enqueue(url, _approval_flow(), {"x": "refund"})
    wait_for(lambda: _request(url, run_id), 30, "the request")
    worker.kill9()
    assert _answer(url, run_id, "rejected", comment="too much").status == "answered"
    worker = Worker(url, "hitl-offline")
    try:
        state, output = wait_terminal(url, run_id, timeout=30)
    finally:
        worker.stop()
    assert state == "SUCCESS"
    assert output["outputs"]["rejected"] == "refund-before-no"
    assert "approved" not in output["outputs"]
    assert output["outputs"]["decision"]["comment"] == "too much"
    assert _starts(url, run_id) == Counter({"before": 1, "no": 1})


def test_the_deadline_is_fixed_once_and_on_timeout_applies(url: str) -> None:
    worker = Worker(url, "hitl-timeout")
    run_id = enqueue(url, _approval_flow(timeout_seconds=6, on_timeout="approve"), {"x": "late"})
    _request_row = wait_for(lambda: _request(url, run_id), 30, "the request")
    deadline: datetime = _request_row[2]
    assert deadline is not None
    worker.kill9()
    worker = Worker(url, "hitl-timeout")  # back long before the deadline
    try:
        state, output = wait_terminal(url, run_id, timeout=30)
    finally:
        worker.stop()
    assert state == "SUCCESS"
    assert output["outputs"]["approved"] == "late-before-yes"
    assert output["outputs"]["decision"]["outcome"] == "timed_out"
    assert _request(url, run_id)[2] == deadline  # type: ignore[index]
    with psycopg.connect(url) as conn:
        (yes_started,) = conn.execute(
            "SELECT at FROM fireflow_test.ledger "
            "WHERE run_id = %s AND node = 'yes' AND phase = 'start'",
            (run_id,),
        ).fetchone()  # type: ignore[misc]
    # Continued at the original deadline: restarted, the wait would have run 6 s more.
    assert 0 <= (yes_started - deadline).total_seconds() < 2.5
    # An answer after the deadline changes nothing.
    late = _answer(url, run_id, "rejected")
    assert (late.status, late.answer and late.answer["outcome"]) == ("expired", "timed_out")


def _parallel_flow() -> dict[str, Any]:
    nodes: list[dict[str, Any]] = [
        {"id": "inp", "type": "input", "config": {"fields": [{"name": "x", "type": "text"}]}}
    ]
    edges: list[dict[str, str]] = []
    for side in ("a", "b"):
        nodes += [
            {"id": f"ask_{side}", "type": "approval", "config": {"title": f"Side {side}"}},
            {"id": f"yes_{side}", "type": "test_ledger", "config": {"suffix": f"-{side}-yes"}},
            {"id": f"no_{side}", "type": "test_ledger", "config": {"suffix": f"-{side}-no"}},
            {"id": f"out_yes_{side}", "type": "output", "config": {"name": f"yes_{side}"}},
            {"id": f"out_no_{side}", "type": "output", "config": {"name": f"no_{side}"}},
        ]
        edges += [
            {"from": "inp.x", "to": f"ask_{side}.data"},
            {"from": f"ask_{side}.approved", "to": f"yes_{side}.value"},
            {"from": f"ask_{side}.rejected", "to": f"no_{side}.value"},
            {"from": f"yes_{side}.value", "to": f"out_yes_{side}.value"},
            {"from": f"no_{side}.value", "to": f"out_no_{side}.value"},
        ]
    return {"schema": 1, "nodes": nodes, "edges": edges}


def test_parallel_approvals_answered_in_reverse_order_each_get_their_own(url: str) -> None:
    worker = Worker(url, "hitl-parallel")
    run_id = enqueue(url, _parallel_flow(), {"x": "v"})
    rows = wait_for(
        lambda: (
            all(_request(url, run_id, f"ask_{s}") for s in "ab")
            and {s: _request(url, run_id, f"ask_{s}") for s in "ab"}
        ),
        30,
        "both requests",
    )
    first, second = sorted("ab", key=lambda s: rows[s][1])
    # The later request is answered first (rejected), then the worker dies and comes back,
    # then the earlier one is answered (approved).
    assert _answer(url, run_id, "rejected", node_id=f"ask_{second}").status == "answered"
    wait_for(lambda: ("no_" + second, "end") in ledger(url, run_id), 30, "the first branch")
    worker.kill9()
    worker = Worker(url, "hitl-parallel")
    assert _answer(url, run_id, "approved", node_id=f"ask_{first}").status == "answered"
    try:
        state, output = wait_terminal(url, run_id, timeout=30)
    finally:
        worker.stop()
    assert state == "SUCCESS"
    assert output["outputs"] == {f"yes_{first}": f"v-{first}-yes", f"no_{second}": f"v-{second}-no"}
    assert _starts(url, run_id) == Counter({f"yes_{first}": 1, f"no_{second}": 1})


def _timeout_flow(**approval: Any) -> dict[str, Any]:
    """_approval_flow with the `timed_out` branch taken to a ledger node and an output."""
    flow = _approval_flow(**approval)
    flow["nodes"] += [
        {"id": "late", "type": "test_ledger", "config": {"suffix": "-late"}},
        {"id": "out_late", "type": "output", "config": {"name": "timed_out"}},
    ]
    flow["edges"] += [
        {"from": "ask.timed_out", "to": "late.value"},
        {"from": "late.value", "to": "out_late.value"},
    ]
    return flow


def _event_types(url: str, run_id: str) -> list[str]:
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT type FROM fireflow.run_event WHERE run_id = %s ORDER BY seq", (run_id,)
        ).fetchall()
    return [r[0] for r in rows]


def test_a_timeout_can_continue_on_its_own_branch(url: str) -> None:
    worker = Worker(url, "hitl-branch")
    try:
        run_id = enqueue(url, _timeout_flow(timeout_seconds=2, on_timeout="branch"), {"x": "slow"})
        state, output = wait_terminal(url, run_id, timeout=30)
    finally:
        worker.stop()
    assert state == "SUCCESS"
    assert output["outputs"]["timed_out"] == "slow-before-late"
    assert "approved" not in output["outputs"]
    assert "rejected" not in output["outputs"]
    assert output["outputs"]["decision"]["outcome"] == "timed_out"


ESCALATION = {
    "timeout_seconds": 2,
    "on_timeout": "escalate",
    "approvers": {"role": "editor"},
    "escalate": {
        "approvers": {"role": "owner", "users": ["Boss@Example.com"], "caller": False},
        "timeout_seconds": 60,
    },
}


def test_an_unanswered_request_escalates_once_and_the_escalation_answers(url: str) -> None:
    worker = Worker(url, "hitl-escalate")
    try:
        run_id = enqueue(url, _timeout_flow(**ESCALATION), {"x": "big"})
        first = wait_for(lambda: _request(url, run_id), 30, "the request")[2]
        escalated = wait_for(
            lambda: (row := _request(url, run_id)) and "escalated" in row[0] and row,
            30,
            "the escalation",
        )
        request, _created, deadline, answer = escalated
        assert answer is None
        assert request["approvers"] == {
            "role": "owner",
            "users": ["boss@example.com"],
            "caller": False,
        }
        assert request["escalated"]["from"]["role"] == "editor"
        # The escalation's deadline counts from the first one.
        assert (deadline - first).total_seconds() == pytest.approx(60, abs=0.01)
        # A worker killed and restarted does not escalate again, nor move the deadline.
        worker.kill9()
        worker = Worker(url, "hitl-escalate")
        wait_for(lambda: _recoveries(url, run_id) >= 1, 30, "the run to be recovered")
        assert _request(url, run_id)[2] == deadline  # type: ignore[index]
        assert _answer(url, run_id, "approved", comment="fine by me").status == "answered"
        state, output = wait_terminal(url, run_id, timeout=30)
    finally:
        worker.stop()
    assert state == "SUCCESS"
    assert output["outputs"]["approved"] == "big-before-yes"
    assert output["outputs"]["decision"]["escalated"] is True
    types = _event_types(url, run_id)
    assert types.count("HITL_ESCALATED") == 1
    assert types.index("HITL_ESCALATED") < types.index("HITL_RESOLVED")


def test_an_escalation_nobody_answers_ends_by_its_own_rule_even_after_a_worker_was_down(
    url: str,
) -> None:
    flow = _timeout_flow(
        **{
            **ESCALATION,
            "escalate": {**ESCALATION["escalate"], "timeout_seconds": 3, "on_timeout": "branch"},
        }  # type: ignore[dict-item]
    )
    worker = Worker(url, "hitl-escalate-late")
    run_id = enqueue(url, flow, {"x": "quiet"})
    first = wait_for(lambda: _request(url, run_id), 30, "the request")[2]
    worker.kill9()  # down across both deadlines
    while datetime.now(first.tzinfo) < first + timedelta(seconds=4):
        time.sleep(0.2)
    worker = Worker(url, "hitl-escalate-late")
    try:
        state, output = wait_terminal(url, run_id, timeout=30)
    finally:
        worker.stop()
    assert state == "SUCCESS"
    assert output["outputs"]["timed_out"] == "quiet-before-late"
    assert output["outputs"]["decision"]["outcome"] == "timed_out"
    assert output["outputs"]["decision"]["escalated"] is True
    request, _created, deadline, _answer_row = _request(url, run_id)  # type: ignore[misc]
    assert (deadline - first).total_seconds() == pytest.approx(3, abs=0.01)
    assert request["approvers"]["role"] == "owner"


def test_waiting_runs_give_their_slots_to_working_ones(url: str) -> None:
    """A worker of two slots holds six runs waiting for people and still runs a seventh that
    does not wait: a wait holds no slot (engine/_slots.py)."""
    worker = Worker(url, "hitl-slots", concurrency=2)
    try:
        waiting = [enqueue(url, _approval_flow(), {"x": f"w{i}"}) for i in range(6)]
        for run_id in waiting:
            wait_for(lambda: _request(url, run_id), 30, "every run to reach its approval")  # noqa: B023
        quick = enqueue(url, chain(("a", 0.0)), {"x": "q"})
        state, output = wait_terminal(url, quick, timeout=30)
        assert state == "SUCCESS"
        assert output["outputs"]["result"] == "q-a"
        for run_id in waiting:
            assert _answer(url, run_id, "approved").status == "answered"
        outcomes = [wait_terminal(url, run_id, timeout=30) for run_id in waiting]
    finally:
        worker.stop()
    assert [state for state, _ in outcomes] == ["SUCCESS"] * 6
    assert [out["outputs"]["approved"] for _, out in outcomes] == [
        f"w{i}-before-yes" for i in range(6)
    ]


def test_a_wait_outlives_a_deploy_of_new_code(url: str) -> None:
    """The upgrade path: the old release's worker stops (SIGTERM, as a deploy does) while a run
    waits; a worker of the new release (another executor, more code: a node type and a
    workflow the old one lacked) takes the run over and, once answered, finishes it from the
    approval without running earlier nodes again. Runs carry the engine's pinned application
    version, not one derived from the code."""
    old = Worker(url, "release-1")
    run_id = enqueue(url, _approval_flow(), {"x": "old"})
    wait_for(lambda: _request(url, run_id), 30, "the request")
    old.stop()
    with psycopg.connect(url) as conn:
        row = conn.execute(
            "SELECT application_version FROM dbos.workflow_status WHERE workflow_uuid = %s",
            (run_id,),
        ).fetchone()
    assert row is not None
    assert row[0] == engine.APPLICATION_VERSION
    new = Worker(url, "release-2", dead_after=2.0, extra_modules="tests.engine.plugin_release_2")
    try:
        wait_for(lambda: _recoveries(url, run_id) >= 1, 30, "the new release to take the run")
        assert _answer(url, run_id, "approved").status == "answered"
        state, output = wait_terminal(url, run_id, timeout=30)
    finally:
        new.stop()
    assert state == "SUCCESS"
    assert output["outputs"]["approved"] == "old-before-yes"
    assert _starts(url, run_id)["before"] == 1
