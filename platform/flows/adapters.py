"""The platform's adapters for the engine's ports, wired in by `fireflow worker`. They read
with plain SQL (the worker runs no Django ORM inside runs)."""

import logging
import uuid
from collections.abc import Mapping
from typing import Any

from psycopg_pool import AsyncConnectionPool

log = logging.getLogger("fireflow.worker")


class _Pooled:
    """A small pool, opened on first use on the event loop the runs execute on."""

    def __init__(self, database_url: str) -> None:
        self._pool = AsyncConnectionPool(
            database_url,
            min_size=0,
            max_size=2,
            open=False,
            kwargs={"autocommit": True, "connect_timeout": 5},
        )
        self._opened = False

    async def _open(self) -> AsyncConnectionPool:
        if not self._opened:
            await self._pool.open()
            self._opened = True
        return self._pool


class WorkspacePolicy(_Pooled):
    """engine.PolicySource: the workspace's network allow list as it is now."""

    async def http_allow(self, workspace_id: str) -> list[str]:
        pool = await self._open()
        async with pool.connection() as conn:
            cursor = await conn.execute(
                "SELECT http_allow FROM flows_networkpolicy WHERE workspace_id = %s",
                (workspace_id,),
            )
            row = await cursor.fetchone()
        return list(row[0]) if row else []


class UsageLedger(_Pooled):
    """engine.UsageLedger: one `flows_llmusage` row per LLM call. The tenant, flow, owner and
    caller come from the Run row of the run a user started (a child run's id begins with
    it), so a fork is billed to whoever forked it."""

    async def record(
        self,
        run_id: str,
        node_id: str,
        call_index: int,
        meta: Mapping[str, Any],
        usage: Mapping[str, Any],
    ) -> None:
        try:
            root = uuid.UUID(run_id.split(":", 1)[0])
        except ValueError:
            log.warning("usage of run %s not recorded: not a platform run", run_id)
            return
        pool = await self._open()
        async with pool.connection() as conn:
            cursor = await conn.execute(
                "INSERT INTO flows_llmusage (run_id, run_key, node_id, call_index, "
                "organization_id, workspace_id, flow_id, flow_owner_id, caller_id, provider, "
                "model, input_tokens, output_tokens, cached_tokens, cost_micros, created_at) "
                "SELECT r.id, %s, %s, %s, w.org_id, r.workspace_id, r.flow_id, "
                "r.flow_owner_id, r.caller_id, %s, %s, %s, %s, %s, %s, now() "
                "FROM flows_run r JOIN tenants_workspace w ON w.id = r.workspace_id "
                "WHERE r.id = %s "
                "ON CONFLICT (run_key, node_id, call_index) DO NOTHING",
                (
                    run_id,
                    node_id,
                    call_index,
                    str(usage.get("provider", ""))[:50],
                    str(usage.get("model", ""))[:200],
                    _count(usage.get("input_tokens")),
                    _count(usage.get("output_tokens")),
                    _count(usage.get("cached_tokens")),
                    _count(usage.get("cost_micros")),
                    root,
                ),
            )
            if cursor.rowcount == 0:
                log.info(
                    "usage %s/%s#%d already recorded or run unknown", run_id, node_id, call_index
                )


def _count(value: Any) -> int:
    return max(int(value), 0) if isinstance(value, int | float) else 0
