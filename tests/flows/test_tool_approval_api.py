"""An agent's tool calls approved through the API on a real worker: the inbox and the run's
requests show the proposed call; edited arguments are checked against the tool's parameters
(422 naming the argument, nothing stored) and then used by the tool; a rejection is told to
the model; who may answer, another organisation and a second answer are as for approvals."""

import json
from typing import Any

import pytest
from django.db import connection
from django.test import Client

from tenants.models import AuditEvent
from tenants.roles import OrgRole, WorkspaceRole
from tests.factories import OrgFixture
from tests.flows.test_flows_api import base, create_flow, wait_run
from tests.flows.test_inbox import _start as start_approval
from tests.helpers import wait_for_request

pytestmark = pytest.mark.django_db(transaction=True)

PARAMETERS = {
    "type": "object",
    "required": ["city"],
    "properties": {"city": {"type": "string"}, "days": {"type": "integer", "minimum": 1}},
    "additionalProperties": False,
}
FORECAST = {
    "schema": 1,
    "nodes": [
        {"id": "inp", "type": "input", "config": {"fields": [{"name": "city", "type": "text"}]}},
        {"id": "say", "type": "template", "config": {"template": "Sunny in {{ city }}"}},
        {"id": "out", "type": "output", "config": {"name": "forecast"}},
    ],
    "edges": [{"from": "inp.city", "to": "say.city"}, {"from": "say.text", "to": "out.value"}],
}
KEY = "agent:tool:0:0"


def _agent(tool_flow: str) -> dict[str, Any]:
    return {
        "schema": 1,
        "nodes": [
            {"id": "q", "type": "input", "config": {"fields": [{"name": "q", "type": "text"}]}},
            {
                "id": "agent",
                "type": "agent",
                "config": {
                    "provider": "fake",
                    "model": "fake-echo",
                    "tools": [
                        {
                            "name": "forecast",
                            "description": "The weather in a city",
                            "parameters": PARAMETERS,
                            "flow_id": tool_flow,
                            "approval": True,
                        }
                    ],
                    "tool_approval": {"approvers": {"role": "editor", "caller": False}},
                },
            },
            {"id": "out", "type": "output", "config": {"name": "answer"}},
        ],
        "edges": [{"from": "q.q", "to": "agent.prompt"}, {"from": "agent.text", "to": "out.value"}],
    }


def _start(client: Client, org: OrgFixture, fake_llm: Any, city: str) -> str:
    response = client.post(
        f"{base(org)}/flows",
        {"name": f"Forecast {city}", "document": FORECAST},
        content_type="application/json",
    )
    assert response.status_code == 201, response.content
    flow_id = create_flow(client, org, _agent(str(response.json()["id"])))
    fake_llm.script.add(
        f"tool weather in {city}", tool_call={"name": "forecast", "arguments": {"city": city}}
    )
    run = client.post(
        f"{base(org)}/flows/{flow_id}/runs",
        {"inputs": {"q": f"Tool weather in {city}?"}},
        content_type="application/json",
    )
    assert run.status_code == 201, run.content
    run_id = str(run.json()["id"])
    return wait_for_request(client, base(org), run_id, "ask about its tool call")


def _answer(client: Client, org: OrgFixture, run_id: str, body: dict[str, Any]) -> Any:
    return client.post(
        f"{base(org)}/runs/{run_id}/requests/{KEY}/answer", body, content_type="application/json"
    )


def _stored_answer(run_id: str) -> Any:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT answer FROM fireflow.human_request WHERE run_id = %s AND node_id = %s",
            [run_id, KEY],
        )
        row = cursor.fetchone()
    assert row is not None
    return json.loads(row[0]) if isinstance(row[0], str) else row[0]


def test_edited_arguments_are_checked_then_used_and_only_approvers_answer(
    engine_worker: str, fake_llm: Any, org: OrgFixture, other_org: OrgFixture, client_for: Any
) -> None:
    owner = client_for(org.owner)
    editor, viewer = org.add_member(OrgRole.MEMBER), org.add_member(OrgRole.MEMBER)
    org.grant(editor, WorkspaceRole.EDITOR)
    org.grant(viewer, WorkspaceRole.VIEWER)
    as_editor, as_viewer = client_for(editor), client_for(viewer)
    outsider = client_for(other_org.owner)
    run_id = _start(owner, org, fake_llm, "Porto")

    [item] = as_editor.get("/api/inbox").json()
    assert (item["run_id"], item["node_id"], item["node"], item["kind"]) == (
        run_id,
        KEY,
        "agent",
        "tool_call",
    )
    call = item["tool_call"]
    assert (call["tool"], call["description"], call["arguments"], call["parameters"]) == (
        "forecast",
        "The weather in a city",
        {"city": "Porto"},
        PARAMETERS,
    )
    assert call["tool_call_id"]
    assert call["edited_arguments"] is None
    assert (item["status"], item["can_answer"]) == ("pending", True)
    assert as_viewer.get("/api/inbox").json() == []
    assert outsider.get("/api/inbox").json() == []
    [listed] = as_viewer.get(f"{base(org)}/runs/{run_id}/requests").json()
    assert (listed["kind"], listed["tool_call"]["arguments"], listed["can_answer"]) == (
        "tool_call",
        {"city": "Porto"},
        False,
    )

    # A viewer may not answer, another organisation does not see the run.
    refused = _answer(as_viewer, org, run_id, {"decision": "approve", "arguments": {"city": "X"}})
    assert (refused.status_code, refused.json()["code"]) == (403, "not_an_approver")
    assert _answer(outsider, org, run_id, {"decision": "approve"}).status_code == 404

    # Arguments that do not fit the tool's parameters: 422 naming each, nothing stored.
    wrong = _answer(
        as_editor,
        org,
        run_id,
        {"decision": "approve", "arguments": {"days": 0, "country": "PT"}},
    )
    assert wrong.status_code == 422, wrong.content
    body = wrong.json()
    assert body["code"] == "invalid_arguments"
    assert body["fields"] == {
        "arguments.city": "this argument is required",
        "arguments.country": "the tool has no such argument",
        "arguments.days": "0 is less than the minimum of 1",
    }
    typed = _answer(as_editor, org, run_id, {"decision": "approve", "arguments": {"city": 7}})
    assert (typed.status_code, typed.json()["fields"]) == (
        422,
        {"arguments.city": "7 is not of type 'string'"},
    )
    with_reject = _answer(
        as_editor, org, run_id, {"decision": "reject", "arguments": {"city": "Braga"}}
    )
    assert (with_reject.status_code, with_reject.json()["code"]) == (422, "arguments_not_allowed")
    assert _stored_answer(run_id) is None
    assert not AuditEvent.objects.filter(action="run.request_answered", target_id=run_id).exists()
    assert [i["node_id"] for i in as_editor.get("/api/inbox").json()] == [KEY]

    edited = {"city": "Braga"}
    answered = _answer(
        as_editor, org, run_id, {"decision": "approve", "comment": "Braga", "arguments": edited}
    )
    assert answered.status_code == 200, answered.content
    shown = answered.json()
    assert (shown["status"], shown["answered_by"]) == ("approved", editor.email)
    assert shown["tool_call"]["edited_arguments"] == edited
    done = wait_run(owner, org, run_id)
    assert done["status"] == "completed", done["error"]
    assert done["outputs"]["answer"] == 'Tool result: {"forecast": "Sunny in Braga"}'
    events = owner.get(f"{base(org)}/runs/{run_id}/events").json()
    [result] = [e["payload"] for e in events if e["type"] == "TOOL_CALL_RESULT"]
    assert (result["arguments"], result["result"]) == (edited, {"forecast": "Sunny in Braga"})
    assert [e["payload"]["tool_call_id"] for e in events if e["type"] == "HITL_REQUESTED"] == [
        call["tool_call_id"]
    ]

    # A second answer (or a replay) changes nothing and says what stands.
    again = _answer(owner, org, run_id, {"decision": "approve", "arguments": {"city": "Faro"}})
    assert again.status_code == 409
    assert (again.json()["code"], again.json()["fields"]["outcome"]) == (
        "already_answered",
        "approved",
    )
    assert _stored_answer(run_id)["arguments"] == edited
    audits = AuditEvent.objects.filter(action="run.request_answered", target_id=run_id)
    assert [(a.actor_id, a.after["arguments"]) for a in audits] == [(editor.id, edited)]  # type: ignore[index]


def test_a_rejected_call_does_not_run_and_the_model_answers(
    engine_worker: str, fake_llm: Any, org: OrgFixture, client_for: Any
) -> None:
    owner = client_for(org.owner)
    run_id = _start(owner, org, fake_llm, "Evora")
    answered = _answer(owner, org, run_id, {"decision": "reject", "comment": "not today"})
    assert answered.status_code == 200, answered.content
    assert (answered.json()["status"], answered.json()["comment"]) == ("rejected", "not today")
    done = wait_run(owner, org, run_id)
    assert done["status"] == "completed", done["error"]
    assert done["outputs"]["answer"] == (
        'Tool result: error: a person refused this call; it was not run. Their comment: "not today"'
    )
    events = owner.get(f"{base(org)}/runs/{run_id}/events").json()
    [result] = [e["payload"] for e in events if e["type"] == "TOOL_CALL_RESULT"]
    assert result["refused"] is True
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM dbos.workflow_status WHERE workflow_uuid LIKE %s",
            [f"{run_id}:agent:tool:%"],
        )
        (children,) = cursor.fetchone() or (None,)
    assert children == 0  # the tool did not run


def test_arguments_are_refused_for_an_approval_node(
    engine_worker: str, org: OrgFixture, client_for: Any
) -> None:
    owner = client_for(org.owner)
    run_id = start_approval(owner, org, {"role": "editor"}, 5)
    [listed] = owner.get(f"{base(org)}/runs/{run_id}/requests").json()
    assert (listed["kind"], listed["node"], listed["tool_call"]) == ("approval", "ask", None)
    response = owner.post(
        f"{base(org)}/runs/{run_id}/requests/ask/answer",
        {"decision": "approve", "arguments": {"amount": 1}},
        content_type="application/json",
    )
    assert (response.status_code, response.json()["code"]) == (422, "arguments_not_allowed")
    assert response.json()["fields"] == {"arguments": "not allowed for this request"}
    still = owner.get(f"{base(org)}/runs/{run_id}/requests").json()
    assert still[0]["status"] == "pending"
    assert (
        owner.post(
            f"{base(org)}/runs/{run_id}/requests/ask/answer",
            {"decision": "approve"},
            content_type="application/json",
        ).json()["status"]
        == "approved"
    )
    assert wait_run(owner, org, run_id)["outputs"] == {"paid": 5}
