"""The worker's side of the vault (engine.SecretSource): finds the secret a node names, as
the rules allow it for the run, and seals it to the step's ephemeral key.

Rules (dual identity), explicit in the node's config: `name` is the flow owner's personal
secret (the owner wrote the version that names it, and may limit a secret to some flows),
`workspace:name` the workspace's shared one. A caller's own secrets are never used for
someone else's flow; child runs (called flows, map items, agent tools) use shared secrets
only, since the called flow's author is not the owner whose secrets the run holds. Each use
is audited (`secret.used`, with the run and node) and stamps the secret's last use."""

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
        shared = name.startswith("workspace:")
        bare = name.removeprefix("workspace:")
        if not shared and (":" in run_id or owner is None):
            raise engine.NodeError(
                f"secret '{name}' is a personal secret of the flow's owner, which a called flow "
                f"(or a run without an owner) cannot use: name the workspace's 'workspace:{bare}'"
            )
        pool = await self._open()
        async with pool.connection() as conn:
            if shared:
                cursor = await conn.execute(
                    "SELECT id, owner_id, workspace_id, sealed, epoch, allowed_flows "
                    "FROM vault_secret WHERE org_id = %s AND workspace_id = %s AND name = %s",
                    (org, workspace, bare),
                )
            else:
                cursor = await conn.execute(
                    "SELECT id, owner_id, workspace_id, sealed, epoch, allowed_flows "
                    "FROM vault_secret WHERE org_id = %s AND owner_id = %s AND name = %s",
                    (org, owner, bare),
                )
            row = await cursor.fetchone()
            if row is None:
                where = "the workspace's shared secrets" if shared else "the flow owner's vault"
                raise engine.NodeError(
                    f"no secret named '{bare}' in {where}: store it there, or name the other "
                    f"({'the owner' if shared else 'workspace:' + bare})"
                )
            allowed = [str(f) for f in (row[5] or [])]
            if allowed and str(meta.get("flow")) not in allowed:
                raise engine.NodeError(
                    f"secret '{bare}' is limited by its owner to other flows: allow this flow "
                    "on the secret's page"
                )
            row = row[:5]
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
