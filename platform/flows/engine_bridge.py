"""The platform's one doorway to the engine: the database URL and the web-side client."""

from functools import cache
from typing import Any
from urllib.parse import quote

from django.db import connection, connections, transaction

import engine


def url_for(settings_dict: dict[str, Any]) -> str:
    """A URL that libpq, psycopg and SQLAlchemy (DBOS) all read, for a Django database
    settings dict; a Unix-socket host goes in `?host=`, the one form all three agree on."""
    user = quote(settings_dict.get("USER") or "postgres", safe="")
    password = settings_dict.get("PASSWORD") or ""
    auth = f"{user}:{quote(password, safe='')}" if password else user
    host = settings_dict.get("HOST") or settings_dict.get("OPTIONS", {}).get("host") or ""
    port = f":{settings_dict['PORT']}" if settings_dict.get("PORT") else ""
    name = quote(settings_dict["NAME"], safe="")
    if host.startswith("/"):
        return f"postgresql://{auth}@{port}/{name}?host={quote(host, safe='/')}"
    return f"postgresql://{auth}@{host}{port}/{name}"


def database_url() -> str:
    """Where DBOS and the engine keep their tables: Django's default database (the test
    database under tests)."""
    return url_for(connections["default"].settings_dict)


@cache
def client() -> engine.EngineClient:
    return engine.EngineClient(database_url())


def cancel_run(run_id: str) -> None:
    """Cancel a run (its child runs with it); its unanswered requests to people close too,
    so they leave the inboxes and the waiting step stops at once."""
    client().cancel(run_id)
    with transaction.atomic(), connection.cursor() as cursor:
        engine.withdraw_requests(cursor, run_id)


def resume_run(run_id: str) -> None:
    """Resume a cancelled run: the requests its cancel closed are open again first (so its
    re-executed steps wait for them), and closed again if the resume fails."""
    with transaction.atomic(), connection.cursor() as cursor:
        engine.reopen_requests(cursor, run_id)
    try:
        client().resume(run_id)
    except Exception:
        with transaction.atomic(), connection.cursor() as cursor:
            engine.withdraw_requests(cursor, run_id)
        raise
