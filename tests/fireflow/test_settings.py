"""Production refuses to start with the development secret key."""

import base64
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LOAD_SETTINGS = (
    "import django; django.setup(); from django.conf import settings; print(settings.DEBUG)"
)


def _start(**env: str) -> subprocess.CompletedProcess[str]:
    environ = {
        k: v
        for k, v in os.environ.items()
        if k not in ("SECRET_KEY", "FIREFLOW_ENV", "FIREFLOW_VAULT_KEYS")
    }
    environ.update(
        DJANGO_SETTINGS_MODULE="fireflow.settings",
        PYTHONPATH=f"{ROOT}{os.pathsep}{ROOT / 'platform'}",
        DATABASE_URL=os.environ.get("DATABASE_URL", "postgresql://localhost/fireflow"),
        **env,
    )
    return subprocess.run(
        [sys.executable, "-c", LOAD_SETTINGS],
        check=False,
        cwd=ROOT,
        env=environ,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize(
    "secret",
    [
        None,
        "dev-insecure-fireflow-secret-key-do-not-use-in-production",
        "short-but-random-Zq81",
        "insecure" + "x" * 60,
    ],
)
def test_production_refuses_a_development_or_weak_secret_key(secret: str | None) -> None:
    env = {"FIREFLOW_ENV": "production"}
    if secret is not None:
        env["SECRET_KEY"] = secret
    result = _start(**env)
    assert result.returncode != 0
    assert "SECRET_KEY is missing or is the development key" in result.stderr


def test_production_starts_with_a_strong_secret_key() -> None:
    result = _start(
        FIREFLOW_ENV="production",
        SECRET_KEY="Qm9" + "v7Zr2kX1pLw8sNc4Ty6" * 4,
        FIREFLOW_VAULT_KEYS="1:" + base64.urlsafe_b64encode(bytes(range(32))).decode(),
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False"


def test_development_starts_with_its_own_key() -> None:
    result = _start(FIREFLOW_ENV="development")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "True"
