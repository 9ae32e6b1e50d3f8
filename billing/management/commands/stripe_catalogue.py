"""Create what FireFlow bills with in the Stripe account, where missing: a product and a
monthly price for each plan (by lookup key), the LLM-usage meter and its metered price.
Idempotent: run it after adding a plan, or against a fresh (fake) Stripe."""

from decimal import Decimal
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand

from billing.models import BillingAccount, Plan
from billing.stripe_billing import METERED_LOOKUP_KEY, client


def ensure_catalogue() -> list[str]:
    """Create the missing products, prices and meter; the lookup keys created."""
    stripe = client()
    created = []
    product = None

    def has(key: str) -> bool:
        return bool(stripe.v1.prices.list({"lookup_keys": [key], "limit": 1}).data)

    def fireflow_product() -> Any:
        nonlocal product
        if product is None:
            product = stripe.v1.products.create({"name": "FireFlow"})
        return product

    for plan in Plan.objects.exclude(stripe_lookup_key=""):
        if has(plan.stripe_lookup_key):
            continue
        stripe.v1.prices.create(
            {
                "product": fireflow_product().id,
                "nickname": plan.name,
                "unit_amount": plan.monthly_price_cents,
                "currency": "usd",
                "recurring": {"interval": "month", "usage_type": "licensed"},
                "lookup_key": plan.stripe_lookup_key,
            }
        )
        created.append(plan.stripe_lookup_key)
    if not has(METERED_LOOKUP_KEY):
        event = settings.STRIPE_METER_EVENT
        meters = stripe.v1.billing.meters.list({"limit": 100}).data
        meter = next((m for m in meters if m.event_name == event), None)
        if meter is None:
            meter = stripe.v1.billing.meters.create(
                {
                    "display_name": "LLM usage (micro-dollars)",
                    "event_name": event,
                    "default_aggregation": {"formula": "sum"},
                    "customer_mapping": {
                        "type": "by_id",
                        "event_payload_key": "stripe_customer_id",
                    },
                    "value_settings": {"event_payload_key": "value"},
                }
            )
        stripe.v1.prices.create(
            {
                "product": fireflow_product().id,
                "nickname": "LLM usage, at cost",
                "currency": "usd",
                # One unit is a micro-dollar of LLM spend: a ten-thousandth of a cent.
                "unit_amount_decimal": Decimal("0.0001"),
                "recurring": {"interval": "month", "usage_type": "metered", "meter": meter.id},
                "lookup_key": METERED_LOOKUP_KEY,
            }
        )
        created.append(METERED_LOOKUP_KEY)
    return created


class Command(BaseCommand):
    help = "Create FireFlow's plans, meter and prices in the Stripe account, where missing."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument(
            "--forget-customers",
            action="store_true",
            help="a new, empty Stripe (the demo's fake): forget every customer and "
            "subscription the database remembers of the old one",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if options["forget_customers"]:
            BillingAccount.objects.update(
                stripe_customer_id="", subscription_id="", subscription_status="", plan=None
            )
        created = ensure_catalogue()
        self.stdout.write(f"created: {', '.join(created) or 'nothing (all present)'}")
