"""Master keys for the platform: from the environment, a dev key file, or no start at all."""

import os
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured

from vault.envelope import Context, open_sealed, seal
from vault.keys import (
    CURRENT_VARIABLE,
    KEYS_VARIABLE,
    MIN_VERSION_VARIABLE,
    load_master_keys,
    master_keys,
    new_key_spec,
    reset_master_keys,
)

ROOT = Path(__file__).resolve().parents[2]
CTX = Context(tenant="org-1", owner="user-1", secret_id="s-1")


@pytest.fixture
def fresh_keys(monkeypatch: pytest.MonkeyPatch, settings, tmp_path: Path) -> Iterator[Path]:
    """`master_keys()` with no key in the environment and its dev key file in tmp_path."""
    for name in (KEYS_VARIABLE, CURRENT_VARIABLE, MIN_VERSION_VARIABLE):
        monkeypatch.delenv(name, raising=False)
    key_file = tmp_path / "var" / "vault-master.key"
    settings.FIREFLOW_VAULT_DEV_KEY_FILE = key_file
    settings.FIREFLOW_ENV = "development"
    reset_master_keys()
    yield key_file
    reset_master_keys()


def test_development_generates_a_private_key_file_once_and_reuses_it(
    fresh_keys: Path,
) -> None:
    keys = master_keys()
    assert fresh_keys.exists()
    assert stat.S_IMODE(fresh_keys.stat().st_mode) == 0o600
    assert master_keys() is keys  # cached
    blob = seal(keys, CTX, 0, b"kept across restarts")

    reset_master_keys()  # a new process reads the same file
    assert open_sealed(master_keys(), CTX, 0, blob) == b"kept across restarts"
    assert list(fresh_keys.parent.iterdir()) == [fresh_keys]  # no temporary left behind


def test_test_profile_also_uses_the_dev_key_file(settings, fresh_keys: Path) -> None:
    settings.FIREFLOW_ENV = "test"
    master_keys()
    assert fresh_keys.exists()


def test_the_environment_wins_over_the_key_file(
    monkeypatch: pytest.MonkeyPatch, fresh_keys: Path
) -> None:
    monkeypatch.setenv(KEYS_VARIABLE, f"{new_key_spec(1)},{new_key_spec(2)}")
    monkeypatch.setenv(CURRENT_VARIABLE, "1")
    monkeypatch.setenv(MIN_VERSION_VARIABLE, "1")
    keys = master_keys()
    assert (keys.versions, keys.current, keys.min_version) == ((1, 2), 1, 1)
    assert not fresh_keys.exists()


def test_production_refuses_without_keys(settings, fresh_keys: Path) -> None:
    settings.FIREFLOW_ENV = "production"
    with pytest.raises(ImproperlyConfigured, match="FIREFLOW_VAULT_KEYS is not set") as caught:
        master_keys()
    assert "python -c" in str(caught.value)
    assert not fresh_keys.exists()


def test_production_uses_the_environment(
    monkeypatch: pytest.MonkeyPatch, settings, fresh_keys: Path
) -> None:
    settings.FIREFLOW_ENV = "production"
    monkeypatch.setenv(KEYS_VARIABLE, new_key_spec(3))
    assert master_keys().current == 3


@pytest.mark.parametrize(
    ("environ", "complaint"),
    [
        ({KEYS_VARIABLE: "1:c2hvcnQ="}, "FIREFLOW_VAULT_KEYS: master key version 1 is not 32"),
        ({KEYS_VARIABLE: new_key_spec(1), CURRENT_VARIABLE: "two"}, "must be a positive"),
        ({KEYS_VARIABLE: new_key_spec(1), CURRENT_VARIABLE: "2"}, "version 2 has no key"),
        ({KEYS_VARIABLE: new_key_spec(1), MIN_VERSION_VARIABLE: "0"}, "must be a positive"),
    ],
)
def test_bad_configuration_is_refused_clearly(
    environ: dict[str, str], complaint: str, tmp_path: Path
) -> None:
    with pytest.raises(ImproperlyConfigured, match=complaint) as caught:
        load_master_keys(environ=environ, profile="production", dev_key_file=tmp_path / "k")
    assert environ[KEYS_VARIABLE].partition(":")[2] not in str(caught.value)


def test_a_broken_dev_key_file_names_the_file(tmp_path: Path) -> None:
    key_file = tmp_path / "vault-master.key"
    key_file.write_text("garbage\n")
    with pytest.raises(ImproperlyConfigured, match=str(key_file)):
        load_master_keys(environ={}, profile="development", dev_key_file=key_file)


LOAD_SETTINGS = "import django; django.setup(); print('started')"


def _start_production(**env: str) -> subprocess.CompletedProcess[str]:
    environ = {
        key: value
        for key, value in os.environ.items()
        if key not in ("SECRET_KEY", "FIREFLOW_ENV", KEYS_VARIABLE)
    }
    environ.update(
        DJANGO_SETTINGS_MODULE="fireflow.settings",
        PYTHONPATH=f"{ROOT}{os.pathsep}{ROOT / 'platform'}",
        DATABASE_URL=os.environ.get("DATABASE_URL", "postgresql://localhost/fireflow"),
        FIREFLOW_ENV="production",
        SECRET_KEY="Qm9" + "v7Zr2kX1pLw8sNc4Ty6" * 4,
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


def test_production_settings_refuse_to_start_without_a_vault_key() -> None:
    result = _start_production()
    assert result.returncode != 0
    assert "FIREFLOW_VAULT_KEYS is missing" in result.stderr


def test_production_settings_start_with_a_vault_key() -> None:
    result = _start_production(FIREFLOW_VAULT_KEYS=new_key_spec(1))
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "started"
