"""Master key rotation: move every secret to the current master key version.

A DBOS workflow, run by a worker: each batch is a step that locks a batch of rows still
under an older version, rewraps them (envelope.rewrap: opened with their own version, sealed
under the current one) and commits. It is resumable (a killed worker's run is recovered and
goes on from the next batch) and idempotent (a row already moved is not selected again; a
second run finds nothing to do). When no row is left under an old version, the operator
raises FIREFLOW_VAULT_MIN_VERSION and the old key can be retired.

Start it with `manage.py vault_rewrap` (or POST /api/admin/vault/rewrap as a superuser)."""

from typing import Any

from dbos import DBOS, WorkflowSerializationFormat
from django.db import connection, transaction
from django.db.models import Count

import engine

from .envelope import rewrap
from .keys import master_keys
from .models import Secret
from .services import envelope_context

REWRAP_WORKFLOW = "fireflow_vault_rewrap"


def versions_in_use() -> dict[int, int]:
    """How many secrets each master key version still seals."""
    rows = Secret.objects.values("master_version").annotate(n=Count("id"))
    return {int(r["master_version"]): int(r["n"]) for r in rows}


def status() -> dict[str, Any]:
    keys = master_keys()
    in_use = versions_in_use()
    return {
        "current_version": keys.current,
        "min_version": keys.min_version,
        "versions_in_use": {str(v): n for v, n in sorted(in_use.items())},
        "rows_to_rewrap": sum(n for v, n in in_use.items() if v != keys.current),
    }


@DBOS.step(name="vault_rewrap_batch")
def rewrap_batch(batch_size: int) -> int:
    """Move up to `batch_size` rows to the current version; how many moved."""
    keys = master_keys()
    try:
        with transaction.atomic():
            rows = list(
                Secret.objects.select_for_update(skip_locked=True)
                .exclude(master_version=keys.current)
                .order_by("id")[:batch_size]
            )
            for secret in rows:
                secret.sealed = rewrap(
                    keys, envelope_context(secret), secret.epoch, bytes(secret.sealed)
                )
                secret.master_version = keys.current
                secret.save(update_fields=["sealed", "master_version"])
        return len(rows)
    finally:
        connection.close()  # a worker thread: do not keep the connection


@DBOS.workflow(name=REWRAP_WORKFLOW, serialization_type=WorkflowSerializationFormat.PORTABLE)
def rewrap_all(batch_size: int) -> dict[str, int]:
    moved = 0
    while (count := rewrap_batch(batch_size)) > 0:
        moved += count
    return {"moved": moved}


def start(batch_size: int = 100) -> str:
    """Queue the job for the workers, once per target version (starting it again while it
    runs, or after it finished, is harmless). Returns its id."""
    job_id = f"vault-rewrap-to-v{master_keys().current}-{versions_signature()}"
    with connection.cursor() as cursor:
        cursor.execute(*engine.enqueue_job_sql(REWRAP_WORKFLOW, job_id, batch_size))
    return job_id


def versions_signature() -> str:
    """The old versions still in use, so that a new job starts when there is new work."""
    keys = master_keys()
    old = sorted(v for v in versions_in_use() if v != keys.current)
    return "-".join(str(v) for v in old) or "none"
