import os
from collections.abc import Iterator

import pytest

from tests.engine.harness import Worker


@pytest.fixture(scope="session")
def engine_worker(django_db_setup: None, django_db_blocker: pytest.FixtureRequest) -> Iterator[str]:
    """One real worker process on the test database for the whole session; tests that use it
    must commit (transactional_db) so the worker sees their rows."""
    import psycopg
    from django.db import connection

    from flows.engine_bridge import url_for
    from tests.engine.plugin_nodes import LEDGER_DDL

    with django_db_blocker.unblock():  # type: ignore[attr-defined]
        url = url_for(connection.settings_dict)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(LEDGER_DDL)
    from engine.llm import FakeLLMServer
    from flows import engine_bridge

    with FakeLLMServer() as fake_llm:
        os.environ["FIREFLOW_FAKE_LLM_URL"] = fake_llm.url  # inherited by the worker
        worker = Worker(url, f"api-tests-{os.getpid()}", platform=True)  # `fireflow worker`
        yield url
        worker.stop()
        os.environ.pop("FIREFLOW_FAKE_LLM_URL", None)
    engine_bridge.client().close()  # let the test database be dropped
    engine_bridge.client.cache_clear()
