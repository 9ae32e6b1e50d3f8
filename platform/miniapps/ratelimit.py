"""Runs per minute, per visitor of an app and per app: counted in PostgreSQL with one
conditional upsert each, so the limits hold exactly across web processes and under races."""

from datetime import datetime, timedelta

from django.db import connection, transaction
from django.utils import timezone

from fireflow.errors import RateLimited

from .models import App

_TAKE = (
    'INSERT INTO miniapps_ratewindow (app_id, visitor, "window", count) '
    "VALUES (%(app)s, %(visitor)s, %(window)s, 1) "
    'ON CONFLICT (app_id, visitor, "window") DO UPDATE '
    "SET count = miniapps_ratewindow.count + 1 WHERE miniapps_ratewindow.count < %(limit)s "
    "RETURNING count, xmax = 0"
)
# Counters of windows long past are dropped whenever a visitor opens a new window.
_KEEP = timedelta(hours=1)


def _take(app: App, visitor: str, window: datetime, limit: int) -> tuple[bool, bool]:
    """(allowed, opened a new window)."""
    with connection.cursor() as cursor:
        cursor.execute(_TAKE, {"app": app.id, "visitor": visitor, "window": window, "limit": limit})
        row = cursor.fetchone()
    return row is not None, bool(row and row[1])


# Anonymous visitors can mint new identities: their address is counted too, at this many
# visitors' worth (people behind one address share it).
ADDRESS_FACTOR = 10


def take_run(app: App, visitor: str, address: str | None = None) -> None:
    """Count one run for `visitor`, for its `address` (anonymous visitors), and for the app,
    or refuse with 429 (nothing counted)."""
    now = timezone.now()
    window = now.replace(second=0, microsecond=0)
    retry_after = max(1, 60 - now.second)
    with transaction.atomic():
        allowed, opened = _take(app, visitor, window, app.visitor_rate_per_minute)
        if not allowed:
            raise RateLimited(
                f"You have started {app.visitor_rate_per_minute} runs of this app in this "
                f"minute, its limit per visitor: try again in {retry_after} s.",
                retry_after=retry_after,
            )
        if address:
            limit = app.visitor_rate_per_minute * ADDRESS_FACTOR
            if not _take(app, f"ip:{address}", window, limit)[0]:
                raise RateLimited(
                    f"{limit} runs of this app were started from your network in this minute, "
                    f"its limit per address: try again in {retry_after} s.",
                    retry_after=retry_after,
                    code="address_rate_limited",
                )
        allowed, _ = _take(app, "", window, app.app_rate_per_minute)
        if not allowed:
            raise RateLimited(
                f"This app is busy: it takes {app.app_rate_per_minute} runs a minute from "
                f"all its visitors together. Try again in {retry_after} s.",
                retry_after=retry_after,
                code="app_rate_limited",
            )
    if opened:
        with connection.cursor() as cursor:
            cursor.execute(
                'DELETE FROM miniapps_ratewindow WHERE app_id = %s AND "window" < %s',
                [app.id, window - _KEEP],
            )
