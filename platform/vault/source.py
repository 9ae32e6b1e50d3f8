"""The worker's side of the vault (engine.SecretSource): finds the secret a node names, as
the rules allow it for the run, and seals it to the step's ephemeral key.

Rules (dual identity): a run uses the flow owner's personal secret of that name (the owner
wrote the version that names it), else the workspace's shared one; never the caller's own
secrets, and in child runs (called flows, map items, agent tools) only shared ones, since the
called flow's author is not the owner whose secrets the run holds. Each use is audited
(`secret.used`, with the run and node) and stamps the secret's last use."""

import logging
import uuid
from collections.abc import Mapping
from typing import Any

from psycopg.types.json import Jsonb

import engine
from flows.adapters import PooledAdapter

from .envelope import Context, VaultError, open_sealed
from .keys import master_keys

log = logging.getLogger("fireflow.vault")
PURPOSE = "secret"


class VaultSecrets(PooledAdapter):
    async def seal_for_step(
        self,
        run_id: str,
        node_id: str,
        name: str,
        meta: Mapping[str, Any],
        public_key: bytes,
    ) -> tuple[bytes, engine.TransitBinding]:
        org, workspace = meta.get("org"), meta.get("workspace")
        owner, caller = meta.get("flow_owner"), meta.get("caller")
        if not org or not workspace:
            raise engine.NodeError("secrets are only available to runs of a workspace")
        root_run = ":" not in run_id
        pool = await self._open()
        async with pool.connection() as conn:
            cursor = await conn.execute(
                "SELECT id, owner_id, workspace_id, sealed, epoch FROM vault_secret "
                "WHERE org_id = %s AND name = %s "
                "AND ((owner_id = %s AND %s) OR workspace_id = %s) "
                "ORDER BY owner_id IS NULL LIMIT 1",
                (org, name, owner, root_run and owner is not None, workspace),
            )
            row = await cursor.fetchone()
            if row is None:
                raise engine.NodeError(
                    f"no secret named '{name}' that this run may use: store it in the flow "
                    "owner's vault or the workspace's shared secrets"
                )
            secret_id, owner_id, workspace_id, sealed, epoch = row
            owner_key = f"user:{owner_id}" if owner_id else f"workspace:{workspace_id}"
            context = Context(
                tenant=str(org), owner=owner_key, secret_id=str(secret_id), purpose=PURPOSE
            )
            try:
                value = open_sealed(master_keys(), context, int(epoch), bytes(sealed))
            except VaultError:
                log.error("secret %s could not be opened for run %s", secret_id, run_id)
                raise engine.NodeError(f"secret '{name}' could not be opened") from None
            binding = engine.TransitBinding(
                run_id=run_id,
                node_id=node_id,
                secret_id=str(secret_id),
                owner=owner_key,
                caller=f"user:{caller}" if caller else "-",
            )
            blob = engine.seal_for_run(public_key, binding, value)
            del value
            await conn.execute(
                "UPDATE vault_secret SET last_used_at = now() WHERE id = %s", (secret_id,)
            )
            await conn.execute(
                "INSERT INTO tenants_auditevent (id, org_id, workspace_id, actor_id, actor_email, "
                "action, target_type, target_id, target_label, after, request_id, created_at) "
                "SELECT %s, %s, %s, u.id, COALESCE(u.email, ''), 'secret.used', 'secret', %s, "
                "%s, %s, '', now() FROM (SELECT %s::uuid AS id) AS c "
                "LEFT JOIN tenants_user u ON u.id = c.id",
                (
                    uuid.uuid4(),
                    org,
                    workspace,
                    str(secret_id),
                    name,
                    Jsonb({"run": run_id, "node": node_id}),
                    caller,
                ),
            )
        return blob, binding
