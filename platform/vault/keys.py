"""Master keys for the platform's vault, from the environment, never from the database.

``FIREFLOW_VAULT_KEYS`` holds ``"1:<urlsafe base64 of 32 bytes>,2:<...>"``;
``FIREFLOW_VAULT_CURRENT`` picks the version new secrets are sealed under (default: the
highest) and ``FIREFLOW_VAULT_MIN_VERSION`` the lowest still opened (default: the lowest
given). Development and test, without ``FIREFLOW_VAULT_KEYS``, use a key generated once
into ``var/vault-master.key`` (setting ``FIREFLOW_VAULT_DEV_KEY_FILE`` moves it); production
refuses to run without one.
"""

from __future__ import annotations

import base64
import contextlib
import os
import secrets
from collections.abc import Mapping
from functools import cache
from pathlib import Path

from .envelope import KEY_BYTES, MasterKeys

KEYS_VARIABLE = "FIREFLOW_VAULT_KEYS"
CURRENT_VARIABLE = "FIREFLOW_VAULT_CURRENT"
MIN_VERSION_VARIABLE = "FIREFLOW_VAULT_MIN_VERSION"

GENERATE_KEY_COMMAND = (
    "python -c 'import base64, os; "
    'print("1:" + base64.urlsafe_b64encode(os.urandom(32)).decode())\''
)


def new_key_spec(version: int = 1) -> str:
    """A fresh ``"<version>:<urlsafe base64>"`` entry for ``FIREFLOW_VAULT_KEYS``."""
    return f"{version}:{base64.urlsafe_b64encode(secrets.token_bytes(KEY_BYTES)).decode()}"


@cache
def master_keys() -> MasterKeys:
    """The platform's master keys, read once per process (`reset_master_keys` forgets)."""
    from django.conf import settings

    default_file = Path(settings.BASE_DIR) / "var" / "vault-master.key"
    return load_master_keys(
        environ=os.environ,
        profile=settings.FIREFLOW_ENV,
        dev_key_file=Path(getattr(settings, "FIREFLOW_VAULT_DEV_KEY_FILE", default_file)),
    )


def reset_master_keys() -> None:
    """Forget the cached keys, so the next `master_keys()` reads them again (tests)."""
    master_keys.cache_clear()


def load_master_keys(*, environ: Mapping[str, str], profile: str, dev_key_file: Path) -> MasterKeys:
    """Master keys from `environ`; outside production, from `dev_key_file` if unset."""
    from django.core.exceptions import ImproperlyConfigured

    spec = environ.get(KEYS_VARIABLE, "").strip()
    source = KEYS_VARIABLE
    if not spec:
        if profile == "production":
            raise ImproperlyConfigured(
                f"{KEYS_VARIABLE} is not set. Production needs its own vault master key: "
                f"set {KEYS_VARIABLE}=1:<key>, generating the key with {GENERATE_KEY_COMMAND}. "
                "Keep it out of the database and its backups."
            )
        spec = _development_key_spec(dev_key_file)
        source = str(dev_key_file)
    try:
        return MasterKeys.parse(
            spec,
            current=_version_from(environ, CURRENT_VARIABLE),
            min_version=_version_from(environ, MIN_VERSION_VARIABLE),
        )
    except ValueError as error:
        # The message names the entry at fault, never the key material.
        raise ImproperlyConfigured(f"{source}: {error}") from None


def _version_from(environ: Mapping[str, str], name: str) -> int | None:
    from django.core.exceptions import ImproperlyConfigured

    raw = environ.get(name, "").strip()
    if not raw:
        return None
    if not raw.isdigit() or int(raw) < 1:
        raise ImproperlyConfigured(f"{name} must be a positive integer, not {raw!r}")
    return int(raw)


def _development_key_spec(path: Path) -> str:
    """The key in `path`, created (mode 0600) on first use.

    Written to a private temporary file and linked into place, so two processes starting
    together (web and worker) agree on one key and never read a half-written file."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(descriptor, "w") as handle:
                handle.write(new_key_spec() + "\n")
            with contextlib.suppress(FileExistsError):
                os.link(temporary, path)
        finally:
            temporary.unlink(missing_ok=True)
    return path.read_text().strip()
