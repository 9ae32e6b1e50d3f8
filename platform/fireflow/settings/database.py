"""The database: `DATABASE_URL`, or the embedded PostgreSQL that `fireflow` starts."""

import dj_database_url

from .env import env_int, env_str

DATABASE_URL = env_str("DATABASE_URL")
if not DATABASE_URL:
    raise RuntimeError(
        "DATABASE_URL is not set. Run through `make up` / `make test` (or `fireflow with-db -- "
        "<command>`), which start an embedded PostgreSQL, or point DATABASE_URL at a server."
    )

DATABASES = {"default": dj_database_url.parse(DATABASE_URL, conn_max_age=0)}
DATABASES["default"].setdefault("OPTIONS", {})
# Fail a request fast instead of hanging when the database is away.
DATABASES["default"]["OPTIONS"].setdefault("connect_timeout", 5)
# A pool of open connections (psycopg_pool) rather than a new connection per request or
# WebSocket handshake: connecting costs several round trips and a server process, about as
# much as the rest of a run's start request (benchmarks/ttft.py). Persistent connections
# (conn_max_age) are not for ASGI servers, where requests run on changing threads. Each
# checkout checks its connection (a database restart leaves none broken), and a request
# waits at most `timeout` seconds for one (never, while the database is up: the views and
# sockets of a process use fewer than the pool holds): while it is away, a 503 after that.
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
DATABASES["default"]["OPTIONS"].setdefault(
    "pool", {"min_size": 2, "max_size": env_int("FIREFLOW_DB_POOL_SIZE", 20), "timeout": 1}
)
DATABASES["default"]["TEST"] = {"NAME": env_str("FIREFLOW_TEST_DATABASE", "fireflow_test")}

CACHES = {
    "default": {
        # Shared by every web process: rate limits must hold across them.
        "BACKEND": "django.core.cache.backends.db.DatabaseCache",
        "LOCATION": "fireflow_cache",
    }
}
