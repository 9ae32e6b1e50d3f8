"""The platform's adapters for the engine's ports, wired in by `fireflow worker`. They read
with plain SQL (the worker runs no Django ORM inside runs)."""

import logging
import uuid
from collections.abc import Mapping
from typing import Any

from psycopg import AsyncConnection
from psycopg_pool import AsyncConnectionPool

import engine

from . import node_rules

log = logging.getLogger("fireflow.worker")


def root_run_id(run_id: str) -> uuid.UUID | None:
    """The run a user started (its Run row): a child run's id begins with it. None for a
    run the platform did not start (engine tests)."""
    try:
        return uuid.UUID(run_id.split(":", 1)[0])
    except ValueError:
        return None


class PooledAdapter:
    """A small pool, opened on first use on the event loop the runs execute on."""

    def __init__(self, database_url: str, max_size: int = 2) -> None:
        self._pool = AsyncConnectionPool(
            database_url,
            min_size=0,
            max_size=max_size,
            open=False,
            kwargs={"autocommit": True, "connect_timeout": 5},
        )
        self._opened = False

    async def close(self) -> None:
        if self._opened:
            await self._pool.close()
            self._opened = False

    async def _open(self) -> AsyncConnectionPool:
        if not self._opened:
            await self._pool.open()
            self._opened = True
        return self._pool


class WorkspacePolicy(PooledAdapter):
    """engine.PolicySource: the workspace's network allow list and node rules as they are
    now, and the roles its members hold now."""

    async def for_step(
        self,
        workspace_id: str,
        *,
        run_id: str,
        node_id: str,
        node_type: str,
        config: Mapping[str, Any],
        meta: Mapping[str, Any],
    ) -> engine.StepPolicy:
        """The allow list and the node rules (flows.node_rules) in one read; with rules,
        the flow owner's and the caller's roles as they are now. Owner and caller come from
        the Run row a user started (a child run's id begins with its id; a fork has a row
        of its own)."""
        pool = await self._open()
        async with pool.connection() as conn:
            cursor = await conn.execute(
                "SELECT http_allow, node_rules FROM flows_networkpolicy WHERE workspace_id = %s",
                (workspace_id,),
            )
            row = await cursor.fetchone()
            http_allow = list(row[0]) if row and row[0] else []
            rules = list(row[1]) if row and row[1] else []
            if not rules:
                return engine.StepPolicy(http_allow)
            owner_id, caller_id, key_id = await _run_people(conn, run_id, meta)
            owner_role = await _workspace_role(conn, workspace_id, owner_id, None)
            caller_role = await _workspace_role(conn, workspace_id, caller_id, key_id)
        for whose, role in (
            (f"the flow's author ({owner_role or 'no longer a member'})", owner_role),
            (f"the caller ({caller_role or 'no longer a member'})", caller_role),
        ):
            found = node_rules.refusal(rules, node_type, config, role)
            if found is not None:
                message = node_rules.refusal_message(found, node_id, node_type, config, whose)
                return engine.StepPolicy(http_allow, message)
        return engine.StepPolicy(http_allow)


async def _run_people(
    conn: AsyncConnection[Any], run_id: str, meta: Mapping[str, Any]
) -> tuple[str | None, str | None, str | None]:
    """(flow owner, caller, API key) of the run a user started, else of `meta`. A mini-app's
    visitor holds no workspace role: the rules judge the app's publisher (the flow owner)
    in the caller's place."""
    root = root_run_id(run_id)
    if root is not None:
        cursor = await conn.execute(
            "SELECT r.flow_owner_id, "
            "CASE WHEN a.run_id IS NULL THEN r.caller_id ELSE r.flow_owner_id END, "
            "r.api_key_id FROM flows_run r LEFT JOIN miniapps_apprun a ON a.run_id = r.id "
            "WHERE r.id = %s",
            (root,),
        )
        row = await cursor.fetchone()
        if row is not None:
            return tuple(str(v) if v is not None else None for v in row)  # type: ignore[return-value]
    owner, caller = meta.get("flow_owner"), meta.get("caller")
    return (str(owner) if owner else None, str(caller) if caller else None, None)


async def _workspace_role(
    conn: AsyncConnection[Any], workspace_id: str, user_id: str | None, key_id: str | None
) -> str | None:
    """The role `user_id` holds on the workspace now, capped by the API key it acted
    through (as tenants.access resolves it); None if none."""
    if user_id is None:
        return None
    cursor = await conn.execute(
        "SELECT m.role, ARRAY(SELECT p.codename "
        "  FROM tenants_workspaceuserobjectpermission o "
        "  JOIN auth_permission p ON p.id = o.permission_id "
        "  WHERE o.user_id = m.user_id AND o.content_object_id = w.id) "
        "FROM tenants_workspace w "
        "JOIN tenants_membership m ON m.org_id = w.org_id AND m.user_id = %s "
        "WHERE w.id = %s",
        (user_id, workspace_id),
    )
    row = await cursor.fetchone()
    if row is None:
        return None
    key_cap: tuple[str, bool] | None = None
    if key_id is not None:
        cursor = await conn.execute(
            "SELECT role, workspace_id IS NOT NULL FROM tenants_apikey WHERE id = %s", (key_id,)
        )
        key = await cursor.fetchone()
        key_cap = (str(key[0]), bool(key[1])) if key else None
    return node_rules.role_in_workspace(row[0], list(row[1] or ()), key_cap)
