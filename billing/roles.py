"""Who may see and manage costs: owners, admins and billing members see them; owners and
admins set budgets, webhooks and pull the kill switch."""

from tenants.context import OrgContext
from tenants.roles import OrgRole

COST_VIEWERS = (OrgRole.OWNER, OrgRole.ADMIN, OrgRole.BILLING)
COST_MANAGERS = (OrgRole.OWNER, OrgRole.ADMIN)


def require_cost_viewer(ctx: OrgContext) -> None:
    ctx.require(*COST_VIEWERS, action="see costs and billing")


def require_cost_manager(ctx: OrgContext, action: str) -> None:
    ctx.require(*COST_MANAGERS, action=action)
