"""Runs parked in approval waits on one worker: its memory and threads, and how fast an answer
resumes its run, against the same worker with one run waiting (the baseline, same run).

    DATABASE_URL=postgresql://postgres@127.0.0.1:5432/postgres \
        .venv/bin/python benchmarks/parked_waits.py        # BENCH_PARKED=10000, BENCH_ANSWERS=100

Creates a scratch database on that server and starts one engine worker (50 working slots,
room for 10,000 waiting runs: engine/_slots.py; runs waiting longer than BENCH_SHELVE_AFTER
seconds, default the worker's 5, leave its memory: engine/_shelf.py). Then:
(a) baseline: one run waits; its RSS and threads; BENCH_ANSWERS answers, one at a time, each
    to a run that is the only one waiting (answered at once: resumed in memory);
(b) BENCH_PARKED runs are queued and each reaches its approval (progress printed, with the
    worker's RSS: the peak is printed too); the worker's RSS and thread count once all of
    them wait on the shelf;
(c) BENCH_ANSWERS of them answered one at a time: the time from the answer's commit to the
    approval node's NODE_COMPLETED event, both stamped by the database's clock (a shelved
    run is queued again and replays its checkpoints first).
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
SHELVE_AFTER = float(os.environ.get("BENCH_SHELVE_AFTER", "5"))
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
        " concurrency=50, parked=int(sys.argv[2]), shelve_after_sec=float(sys.argv[3])))"
    )
    return subprocess.Popen(
        [sys.executable, "-c", code, url, str(PARKED + 100), str(SHELVE_AFTER)],
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


def shelved(conn: psycopg.Connection[Any], prefix: str) -> int:
    row = conn.execute(
        "SELECT count(*) FROM fireflow.shelved_run WHERE run_id LIKE %s", (prefix + "%",)
    ).fetchone()
    return int(row[0]) if row else 0


def wait_parked(
    conn: psycopg.Connection[Any], prefix: str, count: int, *, pid: int = 0, quiet: bool = False
) -> tuple[float, float]:
    """Until `count` runs wait for their approval: (seconds, the worker's peak RSS in MB)."""
    started = time.perf_counter()
    last, peak = -1, 0.0
    while (now := waiting(conn, prefix)) < count:
        if pid:
            peak = max(peak, process_figures(pid)[0])
        if not quiet and now // 1000 != last // 1000:
            print(
                f"  {now:6d} of {count} waiting ({time.perf_counter() - started:5.1f} s, "
                f"{shelved(conn, prefix):6d} shelved, RSS {peak:6.1f} MB so far)"
            )
        last = now
        time.sleep(0.05 if quiet else 0.5)
    return time.perf_counter() - started, peak


def wait_shelved(conn: psycopg.Connection[Any], prefix: str, pid: int, peak: float) -> float:
    """Until every run of `prefix` is on the shelf, and 2 s more; the peak RSS meanwhile."""
    print("Waiting until they are all shelved...")
    while shelved(conn, prefix) < PARKED:
        peak = max(peak, process_figures(pid)[0])
        time.sleep(0.5)
    time.sleep(2)  # settle
    return peak


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
            took, peak_rss = wait_parked(conn, prefix, PARKED, pid=worker.pid)
            peak_rss = wait_shelved(conn, prefix, worker.pid, peak_rss)
            parked_rss, parked_threads = process_figures(worker.pid)
            peak_rss = max(peak_rss, parked_rss)

            # (c) answers while they wait.
            latency = [answer_and_time(conn, ids[i * (PARKED // ANSWERS)]) for i in range(ANSWERS)]
            still_waiting = waiting(conn, prefix)

        print(f"\nAll {PARKED} runs waiting after {took:.1f} s ({PARKED / took:.0f} runs/s).")
        print("\nWorker process (one, 50 working slots):")
        print(f"  one run waiting       RSS {idle_rss:7.1f} MB   threads {idle_threads:4.0f}")
        print(
            f"  {PARKED:5d} runs waiting   RSS {parked_rss:7.1f} MB   threads {parked_threads:4.0f}"
            f"   (all shelved; peak RSS while they queued: {peak_rss:.1f} MB)"
        )
        per_wait_kb = (parked_rss - idle_rss) * 1024 / max(PARKED - 1, 1)
        print(f"  memory per waiting run  {per_wait_kb:6.1f} KB")
        print(f"  threads added by {PARKED} waits: {parked_threads - idle_threads:+.0f}")
        print(f"\nAnswer -> resumed node (NODE_COMPLETED), {ANSWERS} answers, ms:")
        for label, values in (
            ("one waiting, in mem", base_latency),
            (f"{PARKED} shelved", latency),
        ):
            print(
                f"  {label:18s} median {statistics.median(values):7.1f}   "
                f"p95 {percentile(values, 0.95):7.1f}   max {max(values):7.1f}"
            )
        print(f"  still waiting after the answers: {still_waiting} (expected {PARKED - ANSWERS})")
        median = statistics.median(latency)
        print("\nAgainst the targets and the baseline:")
        print(
            f"  RSS {parked_rss:.0f} MB / {TARGET_RSS_MB} MB target       "
            f"{parked_rss / TARGET_RSS_MB:6.2f}   (peak {peak_rss / TARGET_RSS_MB:.2f})"
        )
        print(
            f"  median {median:.1f} ms / {TARGET_MEDIAN_MS} ms target      "
            f"{median / TARGET_MEDIAN_MS:6.2f}"
        )
        print(
            f"  median with {PARKED} waiting / with one    "
            f"{median / statistics.median(base_latency):6.2f}"
        )
        bound = idle_threads + engine.MAX_EXECUTOR_THREADS
        print(
            f"  threads with {PARKED} waiting: {parked_threads:.0f}, at most {bound:.0f} "
            f"(one run's {idle_threads:.0f} + DBOS's executor pool, grown by the burst up to "
            f"{engine.MAX_EXECUTOR_THREADS}): "
            + ("no thread per wait" if parked_threads <= bound else "MORE than the pool")
        )
    finally:
        if worker is not None:
            worker.terminate()
            worker.wait(timeout=30)
        drop_database(server, url)


if __name__ == "__main__":
    main()
