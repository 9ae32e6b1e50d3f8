"""Budgets: every LLM call is held at its maximum cost against the budgets that cover it
before it is made, atomically; spend never passes a limit; thresholds alert once per
period; the kill switch halts runs and refuses new ones. Against a real worker and
PostgreSQL, with the fake LLM provider."""

import asyncio
import hashlib
import hmac
import json
import threading
import time
import uuid
from datetime import timedelta
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar

import pytest
from django.db.models import Sum
from django.utils import timezone

import engine
from billing.models import (
    AlertDelivery,
    Budget,
    BudgetAlert,
    BudgetHold,
    BudgetPeriod,
    KillSwitch,
    Notification,
    UsageRollup,
)
from billing.worker import CostControl
from flows.models import LLMUsage, Run
from tenants.models import AuditEvent
from tenants.roles import OrgRole, WorkspaceRole
from tests.factories import OrgFixture
from tests.flows.test_flows_api import base, create_flow, wait_run

# A long question and a short max_tokens: the reply is cut at 16 tokens, so each call costs
# close to what is held for it, and the budget below admits only some of the runs.
QUESTION = "Tell me everything about budgets, spending limits and alerts in one long answer"
RACE_FLOW = {
    "schema": 1,
    "nodes": [
        {"id": "inp", "type": "input", "config": {"fields": [{"name": "q", "type": "text"}]}},
        {
            "id": "ask",
            "type": "llm_chat",
            "config": {"provider": "fake", "model": "fake-echo", "max_tokens": 16},
        },
        {"id": "out", "type": "output", "config": {"name": "answer"}},
    ],
    "edges": [{"from": "inp.q", "to": "ask.prompt"}, {"from": "ask.text", "to": "out.value"}],
}
WAIT_FLOW = {
    "schema": 1,
    "nodes": [
        {"id": "inp", "type": "input", "config": {"fields": [{"name": "q", "type": "text"}]}},
        {"id": "wait", "type": "delay", "config": {"seconds": 60}},
        {"id": "out", "type": "output", "config": {"name": "answer"}},
    ],
    "edges": [{"from": "inp.q", "to": "wait.value"}, {"from": "wait.value", "to": "out.value"}],
}


def _org_url(org: OrgFixture) -> str:
    return f"/api/orgs/{org.org.slug}"


def _budget(client: Any, org: OrgFixture, **fields: Any) -> dict[str, Any]:
    body = {
        "name": "Research daily",
        "scope": "workspace",
        "workspace_id": str(org.workspace.id),
        "period": "day",
        "limit_usd": "0.001",
        "thresholds": [50, 80, 100],
        **fields,
    }
    response = client.post(f"{_org_url(org)}/budgets", body, content_type="application/json")
    assert response.status_code == 201, response.content
    return dict(response.json())


def _start(client: Any, org: OrgFixture, flow_id: str, q: str = QUESTION) -> Any:
    return client.post(
        f"{base(org)}/flows/{flow_id}/runs", {"inputs": {"q": q}}, content_type="application/json"
    )


@pytest.mark.django_db(transaction=True)
def test_fifty_runs_racing_one_budget_never_spend_past_its_limit(
    engine_worker: str, org: OrgFixture, client_for: Any
) -> None:
    client = client_for(org.owner)
    flow_id = create_flow(client, org, RACE_FLOW)
    budget = _budget(client, org)
    started = [_start(client, org, flow_id) for _ in range(50)]
    assert all(r.status_code == 201 for r in started)
    finished = [wait_run(client, org, r.json()["id"], timeout=120) for r in started]

    completed = [r for r in finished if r["status"] == "completed"]
    refused = [r for r in finished if r["status"] == "failed"]
    assert len(completed) + len(refused) == 50
    assert completed, "the budget admits some calls"
    assert refused, "the budget refuses the calls past its limit"
    for run in refused:  # every refused call is reported as a budget error in its run
        assert "budget exceeded" in run["error"], run["error"]
        assert "Research daily" in run["error"], run["error"]

    period = BudgetPeriod.objects.get(budget_id=budget["id"])
    recorded = LLMUsage.objects.filter(workspace=org.workspace).aggregate(s=Sum("cost_micros"))
    assert period.spent_micros == recorded["s"]
    assert period.spent_micros <= 1000  # the limit: $0.001, no call in flight any more
    assert period.reserved_micros == 0
    assert not BudgetHold.objects.filter(period=period).exists()
    assert LLMUsage.objects.filter(workspace=org.workspace).count() == len(completed)
    shown = client.get(f"{_org_url(org)}/budgets/{budget['id']}").json()
    assert (shown["spent_micros"], shown["reserved_micros"]) == (period.spent_micros, 0)
    assert shown["percent"] == round(period.spent_micros * 100 / 1000, 2)
    # The dashboard's rollups agree with the ledger.
    costs = client.get(f"{_org_url(org)}/costs").json()
    assert costs["total"]["cost_micros"] == period.spent_micros
    assert costs["total"]["calls"] == len(completed)
    assert costs["by_workspace"][0]["label"] == org.workspace.name
    assert costs["by_model"][0]["key"] == "fake/fake-echo"
    assert costs["series"][-1]["cost_micros"] == period.spent_micros


def _run_row(org: OrgFixture, client: Any) -> Run:
    flow = org.workspace.flows.get(id=create_flow(client, org, RACE_FLOW))
    return Run.objects.create(
        workspace=org.workspace,
        flow=flow,
        flow_version=flow.current_version,
        flow_owner=org.owner,
        caller=org.owner,
    )


def _usage(cost: int) -> dict[str, Any]:
    return {"provider": "fake", "model": "fake-echo", "input_tokens": cost, "cost_micros": cost}


@pytest.mark.django_db(transaction=True)
def test_thresholds_alert_once_when_two_workers_cross_them_together(
    test_database_url: str, org: OrgFixture, client_for: Any
) -> None:
    client = client_for(org.owner)
    billing_member = org.add_member(OrgRole.BILLING, email="ledger@example.com")
    org.add_member(OrgRole.MEMBER, email="dev@example.com")  # not told of costs
    budget = _budget(client, org, limit_usd="0.001")
    run = _run_row(org, client)
    # Two workers (two ledgers, two pools) record calls at the same moment, each call
    # reported twice (a step that ran again): 20 calls of 60 micro-dollars.
    first, second = CostControl(test_database_url), CostControl(test_database_url)

    async def report() -> None:
        await asyncio.gather(
            *(
                ledger.record(str(run.id), "ask", index, {}, _usage(60))
                for index in range(1, 21)
                for ledger in (first, second)
            )
        )
        await first.close()
        await second.close()

    asyncio.run(report())

    period = BudgetPeriod.objects.get(budget_id=budget["id"])
    assert period.spent_micros == 1200
    alerts = BudgetAlert.objects.filter(budget_id=budget["id"]).order_by("threshold")
    assert [a.threshold for a in alerts] == [50, 80, 100]
    assert all(a.period_start == period.period_start for a in alerts)
    assert [a.spent_micros >= a.limit_micros * a.threshold / 100 for a in alerts] == [True] * 3
    notices = Notification.objects.filter(org=org.org, kind="budget.threshold")
    assert sorted(n.title for n in notices) == [
        "Budget 'Research daily' reached 100%",
        "Budget 'Research daily' reached 50%",
        "Budget 'Research daily' reached 80%",
    ]
    emails = set(
        AlertDelivery.objects.filter(alert__budget_id=budget["id"], channel="email").values_list(
            "target", flat=True
        )
    )
    assert emails == {org.owner.email, billing_member.email}
    assert AlertDelivery.objects.filter(alert__budget_id=budget["id"]).count() == 3 * 2
    listed = client.get(f"{_org_url(org)}/budget-alerts").json()
    assert sorted(a["threshold"] for a in listed) == [50, 80, 100]
    shown = client.get(f"{_org_url(org)}/notifications").json()
    assert len(shown) == 3
    rollup = UsageRollup.objects.get(org=org.org)
    assert (rollup.calls, rollup.cost_micros) == (20, 1200)


@pytest.mark.django_db(transaction=True)
def test_holds_are_atomic_replaced_on_retry_released_and_expire(
    test_database_url: str, org: OrgFixture, client_for: Any
) -> None:
    client = client_for(org.owner)
    workspace_budget = _budget(client, org, limit_usd="0.001")
    org_budget = _budget(
        client,
        org,
        name="Whole org",
        scope="org",
        workspace_id=None,
        period="month",
        limit_usd="0.0005",
    )
    run = _run_row(org, client)
    gate = CostControl(test_database_url)
    call = {"provider": "fake", "model": "fake-echo"}

    def read_periods() -> dict[str, tuple[int, int]]:
        from django.db import connection

        try:
            return {
                str(p.budget_id): (p.spent_micros, p.reserved_micros)
                for p in BudgetPeriod.objects.all()
            }
        finally:
            connection.close()  # this thread's own connection

    async def periods() -> dict[str, tuple[int, int]]:
        return await asyncio.to_thread(read_periods)

    def expire_holds() -> None:
        from django.db import connection

        BudgetHold.objects.update(expires_at=timezone.now() - timedelta(minutes=1))
        connection.close()

    async def scenario() -> None:
        await gate.reserve(str(run.id), "ask", 1, {}, max_cost_micros=300, **call)
        # The same call held again (its step ran again): replaced, not added.
        await gate.reserve(str(run.id), "ask", 1, {}, max_cost_micros=300, **call)
        assert await periods() == {workspace_budget["id"]: (0, 300), org_budget["id"]: (0, 300)}
        # 300 + 300 > 500 on the org budget: refused, and the workspace budget holds
        # nothing for it either (all or none).
        with pytest.raises(engine.NodeError, match="budget exceeded: 'Whole org'"):
            await gate.reserve(str(run.id), "ask", 2, {}, max_cost_micros=300, **call)
        assert await periods() == {workspace_budget["id"]: (0, 300), org_budget["id"]: (0, 300)}
        await gate.release(str(run.id), "ask", 1)
        assert await periods() == {workspace_budget["id"]: (0, 0), org_budget["id"]: (0, 0)}
        # A hold whose worker died expires, and the next reservation frees it.
        await gate.reserve(str(run.id), "other", 1, {}, max_cost_micros=400, **call)
        await asyncio.to_thread(expire_holds)
        await gate.reserve(str(run.id), "ask", 3, {}, max_cost_micros=450, **call)
        assert await periods() == {workspace_budget["id"]: (0, 450), org_budget["id"]: (0, 450)}
        # The call's usage settles its hold with the actual cost.
        await gate.record(str(run.id), "ask", 3, {}, _usage(120))
        assert await periods() == {workspace_budget["id"]: (120, 0), org_budget["id"]: (120, 0)}
        await gate.close()

    asyncio.run(scenario())
    assert not BudgetHold.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_kill_switch_cancels_running_flows_and_blocks_new_ones_until_lifted(
    engine_worker: str, org: OrgFixture, client_for: Any
) -> None:
    client = client_for(org.owner)
    waiting_flow = create_flow(client, org, WAIT_FLOW)
    asking_flow = create_flow(client, org, RACE_FLOW)
    run = _start(client, org, waiting_flow).json()
    deadline = timezone.now() + timedelta(seconds=30)
    while client.get(f"{base(org)}/runs/{run['id']}").json()["status"] != "running":
        assert timezone.now() < deadline, "the run did not start"

    pulled = client.post(
        f"{_org_url(org)}/kill-switches",
        {"workspace_id": str(org.workspace.id), "reason": "runaway agent spend"},
        content_type="application/json",
    )
    assert pulled.status_code == 201, pulled.content
    assert pulled.json()["runs_cancelled"] == 1
    assert pulled.json()["active"] is True
    ended = wait_run(client, org, run["id"])
    assert ended["status"] == "cancelled"
    assert "kill switch" in ended["error"]
    assert "runaway agent spend" in ended["error"]

    refused = _start(client, org, asking_flow)
    assert refused.status_code == 409
    assert refused.json()["code"] == "kill_switch"
    assert "runaway agent spend" in refused.json()["detail"]
    again = client.post(
        f"{_org_url(org)}/kill-switches",
        {"workspace_id": str(org.workspace.id), "reason": "twice"},
        content_type="application/json",
    )
    assert again.status_code == 409
    # A run that slipped in (queued by the engine directly) meets the gate at its LLM call.
    gate = CostControl(engine_worker)
    stray = _run_row(org, client)

    async def stray_call() -> None:
        try:
            await gate.reserve(
                str(stray.id), "ask", 1, {}, provider="fake", model="fake-echo", max_cost_micros=1
            )
        finally:
            await gate.close()

    with pytest.raises(engine.NodeError, match="halted by the kill switch"):
        asyncio.run(stray_call())

    switch_id = pulled.json()["id"]
    lifted = client.post(f"{_org_url(org)}/kill-switches/{switch_id}/lift")
    assert lifted.status_code == 200, lifted.content
    assert lifted.json()["active"] is False
    after = _start(client, org, asking_flow)
    assert after.status_code == 201
    assert wait_run(client, org, after.json()["id"])["status"] == "completed"
    actions = list(
        AuditEvent.objects.filter(org=org.org, target_type="kill_switch").values_list(
            "action", flat=True
        )
    )
    assert sorted(actions) == ["kill_switch.lifted", "kill_switch.pulled"]
    assert KillSwitch.objects.get(id=switch_id).lifted_by == org.owner


@pytest.mark.django_db
def test_only_cost_roles_see_costs_and_only_owners_and_admins_change_them(
    org: OrgFixture, client_for: Any
) -> None:
    admin = org.add_member(OrgRole.ADMIN)
    billing = org.add_member(OrgRole.BILLING)
    member = org.add_member(OrgRole.MEMBER)
    url = _org_url(org)
    budget = _budget(client_for(admin), org)  # an admin sets budgets
    for user in (org.owner, admin, billing):
        client = client_for(user)
        assert client.get(f"{url}/costs").status_code == 200
        assert client.get(f"{url}/budgets").status_code == 200
        assert client.get(f"{url}/kill-switches").status_code == 200
    as_member = client_for(member)
    for path in ("costs", "budgets", "budget-alerts", "notifications", "kill-switches"):
        response = as_member.get(f"{url}/{path}")
        assert response.status_code == 403, path
        assert response.json()["code"] == "role_required"
    as_billing = client_for(billing)
    changes = [
        as_billing.post(
            f"{url}/budgets",
            {"name": "x", "scope": "org", "limit_usd": "1"},
            content_type="application/json",
        ),
        as_billing.patch(
            f"{url}/budgets/{budget['id']}", {"limit_usd": "9"}, content_type="application/json"
        ),
        as_billing.delete(f"{url}/budgets/{budget['id']}"),
        as_billing.post(f"{url}/kill-switches", {"reason": "x"}, content_type="application/json"),
        as_billing.get(f"{url}/alert-webhooks"),
    ]
    assert [r.status_code for r in changes] == [403] * 5
    assert Budget.objects.get(id=budget["id"]).limit_micros == 1000


@pytest.mark.django_db
def test_budget_input_is_checked_field_by_field(org: OrgFixture, client_for: Any) -> None:
    client = client_for(org.owner)
    url = f"{_org_url(org)}/budgets"

    def post(**body: Any) -> Any:
        return client.post(url, body, content_type="application/json")

    missing = post(name="Team", scope="workspace", limit_usd="5")
    assert missing.status_code == 422
    assert missing.json()["fields"] == {"workspace_id": "required"}
    wrong = post(name="Team", scope="org", limit_usd="5", flow_id=str(uuid.uuid4()))
    assert wrong.status_code == 422
    assert "flow_id" in wrong.json()["fields"]
    negative = post(name="Team", scope="org", limit_usd="-1")
    assert negative.status_code == 422
    assert "limit_usd" in negative.json()["fields"]
    bad_threshold = post(name="Team", scope="org", limit_usd="5", thresholds=[0, 150])
    assert bad_threshold.status_code == 422
    foreign = post(name="Team", scope="user", limit_usd="5", user_id=str(uuid.uuid4()))
    assert foreign.status_code == 404
    made = post(
        name="Team",
        scope="user",
        limit_usd="12.345678",
        user_id=str(org.owner.id),
        thresholds=[100, 80, 80],
    )
    assert made.status_code == 201, made.content
    assert made.json()["limit_micros"] == 12_345_678
    assert made.json()["thresholds"] == [80, 100]
    assert made.json()["target_label"] == f"member {org.owner.email}"
    changed = client.patch(
        f"{url}/{made.json()['id']}", {"thresholds": [50]}, content_type="application/json"
    )
    assert changed.json()["thresholds"] == [50]
    assert Budget.objects.get(id=made.json()["id"]).limit_micros == 12_345_678
    assert Decimal(made.json()["limit_micros"]) / 1_000_000 == Decimal("12.345678")


@pytest.mark.django_db(transaction=True)
def test_a_failed_call_frees_its_hold_and_costs_nothing(
    engine_worker: str, fake_llm: Any, org: OrgFixture, client_for: Any
) -> None:
    fake_llm.script.add("refuse this question", error=(400, "invalid_request_error"))
    client = client_for(org.owner)
    flow_id = create_flow(client, org, RACE_FLOW)
    budget = _budget(client, org)
    run = _start(client, org, flow_id, "please refuse this question").json()
    assert wait_run(client, org, run["id"])["status"] == "failed"
    period = BudgetPeriod.objects.get(budget_id=budget["id"])
    assert (period.spent_micros, period.reserved_micros) == (0, 0)
    assert not BudgetHold.objects.exists()


class _Receiver(BaseHTTPRequestHandler):
    got: ClassVar[list[tuple[dict[str, str], bytes]]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        type(self).got.append(({k.lower(): v for k, v in self.headers.items()}, body))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.mark.django_db(transaction=True)
def test_a_crossed_threshold_is_posted_signed_to_the_alert_webhook(
    engine_worker: str, org: OrgFixture, client_for: Any
) -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        client = client_for(org.owner)
        hook = client.post(
            f"{_org_url(org)}/alert-webhooks",
            {"url": f"http://127.0.0.1:{server.server_port}/alerts"},
            content_type="application/json",
        ).json()
        assert hook["secret"].startswith("whsec_")
        assert "secret" not in client.get(f"{_org_url(org)}/alert-webhooks").json()[0]
        budget = _budget(client, org, limit_usd="0.0003", thresholds=[1])
        flow_id = create_flow(client, org, RACE_FLOW)
        run = _start(client, org, flow_id, "a short question").json()
        assert wait_run(client, org, run["id"])["status"] == "completed"
        deadline = time.monotonic() + 20
        assert BudgetAlert.objects.filter(budget_id=budget["id"]).exists()
        while not _Receiver.got and time.monotonic() < deadline:
            time.sleep(0.05)
        [(headers, body)] = _Receiver.got
    finally:
        server.shutdown()
    alert = BudgetAlert.objects.get(budget_id=budget["id"])
    event = json.loads(body)
    assert (event["id"], event["type"]) == (str(alert.id), "budget.threshold")
    assert event["data"]["budget"]["name"] == "Research daily"
    assert event["data"]["threshold"] == 1
    assert headers["fireflow-event-id"] == str(alert.id)
    parts = dict(p.split("=", 1) for p in headers["fireflow-signature"].split(","))
    expected = hmac.new(hook["secret"].encode(), f"{parts['t']}.".encode() + body, hashlib.sha256)
    assert hmac.compare_digest(parts["v1"], expected.hexdigest())
    assert abs(time.time() - int(parts["t"])) < 60
    deadline = time.monotonic() + 10
    while AlertDelivery.objects.filter(alert=alert, status="pending").exists():
        assert time.monotonic() < deadline, "the alert's email was not sent"
        time.sleep(0.05)
    assert set(AlertDelivery.objects.filter(alert=alert).values_list("channel", "status")) == {
        ("email", "sent"),
        ("webhook", "sent"),
    }


class _HangingReceiver(BaseHTTPRequestHandler):
    """Takes the first alert and never answers it (its sender dies meanwhile); answers the
    rest at once."""

    got: ClassVar[list[dict[str, str]]] = []

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers["Content-Length"]))
        type(self).got.append({k.lower(): v for k, v in self.headers.items()})
        if len(type(self).got) == 1:
            time.sleep(30)
            return
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.mark.durability
@pytest.mark.django_db(transaction=True)
def test_an_alert_whose_worker_dies_mid_delivery_is_sent_by_another_once(
    session_worker_paused: str, org: OrgFixture, client_for: Any, monkeypatch: Any
) -> None:
    from tests.engine.harness import Worker

    server = ThreadingHTTPServer(("127.0.0.1", 0), _HangingReceiver)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    monkeypatch.setenv("FIREFLOW_ALERT_LEASE_SECONDS", "2")
    first = Worker(session_worker_paused, "courier-a", platform=True)
    second = None
    try:
        client = client_for(org.owner)
        client.post(
            f"{_org_url(org)}/alert-webhooks",
            {"url": f"http://127.0.0.1:{server.server_port}/alerts"},
            content_type="application/json",
        )
        budget = _budget(client, org, limit_usd="0.0003", thresholds=[1])
        flow_id = create_flow(client, org, RACE_FLOW)
        run = _start(client, org, flow_id, "a short question").json()
        assert wait_run(client, org, run["id"])["status"] == "completed"
        deadline = time.monotonic() + 20
        while not _HangingReceiver.got:  # the alert is on its way, and hangs
            assert time.monotonic() < deadline, "the alert was not sent"
            time.sleep(0.05)
        first.kill9()  # the worker dies in the middle of the delivery
        second = Worker(session_worker_paused, "courier-b", platform=True)
        deadline = time.monotonic() + 30
        while len(_HangingReceiver.got) < 2:
            assert time.monotonic() < deadline, "no other worker sent the alert"
            time.sleep(0.05)
    finally:
        first.stop()
        if second is not None:
            second.stop()
        server.shutdown()
    [alert] = BudgetAlert.objects.filter(budget_id=budget["id"])
    assert [h["fireflow-event-id"] for h in _HangingReceiver.got] == [str(alert.id)] * 2
    assert Notification.objects.filter(alert=alert).count() == 1
    hook = AlertDelivery.objects.get(alert=alert, channel="webhook")
    assert (hook.status, hook.attempts) == ("sent", 2)


def _wait_for_request(client: Any, org: OrgFixture, run_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        found = client.get(f"{base(org)}/runs/{run_id}/requests").json()
        if found:
            return dict(found[0])
        time.sleep(0.1)
    raise AssertionError(f"run {run_id} did not ask for more spend")


@pytest.mark.django_db(transaction=True)
def test_a_pausing_budget_waits_for_an_owner_to_approve_more_spend(
    engine_worker: str, org: OrgFixture, client_for: Any
) -> None:
    owner = client_for(org.owner)
    editor = org.add_member(OrgRole.MEMBER, email="eve.editor@example.com")
    org.grant(editor, WorkspaceRole.EDITOR)
    flow_id = create_flow(owner, org, RACE_FLOW)
    budget = _budget(owner, org, limit_usd="0.0001", action="pause")  # below one call's hold

    run = _start(client_for(editor), org, flow_id).json()
    request = _wait_for_request(owner, org, run["id"])
    assert request["title"] == "Approve more LLM spend"
    assert "budget exceeded: 'Research daily'" in request["message"]
    assert request["node_id"] == "ask"
    assert client_for(editor).get(f"{base(org)}/runs/{run['id']}").json()["status"] == "running"
    # The caller is not an approver (only owners of the workspace are).
    denied = client_for(editor).post(
        f"{base(org)}/runs/{run['id']}/requests/ask/answer",
        {"decision": "approve"},
        content_type="application/json",
    )
    assert denied.status_code == 403
    approved = owner.post(
        f"{base(org)}/runs/{run['id']}/requests/ask/answer",
        {"decision": "approve", "comment": "ship it"},
        content_type="application/json",
    )
    assert approved.status_code == 200, approved.content
    assert wait_run(owner, org, run["id"])["status"] == "completed"
    period = BudgetPeriod.objects.get(budget_id=budget["id"])
    # The call was made once approved (its hold went past the limit) and is paid for.
    recorded = LLMUsage.objects.filter(run_id=run["id"]).aggregate(s=Sum("cost_micros"))["s"]
    assert period.spent_micros == recorded > 0
    assert period.reserved_micros == 0

    refused_run = _start(owner, org, flow_id).json()
    _wait_for_request(owner, org, refused_run["id"])
    owner.post(
        f"{base(org)}/runs/{refused_run['id']}/requests/ask/answer",
        {"decision": "reject", "comment": "not this month"},
        content_type="application/json",
    )
    ended = wait_run(owner, org, refused_run["id"])
    assert ended["status"] == "failed"
    assert "budget exceeded" in ended["error"]
    assert "not approved (rejected by" in ended["error"]
    assert BudgetPeriod.objects.get(budget_id=budget["id"]).spent_micros == period.spent_micros
