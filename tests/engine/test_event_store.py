"""The event store: the events of runs that flush at once are written together, each run's
stream still in order with no gaps, a replay adding nothing, and a run whose events cannot
be written failing alone."""

import asyncio
import contextlib
import time
from collections.abc import Iterator
from typing import Any

import psycopg
from psycopg import sql

from engine import Event, EventType
from engine._store import PostgresEventStore, read_events
from tests.engine.harness import fresh_database


@contextlib.contextmanager
def _statistics_of_ended_sessions(url: str) -> Iterator[psycopg.Connection[Any]]:
    """A connection to read the statistics of the sessions that have ended: a backend adds
    its figures as it exits, which is after its client has closed the connection, so wait
    until no other backend is left on the database."""
    with psycopg.connect(url, autocommit=True) as conn:
        deadline = time.monotonic() + 10
        while conn.execute(
            "SELECT count(*) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        ).fetchone() != (0,):
            assert time.monotonic() < deadline, "the store's sessions did not end"
            time.sleep(0.02)
        yield conn


def _node_events(node: str, n: int) -> list[Event]:
    return [
        Event(EventType.STREAM_CHUNK, node=node, payload={"text": f"{node}-{i}"}, key=f"c{i}")
        for i in range(n)
    ]


def test_runs_flushing_together_keep_their_own_order_and_a_replay_adds_nothing() -> None:
    async def scenario(url: str) -> tuple[list[int], list[int]]:
        store = PostgresEventStore(url)
        await store.open()
        try:
            # 40 runs flush in the same turn of the loop (one batch or a few); each run's
            # events are 1..n in the order emitted.
            written = await asyncio.gather(
                *(store.append(f"run-{r}", _node_events(f"n{r}", 1 + r % 5)) for r in range(40))
            )
            # Again (a replayed node, a retried flush): nothing new, in a batch as well.
            again = await asyncio.gather(
                *(store.append(f"run-{r}", _node_events(f"n{r}", 1 + r % 5)) for r in range(40))
            )
            return list(written), list(again)
        finally:
            await store.close()

    with fresh_database() as url:
        with psycopg.connect(url, autocommit=True) as conn:  # count the SQL functions' calls
            conn.execute(
                sql.SQL("ALTER DATABASE {} SET track_functions = 'pl'").format(
                    sql.Identifier(conn.info.dbname)
                )
            )
        written, again = asyncio.run(scenario(url))
        assert written == [1 + r % 5 for r in range(40)]
        assert again == [0] * 40
        # One statement for the 40 runs each time, not one per run.
        with _statistics_of_ended_sessions(url) as conn:
            calls = dict(
                conn.execute(
                    "SELECT funcname, calls FROM pg_stat_user_functions WHERE schemaname = %s",
                    ("fireflow",),
                ).fetchall()
            )
        assert calls["append_events_of_runs"] == 2
        assert calls["append_events"] == 80
        for r in (0, 4, 39):
            events = read_events(url, f"run-{r}")
            assert [e["seq"] for e in events] == list(range(1, 2 + r % 5))
            assert [e["payload"]["text"] for e in events] == [f"n{r}-{i}" for i in range(1 + r % 5)]


def test_a_run_whose_events_cannot_be_written_fails_alone() -> None:
    async def scenario(url: str) -> list[int | BaseException]:
        store = PostgresEventStore(url)
        await store.open()
        try:
            bad = [Event(EventType.NODE_FAILED, node="x", payload={"error": "nul \x00 byte"})]
            return await asyncio.gather(
                store.append("good-1", _node_events("a", 2)),
                store.append("bad", bad),
                store.append("good-2", _node_events("b", 3)),
                return_exceptions=True,
            )
        finally:
            await store.close()

    with fresh_database() as url:
        good_1, bad, good_2 = asyncio.run(scenario(url))
        assert (good_1, good_2) == (2, 3)
        # PostgreSQL refuses a NUL in JSON: that run's append fails with its own error.
        assert isinstance(bad, psycopg.errors.UntranslatableCharacter)
        assert len(read_events(url, "good-2")) == 3
        assert read_events(url, "bad") == []


def test_two_workers_writing_the_same_runs_in_opposite_orders_never_deadlock() -> None:
    """Two stores (two workers' pools: a takeover racing a slow worker) append to the same
    runs at once, each batch naming them in the other order; both finish, no event twice, and
    PostgreSQL found no deadlock (a deadlock would be retried, and cost a second each)."""

    rounds = 30

    async def scenario(url: str) -> None:
        one, two = PostgresEventStore(url), PostgresEventStore(url)
        await one.open()
        await two.open()
        runs = [f"shared-{i}" for i in range(8)]
        try:
            for round_ in range(rounds):
                events = [Event(EventType.NODE_STARTED, node=f"n{round_}")]
                await asyncio.wait_for(
                    asyncio.gather(
                        *(one.append(run, events) for run in runs),
                        *(two.append(run, events) for run in reversed(runs)),
                    ),
                    timeout=30,
                )
        finally:
            await one.close()
            await two.close()

    with fresh_database() as url:
        asyncio.run(scenario(url))
        with _statistics_of_ended_sessions(url) as conn:
            row = conn.execute(
                "SELECT deadlocks FROM pg_stat_database WHERE datname = current_database()"
            ).fetchone()
        assert row == (0,)
        for run in ("shared-0", "shared-7"):
            events = read_events(url, run)
            assert [e["seq"] for e in events] == list(range(1, rounds + 1))
            assert [e["node"] for e in events] == [f"n{i}" for i in range(rounds)]
