"""Changes to cost control: budgets, webhook endpoints, and the kill switch. Every change is
audited in its own transaction; the kill switch then cancels the runs it halts."""

import logging
import secrets
from decimal import Decimal
from typing import Any
from uuid import UUID

from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from fireflow.errors import Conflict, InvalidInput, NotFound
from flows import engine_bridge
from flows.models import Flow, Run
from miniapps.models import App
from tenants.audit import audit_record
from tenants.context import OrgContext
from tenants.models import Membership, Workspace

from .models import MICROS, Budget, KillSwitch, WebhookEndpoint
from .roles import require_cost_manager
from .selectors import halt_of

log = logging.getLogger("fireflow.billing")


def _micros(dollars: Decimal) -> int:
    return int((dollars * MICROS).to_integral_value())


def _thresholds(values: list[int]) -> list[int]:
    return sorted(set(values))


def _snapshot(budget: Budget) -> dict[str, Any]:
    return {
        "name": budget.name,
        "scope": budget.scope,
        "period": budget.period,
        "limit_micros": budget.limit_micros,
        "thresholds": budget.thresholds,
        "enabled": budget.enabled,
    }


@transaction.atomic
def budget_create(
    *,
    ctx: OrgContext,
    name: str,
    scope: str,
    period: str,
    limit_usd: Decimal,
    thresholds: list[int],
    action: str = Budget.Action.BLOCK,
    workspace_id: UUID | None = None,
    user_id: UUID | None = None,
    flow_id: UUID | None = None,
    app_id: UUID | None = None,
) -> Budget:
    require_cost_manager(ctx, "set budgets")
    budget = Budget(
        org=ctx.org,
        name=name,
        scope=scope,
        period=period,
        limit_micros=_micros(limit_usd),
        thresholds=_thresholds(thresholds),
        action=action,
        created_by=ctx.user,
    )
    _set_target(
        ctx, budget, workspace_id=workspace_id, user_id=user_id, flow_id=flow_id, app_id=app_id
    )
    budget.save(force_insert=True)
    audit_record(
        org=ctx.org,
        actor=ctx.actor,
        action="budget.created",
        target_type="budget",
        target_id=budget.id,
        target_label=budget.name,
        workspace=budget.workspace,
        after=_snapshot(budget),
    )
    return budget


def _set_target(
    ctx: OrgContext,
    budget: Budget,
    *,
    workspace_id: UUID | None,
    user_id: UUID | None,
    flow_id: UUID | None,
    app_id: UUID | None = None,
) -> None:
    """The one target the scope names, checked to belong to the organisation."""
    wanted = {"workspace": workspace_id, "user": user_id, "flow": flow_id, "app": app_id}
    for field, value in wanted.items():
        if value is not None and field != budget.scope:
            raise InvalidInput(
                f"A budget of scope '{budget.scope}' takes no {field}_id.",
                fields={f"{field}_id": f"not used by scope '{budget.scope}'"},
            )
    if budget.scope == Budget.Scope.ORG:
        return
    value = wanted[budget.scope]
    field = f"{budget.scope}_id"
    if value is None:
        raise InvalidInput(
            f"A budget of scope '{budget.scope}' needs {field}.", fields={field: "required"}
        )
    if budget.scope == Budget.Scope.WORKSPACE:
        budget.workspace = Workspace.objects.filter(org=ctx.org, id=value).first()
        found = budget.workspace is not None
    elif budget.scope == Budget.Scope.USER:
        member = Membership.objects.filter(org=ctx.org, user_id=value).select_related("user")
        first = member.first()
        budget.user = first.user if first else None
        found = first is not None
    elif budget.scope == Budget.Scope.FLOW:
        budget.flow = Flow.objects.filter(workspace__org=ctx.org, id=value).first()
        found = budget.flow is not None
    else:
        budget.app = App.objects.filter(org=ctx.org, id=value).first()
        found = budget.app is not None
    if not found:  # another organisation's ids answer 404, like every route
        raise NotFound(f"No {budget.get_scope_display()} with this id in this organisation.")


@transaction.atomic
def budget_update(
    *,
    ctx: OrgContext,
    budget: Budget,
    name: str | None = None,
    limit_usd: Decimal | None = None,
    thresholds: list[int] | None = None,
    enabled: bool | None = None,
) -> Budget:
    require_cost_manager(ctx, "change budgets")
    _refuse_plan_cap(budget)
    before = _snapshot(budget)
    if name is not None:
        budget.name = name
    if limit_usd is not None:
        budget.limit_micros = _micros(limit_usd)
    if thresholds is not None:
        budget.thresholds = _thresholds(thresholds)
    if enabled is not None:
        budget.enabled = enabled
    budget.save()
    audit_record(
        org=ctx.org,
        actor=ctx.actor,
        action="budget.updated",
        target_type="budget",
        target_id=budget.id,
        target_label=budget.name,
        workspace=budget.workspace,
        before=before,
        after=_snapshot(budget),
    )
    return budget


@transaction.atomic
def budget_delete(*, ctx: OrgContext, budget: Budget) -> None:
    require_cost_manager(ctx, "delete budgets")
    _refuse_plan_cap(budget)
    audit_record(
        org=ctx.org,
        actor=ctx.actor,
        action="budget.deleted",
        target_type="budget",
        target_id=budget.id,
        target_label=budget.name,
        before=_snapshot(budget),
    )
    budget.delete()


def _refuse_plan_cap(budget: Budget) -> None:
    if budget.plan_cap:
        raise Conflict(
            "This budget is your plan's monthly spend cap: change the plan to change it.",
            code="plan_cap",
        )


def refuse_if_halted(workspace: Workspace) -> None:
    """409 when a kill switch halts the workspace: no run starts, resumes or forks there."""
    halt = halt_of(workspace)
    if halt is not None:
        where = f"workspace '{halt.workspace.name}'" if halt.workspace else "the organisation"
        raise Conflict(
            f"Runs are halted by the kill switch on {where}: {halt.reason}. An owner or admin "
            "lifts it on the Costs page.",
            code="kill_switch",
        )


_ACTIVE = ("PENDING", "ENQUEUED", "DELAYED")


def kill_switch_pull(*, ctx: OrgContext, workspace_id: UUID | None, reason: str) -> KillSwitch:
    """Pull the switch (audited), then cancel every run in its scope that has not ended,
    each with the reason. Runs queued meanwhile are refused at their first LLM call."""
    require_cost_manager(ctx, "pull the kill switch")
    workspace = None
    if workspace_id is not None:
        workspace = Workspace.objects.filter(org=ctx.org, id=workspace_id).first()
        if workspace is None:
            raise NotFound("No workspace with this id in this organisation.")
    try:
        with transaction.atomic():
            switch = KillSwitch.objects.create(
                org=ctx.org, workspace=workspace, reason=reason, pulled_by=ctx.user
            )
            audit_record(
                org=ctx.org,
                actor=ctx.actor,
                action="kill_switch.pulled",
                target_type="kill_switch",
                target_id=switch.id,
                target_label=reason,
                workspace=workspace,
                after={"reason": reason, "scope": "workspace" if workspace else "org"},
            )
    except IntegrityError:
        raise Conflict(
            "The kill switch is already pulled here: lift it first.", code="kill_switch_pulled"
        ) from None
    runs = _runs_in_flight(ctx, workspace)
    message = f"Stopped by the kill switch ({ctx.user.email}): {reason}"
    Run.objects.filter(id__in=runs).update(cancel_reason=message[:600])
    for run_id in runs:
        try:
            engine_bridge.cancel_run(str(run_id))
        except Exception:  # one run's failure must not leave the others running
            log.exception("kill switch %s could not cancel run %s", switch.id, run_id)
    switch.runs_cancelled = len(runs)
    switch.save(update_fields=["runs_cancelled"])
    return switch


def _runs_in_flight(ctx: OrgContext, workspace: Workspace | None) -> list[UUID]:
    """The runs in the scope that have not ended (DBOS's status of each run's workflow)."""
    only = workspace.id if workspace is not None else None
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT r.id FROM flows_run r "
            "JOIN tenants_workspace w ON w.id = r.workspace_id "
            "JOIN dbos.workflow_status ws ON ws.workflow_uuid = r.id::text "
            "WHERE w.org_id = %s AND (%s::uuid IS NULL OR r.workspace_id = %s::uuid) "
            "AND ws.status = ANY(%s)",
            [ctx.org.id, only, only, list(_ACTIVE)],
        )
        return [row[0] for row in cursor.fetchall()]


@transaction.atomic
def kill_switch_lift(*, ctx: OrgContext, switch_id: UUID) -> KillSwitch:
    require_cost_manager(ctx, "lift the kill switch")
    switch = KillSwitch.objects.select_for_update().filter(org=ctx.org, id=switch_id).first()
    if switch is None:
        raise NotFound("No kill switch with this id in this organisation.")
    if switch.lifted_at is not None:
        raise Conflict("This kill switch was lifted already.", code="kill_switch_lifted")
    switch.lifted_at, switch.lifted_by = timezone.now(), ctx.user
    switch.save(update_fields=["lifted_at", "lifted_by"])
    audit_record(
        org=ctx.org,
        actor=ctx.actor,
        action="kill_switch.lifted",
        target_type="kill_switch",
        target_id=switch.id,
        target_label=switch.reason,
        workspace=switch.workspace,
    )
    return switch


@transaction.atomic
def webhook_create(*, ctx: OrgContext, url: str) -> WebhookEndpoint:
    require_cost_manager(ctx, "manage alert webhooks")
    if not url.startswith(("https://", "http://")):
        raise InvalidInput("The URL must start with https://.", fields={"url": "not http(s)"})
    endpoint = WebhookEndpoint.objects.create(
        org=ctx.org, url=url, secret="whsec_" + secrets.token_urlsafe(32), created_by=ctx.user
    )
    audit_record(
        org=ctx.org,
        actor=ctx.actor,
        action="alert_webhook.created",
        target_type="webhook",
        target_id=endpoint.id,
        target_label=url,
    )
    return endpoint


@transaction.atomic
def webhook_delete(*, ctx: OrgContext, webhook_id: UUID) -> None:
    require_cost_manager(ctx, "manage alert webhooks")
    endpoint = WebhookEndpoint.objects.filter(org=ctx.org, id=webhook_id).first()
    if endpoint is None:
        raise NotFound("No webhook with this id in this organisation.")
    audit_record(
        org=ctx.org,
        actor=ctx.actor,
        action="alert_webhook.deleted",
        target_type="webhook",
        target_id=endpoint.id,
        target_label=endpoint.url,
    )
    endpoint.delete()
