"""The plans, as data: free (no subscription), pro and enterprise. Their Stripe prices are
found by lookup key; `manage.py stripe_catalogue` creates them in a Stripe account."""

from django.db import migrations

PLANS = [
    {
        "code": "free",
        "name": "Free",
        "description": "Try FireFlow: LLM spend capped at $5 a month.",
        "monthly_price_cents": 0,
        "stripe_lookup_key": "",
        "included_usage_micros": 0,
        "spend_cap_micros": 5_000_000,
        "position": 0,
    },
    {
        "code": "pro",
        "name": "Pro",
        "description": "$20 of LLM usage included, then billed at cost; capped at $500 a month.",
        "monthly_price_cents": 4900,
        "stripe_lookup_key": "fireflow_pro_monthly",
        "included_usage_micros": 20_000_000,
        "spend_cap_micros": 500_000_000,
        "position": 1,
    },
    {
        "code": "enterprise",
        "name": "Enterprise",
        "description": "$200 of LLM usage included, then billed at cost; no cap.",
        "monthly_price_cents": 49900,
        "stripe_lookup_key": "fireflow_enterprise_monthly",
        "included_usage_micros": 200_000_000,
        "spend_cap_micros": None,
        "position": 2,
    },
]


def add_plans(apps, schema_editor):
    Plan = apps.get_model("billing", "Plan")
    for plan in PLANS:
        Plan.objects.update_or_create(code=plan["code"], defaults=plan)


class Migration(migrations.Migration):
    dependencies = [("billing", "0002_stripe")]

    operations = [migrations.RunPython(add_plans, migrations.RunPython.noop)]
