"""Cancelling a run that waits for a person: the run ends at once (not at the waiting step's
next look), its request leaves the inbox, and an answer given afterwards changes nothing."""

import time
from typing import Any

import pytest

from tests.factories import OrgFixture
from tests.flows.test_flows_api import base, wait_run
from tests.flows.test_inbox import _answer, _start

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.mark.usefixtures("engine_worker")
def test_a_cancelled_waiting_run_stops_and_its_request_closes(
    org: OrgFixture, client_for: Any
) -> None:
    owner = client_for(org.owner)
    run_id = _start(owner, org, {"role": "editor"}, 120)
    assert [r["node_id"] for r in owner.get("/api/inbox").json()] == ["ask"]

    cancelled_at = time.monotonic()
    assert owner.post(f"{base(org)}/runs/{run_id}/cancel").status_code == 202
    done = wait_run(owner, org, run_id, timeout=10)
    assert done["status"] == "cancelled"
    assert time.monotonic() - cancelled_at < 5  # not the step's 30-second recheck
    assert owner.get("/api/inbox").json() == []
    [request] = owner.get(f"{base(org)}/runs/{run_id}/requests").json()
    assert request["status"] == "cancelled"
    assert request["can_answer"] is False

    late = _answer(owner, org, run_id, "approve")
    assert late.status_code == 409
    assert late.json()["code"] == "run_cancelled"
    assert owner.get(f"{base(org)}/runs/{run_id}").json()["outputs"] in (None, {})


@pytest.mark.usefixtures("engine_worker")
def test_a_cancelled_waiting_run_resumed_asks_again(org: OrgFixture, client_for: Any) -> None:
    owner = client_for(org.owner)
    run_id = _start(owner, org, {"role": "editor"}, 40)
    assert owner.post(f"{base(org)}/runs/{run_id}/cancel").status_code == 202
    assert wait_run(owner, org, run_id, timeout=10)["status"] == "cancelled"
    assert owner.post(f"{base(org)}/runs/{run_id}/resume").status_code == 202
    deadline = time.monotonic() + 30
    while [r["status"] for r in owner.get(f"{base(org)}/runs/{run_id}/requests").json()] != [
        "pending"
    ]:
        assert time.monotonic() < deadline, "the resumed run did not ask again"
        time.sleep(0.1)
    assert [r["node_id"] for r in owner.get("/api/inbox").json()] == ["ask"]
    assert _answer(owner, org, run_id, "approve").status_code == 200
    done = wait_run(owner, org, run_id)
    assert done["status"] == "completed", done["error"]
    assert done["outputs"] == {"paid": 40}
