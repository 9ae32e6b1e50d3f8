"""Billing through Stripe (the official SDK): a customer per organisation, plans as data
(billing.Plan, each a Stripe price found by lookup key), Checkout and the customer portal to
subscribe and change plan, webhooks, invoices, and LLM usage on Stripe's metered billing.

- The customer is created by a durable workflow queued when the organisation is created
  (`fireflow_stripe_customer`, one per organisation by its workflow id), with an idempotency
  key of its own: a retried step or request never makes a second customer.
- Webhooks are verified on the raw body (signature and timestamp tolerance, by the SDK) and
  processed once per event id (billing.StripeEvent, in the transaction of the change). They
  never trust the event's snapshot: the organisation's subscriptions are re-read from
  Stripe, so events arriving out of order, or twice, end in Stripe's current state.
- The subscription drives the plan, and the plan's monthly spend cap is kept as the
  organisation's plan budget (the budget gate enforces it like any other).
- Usage is reported per closed window with a deterministic identifier that is also the
  request's idempotency key (billing.MeterReport): a step retried after a crash, or a
  response lost on the way back, is replayed by Stripe, never billed twice."""

import logging
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import stripe
from django.conf import settings
from django.db import connection, transaction
from django.db.models import Sum
from django.utils import timezone

import engine
from fireflow.errors import Conflict, NotFound, ServiceError
from flows.models import LLMUsage
from tenants.audit import audit_record
from tenants.context import Actor, OrgContext
from tenants.models import Membership, Organization
from tenants.roles import OrgRole

from .models import BillingAccount, Budget, MeterReport, Plan, StripeEvent

log = logging.getLogger("fireflow.billing")
# The SDK logs every request at INFO (URLs with customer ids): warnings only.
logging.getLogger("stripe").setLevel(logging.WARNING)

CUSTOMER_WORKFLOW = "fireflow_stripe_customer"
# Where LLM usage is billed: one metered price on the meter, found by this lookup key.
METERED_LOOKUP_KEY = "fireflow_llm_usage"
# A window is reported once it closed this long ago (usage rows are committed by then).
REPORT_GRACE = timedelta(minutes=5)
# Subscription states in which the subscription's plan applies.
LIVE_STATUSES = ("active", "trialing", "past_due")
PLAN_CAP_NAME = "Plan spend cap"
BILLING_ROLES = (OrgRole.OWNER, OrgRole.BILLING)
BILLING_VIEWERS = (OrgRole.OWNER, OrgRole.ADMIN, OrgRole.BILLING)


class BillingUnavailable(ServiceError):
    """Stripe lacks what FireFlow bills with (run `manage.py stripe_catalogue`)."""

    status = 503
    code = "billing_unavailable"


class BillingNotConfigured(Conflict):
    """This platform bills through no Stripe account: a state, not a fault."""

    code = "billing_not_configured"


def configured() -> bool:
    return bool(settings.STRIPE_SECRET_KEY)


def client() -> stripe.StripeClient:
    if not configured():
        raise BillingNotConfigured(
            "Billing through Stripe is not configured here (STRIPE_SECRET_KEY is not set)."
        )
    base = settings.STRIPE_API_BASE
    addresses = dict.fromkeys(("api", "files", "connect", "meter_events"), base) if base else None
    return stripe.StripeClient(
        settings.STRIPE_SECRET_KEY,
        base_addresses=addresses,  # type: ignore[arg-type]
        max_network_retries=2,
    )


# --- the customer ------------------------------------------------------------------------------


def account_of(org: Organization) -> BillingAccount:
    account, _new = BillingAccount.objects.get_or_create(org=org)
    return account


def enqueue_customer(org: Organization) -> None:
    """Queue the customer's creation (in the caller's transaction; once per organisation)."""
    with connection.cursor() as cursor:
        cursor.execute(
            *engine.enqueue_job_sql(CUSTOMER_WORKFLOW, f"stripe-customer-{org.id}", str(org.id))
        )


def ensure_customer(org_id: UUID | str) -> str:
    """The organisation's Stripe customer id, created once (idempotency key per org)."""
    org = Organization.objects.get(id=org_id)
    account = account_of(org)
    if account.stripe_customer_id:
        return account.stripe_customer_id
    customer = client().v1.customers.create(
        {"name": org.name, "metadata": {"fireflow_org": str(org.id), "slug": org.slug}},
        {"idempotency_key": f"fireflow-customer-{org.id}"},
    )
    BillingAccount.objects.filter(id=account.id, stripe_customer_id="").update(
        stripe_customer_id=customer.id
    )
    return customer.id


# --- plans, Checkout, portal, invoices ---------------------------------------------------------


def _plan_view(plan: Plan) -> dict[str, Any]:
    return {
        "code": plan.code,
        "name": plan.name,
        "description": plan.description,
        "monthly_price_cents": plan.monthly_price_cents,
        "included_usage_micros": plan.included_usage_micros,
        "spend_cap_micros": plan.spend_cap_micros,
    }


def status(*, ctx: OrgContext) -> dict[str, Any]:
    ctx.require(*BILLING_VIEWERS, action="see billing")
    account = BillingAccount.objects.filter(org=ctx.org).select_related("plan").first()
    return {
        "configured": configured(),
        "plan": _plan_view(account.plan) if account and account.plan else None,
        "subscription_status": account.subscription_status if account else "",
        "current_period_end": account.current_period_end if account else None,
        "cancel_at_period_end": account.cancel_at_period_end if account else False,
        "plans": [_plan_view(p) for p in Plan.objects.filter(public=True)],
    }


def _price_id(lookup_key: str) -> str:
    found = client().v1.prices.list({"lookup_keys": [lookup_key], "active": True, "limit": 1})
    if not found.data:
        raise BillingUnavailable(
            f"Stripe has no price with lookup key '{lookup_key}': run `manage.py stripe_catalogue`."
        )
    return found.data[0].id


def checkout_start(*, ctx: OrgContext, plan_code: str) -> str:
    """A Checkout session subscribing the organisation to `plan_code` (its price, and the
    metered price LLM usage is billed on); returns the page to send the browser to."""
    ctx.require(*BILLING_ROLES, action="change the plan")
    plan = Plan.objects.filter(code=plan_code, public=True).exclude(stripe_lookup_key="").first()
    if plan is None:
        raise NotFound("No plan with this code to subscribe to.")
    account = account_of(ctx.org)
    if account.subscription_status in LIVE_STATUSES:
        raise Conflict(
            "The organisation is subscribed already: change the plan in the billing portal.",
            code="subscribed",
        )
    back = f"{settings.PUBLIC_URL}/orgs/{ctx.org.slug}/billing"
    session = client().v1.checkout.sessions.create(
        {
            "mode": "subscription",
            "customer": ensure_customer(ctx.org.id),
            "client_reference_id": str(ctx.org.id),
            "line_items": [
                {"price": _price_id(plan.stripe_lookup_key), "quantity": 1},
                {"price": _price_id(METERED_LOOKUP_KEY)},
            ],
            "subscription_data": {"metadata": {"fireflow_org": str(ctx.org.id)}},
            "success_url": back + "?checkout=done",
            "cancel_url": back + "?checkout=cancelled",
        }
    )
    audit_record(
        org=ctx.org,
        actor=ctx.actor,
        action="billing.checkout_started",
        target_type="plan",
        target_id=plan.code,
        target_label=plan.name,
    )
    return str(session.url)


def portal_url(*, ctx: OrgContext) -> str:
    ctx.require(*BILLING_ROLES, action="manage the subscription")
    session = client().v1.billing_portal.sessions.create(
        {
            "customer": ensure_customer(ctx.org.id),
            "return_url": f"{settings.PUBLIC_URL}/orgs/{ctx.org.slug}/billing",
        }
    )
    return str(session.url)


def invoices(*, ctx: OrgContext) -> list[dict[str, Any]]:
    ctx.require(*BILLING_VIEWERS, action="see invoices")
    account = account_of(ctx.org)
    if not account.stripe_customer_id:
        return []
    found = client().v1.invoices.list({"customer": account.stripe_customer_id, "limit": 24})
    return [
        {
            "id": i.id,
            "number": _field(i, "number") or "",
            "status": _field(i, "status") or "",
            "amount_due": int(_field(i, "amount_due") or 0),
            "amount_paid": int(_field(i, "amount_paid") or 0),
            "currency": _field(i, "currency") or "usd",
            "created": datetime.fromtimestamp(int(i.created), UTC),
            "hosted_invoice_url": _field(i, "hosted_invoice_url") or "",
        }
        for i in found.data
    ]


def _field(obj: Any, name: str) -> Any:
    """A Stripe object's field, None when absent (or no object at all)."""
    return getattr(obj, name, None) if obj is not None else None


# --- webhooks ----------------------------------------------------------------------------------


class BadWebhook(ServiceError):
    status = 400
    code = "bad_webhook"


def webhook_event(payload: bytes, signature: str | None) -> Any:
    """The verified event, or BadWebhook (no or bad signature, stale timestamp, a body that
    is not the one signed)."""
    secret = settings.STRIPE_WEBHOOK_SECRET
    if not secret:
        raise BillingNotConfigured("Stripe webhooks are not configured (STRIPE_WEBHOOK_SECRET).")
    if not signature:
        raise BadWebhook("Missing Stripe-Signature header.")
    try:
        return stripe.Webhook.construct_event(payload, signature, secret)  # tolerance: 300 s
    except stripe.SignatureVerificationError:
        raise BadWebhook("The signature does not match the body, or it is too old.") from None
    except ValueError:
        raise BadWebhook("The body is not a Stripe event.") from None


def handle_event(event: Any) -> bool:
    """Process a verified event once; False when it was processed already."""
    obj = event["data"]["object"]
    customer = _field(obj, "id" if _field(obj, "object") == "customer" else "customer")
    with transaction.atomic():
        _created, new = StripeEvent.objects.get_or_create(
            event_id=event["id"], defaults={"type": event["type"]}
        )
        if not new:
            return False
        if customer:
            account = (
                BillingAccount.objects.select_for_update(of=("self",))
                .select_related("org", "plan")
                .filter(stripe_customer_id=customer)
                .first()
            )
            if account is not None:
                sync_subscription(account)
    return True


def sync_subscription(account: BillingAccount) -> None:
    """Read the customer's subscriptions from Stripe and apply the live one (or none)."""
    found = client().v1.subscriptions.list(
        {"customer": account.stripe_customer_id, "status": "all", "limit": 20}
    )
    live = [s for s in found.data if s.status in LIVE_STATUSES]
    current = max(live, key=lambda s: int(s.created), default=None)
    # Without a live subscription the free plan (the one without a price) applies.
    plan = Plan.objects.filter(stripe_lookup_key="").first()
    if current is not None:
        keys = {_field(item.price, "lookup_key") for item in current["items"].data}
        plan = Plan.objects.filter(stripe_lookup_key__in=keys - {None, ""}).first()
    before = (account.plan_id, account.subscription_status)
    account.subscription_id = current.id if current else ""
    account.subscription_status = current.status if current else ("canceled" if found.data else "")
    account.cancel_at_period_end = bool(_field(current, "cancel_at_period_end"))
    ends = (
        [int(_field(i, "current_period_end") or 0) for i in current["items"].data]
        if current
        else []
    )
    account.current_period_end = datetime.fromtimestamp(max(ends), UTC) if any(ends) else None
    account.plan = plan
    account.save()
    _apply_plan_cap(account.org, plan)
    if before != (account.plan_id, account.subscription_status):
        audit_record(
            org=account.org,
            actor=_stripe_actor(account.org),
            action="billing.subscription_changed",
            target_type="plan",
            target_id=plan.code if plan else "",
            target_label=plan.name if plan else "no plan",
            after={"status": account.subscription_status},
        )


def _stripe_actor(org: Organization) -> Actor:
    """Audit rows name a person: Stripe's changes are recorded under the org's first owner."""
    owner = (
        Membership.objects.filter(org=org, role=OrgRole.OWNER)
        .select_related("user")
        .order_by("created_at")
        .first()
    )
    assert owner is not None, "an organisation always has an owner"
    return Actor(user=owner.user, request_id="stripe-webhook")


def _apply_plan_cap(org: Organization, plan: Plan | None) -> None:
    """Keep the plan's monthly spend cap as the organisation's plan budget."""
    cap = plan.spend_cap_micros if plan is not None else None
    existing = Budget.objects.filter(org=org, plan_cap=True).first()
    if cap is None:
        if existing is not None:
            existing.delete()
        return
    if existing is None:
        Budget.objects.create(
            org=org,
            name=PLAN_CAP_NAME,
            scope=Budget.Scope.ORG,
            period=Budget.Period.MONTH,
            limit_micros=cap,
            thresholds=[80, 100],
            plan_cap=True,
        )
    elif existing.limit_micros != cap:
        existing.limit_micros = cap
        existing.save(update_fields=["limit_micros", "updated_at"])


# --- metered usage -----------------------------------------------------------------------------


def window_of(moment: datetime) -> tuple[datetime, datetime]:
    minutes = settings.STRIPE_METER_WINDOW_MINUTES
    epoch = int(moment.timestamp()) // (minutes * 60) * (minutes * 60)
    start = datetime.fromtimestamp(epoch, UTC)
    return start, start + timedelta(minutes=minutes)


def _spend(org_id: Any, start: datetime, end: datetime) -> int:
    total = LLMUsage.objects.filter(
        organization_id=org_id, created_at__gte=start, created_at__lt=end
    ).aggregate(s=Sum("cost_micros"))["s"]
    return int(total or 0)


def billable_micros(account: BillingAccount, start: datetime, end: datetime) -> int:
    """LLM spend in [start, end) beyond what the plan includes in its calendar month."""
    included = account.plan.included_usage_micros if account.plan else 0
    month = start.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    before = _spend(account.org_id, month, start)
    during = _spend(account.org_id, start, end)
    return max(0, before + during - included) - max(0, before - included)


def report_window(org_id: UUID | str, start: datetime) -> int:
    """Report one closed window's usage (once: by identifier and idempotency key)."""
    end = start + timedelta(minutes=settings.STRIPE_METER_WINDOW_MINUTES)
    if end + REPORT_GRACE > timezone.now():
        raise ValueError(f"the window {start.isoformat()} has not closed yet")
    account = BillingAccount.objects.select_related("plan").get(org_id=UUID(str(org_id)))
    identifier = f"fireflow-{account.org_id}-{start:%Y%m%dT%H%M}Z"
    report, _new = MeterReport.objects.get_or_create(
        identifier=identifier,
        defaults={
            "org_id": account.org_id,
            "window_start": start,
            "window_end": end,
            "value_micros": billable_micros(account, start, end),
        },
    )
    if report.sent_at is not None:
        return report.value_micros
    if report.value_micros > 0:
        try:
            client().v1.billing.meter_events.create(
                {
                    "event_name": settings.STRIPE_METER_EVENT,
                    "identifier": identifier,
                    "timestamp": int(end.timestamp()) - 1,
                    "payload": {
                        "stripe_customer_id": account.stripe_customer_id,
                        "value": str(report.value_micros),
                    },
                },
                {"idempotency_key": identifier},
            )
        except stripe.InvalidRequestError as exc:
            if exc.code != "duplicate_meter_event":
                raise  # sent before, by a run whose record was lost: Stripe has it once
    MeterReport.objects.filter(id=report.id).update(sent_at=timezone.now())
    return report.value_micros


def windows_due(now: datetime | None = None) -> Iterable[tuple[Any, datetime]]:
    """(org, window start) of closed windows not yet reported, for subscribed customers,
    from each account's last report (or its subscription's first day in this month)."""
    now = now or timezone.now()
    step = timedelta(minutes=settings.STRIPE_METER_WINDOW_MINUTES)
    last_closed, _ = window_of(now - REPORT_GRACE - step)
    accounts = BillingAccount.objects.exclude(stripe_customer_id="").filter(
        subscription_status__in=LIVE_STATUSES
    )
    for account in accounts:
        latest = (
            MeterReport.objects.filter(org_id=account.org_id, sent_at__isnull=False)
            .order_by("-window_start")
            .values_list("window_start", flat=True)
            .first()
        )
        start = latest + step if latest else window_of(now - timedelta(days=1))[0]
        while start <= last_closed:
            yield account.org_id, start
            start += step
