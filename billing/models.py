"""Cost control: usage rollups, budgets (their spend per period, the holds of calls in
flight, the thresholds crossed), alert deliveries, notifications and kill switches.

The worker writes rollups, holds, spend and alerts in SQL (billing/worker.py), in the
transaction that records a call's usage; the web process reads them and manages budgets."""

import uuid

from django.conf import settings
from django.db import models

from flows.models import Flow
from tenants.models import Organization, Workspace

MICROS = 1_000_000  # USD millionths per dollar: every amount here is in micro-dollars


class UsageRollup(models.Model):
    """One UTC day of LLM usage for one (workspace, flow, caller, provider, model): kept
    current by the usage ledger as each call is recorded, read by the cost dashboard."""

    id = models.BigAutoField(primary_key=True)
    org = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+")
    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="+")
    flow = models.ForeignKey(Flow, null=True, on_delete=models.SET_NULL, related_name="+")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    provider = models.CharField(max_length=50)
    model = models.CharField(max_length=200)
    day = models.DateField()
    calls = models.PositiveIntegerField(default=0)
    input_tokens = models.BigIntegerField(default=0)
    output_tokens = models.BigIntegerField(default=0)
    cost_micros = models.BigIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                "org",
                "workspace",
                "flow",
                "user",
                "provider",
                "model",
                "day",
                name="usage_rollup_key",
                nulls_distinct=False,
            )
        ]
        indexes = [models.Index(fields=["org", "day"])]

    def __str__(self) -> str:
        return f"{self.day} {self.provider}/{self.model}"


_TARGETS = ("workspace", "user", "flow", "app")


def _only(target: str | None = None) -> dict[str, bool]:
    """The lookups of a budget whose scope names `target` (or nothing): that one is set."""
    return {f"{name}__isnull": name != target for name in _TARGETS}


class Budget(models.Model):
    """A spending limit on LLM calls for a scope (the organisation, a workspace, a member, a
    flow or a mini-app) per day, week or month, with alert thresholds in percent of the limit."""

    class Scope(models.TextChoices):
        ORG = "org", "organisation"
        WORKSPACE = "workspace", "workspace"
        USER = "user", "member"
        FLOW = "flow", "flow"
        APP = "app", "mini-app"

    class Period(models.TextChoices):
        DAY = "day"
        WEEK = "week"
        MONTH = "month"

    class Action(models.TextChoices):
        BLOCK = "block", "refuse calls past the limit"
        PAUSE = "pause", "pause the run until an owner approves more spend"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    org = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="budgets")
    name = models.CharField(max_length=100)
    scope = models.CharField(max_length=10, choices=Scope.choices)
    workspace = models.ForeignKey(
        Workspace, null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="+",
    )
    flow = models.ForeignKey(
        Flow, null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    app = models.ForeignKey(
        "miniapps.App", null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    period = models.CharField(max_length=5, choices=Period.choices)
    limit_micros = models.BigIntegerField()
    thresholds = models.JSONField(default=list)  # percents, ascending, e.g. [50, 80, 100]
    action = models.CharField(max_length=10, choices=Action.choices, default=Action.BLOCK)
    enabled = models.BooleanField(default=True)
    # The monthly spend cap of the organisation's plan, kept by billing (not editable here).
    plan_cap = models.BooleanField(default=False)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=models.Q(limit_micros__gt=0), name="budget_limit_positive"
            ),
            models.CheckConstraint(
                condition=(
                    models.Q(scope="org", **_only())
                    | models.Q(scope="workspace", **_only("workspace"))
                    | models.Q(scope="user", **_only("user"))
                    | models.Q(scope="flow", **_only("flow"))
                    | models.Q(scope="app", **_only("app"))
                ),
                name="budget_scope_target",
            ),
        ]
        indexes = [models.Index(fields=["org", "enabled"])]

    def __str__(self) -> str:
        return self.name


class BudgetPeriod(models.Model):
    """A budget's spend in one period: what calls cost (`spent`) and what calls in flight
    may still cost (`reserved`, the sum of their holds). A call is held only while
    spent + reserved + its maximum stays within the limit (one conditional UPDATE)."""

    id = models.BigAutoField(primary_key=True)
    budget = models.ForeignKey(Budget, on_delete=models.CASCADE, related_name="periods")
    period_start = models.DateTimeField()
    spent_micros = models.BigIntegerField(default=0)
    reserved_micros = models.BigIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint("budget", "period_start", name="budget_period_once"),
            models.CheckConstraint(
                condition=models.Q(reserved_micros__gte=0), name="budget_reserved_not_negative"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.budget_id}@{self.period_start:%Y-%m-%d}"


class BudgetHold(models.Model):
    """One LLM call in flight held against one budget period at its maximum cost. Settled
    (deleted) when the call's usage is recorded, released when it fails; the hold of a call
    whose worker died expires and is then freed by the next reservation on the budget."""

    id = models.BigAutoField(primary_key=True)
    period = models.ForeignKey(BudgetPeriod, on_delete=models.CASCADE, related_name="holds")
    run_key = models.CharField(max_length=300)
    node_id = models.CharField(max_length=64)
    call_index = models.PositiveIntegerField()
    amount_micros = models.BigIntegerField()
    expires_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                "run_key", "node_id", "call_index", "period", name="budget_hold_once"
            )
        ]
        indexes = [models.Index(fields=["period", "expires_at"])]

    def __str__(self) -> str:
        return f"{self.run_key}/{self.node_id}#{self.call_index}"


class BudgetAlert(models.Model):
    """A threshold of a budget crossed in a period: one row, ever (the unique key), written
    in the transaction that recorded the spend that crossed it."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    budget = models.ForeignKey(Budget, on_delete=models.CASCADE, related_name="alerts")
    period_start = models.DateTimeField()
    threshold = models.PositiveSmallIntegerField()  # percent of the limit
    spent_micros = models.BigIntegerField()
    limit_micros = models.BigIntegerField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint("budget", "period_start", "threshold", name="budget_alert_once")
        ]

    def __str__(self) -> str:
        return f"{self.budget_id} {self.threshold}%"


class Notification(models.Model):
    """An in-app notice for the people who watch costs (owners, admins, billing members)."""

    id = models.BigAutoField(primary_key=True)
    org = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+")
    kind = models.CharField(max_length=40)  # budget.threshold, kill_switch.pulled, ...
    title = models.CharField(max_length=200)
    body = models.TextField(blank=True)
    data = models.JSONField(default=dict)
    alert = models.OneToOneField(
        BudgetAlert, null=True, blank=True, on_delete=models.CASCADE, related_name="notice"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [models.Index(fields=["org", "-created_at"])]

    def __str__(self) -> str:
        return self.title


class WebhookEndpoint(models.Model):
    """Where an organisation's alerts are POSTed, signed with the endpoint's secret
    (HMAC-SHA256 over `<timestamp>.<body>`, as Stripe signs its own)."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    org = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+")
    url = models.URLField(max_length=2000)
    secret = models.CharField(max_length=100)
    enabled = models.BooleanField(default=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return self.url


class AlertDelivery(models.Model):
    """One alert to one recipient by one channel: an outbox row, written with the alert and
    delivered (retried with backoff) by the workers' alert courier."""

    class Channel(models.TextChoices):
        EMAIL = "email"
        WEBHOOK = "webhook"

    class Status(models.TextChoices):
        PENDING = "pending"
        SENT = "sent"
        FAILED = "failed"  # gave up after the last attempt

    id = models.BigAutoField(primary_key=True)
    alert = models.ForeignKey(BudgetAlert, on_delete=models.CASCADE, related_name="deliveries")
    channel = models.CharField(max_length=10, choices=Channel.choices)
    target = models.CharField(max_length=2000)  # an email address, or a webhook endpoint id
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    next_attempt_at = models.DateTimeField()
    last_error = models.CharField(max_length=500, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint("alert", "channel", "target", name="alert_delivery_once")
        ]
        indexes = [models.Index(fields=["status", "next_attempt_at"])]

    def __str__(self) -> str:
        return f"{self.channel}:{self.target}"


class KillSwitch(models.Model):
    """Halts every run of a workspace (or of the whole organisation) and refuses new runs and
    LLM calls there until it is lifted. At most one is pulled per scope at a time."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    org = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+")
    workspace = models.ForeignKey(
        Workspace, null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    reason = models.CharField(max_length=500)
    pulled_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    pulled_at = models.DateTimeField(auto_now_add=True)
    runs_cancelled = models.PositiveIntegerField(default=0)
    lifted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    lifted_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                "org",
                "workspace",
                condition=models.Q(lifted_at__isnull=True),
                name="kill_switch_one_pulled_per_scope",
                nulls_distinct=False,
            )
        ]

    def __str__(self) -> str:
        return self.reason


class Plan(models.Model):
    """A plan, as data: its Stripe price (by lookup key), what it includes and its monthly
    spend cap on LLM calls (kept as the organisation's plan budget while subscribed)."""

    code = models.SlugField(max_length=40, unique=True)
    name = models.CharField(max_length=100)
    description = models.CharField(max_length=300, blank=True)
    monthly_price_cents = models.PositiveIntegerField(default=0)
    stripe_lookup_key = models.CharField(max_length=100, blank=True)  # blank: no subscription
    included_usage_micros = models.BigIntegerField(default=0)
    spend_cap_micros = models.BigIntegerField(null=True, blank=True)  # None: no cap
    position = models.PositiveSmallIntegerField(default=0)
    public = models.BooleanField(default=True)

    class Meta:
        ordering = ["position", "code"]

    def __str__(self) -> str:
        return self.name


class BillingAccount(models.Model):
    """An organisation's side at Stripe: its customer, and its subscription as Stripe last
    told us (webhooks re-read it from Stripe, so their order does not matter)."""

    org = models.OneToOneField(Organization, on_delete=models.CASCADE, related_name="billing")
    stripe_customer_id = models.CharField(max_length=100, blank=True)
    plan = models.ForeignKey(Plan, null=True, on_delete=models.PROTECT, related_name="+")
    subscription_id = models.CharField(max_length=100, blank=True)
    subscription_status = models.CharField(max_length=30, blank=True)
    current_period_end = models.DateTimeField(null=True, blank=True)
    cancel_at_period_end = models.BooleanField(default=False)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"{self.org_id}: {self.stripe_customer_id or 'no customer yet'}"


class StripeEvent(models.Model):
    """A webhook event processed: the unique id makes a redelivery change nothing."""

    event_id = models.CharField(max_length=100, unique=True)
    type = models.CharField(max_length=100)
    processed_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return self.event_id


class MeterReport(models.Model):
    """LLM usage of one organisation in one closed window, reported to Stripe's meter under
    a deterministic identifier (also the request's idempotency key): a retry, however it
    comes about, never bills twice."""

    identifier = models.CharField(max_length=200, unique=True)
    org = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+")
    window_start = models.DateTimeField()
    window_end = models.DateTimeField()
    value_micros = models.BigIntegerField()
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["org", "window_start"])]

    def __str__(self) -> str:
        return self.identifier
