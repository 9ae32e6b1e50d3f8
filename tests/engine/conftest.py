from collections.abc import Iterator

import pytest

from tests.engine import harness


@pytest.fixture(autouse=True)
def _stop_workers_left_running() -> Iterator[None]:
    """A failing test must not leave its worker processes running."""
    started = len(harness.STARTED)
    yield
    for worker in harness.STARTED[started:]:
        worker.stop()
