"""Run an engine worker for tests:
python worker_main.py DATABASE_URL EXECUTOR_ID [DEAD_AFTER [CONCURRENCY]]"""

import logging
import os
import sys
from pathlib import Path

sys.path[:0] = [str(Path(__file__).resolve().parents[2])]

import engine  # noqa: E402

logging.basicConfig(level=logging.WARNING)
engine.run_worker(
    engine.WorkerConfig(
        database_url=sys.argv[1],
        executor_id=sys.argv[2],
        dead_after_sec=float(sys.argv[3]) if len(sys.argv) > 3 else 15.0,
        concurrency=int(sys.argv[4]) if len(sys.argv) > 4 else 50,
        heartbeat_sec=1.0,
        # FIREFLOW_TEST_POLL_SECONDS: how often the queue is polled besides the wake-ups
        polling_interval_sec=float(os.environ.get("FIREFLOW_TEST_POLL_SECONDS", "0.05")),
        # FIREFLOW_TEST_SHELVE_AFTER: seconds before a run waiting for people is shelved
        shelve_after_sec=(
            None
            if (after := os.environ.get("FIREFLOW_TEST_SHELVE_AFTER", "never")) == "never"
            else float(after)
        ),
        # FIREFLOW_TEST_EXTRA_MODULES: more code, as a new release brings (the deploy test)
        node_modules=[
            "tests.engine.plugin_nodes",
            *filter(None, os.environ.get("FIREFLOW_TEST_EXTRA_MODULES", "").split(",")),
        ],
    )
)
