"""The alert courier: delivers budget alerts by email and by signed webhook.

Alerts are written once, with their deliveries (an outbox), in the transaction that
recorded the spend (billing/worker.py). Every worker runs a courier thread: it wakes on
NOTIFY (or every few seconds), claims due deliveries with FOR UPDATE SKIP LOCKED, and leases
them (`next_attempt_at` moved ahead) before sending, so a courier that dies mid-delivery
leaves them to another once the lease runs out. Delivery is therefore at least once: a
webhook carries the alert's id (`Fireflow-Event-Id`) for receivers to drop a repeat.

Webhooks are signed as Stripe signs its own: `Fireflow-Signature: t=<unix>,v1=<hex>` with
HMAC-SHA256 of `<t>.<body>` under the endpoint's secret. They go through the engine's
SSRF-guarded fetch (private addresses refused unless FIREFLOW_WEBHOOK_ALLOW lists them) and
never follow redirects. Failures retry with exponential backoff, up to MAX_ATTEMPTS."""

import asyncio
import hashlib
import hmac
import json
import logging
import os
import threading
import time
from datetime import timedelta
from typing import Any

import psycopg
from django.conf import settings
from django.core.mail import send_mail
from django.db import close_old_connections, transaction
from django.utils import timezone

import engine

from .models import AlertDelivery, BudgetAlert, WebhookEndpoint
from .worker import ALERT_CHANNEL, dollars

log = logging.getLogger("fireflow.billing")

# How long a claimed delivery is this courier's: after that, another worker may send it.
LEASE = timedelta(seconds=int(os.environ.get("FIREFLOW_ALERT_LEASE_SECONDS", "60")))
MAX_ATTEMPTS = 8
BATCH = 20
IDLE_SECONDS = 5.0
METER_SECONDS = 60.0


def signature(secret: str, body: bytes, timestamp: int) -> str:
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"t={timestamp},v1={mac.hexdigest()}"


def backoff(attempts: int) -> timedelta:
    return timedelta(seconds=min(5 * 2 ** (attempts - 1), 3600))


def claim(limit: int = BATCH) -> list[AlertDelivery]:
    """Due deliveries, leased to this courier (no other claims them until the lease ends)."""
    now = timezone.now()
    with transaction.atomic():
        due = list(
            AlertDelivery.objects.select_for_update(skip_locked=True, of=("self",))
            .filter(status=AlertDelivery.Status.PENDING, next_attempt_at__lte=now)
            .select_related("alert__budget__org")
            .order_by("next_attempt_at")[:limit]
        )
        for delivery in due:
            delivery.attempts += 1
            delivery.next_attempt_at = now + LEASE
        AlertDelivery.objects.bulk_update(due, ["attempts", "next_attempt_at"])
    return due


def deliver(delivery: AlertDelivery) -> None:
    """Send one delivery and record the outcome (sent, retry later, or failed for good)."""
    try:
        if delivery.channel == AlertDelivery.Channel.EMAIL:
            _email(delivery.alert, delivery.target)
        else:
            _webhook(delivery.alert, delivery.target)
    except Exception as exc:  # any failure: retried, and the reason kept (no secrets in it)
        delivery.last_error = f"{type(exc).__name__}: {exc}"[:500]
        if delivery.attempts >= MAX_ATTEMPTS:
            delivery.status = AlertDelivery.Status.FAILED
        else:
            delivery.next_attempt_at = timezone.now() + backoff(delivery.attempts)
        log.warning(
            "alert %s by %s failed (attempt %d): %s",
            delivery.alert_id,
            delivery.channel,
            delivery.attempts,
            delivery.last_error,
        )
    else:
        delivery.status = AlertDelivery.Status.SENT
        delivery.sent_at = timezone.now()
        delivery.last_error = ""
    delivery.save(update_fields=["status", "sent_at", "last_error", "next_attempt_at"])


def deliver_due() -> int:
    """Claim and deliver what is due; the number handled."""
    handled = 0
    while batch := claim():
        for delivery in batch:
            deliver(delivery)
        handled += len(batch)
    return handled


def alert_payload(alert: BudgetAlert) -> dict[str, Any]:
    budget = alert.budget
    return {
        "id": str(alert.id),
        "type": "budget.threshold",
        "created": int(alert.created_at.timestamp()),
        "data": {
            "organization": budget.org.slug,
            "budget": {
                "id": str(budget.id),
                "name": budget.name,
                "scope": budget.scope,
                "period": budget.period,
            },
            "period_start": alert.period_start.isoformat(),
            "threshold": alert.threshold,
            "spent_micros": alert.spent_micros,
            "limit_micros": alert.limit_micros,
        },
    }


def _email(alert: BudgetAlert, address: str) -> None:
    budget = alert.budget
    send_mail(
        f"FireFlow: budget '{budget.name}' reached {alert.threshold}%",
        f"The budget '{budget.name}' of {budget.org.name} has {dollars(alert.spent_micros)} "
        f"of {dollars(alert.limit_micros)} spent this {budget.period} ({alert.threshold}% "
        f"threshold).\n\nSee the costs: {settings.PUBLIC_URL}/orgs/{budget.org.slug}/costs\n",
        None,
        [address],
    )


def _webhook(alert: BudgetAlert, endpoint_id: str) -> None:
    endpoint = WebhookEndpoint.objects.filter(id=endpoint_id, enabled=True).first()
    if endpoint is None:
        raise RuntimeError("the webhook endpoint was removed or disabled")
    body = json.dumps(alert_payload(alert), separators=(",", ":")).encode()
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "FireFlow-Alerts/1",
        "Fireflow-Event-Id": str(alert.id),
        "Fireflow-Signature": signature(endpoint.secret, body, int(time.time())),
    }
    allow = engine.allow_list(settings.FIREFLOW_WEBHOOK_ALLOW, settings.NETWORK_ALLOWABLE)
    result = asyncio.run(
        engine.guarded_fetch(
            "POST",
            endpoint.url,
            allow=allow,
            headers=headers,
            content=body,
            timeout=10.0,
            max_bytes=10_000,
            max_redirects=0,
        )
    )
    if not 200 <= result.status < 300:
        raise RuntimeError(f"the endpoint answered {result.status}")


def run_courier(database_url: str, stop: threading.Event) -> None:
    """Deliver alerts until `stop` is set: on NOTIFY, and every IDLE_SECONDS; and report
    LLM usage to Stripe's meter once a minute (billing/jobs.py)."""
    from .jobs import report_due_usage

    reported_at = 0.0
    while not stop.is_set():
        try:
            with psycopg.connect(database_url, autocommit=True, connect_timeout=5) as conn:
                conn.execute(f"LISTEN {ALERT_CHANNEL}")
                while not stop.is_set():
                    close_old_connections()
                    deliver_due()
                    if time.monotonic() - reported_at >= METER_SECONDS:
                        reported_at = time.monotonic()
                        report_due_usage()
                    for _ in conn.notifies(timeout=IDLE_SECONDS, stop_after=1):
                        pass
        except Exception:  # the database went away: wait, and listen again
            log.exception("alert courier: retrying in %.0f s", IDLE_SECONDS)
            stop.wait(IDLE_SECONDS)


def start_courier(database_url: str) -> threading.Event:
    """Run the courier in a daemon thread of this process; set the event to stop it."""
    stop = threading.Event()
    threading.Thread(
        target=run_courier, args=(database_url, stop), name="alert-courier", daemon=True
    ).start()
    return stop
