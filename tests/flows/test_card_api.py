"""Interactive cards (the card node, A2UI v0.9) answered through the API on a real worker: the
inbox and the run's requests carry the surface and its data; an answer is an A2UI user action
checked against the card's inputs (422 naming `values.<component id>`, nothing stored);
who may answer, another organisation and a second answer are as for approvals."""

import json
from typing import Any

import pytest
from django.db import connection
from django.test import Client

from fireflow.errors import InvalidInput
from tenants.models import AuditEvent
from tenants.roles import OrgRole, WorkspaceRole
from tests.factories import OrgFixture
from tests.flows.test_flows_api import base, wait_run
from tests.flows.test_inbox import _start as start_approval
from tests.helpers import wait_for_request

pytestmark = pytest.mark.django_db(transaction=True)

COMPONENTS: list[dict[str, Any]] = [
    {"id": "root", "component": "Card", "child": "body"},
    {
        "id": "body",
        "component": "Column",
        "children": ["who", "note", "amount", "urgent", "tier", "when", "share", "buttons"],
    },
    {"id": "who", "component": "Text", "text": {"path": "/customer"}, "variant": "h2"},
    {
        "id": "note",
        "component": "TextField",
        "label": "Note",
        "value": {"path": "/note"},
        "checks": [
            {
                "condition": {"call": "required", "args": {"value": {"path": "/note"}}},
                "message": "a note is required",
            }
        ],
    },
    {"id": "amount", "component": "TextField", "label": "Amount", "variant": "number"},
    {"id": "urgent", "component": "CheckBox", "label": "Urgent", "value": False},
    {
        "id": "tier",
        "component": "ChoicePicker",
        "options": [{"label": "Gold", "value": "gold"}, {"label": "Silver", "value": "silver"}],
        "value": {"path": "/tier"},
    },
    {"id": "when", "component": "DateTimeInput", "value": "", "enableDate": True},
    {"id": "share", "component": "Slider", "min": 0, "max": 100, "value": 50},
    {"id": "buttons", "component": "Row", "children": ["ok", "no"]},
    {"id": "ok_label", "component": "Text", "text": "Refund"},
    {
        "id": "ok",
        "component": "Button",
        "child": "ok_label",
        "action": {
            "event": {
                "name": "refund",
                "context": {"customer": {"path": "/customer"}, "note": {"path": "/note"}},
            }
        },
    },
    {"id": "no_label", "component": "Text", "text": "Decline"},
    {
        "id": "no",
        "component": "Button",
        "child": "no_label",
        "action": {"event": {"name": "decline"}},
    },
]


def card_flow(approvers: dict[str, Any]) -> dict[str, Any]:
    return {
        "schema": 1,
        "nodes": [
            {
                "id": "inp",
                "type": "input",
                "config": {"fields": [{"name": "case", "type": "json"}]},
            },
            {
                "id": "ask",
                "type": "card",
                "config": {
                    "title": "Refund?",
                    "surface": {"root": "root", "components": COMPONENTS},
                    "approvers": approvers,
                },
            },
            {"id": "out_action", "type": "output", "config": {"name": "action"}},
            {"id": "out_values", "type": "output", "config": {"name": "values"}},
        ],
        "edges": [
            {"from": "inp.case", "to": "ask.data"},
            {"from": "ask.action", "to": "out_action.value"},
            {"from": "ask.values", "to": "out_values.value"},
        ],
    }


def _start(client: Client, org: OrgFixture, approvers: dict[str, Any]) -> str:
    created = client.post(
        f"{base(org)}/flows",
        {"name": "Refunds", "document": card_flow(approvers)},
        content_type="application/json",
    )
    assert created.status_code == 201, created.content
    started = client.post(
        f"{base(org)}/flows/{created.json()['id']}/runs",
        {"inputs": {"case": {"customer": "Ana", "note": "", "tier": ["gold"]}}},
        content_type="application/json",
    )
    assert started.status_code == 201, started.content
    run_id = str(started.json()["id"])
    return wait_for_request(client, base(org), run_id, "show its card")


def _answer(client: Client, org: OrgFixture, run_id: str, body: dict[str, Any]) -> Any:
    return client.post(
        f"{base(org)}/runs/{run_id}/requests/ask/answer", body, content_type="application/json"
    )


def _stored_answer(run_id: str) -> Any:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT answer FROM fireflow.human_request WHERE run_id = %s AND node_id = 'ask'",
            [run_id],
        )
        row = cursor.fetchone()
    assert row is not None
    return json.loads(row[0]) if isinstance(row[0], str) else row[0]


def test_card_answers_are_checked_against_the_card_then_reach_the_run(
    engine_worker: str, org: OrgFixture, other_org: OrgFixture, client_for: Any
) -> None:
    owner = client_for(org.owner)
    editor, viewer = org.add_member(OrgRole.MEMBER), org.add_member(OrgRole.MEMBER)
    org.grant(editor, WorkspaceRole.EDITOR)
    org.grant(viewer, WorkspaceRole.VIEWER)
    as_editor, as_viewer = client_for(editor), client_for(viewer)
    outsider = client_for(other_org.owner)
    run_id = _start(owner, org, {"role": "editor", "caller": False})

    [item] = as_editor.get("/api/inbox").json()
    assert (item["run_id"], item["node_id"], item["kind"], item["title"]) == (
        run_id,
        "ask",
        "card",
        "Refund?",
    )
    card = item["card"]
    assert card["surface"]["components"] == COMPONENTS
    assert (card["surface"]["version"], card["surface"]["root"]) == ("v0.9", "root")
    assert card["data"] == {"customer": "Ana", "note": "", "tier": ["gold"]}
    assert (card["action"], card["values"]) == (None, None)
    assert as_viewer.get("/api/inbox").json() == []
    assert outsider.get("/api/inbox").json() == []
    [listed] = as_viewer.get(f"{base(org)}/runs/{run_id}/requests").json()
    assert (listed["card"]["surface"]["root"], listed["can_answer"]) == ("root", False)

    good = {"name": "refund", "values": {"note": "late parcel", "tier": ["silver"]}}
    refused = _answer(as_viewer, org, run_id, {"decision": "approve", "action": good})
    assert (refused.status_code, refused.json()["code"]) == (403, "not_an_approver")
    assert (
        _answer(outsider, org, run_id, {"decision": "approve", "action": good}).status_code == 404
    )

    # Values that do not fit the card's inputs: 422 naming each component, nothing stored.
    wrong = _answer(
        as_editor,
        org,
        run_id,
        {
            "decision": "approve",
            "action": {
                "name": "refund",
                "values": {
                    "amount": "ten",
                    "urgent": "yes",
                    "tier": ["gold", "bronze"],
                    "when": "31/12/2026",
                    "share": 101,
                    "colour": "red",
                },
            },
        },
    )
    assert wrong.status_code == 422, wrong.content
    body = wrong.json()
    assert body["code"] == "invalid_card_answer"
    assert body["fields"] == {
        "values.amount": "expected a number",
        "values.urgent": "expected true or false",
        "values.tier": "not an option: bronze (options: gold, silver)",
        "values.when": "expected an ISO 8601 date (YYYY-MM-DD)",
        "values.share": "must be at most 100",
        "values.colour": "the card has no input component with this id",
        "values.note": "a note is required",
    }
    unknown = _answer(
        as_editor, org, run_id, {"decision": "approve", "action": {**good, "name": "delete"}}
    )
    assert (unknown.status_code, unknown.json()["fields"]) == (
        422,
        {"action.name": "the card has no button with this action; it offers: decline, refund"},
    )
    for body in (
        {"decision": "approve"},
        {"decision": "reject", "action": good},
        {"decision": "approve", "arguments": {"note": "x"}},
    ):
        answer = _answer(as_editor, org, run_id, body)
        assert answer.status_code == 422, (body, answer.content)
    assert _stored_answer(run_id) is None
    assert not AuditEvent.objects.filter(action="run.request_answered", target_id=run_id).exists()

    answered = _answer(
        as_editor,
        org,
        run_id,
        {
            "decision": "approve",
            "action": {**good, "values": {**good["values"], "when": "2026-12-01", "share": 20}},
        },
    )
    assert answered.status_code == 200, answered.content
    shown = answered.json()
    assert (shown["status"], shown["answered_by"]) == ("approved", editor.email)
    values = {
        "note": "late parcel",
        "amount": None,
        "urgent": False,
        "tier": ["silver"],
        "when": "2026-12-01",
        "share": 20,
    }
    action = {
        "name": "refund",
        "surfaceId": "ask",
        "sourceComponentId": "ok",
        "context": {"customer": "Ana", "note": "late parcel"},
    }
    assert (shown["card"]["action"], shown["card"]["values"]) == (action, values)
    done = wait_run(owner, org, run_id)
    assert done["status"] == "completed", done["error"]
    assert (done["outputs"]["action"], done["outputs"]["values"]) == (action, values)

    again = _answer(owner, org, run_id, {"decision": "approve", "action": {"name": "decline"}})
    assert (again.status_code, again.json()["code"]) == (409, "already_answered")
    assert _stored_answer(run_id)["arguments"]["action"] == action
    audits = AuditEvent.objects.filter(action="run.request_answered", target_id=run_id)
    assert [(a.actor_id, a.after["action"]["name"]) for a in audits] == [(editor.id, "refund")]  # type: ignore[index]


def test_an_action_is_refused_for_an_approval_node(
    engine_worker: str, org: OrgFixture, client_for: Any
) -> None:
    owner = client_for(org.owner)
    run_id = start_approval(owner, org, {"role": "editor"}, 10)
    refused = owner.post(
        f"{base(org)}/runs/{run_id}/requests/ask/answer",
        {"decision": "approve", "action": {"name": "refund"}},
        content_type="application/json",
    )
    assert (refused.status_code, refused.json()["code"]) == (422, "action_not_allowed")
    assert refused.json()["fields"] == {"action": "not allowed for this request"}
    assert owner.get(f"{base(org)}/runs/{run_id}/requests").json()[0]["status"] == "pending"
    approved = owner.post(
        f"{base(org)}/runs/{run_id}/requests/ask/answer",
        {"decision": "approve"},
        content_type="application/json",
    )
    assert approved.json()["status"] == "approved"
    assert wait_run(owner, org, run_id)["outputs"] == {"paid": 10}


def test_a_pattern_that_backtracks_without_end_refuses_the_value_instead_of_hanging() -> None:
    """The flow's editor writes the patterns, an approver the values: a pattern that would
    take forever on a value is given a time limit, and the value is refused with why."""
    from flows.cards import card_answer

    components = [
        {"id": "root", "component": "Column", "children": ["code", "ok"]},
        {"id": "code", "component": "TextField", "label": "Code", "validationRegexp": "^(a|aa)+$"},
        {"id": "ok", "component": "Button", "child": "code", "action": {"event": {"name": "go"}}},
    ]
    request = {"surface": {"root": "root", "components": components}, "data": {}}
    assert card_answer(request, "go", {"code": "aaaa"})["values"] == {"code": "aaaa"}
    with pytest.raises(InvalidInput) as refused:
        card_answer(request, "go", {"code": "a" * 40 + "!"})
    assert refused.value.fields == {
        "values.code": "could not be checked against the pattern ^(a|aa)+$ in time: shorten it"
    }
