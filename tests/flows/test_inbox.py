"""Approvals through the API on a real worker: the inbox shows a request to the people who
may answer it and to no one else; the first answer continues the run on its branch; a
second answer, a viewer, another organisation change nothing (SECURITY.md item 9)."""

from typing import Any

import pytest
from django.test import Client

from tenants.models import AuditEvent
from tenants.roles import OrgRole, WorkspaceRole
from tests.engine.harness import wait_for
from tests.factories import OrgFixture
from tests.flows.test_flows_api import base, wait_run
from tests.helpers import wait_for_request

pytestmark = pytest.mark.django_db(transaction=True)


def _flow(approvers: dict[str, Any]) -> dict[str, Any]:
    return {
        "schema": 1,
        "nodes": [
            {
                "id": "inp",
                "type": "input",
                "config": {"fields": [{"name": "amount", "type": "number"}]},
            },
            {
                "id": "ask",
                "type": "approval",
                "config": {
                    "title": "Pay the supplier",
                    "message": "Pay {{ data }} EUR?",
                    "approvers": approvers,
                },
            },
            {"id": "paid", "type": "output", "config": {"name": "paid"}},
            {"id": "refused", "type": "output", "config": {"name": "refused"}},
        ],
        "edges": [
            {"from": "inp.amount", "to": "ask.data"},
            {"from": "ask.approved", "to": "paid.value"},
            {"from": "ask.rejected", "to": "refused.value"},
        ],
    }


def _start(client: Client, org: OrgFixture, approvers: dict[str, Any], amount: int) -> str:
    created = client.post(
        f"{base(org)}/flows",
        {"name": "Payments", "document": _flow(approvers)},
        content_type="application/json",
    )
    assert created.status_code == 201, created.content
    started = client.post(
        f"{base(org)}/flows/{created.json()['id']}/runs",
        {"inputs": {"amount": amount}},
        content_type="application/json",
    )
    assert started.status_code == 201, started.content
    run_id = str(started.json()["id"])
    return wait_for_request(client, base(org), run_id, "reach its approval")


def _answer(client: Client, org: OrgFixture, run_id: str, decision: str, comment: str = "") -> Any:
    return client.post(
        f"{base(org)}/runs/{run_id}/requests/ask/answer",
        {"decision": decision, "comment": comment},
        content_type="application/json",
    )


def test_editors_see_and_answer_viewers_and_other_orgs_do_not(
    engine_worker: str, org: OrgFixture, other_org: OrgFixture, client_for: Any
) -> None:
    owner = client_for(org.owner)
    editor, viewer = org.add_member(OrgRole.MEMBER), org.add_member(OrgRole.MEMBER)
    org.grant(editor, WorkspaceRole.EDITOR)
    org.grant(viewer, WorkspaceRole.VIEWER)
    as_editor, as_viewer = client_for(editor), client_for(viewer)
    outsider = client_for(other_org.owner)
    run_id = _start(owner, org, {"role": "editor", "caller": False}, 120)

    inbox = as_editor.get("/api/inbox").json()
    assert [(i["run_id"], i["node_id"]) for i in inbox] == [(run_id, "ask")]
    item = inbox[0]
    assert (item["title"], item["message"], item["data"]) == (
        "Pay the supplier",
        "Pay 120 EUR?",
        120,
    )
    assert (item["org_slug"], item["workspace_id"], item["flow_name"]) == (
        org.org.slug,
        str(org.workspace.id),
        "Payments",
    )
    assert item["status"] == "pending"
    assert item["can_answer"] is True
    assert as_viewer.get("/api/inbox").json() == []
    assert outsider.get("/api/inbox").json() == []

    # A viewer may read the run's requests but not answer them; another organisation
    # cannot even see the run.
    listed = as_viewer.get(f"{base(org)}/runs/{run_id}/requests").json()
    assert [(r["status"], r["can_answer"]) for r in listed] == [("pending", False)]
    refused = _answer(as_viewer, org, run_id, "approve")
    assert (refused.status_code, refused.json()["code"]) == (403, "not_an_approver")
    assert _answer(outsider, org, run_id, "approve").status_code == 404
    assert outsider.get(f"{base(org)}/runs/{run_id}/requests").status_code == 404

    answered = _answer(as_editor, org, run_id, "approve", "paid by transfer")
    assert answered.status_code == 200, answered.content
    assert (answered.json()["status"], answered.json()["answered_by"]) == ("approved", editor.email)
    done = wait_run(owner, org, run_id)
    assert done["status"] == "completed"
    assert done["outputs"] == {"paid": 120}

    # The second answer (or a replay of the first) changes nothing, and says what stands.
    again = _answer(owner, org, run_id, "reject")
    assert again.status_code == 409
    body = again.json()
    assert body["code"] == "already_answered"
    assert (body["fields"]["outcome"], body["fields"]["answered_by"]) == ("approved", editor.email)
    replay = _answer(as_editor, org, run_id, "approve", "paid by transfer")
    assert (replay.status_code, replay.json()["code"]) == (409, "already_answered")
    assert as_editor.get("/api/inbox").json() == []
    audits = AuditEvent.objects.filter(action="run.request_answered", target_id=run_id)
    assert [(a.actor_id, a.after["outcome"]) for a in audits] == [(editor.id, "approved")]  # type: ignore[index]

    events = owner.get(f"{base(org)}/runs/{run_id}/events").json()
    resolved = [e for e in events if e["type"] == "HITL_RESOLVED"]
    assert [e["payload"]["by"] for e in resolved] == [editor.email]


def test_a_named_viewer_and_the_caller_may_answer(
    engine_worker: str, org: OrgFixture, client_for: Any
) -> None:
    caller, named, bystander = (org.add_member(OrgRole.MEMBER) for _ in range(3))
    org.grant(caller, WorkspaceRole.EDITOR)
    org.grant(named, WorkspaceRole.VIEWER)
    org.grant(bystander, WorkspaceRole.EDITOR)
    as_caller, as_named, as_bystander = client_for(caller), client_for(named), client_for(bystander)
    approvers = {"role": "owner", "users": [named.email.upper()], "caller": True}

    first = _start(as_caller, org, approvers, 7)
    assert [i["run_id"] for i in as_named.get("/api/inbox").json()] == [first]
    assert as_bystander.get("/api/inbox").json() == []
    refused = _answer(as_bystander, org, first, "approve")
    assert refused.status_code == 403
    assert _answer(as_named, org, first, "reject", "not this month").status_code == 200
    done = wait_run(as_caller, org, first)
    assert done["outputs"] == {"refused": 7}

    second = _start(as_caller, org, approvers, 8)
    assert second in [i["run_id"] for i in as_caller.get("/api/inbox").json()]
    assert _answer(as_caller, org, second, "approve").status_code == 200
    assert wait_run(as_caller, org, second)["outputs"] == {"paid": 8}

    # Without the caller rule the caller (an editor) may not answer an owners' approval.
    third = _start(as_caller, org, {"role": "owner", "caller": False}, 9)
    assert third not in [i["run_id"] for i in as_caller.get("/api/inbox").json()]
    assert _answer(as_caller, org, third, "approve").status_code == 403
    assert _answer(client_for(org.owner), org, third, "approve").status_code == 200
    assert wait_run(as_caller, org, third)["outputs"] == {"paid": 9}


def _shelved(run_id: str) -> bool:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT 1 FROM fireflow.shelved_run WHERE run_id = %s", [run_id])
        return cursor.fetchone() is not None


def test_a_run_shelved_while_it_waits_stays_in_the_inbox_and_its_answer_completes_it(
    engine_worker: str, org: OrgFixture, client_for: Any
) -> None:
    """The session's worker shelves runs that wait longer than SESSION_SHELVE_AFTER
    (tests/workers.py): out of its memory, the request is still listed and answerable."""
    owner = client_for(org.owner)
    run_id = _start(owner, org, {"role": "editor"}, 75)
    wait_for(lambda: _shelved(run_id), 30, "the run to be shelved")
    assert owner.get(f"{base(org)}/runs/{run_id}").json()["status"] == "running"
    inbox = owner.get("/api/inbox").json()
    assert [(i["run_id"], i["status"], i["can_answer"]) for i in inbox] == [
        (run_id, "pending", True)
    ]
    answered = _answer(owner, org, run_id, "approve", "go")
    assert answered.status_code == 200, answered.content
    done = wait_run(owner, org, run_id)
    assert (done["status"], done["outputs"]) == ("completed", {"paid": 75})
    assert not _shelved(run_id)
    events = owner.get(f"{base(org)}/runs/{run_id}/events").json()
    types = [e["type"] for e in events]
    assert (types.count("HITL_REQUESTED"), types.count("HITL_RESOLVED")) == (1, 1)
    started = [e["node"] for e in events if e["type"] == "NODE_STARTED"]
    assert sorted(started) == sorted(set(started))  # replayed nodes are not told twice
