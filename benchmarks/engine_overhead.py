"""Engine overhead per node, against a bare DBOS workflow and LangGraph, in one run.

    .venv/bin/pip install -e '.[bench]'
    DATABASE_URL=postgresql://postgres@127.0.0.1:5432/postgres \
        .venv/bin/python benchmarks/engine_overhead.py

Creates a scratch database on that server, runs the systems interleaved round by round (so
machine drift hits all alike), and prints median and p95 per-node times and ratios:
(a) a 10-node linear flow, 7 pure + 3 effectful nodes; (b) a 10-wide fan-out of effectful
nodes; (c) a bare DBOS workflow of 10 empty steps; (d) LangGraph with PostgresSaver on the
same shapes; then queued runs per second with one and with two worker processes."""

import asyncio
import os
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any, ClassVar, TypedDict
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "platform")]

import psycopg  # noqa: E402
from dbos import DBOS  # noqa: E402

import engine  # noqa: E402
from engine import Effect, NodeContext, NodeType, Port, PortType  # noqa: E402
from engine._durable import configure_event_store, run_workflow  # noqa: E402
from engine._worker import dbos_config, dispatcher_name  # noqa: E402

ROUNDS = int(os.environ.get("BENCH_ROUNDS", "30"))
# Long enough (seconds per phase at ~400 runs/s) that the last runs weigh little; each worker
# runs WARMUP_RUNS first, untimed. The phases alternate (one worker, two, one, two, ...)
# QUEUED_REPEATS times, so that machine drift hits both alike.
QUEUED_RUNS = int(os.environ.get("BENCH_QUEUED_RUNS", "4000"))  # 0 skips the queue figures
WARMUP_RUNS = 200
QUEUED_REPEATS = int(os.environ.get("BENCH_QUEUED_REPEATS", "3"))


class Effectful(NodeType):
    """An effectful node that does nothing: what is left is the engine's cost."""

    type_name = "bench_effect"
    title = "Effect (benchmark)"
    effect = Effect.EXTERNAL
    config_schema: ClassVar[dict[str, Any]] = {"type": "object"}
    INPUTS = (Port("value", PortType.ANY),)
    OUTPUTS = (Port("value", PortType.ANY),)

    async def execute(self, config: Any, inputs: Any, ctx: NodeContext) -> dict[str, Any]:
        return {"value": inputs["value"]}


def linear_flow() -> dict[str, Any]:
    kinds = [
        "transform",
        "bench_effect",
        "transform",
        "transform",
        "bench_effect",
        "transform",
        "transform",
        "bench_effect",
        "transform",
    ]
    nodes: list[dict[str, Any]] = [
        {"id": "inp", "type": "input", "config": {"fields": [{"name": "x", "type": "json"}]}}
    ]
    edges, prev = [], "inp.x"
    for i, kind in enumerate(kinds):
        node_id = f"n{i}"
        config = {"expression": "@"} if kind == "transform" else {}
        port_in, port_out = ("data", "result") if kind == "transform" else ("value", "value")
        nodes.append({"id": node_id, "type": kind, "config": config})
        edges.append({"from": prev, "to": f"{node_id}.{port_in}"})
        prev = f"{node_id}.{port_out}"
    nodes.append({"id": "out", "type": "output", "config": {"name": "x"}})
    edges.append({"from": prev, "to": "out.value"})
    return {"schema": 1, "nodes": nodes, "edges": edges}  # 1 + 9 + 1 = 11 nodes: 8 pure, 3 effects


def fanout_flow(width: int = 10) -> dict[str, Any]:
    nodes: list[dict[str, Any]] = [
        {"id": "inp", "type": "input", "config": {"fields": [{"name": "x", "type": "json"}]}},
        {"id": "join", "type": "merge", "config": {"mode": "all", "inputs": width}},
        {"id": "out", "type": "output", "config": {"name": "x"}},
    ]
    edges = [{"from": "join.result", "to": "out.value"}]
    for i in range(width):
        nodes.append({"id": f"b{i}", "type": "bench_effect"})
        edges += [
            {"from": "inp.x", "to": f"b{i}.value"},
            {"from": f"b{i}.value", "to": f"join.in_{i + 1}"},
        ]
    return {"schema": 1, "nodes": nodes, "edges": edges}


@DBOS.step()
async def _empty_step() -> None:
    return None


@DBOS.workflow(name="bench_bare")
async def bare_workflow(steps: int) -> None:
    for _ in range(steps):
        await _empty_step()


# --- LangGraph ---------------------------------------------------------------------------


class State(TypedDict, total=False):
    x: Any
    parts: list[Any]


def langgraph_graphs(url: str) -> tuple[Any, Any, Any]:
    import operator
    from typing import Annotated

    from langgraph.checkpoint.postgres import PostgresSaver
    from langgraph.graph import END, START, StateGraph

    class FanState(TypedDict, total=False):
        x: Any
        parts: Annotated[list[Any], operator.add]

    saver_cm = PostgresSaver.from_conn_string(url)
    saver = saver_cm.__enter__()
    saver.setup()

    linear = StateGraph(State)
    prev = START
    for i in range(10):
        name = f"n{i}"
        linear.add_node(name, lambda s: {"x": s["x"]})
        linear.add_edge(prev, name)
        prev = name
    linear.add_edge(prev, END)

    fan = StateGraph(FanState)
    fan.add_node("start", lambda s: {"x": s["x"]})
    fan.add_edge(START, "start")
    for i in range(10):
        fan.add_node(f"b{i}", lambda s: {"parts": [s["x"]]})
        fan.add_edge("start", f"b{i}")
    fan.add_node("join", lambda s: {"x": s["parts"]})
    fan.add_edge([f"b{i}" for i in range(10)], "join")
    fan.add_edge("join", END)
    return saver_cm, linear.compile(checkpointer=saver), fan.compile(checkpointer=saver)


# --- measuring -----------------------------------------------------------------------------


def per_node(samples: list[float], nodes: int) -> tuple[float, float]:
    ordered = sorted(s / nodes * 1000 for s in samples)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return statistics.median(ordered), p95


async def timed(make: Callable[[], Coroutine[Any, Any, Any]]) -> float:
    started = time.perf_counter()
    await make()
    return time.perf_counter() - started


async def run_engine(document: dict[str, Any]) -> None:
    handle = await DBOS.start_workflow_async(
        run_workflow, str(uuid.uuid4()), document, {"x": {"k": 1}}, {}
    )
    result = await handle.get_result()
    assert result["status"] == "completed", result


async def run_bare() -> None:
    handle = await DBOS.start_workflow_async(bare_workflow, 10)
    await handle.get_result()


def scratch_database() -> tuple[str, str]:
    server = os.environ.get("DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
    name = f"ff_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(server, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return server, urlunsplit(urlsplit(server)._replace(path=f"/{name}"))


def queued_throughput(url: str, workers: int) -> tuple[float, float]:
    """Runs per second through the queue: start `workers` processes and wait until each is
    up (listening for queued runs), enqueue QUEUED_RUNS, time until every run has finished.
    Also how many of the machine's cores were busy meanwhile (workers, PostgreSQL, this)."""
    document = {
        "schema": 1,
        "nodes": [
            {"id": "inp", "type": "input", "config": {"fields": [{"name": "x", "type": "json"}]}},
            {"id": "e", "type": "bench_effect"},
            {"id": "out", "type": "output", "config": {"name": "x"}},
        ],
        "edges": [{"from": "inp.x", "to": "e.value"}, {"from": "e.value", "to": "out.value"}],
    }
    tag = uuid.uuid4().hex[:6]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "platform")])}
    code = (
        "import sys, logging; logging.basicConfig(level=logging.WARNING);"
        "import benchmarks.engine_overhead, engine;"
        "engine.run_worker(engine.WorkerConfig(database_url=sys.argv[1], executor_id=sys.argv[2],"
        " polling_interval_sec=0.05))"
    )
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", code, url, f"bench-{tag}-{n}"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for n in range(workers)
    ]
    try:
        with psycopg.connect(url, autocommit=True) as conn:
            deadline = time.monotonic() + 60
            while _listening(conn) < workers:
                if time.monotonic() > deadline:
                    raise RuntimeError("the workers did not come up")
                time.sleep(0.1)
            # Warmed up first (connection pools filled, the flow validated once per worker):
            # the figure is the steady rate, not a start-up.
            _enqueue_and_wait(conn, document, f"w{tag}", WARMUP_RUNS * workers)
            started = time.perf_counter()
            busy_before = busy_cores()
            _enqueue_and_wait(conn, document, f"q{tag}", QUEUED_RUNS)
        seconds = time.perf_counter() - started
        return QUEUED_RUNS / seconds, (busy_cores() - busy_before) / seconds
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.wait()


def _enqueue_and_wait(
    conn: psycopg.Connection[Any], document: dict[str, Any], prefix: str, runs: int
) -> None:
    """Queue `runs` runs of `document` in one transaction; return when all have succeeded."""
    with conn.transaction():
        for i in range(runs):
            sql, params = engine.enqueue_run_sql(
                run_id=f"{prefix}-{i}", document=document, inputs={"x": i}, meta={}
            )
            conn.execute(sql, params)
    while True:
        done = conn.execute(
            "SELECT count(*) FROM dbos.workflow_status WHERE workflow_uuid LIKE %s "
            "AND status = 'SUCCESS'",
            (f"{prefix}-%",),
        ).fetchone()[0]  # type: ignore[index]
        if done >= runs:
            return
        time.sleep(0.02)


def _listening(conn: psycopg.Connection[Any]) -> int:
    """How many workers wait for queued runs: their dispatcher connections have run a
    statement (LISTEN on the enqueue channel is the first)."""
    row = conn.execute(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
        "AND application_name LIKE %s AND query <> ''",
        (dispatcher_name("%"),),
    ).fetchone()
    return int(row[0]) if row else 0


def busy_cores() -> float:
    """Busy CPU time of the whole machine so far, all cores, in seconds (/proc/stat)."""
    fields = [float(v) for v in Path("/proc/stat").read_text().split("\n")[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle, iowait
    return (sum(fields) - idle) / os.sysconf("SC_CLK_TCK")


async def main() -> None:
    server, url = scratch_database()
    try:
        DBOS.migrate(url)
        engine.migrate(url)
        configure_event_store(url)
        # The worker's own DBOS settings, for FireFlow and the bare DBOS baseline alike.
        DBOS(config=dbos_config(url, "bench-main", application_version="bench"))
        DBOS.listen_queues([])  # queued runs are for the worker processes of `queued_rate`
        DBOS.launch()
        saver_cm, lg_linear, lg_fan = langgraph_graphs(url)
        linear, fan = linear_flow(), fanout_flow()

        async def lg(graph: Any) -> None:
            config = {"configurable": {"thread_id": str(uuid.uuid4())}}
            await asyncio.to_thread(graph.invoke, {"x": {"k": 1}}, config)

        systems: dict[str, Callable[[], Coroutine[Any, Any, Any]]] = {
            "fireflow linear (8 pure + 3 effects)": lambda: run_engine(linear),
            "fireflow fan-out (10 effects + 3)": lambda: run_engine(fan),
            "bare DBOS (10 empty steps)": run_bare,
            "langgraph linear (10 nodes)": lambda: lg(lg_linear),
            "langgraph fan-out (10 + 2)": lambda: lg(lg_fan),
        }
        nodes = {
            "fireflow linear (8 pure + 3 effects)": 11,
            "fireflow fan-out (10 effects + 3)": 13,
            "bare DBOS (10 empty steps)": 10,
            "langgraph linear (10 nodes)": 10,
            "langgraph fan-out (10 + 2)": 12,
        }
        samples: dict[str, list[float]] = {name: [] for name in systems}
        for make in systems.values():  # warm-up
            await make()
        for _ in range(ROUNDS):
            for name, make in systems.items():
                samples[name].append(await timed(make))
        print(f"\nPer-node time over {ROUNDS} interleaved rounds (ms):")
        stats = {name: per_node(samples[name], nodes[name]) for name in systems}
        for name, (median, p95) in stats.items():
            print(f"  {name:40s} median {median:7.3f}   p95 {p95:7.3f}")
        bare = stats["bare DBOS (10 empty steps)"][0]
        lg_lin = stats["langgraph linear (10 nodes)"][0]
        lg_fan_ = stats["langgraph fan-out (10 + 2)"][0]
        ff_lin = stats["fireflow linear (8 pure + 3 effects)"][0]
        ff_fan = stats["fireflow fan-out (10 effects + 3)"][0]
        print("\nRatios (lower is better for FireFlow):")
        print(
            f"  linear per node / LangGraph per node      {ff_lin / lg_lin:6.2f}  (target <= 1.0)"
        )
        print(
            f"  fan-out per node / LangGraph per node     {ff_fan / lg_fan_:6.2f}  (target <= 1.0)"
        )
        effect_cost = (ff_fan * 13) / 10
        print(
            f"  fan-out run per effect / bare DBOS step   {effect_cost / bare:6.2f}  "
            "(target <= 1.25)"
        )
        saver_cm.__exit__(None, None, None)
        DBOS.destroy()
        if QUEUED_RUNS <= 0:
            return
        cores = os.cpu_count() or 1
        print(
            f"\nQueued runs/s ({QUEUED_RUNS} runs of 3 nodes a phase, after {WARMUP_RUNS} "
            "untimed per worker; cores busy: workers, PostgreSQL and this script, "
            f"of {cores}):"
        )
        ratios = []
        for repeat in range(QUEUED_REPEATS):
            one, one_busy = queued_throughput(url, 1)
            two, two_busy = queued_throughput(url, 2)
            ratios.append(two / one)
            print(
                f"  {repeat + 1}: one worker {one:6.1f} ({one_busy:4.2f} cores), "
                f"two workers {two:6.1f} ({two_busy:4.2f} cores): {two / one:4.2f}x; "
                f"the most a second worker could add here at one worker's cost per run: "
                f"{cores / one_busy:4.2f}x"
            )
        print(f"  two workers / one, median {statistics.median(ratios):4.2f}x (target >= 1.8)")
    finally:
        with psycopg.connect(server, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{urlsplit(url).path[1:]}" WITH (FORCE)')


if __name__ == "__main__":
    asyncio.run(main())
