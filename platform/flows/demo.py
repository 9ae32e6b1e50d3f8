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


ASK_THE_MODEL: dict[str, Any] = {
    "schema": 1,
    "nodes": [
        {
            "id": "question",
            "type": "input",
            "position": {"x": 0, "y": 0},
            "config": {
                "fields": [
                    {
                        "name": "question",
                        "type": "text",
                        "default": "What does a durable workflow engine do?",
                    }
                ]
            },
        },
        {
            "id": "llm",
            "type": "llm_chat",
            "position": {"x": 260, "y": 0},
            "config": {
                "provider": "fake",
                "model": "fake-echo",
                "system": "Answer briefly.",
                "max_tokens": 256,
            },
        },
        {
            "id": "answer",
            "type": "output",
            "position": {"x": 520, "y": 0},
            "config": {"name": "answer", "type": "text"},
        },
        {
            "id": "usage",
            "type": "output",
            "position": {"x": 520, "y": 120},
            "config": {"name": "usage"},
        },
    ],
    "edges": [
        {"from": "question.question", "to": "llm.prompt"},
        {"from": "llm.text", "to": "answer.value"},
        {"from": "llm.usage", "to": "usage.value"},
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
    services.flow_create(
        wctx=wctx,
        name="Ask the model (LLM, streamed)",
        document=ASK_THE_MODEL,
        description="An LLM call whose tokens stream into the run's events. Uses the fake "
        "provider; switch the node to openai or anthropic once a key is set on the workers.",
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
