"""The platform's adapters for the engine's ports, wired in by `fireflow worker`. They read
with plain SQL (the worker runs no Django ORM inside runs)."""

from psycopg_pool import AsyncConnectionPool


class WorkspacePolicy:
    """engine.PolicySource: the workspace's network allow list as it is now."""

    def __init__(self, database_url: str) -> None:
        self._pool = AsyncConnectionPool(
            database_url,
            min_size=0,
            max_size=2,
            open=False,
            kwargs={"autocommit": True, "connect_timeout": 5},
        )
        self._opened = False

    async def http_allow(self, workspace_id: str) -> list[str]:
        if not self._opened:
            await self._pool.open()
            self._opened = True
        async with self._pool.connection() as conn:
            cursor = await conn.execute(
                "SELECT http_allow FROM flows_networkpolicy WHERE workspace_id = %s",
                (workspace_id,),
            )
            row = await cursor.fetchone()
        return list(row[0]) if row else []
