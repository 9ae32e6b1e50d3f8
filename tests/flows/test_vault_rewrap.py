"""Master key rotation on real workers: with version 2 current, the rewrap job moves every
secret to it, survives a kill -9 of its worker mid-way, is idempotent, and afterwards
version 1 can be retired (raised minimum) with every secret still readable."""

import os
import time
from pathlib import Path

import pytest
from django.conf import settings

from tests.factories import OrgFixture
from vault import rewrap, services
from vault.keys import master_keys, new_key_spec, reset_master_keys
from vault.models import Secret


def _version_one_spec() -> str:
    master_keys()  # creates the development key on first use
    spec = os.environ.get("FIREFLOW_VAULT_KEYS") or (
        Path(settings.BASE_DIR, "var", "vault-master.key").read_text().strip()
    )
    assert spec.startswith("1:"), "this test expects a single version-1 key to start from"
    return spec


@pytest.mark.django_db(transaction=True)
def test_the_rewrap_job_moves_every_secret_survives_a_kill_and_lets_v1_retire(
    session_worker_paused: str, org: OrgFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.engine.harness import Worker
    from tests.factories import ctx_for

    ctx = ctx_for(org.owner, org.org)
    values = {}
    for index in range(300):
        secret = services.secret_create(ctx=ctx, name=f"s{index:03d}", value=f"value {index}")
        values[secret.id] = f"value {index}"
    assert set(Secret.objects.values_list("master_version", flat=True)) == {1}

    monkeypatch.setenv("FIREFLOW_VAULT_KEYS", f"{_version_one_spec()},{new_key_spec(2)}")
    reset_master_keys()
    worker = Worker(session_worker_paused, f"rewrap-{org.org.slug}", platform=True)
    try:
        assert rewrap.status()["rows_to_rewrap"] == 300
        job = rewrap.start(batch_size=2)
        deadline = time.monotonic() + 60
        while rewrap.status()["rows_to_rewrap"] > 200:
            assert time.monotonic() < deadline, "the job did not start"
            time.sleep(0.02)
        worker.kill9()
        left = rewrap.status()["rows_to_rewrap"]
        assert 0 < left < 300, "killed too late to show a resume"
        worker = Worker(session_worker_paused, f"rewrap-{org.org.slug}", platform=True)
        while rewrap.status()["rows_to_rewrap"]:
            assert time.monotonic() < deadline + 60, "the job did not resume"
            time.sleep(0.1)
        deadline = time.monotonic() + 30
        while (state := _job_status(session_worker_paused, job)) != "SUCCESS":
            assert time.monotonic() < deadline, f"the job ended {state}"
            time.sleep(0.1)
    finally:
        worker.stop()
        reset_master_keys()
    assert set(Secret.objects.values_list("master_version", flat=True)) == {2}

    # Version 1 retired: everything still opens.
    monkeypatch.setenv("FIREFLOW_VAULT_MIN_VERSION", "2")
    reset_master_keys()
    try:
        assert master_keys().min_version == 2
        opened = {s.id: services.reveal(s) for s in Secret.objects.all()}
    finally:
        reset_master_keys()
    assert opened == values


def _job_status(url: str, job: str) -> str | None:
    import psycopg

    with psycopg.connect(url) as conn:
        row = conn.execute(
            "SELECT status FROM dbos.workflow_status WHERE workflow_uuid = %s", (job,)
        ).fetchone()
    return row[0] if row else None
