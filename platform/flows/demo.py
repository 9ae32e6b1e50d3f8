"""Demo flows for the demo workspace, created with the demo organisation."""

from typing import Any

from django.conf import settings

from tenants.access import access_workspace
from tenants.context import Actor, OrgContext
from tenants.models import Membership, Organization, User, Workspace
from tenants.roles import OrgRole
from tenants.services import DEFAULT_WORKSPACE_NAME

from . import services

FAN_OUT: dict[str, Any] = {
    "schema": 1,
    "nodes": [
        {
            "id": "orders",
            "type": "input",
            "position": {"x": 0, "y": 120},
            "config": {
                "fields": [
                    {
                        "name": "orders",
                        "type": "list",
                        "default": [
                            {"id": "A-1", "total": 120, "country": "FR"},
                            {"id": "A-2", "total": 15, "country": "DE"},
                            {"id": "A-3", "total": 640, "country": "FR"},
                        ],
                    }
                ]
            },
        },
        {
            "id": "big_orders",
            "type": "transform",
            "position": {"x": 260, "y": 0},
            "config": {"expression": "[?total > `100`].id"},
        },
        {
            "id": "revenue",
            "type": "transform",
            "position": {"x": 260, "y": 120},
            "config": {"expression": "sum([*].total)"},
        },
        {
            "id": "countries",
            "type": "transform",
            "position": {"x": 260, "y": 240},
            "config": {"expression": "sort([*].country)"},
        },
        {
            "id": "join",
            "type": "merge",
            "position": {"x": 520, "y": 120},
            "config": {"mode": "all", "inputs": 3},
        },
        {
            "id": "report",
            "type": "template",
            "position": {"x": 760, "y": 120},
            "config": {
                "template": "Big orders: {{ parts[0] | join(', ') }}. "
                "Revenue: {{ parts[1] }}. Countries: {{ parts[2] | unique | join(', ') }}."
            },
        },
        {
            "id": "summary",
            "type": "output",
            "position": {"x": 1000, "y": 120},
            "config": {"name": "summary", "type": "text"},
        },
    ],
    "edges": [
        {"from": "orders.orders", "to": "big_orders.data"},
        {"from": "orders.orders", "to": "revenue.data"},
        {"from": "orders.orders", "to": "countries.data"},
        {"from": "big_orders.result", "to": "join.in_1"},
        {"from": "revenue.result", "to": "join.in_2"},
        {"from": "countries.result", "to": "join.in_3"},
        {"from": "join.result", "to": "report.parts"},
        {"from": "report.text", "to": "summary.value"},
    ],
}


def health_check(public_url: str) -> dict[str, Any]:
    return {
        "schema": 1,
        "nodes": [
            {
                "id": "ping",
                "type": "http_request",
                "position": {"x": 0, "y": 0},
                "config": {"url": f"{public_url}/api/health", "timeout_seconds": 5},
            },
            {
                "id": "verdict",
                "type": "condition",
                "position": {"x": 260, "y": 0},
                "config": {"expression": "status == 'ok'"},
            },
            {
                "id": "status",
                "type": "output",
                "position": {"x": 520, "y": 0},
                "config": {"name": "platform"},
            },
        ],
        "edges": [
            {"from": "ping.body", "to": "verdict.value"},
            {"from": "verdict.true", "to": "status.value"},
        ],
    }


def seed_demo_flows(*, org: Organization, owner: User) -> None:
    workspace = Workspace.objects.get(org=org, name=DEFAULT_WORKSPACE_NAME)
    ctx = OrgContext(
        org=org,
        actor=Actor(user=owner),
        membership=Membership.objects.get(org=org, user=owner),
        role=OrgRole.OWNER,
    )
    wctx = access_workspace(ctx, workspace.id)
    services.flow_create(
        wctx=wctx,
        name="Order report (fan-out and merge)",
        document=FAN_OUT,
        description="Three analyses of the same orders run in parallel, then join.",
        message="demo",
    )
    public_url = str(settings.PUBLIC_URL)
    host = public_url.split("://", 1)[-1].split("/", 1)[0]
    services.network_policy_set(wctx=wctx, http_allow=[host])
    services.flow_create(
        wctx=wctx,
        name="Platform health check (HTTP node)",
        document=health_check(public_url),
        description=f"Calls {public_url}/api/health; allowed by the workspace's network "
        "settings because it is a local address.",
        message="demo",
    )
