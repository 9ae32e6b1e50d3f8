"""Billing's durable jobs, run by the workers: the Stripe customer of a new organisation
(a DBOS workflow, once per organisation by its id), and the report of LLM usage to Stripe's
meter (called by the alert courier's loop; idempotent by design, see stripe_billing)."""

import logging

from dbos import DBOS, WorkflowSerializationFormat
from django.db import connection

from . import stripe_billing

log = logging.getLogger("fireflow.billing")


@DBOS.step(name="stripe_customer", retries_allowed=True, max_attempts=6, interval_seconds=2.0)
def _create_customer(org_id: str) -> str:
    try:
        return stripe_billing.ensure_customer(org_id)
    finally:
        connection.close()  # a worker thread: do not keep the connection


@DBOS.workflow(
    name=stripe_billing.CUSTOMER_WORKFLOW,
    serialization_type=WorkflowSerializationFormat.PORTABLE,
)
def create_customer(org_id: str) -> str:
    return _create_customer(org_id)


def report_due_usage() -> int:
    """Report every closed window not reported yet; how many were reported."""
    if not stripe_billing.configured():
        return 0
    reported = 0
    for org_id, start in list(stripe_billing.windows_due()):
        try:
            stripe_billing.report_window(org_id, start)
            reported += 1
        except Exception:  # the next round tries again (same identifier, same key)
            log.exception("usage of %s from %s not reported yet", org_id, start.isoformat())
            break
    return reported
