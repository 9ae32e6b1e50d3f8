"""An approval inside a called flow belongs to the run a user started: it is in the inbox
and the run's requests under that run (named `<node>~<its node>`), answered there, and the
started run goes on; the calling node is the one shown waiting."""

import time
from typing import Any

import pytest

from tests.factories import OrgFixture
from tests.flows.test_flows_api import base, create_flow, wait_run
from tests.flows.test_inbox import _flow

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.mark.usefixtures("engine_worker")
def test_an_approval_in_a_called_flow_is_answered_through_the_started_run(
    org: OrgFixture, other_org: OrgFixture, client_for: Any
) -> None:
    owner = client_for(org.owner)
    child = create_flow(owner, org, _flow({"role": "editor"}))  # amount -> ask -> paid
    parent = {
        "schema": 1,
        "nodes": [
            {"id": "args", "type": "constant", "config": {"value": {"amount": 75}, "type": "json"}},
            {"id": "call", "type": "execute_flow", "config": {"flow_id": child}},
            {"id": "out", "type": "output", "config": {"name": "child"}},
        ],
        "edges": [
            {"from": "args.value", "to": "call.inputs"},
            {"from": "call.outputs", "to": "out.value"},
        ],
    }
    run_id = owner.post(
        f"{base(org)}/flows/{create_flow(owner, org, parent)}/runs",
        {},
        content_type="application/json",
    ).json()["id"]

    deadline = time.monotonic() + 30
    while not (inbox := owner.get("/api/inbox").json()) and time.monotonic() < deadline:
        time.sleep(0.1)
    [request] = inbox
    assert request["run_id"] == run_id
    assert request["node_id"] == "call~ask"
    assert request["node"] == "call"  # the parent's node that waits
    assert request["message"] == "Pay 75 EUR?"
    [listed] = owner.get(f"{base(org)}/runs/{run_id}/requests").json()
    assert listed["node_id"] == "call~ask"
    assert listed["can_answer"] is True

    # Another organisation cannot reach it through its own runs.
    foreign = client_for(other_org.owner).post(
        f"/api/orgs/{other_org.org.slug}/workspaces/{other_org.workspace.id}/runs/{run_id}"
        "/requests/call~ask/answer",
        {"decision": "approve"},
        content_type="application/json",
    )
    assert foreign.status_code == 404

    answered = owner.post(
        f"{base(org)}/runs/{run_id}/requests/call~ask/answer",
        {"decision": "approve", "comment": "fine"},
        content_type="application/json",
    )
    assert answered.status_code == 200, answered.content
    assert answered.json()["status"] == "approved"
    done = wait_run(owner, org, run_id)
    assert done["status"] == "completed", done["error"]
    assert done["outputs"] == {"child": {"paid": 75}}
    again = owner.post(
        f"{base(org)}/runs/{run_id}/requests/call~ask/answer",
        {"decision": "reject"},
        content_type="application/json",
    )
    assert again.status_code == 409
    assert owner.get("/api/inbox").json() == []
