"""Emails to approvers (flows/notify.py), from the worker's notifier: when a request opens,
to exactly the people who may answer it; when it escalates, to the escalation's approvers;
and reminders while nobody answers, each once however often the notifier looks."""

import time
from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from flows.models import RequestNotice
from flows.notify import notify_due
from tenants.roles import OrgRole, WorkspaceRole
from tests.factories import OrgFixture
from tests.flows.test_flows_api import base, create_flow

APPROVAL = {
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
                "approvers": {
                    "role": "editor",
                    "users": ["Named.Viewer@example.com"],
                    "caller": False,
                },
                "remind_every_seconds": 60,
            },
        },
        {"id": "paid", "type": "output", "config": {"name": "paid"}},
    ],
    "edges": [
        {"from": "inp.amount", "to": "ask.data"},
        {"from": "ask.approved", "to": "paid.value"},
    ],
}


def _recipients(run_id: str, key: str, expected: list[str], timeout: float = 30) -> list[str]:
    """Who the notice `key` went to, once it went to `expected` (one email, one row each)."""
    deadline = time.monotonic() + timeout
    found: list[str] = []
    while time.monotonic() < deadline:
        found = sorted(
            RequestNotice.objects.filter(run_id=run_id, node_id="ask", key=key).values_list(
                "recipient", flat=True
            )
        )
        if found == sorted(expected):
            return found
        time.sleep(0.2)
    raise AssertionError(f"'{key}' notice of {run_id} went to {found}, not {sorted(expected)}")


def _start(client: Any, org: OrgFixture, document: dict[str, Any]) -> str:
    flow_id = create_flow(client, org, document)
    run = client.post(
        f"{base(org)}/flows/{flow_id}/runs",
        {"inputs": {"amount": 120}},
        content_type="application/json",
    )
    assert run.status_code == 201, run.content
    return str(run.json()["id"])


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("engine_worker")
def test_approvers_are_emailed_when_a_request_opens_and_reminded_once_per_round(
    org: OrgFixture, other_org: OrgFixture, client_for: Any, mailoutbox: Any
) -> None:
    editor = org.add_member(OrgRole.MEMBER, email="eve.editor@example.com")
    org.grant(editor, WorkspaceRole.EDITOR)
    viewer = org.add_member(OrgRole.MEMBER, email="vic.viewer@example.com")
    org.grant(viewer, WorkspaceRole.VIEWER)
    named = org.add_member(OrgRole.MEMBER, email="named.viewer@example.com")
    org.grant(named, WorkspaceRole.VIEWER)
    other_org.add_member(OrgRole.MEMBER, email="outsider@example.com")

    run_id = _start(client_for(org.owner), org, APPROVAL)
    # Sent by the worker's notifier, to exactly those who may answer.
    recipients = _recipients(
        run_id, "opened", [org.owner.email, "eve.editor@example.com", "named.viewer@example.com"]
    )

    # Two minutes on, the second round of reminders is due (the first one was missed: only
    # the latest goes out), once however often the notifier looks.
    later = timezone.now() + timedelta(seconds=125)
    assert notify_due(later) == 3
    assert notify_due(later) == 0
    assert sorted(m.to[0] for m in mailoutbox) == recipients
    assert {m.subject for m in mailoutbox} == {"Reminder, still waiting: Pay the supplier"}
    assert "Pay 120 EUR?" in mailoutbox[0].body
    assert f"/orgs/{org.org.slug}/inbox" in mailoutbox[0].body
    assert RequestNotice.objects.filter(run_id=run_id, key="opened-reminder-2").count() == 3
    assert not RequestNotice.objects.filter(run_id=run_id, key="opened-reminder-1").exists()

    # Answered, nobody is reminded any more.
    answered = client_for(editor).post(
        f"{base(org)}/runs/{run_id}/requests/ask/answer",
        {"decision": "approve"},
        content_type="application/json",
    )
    assert answered.status_code == 200, answered.content
    assert notify_due(timezone.now() + timedelta(seconds=300)) == 0


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("engine_worker")
def test_an_escalated_request_is_sent_to_the_escalations_approvers(
    org: OrgFixture, client_for: Any
) -> None:
    editor = org.add_member(OrgRole.MEMBER, email="eve.editor@example.com")
    org.grant(editor, WorkspaceRole.EDITOR)
    boss = org.add_member(OrgRole.MEMBER, email="boss@example.com")
    org.grant(boss, WorkspaceRole.VIEWER)
    document = {
        **APPROVAL,
        "nodes": [
            APPROVAL["nodes"][0],
            {
                "id": "ask",
                "type": "approval",
                "config": {
                    "title": "Pay the supplier",
                    "approvers": {"role": "editor", "caller": False},
                    "timeout_seconds": 2,
                    "on_timeout": "escalate",
                    "escalate": {
                        "approvers": {
                            "role": "owner",
                            "users": ["boss@example.com"],
                            "caller": False,
                        },
                        "timeout_seconds": 600,
                    },
                },
            },
            APPROVAL["nodes"][2],
        ],
    }
    run_id = _start(client_for(org.owner), org, document)
    _recipients(run_id, "opened", [org.owner.email, "eve.editor@example.com"])
    _recipients(run_id, "escalated", [org.owner.email, "boss@example.com"])
    # The editor can no longer answer; the named viewer now can.
    refused = client_for(editor).post(
        f"{base(org)}/runs/{run_id}/requests/ask/answer",
        {"decision": "approve"},
        content_type="application/json",
    )
    assert refused.status_code in (403, 404)
    accepted = client_for(boss).post(
        f"{base(org)}/runs/{run_id}/requests/ask/answer",
        {"decision": "approve", "comment": "go"},
        content_type="application/json",
    )
    assert accepted.status_code == 200, accepted.content
