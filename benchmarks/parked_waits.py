"""Runs parked in approval waits on one worker: its memory and threads, and how fast an answer
resumes its run, against the same worker with one run waiting (the baseline, same run).

    DATABASE_URL=postgresql://postgres@127.0.0.1:5432/postgres \
        .venv/bin/python benchmarks/parked_waits.py        # BENCH_PARKED=10000, BENCH_ANSWERS=100

Creates a scratch database on that server and starts one engine worker (50 working slots,
room for 10,000 waiting runs: engine/_slots.py). Then:
(a) baseline: one run waits; its RSS and threads; BENCH_ANSWERS answers, one at a time, each
    to a run that is the only one waiting;
(b) BENCH_PARKED runs are queued and each reaches its approval (progress printed); the
    worker's RSS and thread count with all of them waiting;
(c) BENCH_ANSWERS of them answered one at a time: the time from the answer's commit to the
    approval node's NODE_COMPLETED event, both stamped by the database's clock.
Targets (issue: human in the loop): RSS under 300 MB, no thread per wait, median under 100 ms."""

import os
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "platform")]

import psycopg  # noqa: E402
from dbos import DBOS  # noqa: E402

import engine  # noqa: E402

PARKED = int(os.environ.get("BENCH_PARKED", "10000"))
ANSWERS = int(os.environ.get("BENCH_ANSWERS", "100"))
TARGET_RSS_MB = 300
TARGET_MEDIAN_MS = 100

FLOW = {
    "schema": 1,
    "nodes": [
        {"id": "inp", "type": "input", "config": {"fields": [{"name": "x", "type": "number"}]}},
        {"id": "ask", "type": "approval", "config": {"title": "Go on?"}},
        {"id": "out", "type": "output", "config": {"name": "x"}},
    ],
    "edges": [{"from": "inp.x", "to": "ask.data"}, {"from": "ask.approved", "to": "out.value"}],
}


def scratch_database() -> tuple[str, str]:
    server = os.environ["DATABASE_URL"]
    name = f"ff_bench_parked_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(server, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    parts = urlsplit(server)
    return server, urlunsplit(parts._replace(path=f"/{name}"))


def drop_database(server: str, url: str) -> None:
    name = urlsplit(url).path.lstrip("/")
    with psycopg.connect(server, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def start_worker(url: str) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "platform")])}
    code = (
        "import sys, logging; logging.basicConfig(level=logging.WARNING); import engine;"
        "engine.run_worker(engine.WorkerConfig(database_url=sys.argv[1], executor_id='parked',"
        " concurrency=50, parked=int(sys.argv[2])))"
    )
    return subprocess.Popen(
        [sys.executable, "-c", code, url, str(PARKED + 100)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def process_figures(pid: int) -> tuple[float, int]:
    """(RSS in MB, threads) of a process, from /proc."""
    rss_kb, threads = 0, 0
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            rss_kb = int(line.split()[1])
        elif line.startswith("Threads:"):
            threads = int(line.split()[1])
    return rss_kb / 1024, threads


def enqueue(conn: psycopg.Connection[Any], run_ids: list[str]) -> None:
    with conn.transaction():
        for i, run_id in enumerate(run_ids):
            sql, params = engine.enqueue_run_sql(
                run_id=run_id, document=FLOW, inputs={"x": i}, meta={}
            )
            conn.execute(sql, params)


def waiting(conn: psycopg.Connection[Any], prefix: str) -> int:
    row = conn.execute(
        "SELECT count(*) FROM fireflow.human_request WHERE run_id LIKE %s AND answer IS NULL",
        (prefix + "%",),
    ).fetchone()
    return int(row[0]) if row else 0


def wait_parked(
    conn: psycopg.Connection[Any], prefix: str, count: int, *, quiet: bool = False
) -> float:
    started = time.perf_counter()
    last = -1
    while (now := waiting(conn, prefix)) < count:
        if not quiet and now // 1000 != last // 1000:
            print(f"  {now:6d} of {count} waiting ({time.perf_counter() - started:5.1f} s)")
        last = now
        time.sleep(0.05 if quiet else 0.5)
    return time.perf_counter() - started


def answer_and_time(conn: psycopg.Connection[Any], run_id: str) -> float:
    """Answer the run's request; milliseconds from the answer's commit to the approval
    node's NODE_COMPLETED event (both stamped by the database)."""
    with conn.transaction(), conn.cursor() as cursor:
        result = engine.answer_request(
            cursor, run_id=run_id, node_id="ask", outcome="approved", by="bench@example.com"
        )
        assert result.status == "answered", result
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        row = conn.execute(
            "SELECT extract(epoch FROM e.created_at - h.answered_at) * 1000 "
            "FROM fireflow.run_event e JOIN fireflow.human_request h "
            "ON h.run_id = e.run_id AND h.node_id = e.node "
            "WHERE e.run_id = %s AND e.node = 'ask' AND e.type = 'NODE_COMPLETED'",
            (run_id,),
        ).fetchone()
        if row is not None:
            return float(row[0])
        time.sleep(0.002)
    raise RuntimeError(f"run {run_id} did not resume within 30 s")


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def main() -> None:
    server, url = scratch_database()
    worker: subprocess.Popen[bytes] | None = None
    try:
        DBOS.migrate(url)
        engine.migrate(url)
        worker = start_worker(url)
        with psycopg.connect(url, autocommit=True) as conn:
            # (a) the baseline: one run waiting at a time.
            base_latency: list[float] = []
            idle_rss = idle_threads = 0.0
            for i in range(ANSWERS):
                run_id = f"base-{i}"
                enqueue(conn, [run_id])
                wait_parked(conn, run_id, 1, quiet=True)
                if i == 0:
                    idle_rss, idle_threads = process_figures(worker.pid)
                base_latency.append(answer_and_time(conn, run_id))

            # (b) PARKED runs waiting at once.
            print(f"\nQueueing {PARKED} runs that wait for an approval...")
            prefix = f"park-{uuid.uuid4().hex[:6]}-"
            ids = [f"{prefix}{i}" for i in range(PARKED)]
            for start in range(0, PARKED, 1000):
                enqueue(conn, ids[start : start + 1000])
            took = wait_parked(conn, prefix, PARKED)
            time.sleep(2)  # settle
            parked_rss, parked_threads = process_figures(worker.pid)

            # (c) answers while they wait.
            latency = [answer_and_time(conn, ids[i * (PARKED // ANSWERS)]) for i in range(ANSWERS)]
            still_waiting = waiting(conn, prefix)

        print(f"\nAll {PARKED} runs waiting after {took:.1f} s ({PARKED / took:.0f} runs/s).")
        print("\nWorker process (one, 50 working slots):")
        print(f"  one run waiting       RSS {idle_rss:7.1f} MB   threads {idle_threads:4.0f}")
        print(
            f"  {PARKED:5d} runs waiting   RSS {parked_rss:7.1f} MB   threads {parked_threads:4.0f}"
        )
        per_wait_kb = (parked_rss - idle_rss) * 1024 / max(PARKED - 1, 1)
        print(f"  memory per waiting run  {per_wait_kb:6.1f} KB")
        print(f"  threads added by {PARKED} waits: {parked_threads - idle_threads:+.0f}")
        print(f"\nAnswer -> resumed node (NODE_COMPLETED), {ANSWERS} answers, ms:")
        for label, values in (("one run waiting", base_latency), (f"{PARKED} waiting", latency)):
            print(
                f"  {label:18s} median {statistics.median(values):7.1f}   "
                f"p95 {percentile(values, 0.95):7.1f}   max {max(values):7.1f}"
            )
        print(f"  still waiting after the answers: {still_waiting} (expected {PARKED - ANSWERS})")
        median = statistics.median(latency)
        print("\nAgainst the targets and the baseline:")
        print(
            f"  RSS {parked_rss:.0f} MB / {TARGET_RSS_MB} MB target       "
            f"{parked_rss / TARGET_RSS_MB:6.2f}"
        )
        print(
            f"  median {median:.1f} ms / {TARGET_MEDIAN_MS} ms target      "
            f"{median / TARGET_MEDIAN_MS:6.2f}"
        )
        print(
            f"  median with {PARKED} waiting / with one    "
            f"{median / statistics.median(base_latency):6.2f}"
        )
        print(
            f"  threads with {PARKED} waiting / with one   {parked_threads / idle_threads:6.2f}"
            "  (no thread per wait: ~1.0)"
        )
    finally:
        if worker is not None:
            worker.terminate()
            worker.wait(timeout=30)
        drop_database(server, url)


if __name__ == "__main__":
    main()
