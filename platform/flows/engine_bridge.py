"""The platform's one doorway to the engine: the database URL and the web-side client."""

from functools import cache
from typing import Any
from urllib.parse import quote

from django.db import connections

import engine


def url_for(settings_dict: dict[str, Any]) -> str:
    """A libpq/SQLAlchemy URL for a Django database settings dict (sockets included)."""
    user = quote(settings_dict.get("USER") or "postgres", safe="")
    password = settings_dict.get("PASSWORD") or ""
    auth = f"{user}:{quote(password, safe='')}" if password else user
    host = quote(settings_dict.get("HOST") or "", safe="")
    port = f":{settings_dict['PORT']}" if settings_dict.get("PORT") else ""
    return f"postgresql://{auth}@{host}{port}/{quote(settings_dict['NAME'], safe='')}"


def database_url() -> str:
    """Where DBOS and the engine keep their tables: Django's default database (the test
    database under tests)."""
    return url_for(connections["default"].settings_dict)


@cache
def client() -> engine.EngineClient:
    return engine.EngineClient(database_url())
