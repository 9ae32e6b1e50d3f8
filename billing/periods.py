"""Budget periods in UTC, as PostgreSQL's date_trunc draws them (weeks start on Monday)."""

from datetime import UTC, datetime, timedelta


def period_bounds(period: str, now: datetime | None = None) -> tuple[datetime, datetime]:
    """The start and end of the day, week or month that `now` falls in."""
    now = (now or datetime.now(UTC)).astimezone(UTC)
    day = now.replace(hour=0, minute=0, second=0, microsecond=0)
    if period == "day":
        return day, day + timedelta(days=1)
    if period == "week":
        start = day - timedelta(days=day.weekday())
        return start, start + timedelta(days=7)
    start = day.replace(day=1)
    end = (
        start.replace(year=start.year + 1, month=1)
        if start.month == 12
        else start.replace(month=start.month + 1)
    )
    return start, end
