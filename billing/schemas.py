"""Request and response shapes of the cost-control API. Money is in USD: amounts go in as
decimal dollars and come out in micro-dollars (`*_micros`, exact integers) as well."""

from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Literal
from uuid import UUID

from ninja import Schema
from pydantic import Field, StringConstraints

Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
Dollars = Annotated[Decimal, Field(gt=0, le=Decimal(1_000_000_000), decimal_places=6)]
Thresholds = Annotated[list[Annotated[int, Field(ge=1, le=100)]], Field(max_length=10)]


class Totals(Schema):
    cost_micros: int
    calls: int
    input_tokens: int
    output_tokens: int


class DayPoint(Schema):
    day: date
    cost_micros: int
    calls: int


class Slice(Schema):
    key: str = Field(description="the id (workspace, flow, user) or provider/model")
    label: str
    cost_micros: int
    calls: int
    input_tokens: int
    output_tokens: int


class CostsOut(Schema):
    start: date
    end: date
    total: Totals
    series: list[DayPoint] = Field(description="one point per day of the range, zeros included")
    by_workspace: list[Slice]
    by_flow: list[Slice]
    by_user: list[Slice]
    by_model: list[Slice]


class BudgetIn(Schema):
    name: Name
    scope: Literal["org", "workspace", "user", "flow", "app"]
    workspace_id: UUID | None = Field(None, description="scope workspace: which one")
    user_id: UUID | None = Field(None, description="scope user: which member")
    flow_id: UUID | None = Field(None, description="scope flow: which one")
    app_id: UUID | None = Field(None, description="scope app: which mini-app")
    period: Literal["day", "week", "month"] = "month"
    limit_usd: Dollars
    thresholds: Thresholds = Field(default_factory=lambda: [50, 80, 100])
    action: Literal["block", "pause"] = Field(
        "block",
        description="at the limit: `block` refuses LLM calls in the scope; `pause` makes the "
        "run wait until a workspace owner approves more spend (its inbox)",
    )


class BudgetPatchIn(Schema):
    name: Name | None = None
    limit_usd: Dollars | None = None
    thresholds: Thresholds | None = None
    enabled: bool | None = None


class BudgetOut(Schema):
    id: UUID
    name: str
    scope: str
    target_id: str | None = Field(description="the workspace, member, flow or mini-app it covers")
    target_label: str
    period: str
    limit_micros: int
    thresholds: list[int]
    action: str
    enabled: bool
    plan_cap: bool = Field(description="the plan's monthly spend cap (changes with the plan)")
    period_start: datetime
    period_end: datetime
    spent_micros: int = Field(description="spent in the current period")
    reserved_micros: int = Field(description="held by LLM calls in flight")
    percent: float = Field(description="spent, in percent of the limit")
    created_at: datetime


class AlertOut(Schema):
    id: UUID
    budget_id: UUID
    budget_name: str
    period_start: datetime
    threshold: int
    spent_micros: int
    limit_micros: int
    created_at: datetime


class NotificationOut(Schema):
    id: int
    kind: str
    title: str
    body: str
    created_at: datetime


class KillSwitchIn(Schema):
    workspace_id: UUID | None = Field(None, description="a workspace; none: the organisation")
    reason: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=500)]


class KillSwitchOut(Schema):
    id: UUID
    workspace_id: UUID | None
    workspace_name: str | None
    reason: str
    pulled_by_email: str | None
    pulled_at: datetime
    runs_cancelled: int
    lifted_by_email: str | None
    lifted_at: datetime | None
    active: bool


class WebhookIn(Schema):
    url: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=2000)]


class WebhookOut(Schema):
    id: UUID
    url: str
    enabled: bool
    created_at: datetime


class WebhookCreatedOut(WebhookOut):
    secret: str = Field(description="verifies the Fireflow-Signature header: shown once")


class PlanOut(Schema):
    code: str
    name: str
    description: str
    monthly_price_cents: int
    included_usage_micros: int
    spend_cap_micros: int | None


class BillingOut(Schema):
    configured: bool = Field(description="Stripe billing is set up on this platform")
    plan: PlanOut | None
    subscription_status: str = Field(description="active, trialing, past_due, canceled or ''")
    current_period_end: datetime | None
    cancel_at_period_end: bool
    plans: list[PlanOut]


class CheckoutIn(Schema):
    plan: Annotated[str, StringConstraints(min_length=1, max_length=40)]


class RedirectOut(Schema):
    url: str = Field(description="send the browser there (Stripe's page)")


class InvoiceOut(Schema):
    id: str
    number: str
    status: str
    amount_due: int = Field(description="in the currency's smallest unit (cents)")
    amount_paid: int
    currency: str
    created: datetime
    hosted_invoice_url: str


class WebhookAck(Schema):
    received: bool
    processed: bool = Field(description="False: this event was processed before")
