"""Reads of cost control: the dashboard's figures (from the rollups), budgets with their
current spend, alerts, notifications and kill switches. Every read is scoped to `ctx.org`."""

from datetime import date, timedelta
from typing import Any
from uuid import UUID

from django.db.models import Q, QuerySet, Sum

from fireflow.errors import NotFound
from flows.models import Flow
from tenants.context import OrgContext
from tenants.models import User, Workspace

from .models import (
    Budget,
    BudgetAlert,
    BudgetPeriod,
    KillSwitch,
    Notification,
    UsageRollup,
    WebhookEndpoint,
)
from .periods import period_bounds
from .roles import require_cost_manager, require_cost_viewer

_SUMS = {
    "cost_micros": Sum("cost_micros"),
    "calls": Sum("calls"),
    "input_tokens": Sum("input_tokens"),
    "output_tokens": Sum("output_tokens"),
}
_TOP = 10


def _totals(row: Any) -> dict[str, int]:
    return {key: int(row.get(key) or 0) for key in _SUMS}


def costs(*, ctx: OrgContext, start: date, end: date) -> dict[str, Any]:
    """Totals, a series by day and the top spenders by workspace, flow, member and model,
    for the days from `start` to `end` (both included)."""
    require_cost_viewer(ctx)
    rows = UsageRollup.objects.filter(org=ctx.org, day__gte=start, day__lte=end)
    by_day: dict[date, Any] = {r["day"]: r for r in rows.values("day").annotate(**_SUMS)}
    series = []
    day = start
    while day <= end:
        found: Any = by_day.get(day, {})
        series.append(
            {
                "day": day,
                "cost_micros": int(found.get("cost_micros") or 0),
                "calls": int(found.get("calls") or 0),
            }
        )
        day += timedelta(days=1)
    return {
        "start": start,
        "end": end,
        "total": _totals(rows.aggregate(**_SUMS)),
        "series": series,
        "by_workspace": _top(rows, "workspace_id", Workspace.objects.filter(org=ctx.org), "name"),
        "by_flow": _top(rows, "flow_id", Flow.objects.filter(workspace__org=ctx.org), "name"),
        "by_user": _top(rows, "user_id", User.objects.filter(memberships__org=ctx.org), "email"),
        "by_model": [
            {
                **_totals(r),
                "key": f"{r['provider']}/{r['model']}",
                "label": f"{r['model']} ({r['provider']})",
            }
            for r in rows.values("provider", "model")
            .annotate(**_SUMS)
            .order_by("-cost_micros")[:_TOP]
        ],
    }


def _top(
    rows: QuerySet[UsageRollup], key: str, named: QuerySet[Any], field: str
) -> list[dict[str, Any]]:
    """The top spenders by `key`, labelled with `field` of those `named` in the org."""
    top = list(rows.values(key).annotate(**_SUMS).order_by("-cost_micros")[:_TOP])
    names = dict(named.filter(id__in=[r[key] for r in top]).values_list("id", field))
    return [
        {
            **_totals(r),
            "key": str(r[key]) if r[key] is not None else "",
            "label": names.get(r[key], "(deleted)"),
        }
        for r in top
    ]


def budget_list(*, ctx: OrgContext) -> list[dict[str, Any]]:
    require_cost_viewer(ctx)
    budgets = list(
        Budget.objects.filter(org=ctx.org)
        .select_related("workspace", "user", "flow", "app")
        .order_by("name", "created_at")
    )
    return budget_views(budgets)


def budget_get(*, ctx: OrgContext, budget_id: UUID) -> Budget:
    require_cost_viewer(ctx)
    budget = (
        Budget.objects.filter(org=ctx.org, id=budget_id)
        .select_related("workspace", "user", "flow", "app")
        .first()
    )
    if budget is None:
        raise NotFound("No budget with this id in this organisation.")
    return budget


def budget_views(budgets: list[Budget]) -> list[dict[str, Any]]:
    """Budgets with their current period's spend (one query for all their periods)."""
    bounds = {b.id: period_bounds(b.period) for b in budgets}
    current = {
        (p.budget_id, p.period_start): p
        for p in BudgetPeriod.objects.filter(
            budget__in=budgets, period_start__in={start for start, _end in bounds.values()}
        )
    }
    views = []
    for budget in budgets:
        start, end = bounds[budget.id]
        period = current.get((budget.id, start))
        spent = period.spent_micros if period else 0
        target, label = _target(budget)
        views.append(
            {
                "id": budget.id,
                "name": budget.name,
                "scope": budget.scope,
                "target_id": target,
                "target_label": label,
                "period": budget.period,
                "limit_micros": budget.limit_micros,
                "thresholds": budget.thresholds,
                "action": budget.action,
                "enabled": budget.enabled,
                "plan_cap": budget.plan_cap,
                "period_start": start,
                "period_end": end,
                "spent_micros": spent,
                "reserved_micros": period.reserved_micros if period else 0,
                "percent": round(spent * 100 / budget.limit_micros, 2),
                "created_at": budget.created_at,
            }
        )
    return views


def _target(budget: Budget) -> tuple[str | None, str]:
    if budget.workspace is not None:
        return str(budget.workspace_id), f"workspace {budget.workspace.name}"
    if budget.user is not None:
        return str(budget.user_id), f"member {budget.user.email}"
    if budget.flow is not None:
        return str(budget.flow_id), f"flow {budget.flow.name}"
    if budget.app is not None:
        return str(budget.app_id), f"app {budget.app.title}"
    return None, "the whole organisation"


def alert_list(*, ctx: OrgContext, budget_id: UUID | None = None) -> list[dict[str, Any]]:
    require_cost_viewer(ctx)
    alerts = BudgetAlert.objects.filter(budget__org=ctx.org).select_related("budget")
    if budget_id is not None:
        alerts = alerts.filter(budget_id=budget_id)
    return [
        {
            "id": a.id,
            "budget_id": a.budget_id,
            "budget_name": a.budget.name,
            "period_start": a.period_start,
            "threshold": a.threshold,
            "spent_micros": a.spent_micros,
            "limit_micros": a.limit_micros,
            "created_at": a.created_at,
        }
        for a in alerts.order_by("-created_at")[:200]
    ]


def notification_list(*, ctx: OrgContext) -> QuerySet[Notification]:
    require_cost_viewer(ctx)
    return Notification.objects.filter(org=ctx.org).order_by("-created_at", "-id")[:50]


def kill_switch_list(*, ctx: OrgContext) -> QuerySet[KillSwitch]:
    require_cost_viewer(ctx)
    return (
        KillSwitch.objects.filter(org=ctx.org)
        .select_related("workspace", "pulled_by", "lifted_by")
        .order_by("-pulled_at")[:100]
    )


def webhook_list(*, ctx: OrgContext) -> QuerySet[WebhookEndpoint]:
    require_cost_manager(ctx, "manage alert webhooks")
    return WebhookEndpoint.objects.filter(org=ctx.org).order_by("created_at")


def halts(workspace: Workspace) -> QuerySet[KillSwitch]:
    """The kill switches that halt `workspace` now (its own, or its organisation's)."""
    return KillSwitch.objects.filter(org_id=workspace.org_id, lifted_at__isnull=True).filter(
        Q(workspace__isnull=True) | Q(workspace=workspace)
    )


def halt_of(workspace: Workspace) -> KillSwitch | None:
    """The kill switch that halts `workspace` now (its own, or its organisation's)."""
    return halts(workspace).select_related("workspace").order_by("workspace_id").first()
