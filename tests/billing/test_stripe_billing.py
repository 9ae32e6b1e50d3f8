"""Billing through Stripe, driven by the official SDK against the fake Stripe (a real HTTP
server with Stripe's wire format and webhook signing): the customer made once by a durable
job at sign-up, Checkout and the portal, webhooks verified on the raw body and processed
once whatever their order, invoices, and usage reported under deterministic identifiers."""

import json
import time
from datetime import timedelta
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from billing import stripe_billing
from billing.management.commands.stripe_catalogue import ensure_catalogue
from billing.models import BillingAccount, Budget, MeterReport, Plan, StripeEvent
from flows.models import LLMUsage, Run
from tenants.models import AuditEvent, Organization
from tenants.roles import OrgRole
from tests.factories import OrgFixture
from tests.flows.test_flows_api import create_flow

WEBHOOK = "/api/billing/stripe/webhook"


@pytest.fixture
def stripe_on(settings: Any, fake_stripe: Any) -> Any:
    """Stripe configured, the fake emptied, the catalogue (plans, meter, prices) in it.
    Webhooks are delivered by the test (the Django test client is the receiver)."""
    fake_stripe.reset()
    fake_stripe.webhook_url = None
    settings.STRIPE_SECRET_KEY = "sk_test_fireflow"
    settings.STRIPE_API_BASE = fake_stripe.url
    settings.STRIPE_WEBHOOK_SECRET = fake_stripe.webhook_secret
    settings.STRIPE_METER_WINDOW_MINUTES = 60
    ensure_catalogue()
    return fake_stripe


def deliver(client: Client, fake: Any, event_id: str, **sign: Any) -> Any:
    body = fake.event_payload(event_id)
    return client.post(
        WEBHOOK,
        body,
        content_type="application/json",
        HTTP_STRIPE_SIGNATURE=fake.sign(body, **sign),
    )


def deliver_all(client: Client, fake: Any, events: list[dict[str, Any]]) -> None:
    for event in events:
        response = deliver(client, fake, event["id"])
        assert response.status_code == 200, response.content


def subscribe(client: Client, org: OrgFixture, fake: Any, plan: str = "pro") -> dict[str, Any]:
    """Checkout as the owner, paid on Stripe's page; the events delivered to the webhook."""
    started = client.post(
        f"/api/orgs/{org.org.slug}/billing/checkout",
        {"plan": plan},
        content_type="application/json",
    )
    assert started.status_code == 200, started.content
    url = started.json()["url"]
    assert url.startswith(f"{fake.url}/checkout/")
    session = fake.complete_checkout(url.rsplit("/", 1)[1])
    deliver_all(Client(), fake, fake.events)
    return dict(session)


@pytest.mark.django_db(transaction=True)
def test_signup_creates_the_stripe_customer_once_by_a_durable_job(
    engine_worker: str, stripe_on: Any
) -> None:
    response = Client().post(
        "/api/auth/signup",
        {
            "org_name": "Billed Robots",
            "org_slug": "billed-robots",
            "name": "Bea Billing",
            "email": "bea@billed.example",
            "password": "a-long-and-unusual-passphrase",
        },
        content_type="application/json",
    )
    assert response.status_code == 201, response.content
    org = Organization.objects.get(slug="billed-robots")
    deadline = time.monotonic() + 30
    while not BillingAccount.objects.filter(org=org).exclude(stripe_customer_id="").exists():
        assert time.monotonic() < deadline, "the worker did not create the customer"
        time.sleep(0.1)
    account = BillingAccount.objects.get(org=org)
    customers = [c for c in stripe_on.customers.values() if c["metadata"].get("slug") == org.slug]
    assert [c["id"] for c in customers] == [account.stripe_customer_id]
    # Asked again (a retried step, a checkout before the job ran): the same customer.
    assert stripe_billing.ensure_customer(org.id) == account.stripe_customer_id
    BillingAccount.objects.filter(org=org).update(stripe_customer_id="")  # the write lost
    assert stripe_billing.ensure_customer(org.id) == account.stripe_customer_id
    assert (
        len([c for c in stripe_on.customers.values() if c["metadata"].get("slug") == org.slug]) == 1
    )


@pytest.mark.django_db
def test_checkout_and_webhooks_set_the_plan_its_cap_and_the_invoices(
    stripe_on: Any, org: OrgFixture, client_for: Any
) -> None:
    client = client_for(org.owner)
    before = client.get(f"/api/orgs/{org.org.slug}/billing").json()
    assert before["configured"] is True
    assert before["plan"] is None
    assert [p["code"] for p in before["plans"]] == ["free", "pro", "enterprise"]

    subscribe(client, org, stripe_on)

    account = BillingAccount.objects.get(org=org.org)
    assert (account.plan.code, account.subscription_status) == ("pro", "active")
    shown = client.get(f"/api/orgs/{org.org.slug}/billing").json()
    assert (shown["plan"]["code"], shown["subscription_status"]) == ("pro", "active")
    assert shown["current_period_end"] is not None
    cap = Budget.objects.get(org=org.org, plan_cap=True)
    assert (cap.limit_micros, cap.period, cap.scope) == (500_000_000, "month", "org")
    refused = client.patch(
        f"/api/orgs/{org.org.slug}/budgets/{cap.id}",
        {"limit_usd": "1"},
        content_type="application/json",
    )
    assert refused.status_code == 409
    assert refused.json()["code"] == "plan_cap"
    [invoice] = client.get(f"/api/orgs/{org.org.slug}/billing/invoices").json()
    assert (invoice["status"], invoice["amount_paid"], invoice["currency"]) == ("paid", 4900, "usd")
    again = client.post(
        f"/api/orgs/{org.org.slug}/billing/checkout",
        {"plan": "pro"},
        content_type="application/json",
    )
    assert again.status_code == 409
    portal = client.post(f"/api/orgs/{org.org.slug}/billing/portal")
    assert portal.json()["url"].startswith(f"{stripe_on.url}/portal/")
    changes = AuditEvent.objects.filter(org=org.org, action="billing.subscription_changed")
    assert changes.count() == 1


@pytest.mark.django_db
def test_webhooks_with_a_bad_signature_a_stale_timestamp_or_a_changed_body_are_refused(
    stripe_on: Any, org: OrgFixture
) -> None:
    event = stripe_billing.client().v1.customers.create({"email": "x@example.com"})
    [created] = stripe_on.events_of("customer.created")
    body = stripe_on.event_payload(created["id"])
    client = Client()

    def post(payload: bytes, header: str | None) -> Any:
        extra = {"HTTP_STRIPE_SIGNATURE": header} if header is not None else {}
        return client.post(WEBHOOK, payload, content_type="application/json", **extra)

    assert post(body, None).status_code == 400
    assert post(body, "t=1,v1=deadbeef").status_code == 400
    assert post(body, stripe_on.sign(body, secret="whsec_someone_else")).status_code == 400
    stale = stripe_on.sign(body, timestamp=int(time.time()) - 600)
    assert post(body, stale).status_code == 400
    changed = body.replace(event.id.encode(), b"cus_attacker")
    assert post(changed, stripe_on.sign(body)).status_code == 400
    # Re-serialised (same JSON, other bytes): the signature covers the bytes.
    compact = json.dumps(json.loads(body), separators=(",", ":")).encode()
    assert post(compact, stripe_on.sign(body)).status_code == 400
    assert not StripeEvent.objects.exists()
    assert post(body, stripe_on.sign(body)).status_code == 200


@pytest.mark.django_db
def test_an_event_delivered_twice_is_processed_once(
    stripe_on: Any, org: OrgFixture, client_for: Any
) -> None:
    subscribe(client_for(org.owner), org, stripe_on)
    [paid] = stripe_on.events_of("invoice.paid")
    again = deliver(Client(), stripe_on, paid["id"])
    assert again.status_code == 200
    assert again.json() == {"received": True, "processed": False}
    assert StripeEvent.objects.filter(event_id=paid["id"]).count() == 1


@pytest.mark.django_db
def test_events_out_of_order_end_in_stripes_current_state(
    stripe_on: Any, org: OrgFixture, client_for: Any
) -> None:
    client = client_for(org.owner)
    subscribe(client, org, stripe_on)
    account = BillingAccount.objects.get(org=org.org)
    enterprise = stripe_billing._price_id("fireflow_enterprise_monthly")
    first = len(stripe_on.events)
    stripe_on.switch_price(account.subscription_id, enterprise)  # pro -> enterprise
    stripe_on.cancel_subscription(account.subscription_id)  # then cancelled
    later = stripe_on.events[first:]
    assert [e["type"] for e in later] == [
        "customer.subscription.updated",
        "customer.subscription.deleted",
    ]
    deliver_all(Client(), stripe_on, list(reversed(later)))  # the deletion arrives first
    account.refresh_from_db()
    assert account.subscription_status == "canceled"
    assert account.plan is not None
    assert account.plan.code == "free"
    assert Budget.objects.get(org=org.org, plan_cap=True).limit_micros == 5_000_000


@pytest.mark.django_db
def test_only_owners_and_billing_members_change_the_plan(
    stripe_on: Any, org: OrgFixture, client_for: Any
) -> None:
    admin = org.add_member(OrgRole.ADMIN)
    billing = org.add_member(OrgRole.BILLING)
    member = org.add_member(OrgRole.MEMBER)
    url = f"/api/orgs/{org.org.slug}/billing"
    assert client_for(member).get(url).status_code == 403
    assert client_for(admin).get(url).status_code == 200
    assert client_for(admin).post(f"{url}/portal").status_code == 403
    started = client_for(billing).post(
        f"{url}/checkout", {"plan": "pro"}, content_type="application/json"
    )
    assert started.status_code == 200
    unknown = client_for(billing).post(
        f"{url}/checkout", {"plan": "platinum"}, content_type="application/json"
    )
    assert unknown.status_code == 404


@pytest.mark.django_db
def test_usage_is_reported_once_per_window_even_when_the_report_is_retried(
    stripe_on: Any, org: OrgFixture, client_for: Any
) -> None:
    Plan.objects.create(
        code="metered-test",
        name="Metered test",
        stripe_lookup_key="fireflow_metered_test",
        included_usage_micros=1_000,
        public=True,
    )
    ensure_catalogue()
    client = client_for(org.owner)
    subscribe(client, org, stripe_on, plan="metered-test")
    account = BillingAccount.objects.get(org=org.org)
    flow = org.workspace.flows.get(id=create_flow(client, org))
    run = Run.objects.create(
        workspace=org.workspace, flow=flow, flow_version=flow.current_version, caller=org.owner
    )
    start, end = stripe_billing.window_of(timezone.now() - timedelta(hours=2))
    for index, cost in enumerate((700, 900, 1_400), start=1):  # 3,000 in the window
        usage = LLMUsage.objects.create(
            run=run,
            run_key=str(run.id),
            node_id="ask",
            call_index=index,
            organization=org.org,
            workspace=org.workspace,
            flow=flow,
            caller=org.owner,
            provider="fake",
            model="fake-echo",
            cost_micros=cost,
        )
        LLMUsage.objects.filter(id=usage.id).update(created_at=start + timedelta(minutes=index))

    # Stripe takes the event but the answer is lost: the SDK retries with the same key.
    stripe_on.drop_next_response("POST", "/v1/billing/meter_events")
    assert stripe_billing.report_window(org.org.id, start) == 2_000  # beyond the 1,000 included
    # The worker died after Stripe had the event, before it wrote that down: run again.
    MeterReport.objects.update(sent_at=None)
    assert stripe_billing.report_window(org.org.id, start) == 2_000
    assert stripe_billing.report_window(org.org.id, start) == 2_000  # recorded: nothing sent

    identifier = f"fireflow-{org.org.id}-{start:%Y%m%dT%H%M}Z"
    attempts = [a for a in stripe_on.meter_events if a.identifier == identifier]
    assert [a.outcome for a in attempts] == ["accepted", "replayed", "replayed"]
    assert stripe_on.duplicate_meter_identifiers() == []
    assert stripe_on.meter_totals()[account.stripe_customer_id] == 2_000
    report = MeterReport.objects.get(identifier=identifier)
    assert (report.value_micros, report.window_end) == (2_000, end)
    assert report.sent_at is not None
    # The window is not due again; an open window is never reported.
    assert (org.org.id, start) not in set(stripe_billing.windows_due())
    with pytest.raises(ValueError, match="has not closed"):
        stripe_billing.report_window(org.org.id, stripe_billing.window_of(timezone.now())[0])
