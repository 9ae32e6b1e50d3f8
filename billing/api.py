"""Cost control API, under `/api/orgs/{org}`: the cost dashboard (`/costs`), budgets and
their alerts, in-app notifications, alert webhooks, and the kill switch. Owners, admins and
billing members see costs; owners and admins change budgets, webhooks and the switch."""

from datetime import date, timedelta
from typing import Any
from uuid import UUID

from django.http import HttpRequest
from django.utils import timezone
from ninja import Query, Router, Schema, Status
from pydantic import Field

from fireflow.errors import InvalidInput
from tenants.gate import gate, org_ctx

from . import selectors, services, stripe_billing
from .models import KillSwitch, WebhookEndpoint
from .schemas import (
    AlertOut,
    BillingOut,
    BudgetIn,
    BudgetOut,
    BudgetPatchIn,
    CheckoutIn,
    CostsOut,
    InvoiceOut,
    KillSwitchIn,
    KillSwitchOut,
    NotificationOut,
    RedirectOut,
    WebhookAck,
    WebhookCreatedOut,
    WebhookIn,
    WebhookOut,
)

router = Router(tags=["costs"], auth=gate("org"))

MAX_RANGE_DAYS = 366


class CostRange(Schema):
    start: date | None = Field(None, description="first day (UTC); default 29 days before end")
    end: date | None = Field(None, description="last day (UTC), included; default today")


@router.get("/costs", response=CostsOut, summary="LLM spend: totals, by day, top spenders")
def costs(request: HttpRequest, span: Query[CostRange]) -> dict[str, Any]:
    end = span.end or timezone.now().date()
    start = span.start or end - timedelta(days=29)
    if start > end:
        raise InvalidInput("start is after end.", fields={"start": "after end"})
    if (end - start).days >= MAX_RANGE_DAYS:
        raise InvalidInput(
            f"The range is longer than {MAX_RANGE_DAYS} days.", fields={"start": "too early"}
        )
    return selectors.costs(ctx=org_ctx(request), start=start, end=end)


@router.get("/budgets", response=list[BudgetOut], summary="Budgets and their current spend")
def budget_list(request: HttpRequest) -> list[dict[str, Any]]:
    return selectors.budget_list(ctx=org_ctx(request))


@router.post("/budgets", response={201: BudgetOut}, summary="Set a budget")
def budget_create(request: HttpRequest, payload: BudgetIn) -> Status[dict[str, Any]]:
    budget = services.budget_create(ctx=org_ctx(request), **payload.dict())
    [view] = selectors.budget_views([budget])
    return Status(201, view)


@router.get("/budgets/{budget_id}", response=BudgetOut)
def budget_detail(request: HttpRequest, budget_id: UUID) -> dict[str, Any]:
    [view] = selectors.budget_views(
        [selectors.budget_get(ctx=org_ctx(request), budget_id=budget_id)]
    )
    return view


@router.patch("/budgets/{budget_id}", response=BudgetOut, summary="Change a budget")
def budget_update(request: HttpRequest, budget_id: UUID, payload: BudgetPatchIn) -> dict[str, Any]:
    ctx = org_ctx(request)
    budget = selectors.budget_get(ctx=ctx, budget_id=budget_id)
    changed = services.budget_update(ctx=ctx, budget=budget, **payload.dict(exclude_unset=True))
    [view] = selectors.budget_views([changed])
    return view


@router.delete("/budgets/{budget_id}", response={204: None}, summary="Delete a budget")
def budget_delete(request: HttpRequest, budget_id: UUID) -> Status[None]:
    ctx = org_ctx(request)
    services.budget_delete(ctx=ctx, budget=selectors.budget_get(ctx=ctx, budget_id=budget_id))
    return Status(204, None)


@router.get("/budget-alerts", response=list[AlertOut], summary="Thresholds crossed")
def alert_list(request: HttpRequest, budget_id: UUID | None = None) -> list[dict[str, Any]]:
    return selectors.alert_list(ctx=org_ctx(request), budget_id=budget_id)


@router.get("/notifications", response=list[NotificationOut], summary="Cost notices")
def notification_list(request: HttpRequest):  # type: ignore[no-untyped-def]
    return list(selectors.notification_list(ctx=org_ctx(request)))


@router.get("/kill-switches", response=list[KillSwitchOut], summary="Pulled and lifted")
def kill_switch_list(request: HttpRequest) -> list[dict[str, Any]]:
    return [_switch(s) for s in selectors.kill_switch_list(ctx=org_ctx(request))]


@router.post(
    "/kill-switches",
    response={201: KillSwitchOut},
    summary="Pull the kill switch: cancel every run in the scope and refuse new ones",
)
def kill_switch_pull(request: HttpRequest, payload: KillSwitchIn) -> Status[dict[str, Any]]:
    switch = services.kill_switch_pull(
        ctx=org_ctx(request), workspace_id=payload.workspace_id, reason=payload.reason
    )
    return Status(201, _switch(switch))


@router.post("/kill-switches/{switch_id}/lift", response=KillSwitchOut, summary="Lift it")
def kill_switch_lift(request: HttpRequest, switch_id: UUID) -> dict[str, Any]:
    return _switch(services.kill_switch_lift(ctx=org_ctx(request), switch_id=switch_id))


def _switch(switch: KillSwitch) -> dict[str, Any]:
    return {
        "id": switch.id,
        "workspace_id": switch.workspace_id,
        "workspace_name": switch.workspace.name if switch.workspace else None,
        "reason": switch.reason,
        "pulled_by_email": switch.pulled_by.email if switch.pulled_by else None,
        "pulled_at": switch.pulled_at,
        "runs_cancelled": switch.runs_cancelled,
        "lifted_by_email": switch.lifted_by.email if switch.lifted_by else None,
        "lifted_at": switch.lifted_at,
        "active": switch.lifted_at is None,
    }


@router.get("/alert-webhooks", response=list[WebhookOut], summary="Where alerts are POSTed")
def webhook_list(request: HttpRequest):  # type: ignore[no-untyped-def]
    return list(selectors.webhook_list(ctx=org_ctx(request)))


@router.post("/alert-webhooks", response={201: WebhookCreatedOut}, summary="Add one")
def webhook_create(request: HttpRequest, payload: WebhookIn) -> Status[WebhookEndpoint]:
    return Status(201, services.webhook_create(ctx=org_ctx(request), url=payload.url))


@router.delete("/alert-webhooks/{webhook_id}", response={204: None})
def webhook_delete(request: HttpRequest, webhook_id: UUID) -> Status[None]:
    services.webhook_delete(ctx=org_ctx(request), webhook_id=webhook_id)
    return Status(204, None)


# --- billing through Stripe -------------------------------------------------------------------


@router.get("/billing", response=BillingOut, summary="The plan, the subscription, the plans")
def billing_status(request: HttpRequest) -> dict[str, Any]:
    return stripe_billing.status(ctx=org_ctx(request))


@router.post("/billing/checkout", response=RedirectOut, summary="Subscribe: Stripe Checkout")
def billing_checkout(request: HttpRequest, payload: CheckoutIn) -> dict[str, str]:
    return {"url": stripe_billing.checkout_start(ctx=org_ctx(request), plan_code=payload.plan)}


@router.post("/billing/portal", response=RedirectOut, summary="Change plan, cancel: the portal")
def billing_portal(request: HttpRequest) -> dict[str, str]:
    return {"url": stripe_billing.portal_url(ctx=org_ctx(request))}


@router.get("/billing/invoices", response=list[InvoiceOut], summary="Invoices from Stripe")
def billing_invoices(request: HttpRequest) -> list[dict[str, Any]]:
    return stripe_billing.invoices(ctx=org_ctx(request))


stripe_router = Router(tags=["billing"], auth=None)


@stripe_router.post("/webhook", response=WebhookAck, summary="Stripe's webhook (signed)")
def stripe_webhook(request: HttpRequest) -> dict[str, bool]:
    """Verified on the raw body; each event id processed once."""
    event = stripe_billing.webhook_event(request.body, request.headers.get("Stripe-Signature"))
    return {"received": True, "processed": stripe_billing.handle_event(event)}
