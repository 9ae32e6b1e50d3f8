import pytest
from django.core.cache import cache


@pytest.fixture(autouse=True)
def _fresh_rate_limit_counters(db: None) -> None:
    """Rate-limit counters live in the database cache, which a transactional test's flush
    does not empty: start each test with none."""
    cache.clear()
