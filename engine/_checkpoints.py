"""Node steps checkpointed in batches, in DBOS's own step table.

A node with an effect runs as one DBOS step at the id reserved for it: before it runs, its
recorded outcome is looked up (a replay gets it back instead of running the node again; a
cancelled run stops there); after it ran, its outcome is recorded. DBOS does each of the two
in a transaction of its own, on a thread, per step. Here the steps of all the runs on this
worker's event loop that look up (or record) in the same turn of the loop share one
statement, and a statement in flight collects the next batch: a 10-wide fan-out costs two
round trips instead of twenty transactions.

The rows are DBOS's: `dbos.operation_outputs`, written as DBOS's `record_operation_result`
writes them, behind the same fence (a run's steps are recorded only by the execution that
owns the run: `owner_xid`, its row locked until the statement commits), serialised with
DBOS's serializer. Recovery, forks and DBOS's own tools see them as any step's. Pinned to
the DBOS minor release in pyproject.toml; tests/engine/test_checkpoints.py checks that
DBOS's client reads these steps back, that DBOS's fork replays them and that the fence
holds."""

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

import psycopg
from dbos._context import DBOSContext, EnterDBOSStepCtx, get_local_dbos_context
from dbos._dbos import _get_dbos_instance
from dbos._error import (
    DBOSStepNondeterminismError,
    DBOSUnexpectedStepError,
    DBOSWorkflowCancelledError,
    DBOSWorkflowConflictIDError,
)
from dbos._serialization import (
    deserialize_exception,
    deserialize_value,
    serialize_exception,
    serialize_value,
)
from psycopg_pool import AsyncConnectionPool

from ._batches import Batches

log = logging.getLogger("fireflow.engine")


@dataclass(frozen=True)
class _Lookup:
    workflow_id: str
    step_id: int


@dataclass(frozen=True)
class Recorded:
    """A step's outcome as DBOS stored it (serialised)."""

    function_name: str
    output: str | None
    error: str | None
    serialization: str | None


@dataclass(frozen=True)
class _Record:
    workflow_id: str
    step_id: int
    name: str
    output: str | None
    error: str | None
    serialization: str
    started_ms: int
    completed_ms: int
    owner_xid: str | None


_LOOKUP_SQL = """
SELECT ws.status, oo.function_name, oo.output, oo.error, oo.serialization
FROM unnest(%s::text[], %s::int[]) WITH ORDINALITY AS r(workflow_uuid, function_id, i)
LEFT JOIN dbos.workflow_status ws ON ws.workflow_uuid = r.workflow_uuid
LEFT JOIN dbos.operation_outputs oo
       ON oo.workflow_uuid = r.workflow_uuid AND oo.function_id = r.function_id
ORDER BY r.i
"""

# As DBOS's `_record_operation_result_txn`, for many steps of many runs in one statement:
# each run's status row is locked (in one order, so two such statements cannot deadlock)
# and a step is recorded only if its execution still owns the run. A step already recorded
# keeps its row; RETURNING tells the caller whose completion time is stored.
_RECORD_SQL = """
WITH v AS (
    SELECT * FROM unnest(%s::text[], %s::int[], %s::text[], %s::text[], %s::text[],
                         %s::text[], %s::bigint[], %s::bigint[], %s::text[])
        AS v(workflow_uuid, function_id, function_name, output, error, serialization,
             started_at, completed_at, owner_xid)
), locked AS (
    SELECT workflow_uuid, owner_xid FROM dbos.workflow_status
    WHERE workflow_uuid IN (SELECT workflow_uuid FROM v)
    ORDER BY workflow_uuid
    FOR NO KEY UPDATE
), recorded AS (
    INSERT INTO dbos.operation_outputs AS oo
        (workflow_uuid, function_id, function_name, output, error, serialization,
         started_at_epoch_ms, completed_at_epoch_ms, application_name, retention_timestamp)
    SELECT v.workflow_uuid, v.function_id, v.function_name, v.output, v.error,
           v.serialization, v.started_at, v.completed_at, %s,
           (extract(epoch FROM now()) * 1000)::bigint
    FROM v JOIN locked l ON l.workflow_uuid = v.workflow_uuid
    WHERE v.owner_xid IS NULL OR l.owner_xid = v.owner_xid
    ON CONFLICT (workflow_uuid, function_id)
        DO UPDATE SET completed_at_epoch_ms = oo.completed_at_epoch_ms
    RETURNING oo.workflow_uuid, oo.function_id, oo.completed_at_epoch_ms
)
SELECT workflow_uuid, function_id, completed_at_epoch_ms FROM recorded
"""


# A step that starts this soon after its run's steps were looked up together (when the run's
# execution began) takes that answer instead of asking again: a cancellation that came in
# between is seen by the run's next step, as one just after a step's own lookup would be.
FRESH_SECONDS = 0.1


class _Ahead:
    """One run's steps, looked up together when its execution begins; `stale` is called
    once the answer is too old to be used (to drop it: outputs are not kept for long)."""

    def __init__(
        self,
        answers: "asyncio.Future[list[Recorded | BaseException | None]]",
        stale: Callable[[], None],
    ) -> None:
        self.answers = answers
        self.answered_at: float | None = None
        self._stale = stale
        answers.add_done_callback(self._answered)

    def _answered(self, _: object) -> None:
        loop = asyncio.get_running_loop()
        self.answered_at = loop.time()
        loop.call_later(FRESH_SECONDS, self._stale)

    def fresh(self) -> bool:
        return self.answered_at is None or (
            asyncio.get_running_loop().time() - self.answered_at < FRESH_SECONDS
        )


class StepBook:
    """The steps of this worker's runs, looked up and recorded in batches (one pool)."""

    def __init__(self, pool: AsyncConnectionPool[Any]) -> None:
        self._pool = pool
        self._lookups: Batches[_Lookup, Recorded | None] = Batches(self._lookup_all)
        self._records: Batches[_Record, None] = Batches(self._record_all)
        self._ahead: dict[str, tuple[list[int], _Ahead]] = {}

    def look_ahead(self, steps: list[DBOSContext]) -> None:
        """Look up these steps of one run now, together (the run's execution begins): its
        steps that start in the next FRESH_SECONDS need no lookup of their own."""
        if not steps:
            return
        workflow_id = steps[0].workflow_id
        ids = [s.function_id for s in steps]
        answers = asyncio.gather(
            *(self._lookups.submit(_Lookup(workflow_id, i)) for i in ids), return_exceptions=True
        )

        def stale() -> None:
            if self._ahead.get(workflow_id) is entry:
                del self._ahead[workflow_id]

        entry = (ids, _Ahead(answers, stale))
        self._ahead[workflow_id] = entry

    def forget(self, workflow_id: str) -> None:
        """The run's execution ended: its answers looked up ahead go (if not gone yet)."""
        self._ahead.pop(workflow_id, None)

    async def _lookup(self, workflow_id: str, step_id: int) -> Recorded | None:
        ahead = self._ahead.get(workflow_id)
        if ahead is not None and step_id in ahead[0] and ahead[1].fresh():
            answer = (await asyncio.shield(ahead[1].answers))[ahead[0].index(step_id)]
            if isinstance(answer, BaseException):
                raise answer
            return answer
        return await self._lookups.submit(_Lookup(workflow_id, step_id))

    async def run(self, step: DBOSContext, name: str, body: Callable[[], Awaitable[Any]]) -> Any:
        """Run `body` as the DBOS step `step` (a context from `reserve`) named `name`:
        its recorded outcome if it has one, else its own, recorded."""
        workflow_id, step_id = step.workflow_id, step.function_id
        started_ms = int(time.time() * 1000)
        recorded = await self._lookup(workflow_id, step_id)
        dbos = _get_dbos_instance()
        if recorded is not None:
            if recorded.function_name != name:
                raise DBOSUnexpectedStepError(workflow_id, step_id, name, recorded.function_name)
            if recorded.error is not None:
                raise deserialize_exception(
                    recorded.error, recorded.serialization, dbos._serializer
                )
            return deserialize_value(recorded.output, recorded.serialization, dbos._serializer)
        with EnterDBOSStepCtx({"name": name, "operationType": "step"}, step):
            try:
                output = await body()
            except DBOSWorkflowCancelledError:
                raise  # not an outcome: the step runs again if the run is resumed
            except Exception as error:
                failure, serialization = serialize_exception(error, None, dbos._serializer)
                await self._record(step, name, None, failure, serialization, started_ms)
                raise
        text, serialization = serialize_value(output, None, dbos._serializer)
        await self._record(step, name, text, None, serialization, started_ms)
        return output

    async def _record(  # noqa: PLR0917 (the columns of one step row)
        self,
        step: DBOSContext,
        name: str,
        output: str | None,
        error: str | None,
        serialization: str,
        started_ms: int,
    ) -> None:
        await self._records.submit(
            _Record(
                step.workflow_id,
                step.function_id,
                name,
                output,
                error,
                serialization,
                started_ms,
                int(time.time() * 1000),
                step.owner_xid,
            )
        )

    async def _lookup_all(self, items: list[_Lookup]) -> list[Recorded | BaseException | None]:
        rows = await self._retrying(
            _LOOKUP_SQL, ([i.workflow_id for i in items], [i.step_id for i in items])
        )
        results: list[Recorded | BaseException | None] = []
        for item, (status, name, output, error, serialization) in zip(items, rows, strict=True):
            if status is None:
                results.append(RuntimeError(f"run {item.workflow_id} does not exist"))
            elif status == "CANCELLED":
                results.append(
                    DBOSWorkflowCancelledError(
                        f"Workflow {item.workflow_id} is cancelled. Aborting function."
                    )
                )
            elif name is None:
                results.append(None)
            else:
                results.append(Recorded(name, output, error, serialization))
        return results

    async def _record_all(self, items: list[_Record]) -> list[BaseException | None]:
        app_name = _get_dbos_instance()._sys_db.app_name
        rows = await self._retrying(
            _RECORD_SQL,
            (
                [i.workflow_id for i in items],
                [i.step_id for i in items],
                [i.name for i in items],
                [i.output for i in items],
                [i.error for i in items],
                [i.serialization for i in items],
                [i.started_ms for i in items],
                [i.completed_ms for i in items],
                [i.owner_xid for i in items],
                app_name,
            ),
        )
        stored = {(wf, step): completed for wf, step, completed in rows}
        results: list[BaseException | None] = []
        for item in items:
            key = (item.workflow_id, item.step_id)
            if key not in stored:  # another execution owns the run now
                results.append(DBOSWorkflowConflictIDError(item.workflow_id))
            elif stored[key] != item.completed_ms:  # recorded before, by another execution
                results.append(DBOSStepNondeterminismError(item.workflow_id, item.step_id))
            else:
                results.append(None)
        return results

    async def _retrying(self, sql: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
        """One statement, again and again while the database is away, as DBOS retries its
        own (a run's steps wait for the database rather than fail). Both statements are
        idempotent: a record retried after a commit whose answer was lost finds its own
        completion time."""
        delay = 0.2
        while True:
            try:
                async with self._pool.connection() as conn:
                    cursor = await conn.execute(sql, params)
                    rows: list[tuple[Any, ...]] = await cursor.fetchall()
                    return rows
            except psycopg.OperationalError:  # a deadlock and a pool timeout too
                log.warning("step checkpoints unreachable; retrying in %.1fs", delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 30.0)


def reserve() -> DBOSContext:
    """The next step id of the calling workflow, as `DBOS.reserve_step` draws it (the two
    can be mixed: they count on the same sequence)."""
    ctx = get_local_dbos_context()
    if ctx is None or not ctx.is_workflow():
        raise RuntimeError("a step can only be reserved by a workflow, outside any step")
    return ctx.snapshot_step_ctx()
