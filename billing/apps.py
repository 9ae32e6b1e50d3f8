from typing import Any

from django.apps import AppConfig
from django.db.models.signals import post_save


class BillingConfig(AppConfig):
    name = "billing"
    verbose_name = "Cost control and billing"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from tenants.models import Organization

        post_save.connect(_organisation_saved, sender=Organization, dispatch_uid="billing")


def _organisation_saved(sender: Any, instance: Any, created: bool, **kwargs: Any) -> None:
    """A new organisation gets its Stripe customer from a durable job, queued in the
    transaction that creates the organisation (when Stripe is configured)."""
    from . import stripe_billing

    if created and stripe_billing.configured():
        stripe_billing.enqueue_customer(instance)
