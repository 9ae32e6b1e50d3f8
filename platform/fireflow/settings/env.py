"""Small readers for environment variables, shared by the settings modules."""

import os

PROFILES = ("development", "test", "production")


def env_str(name: str, default: str = "") -> str:
    return os.environ.get(name, default)


def env_bool(name: str, default: bool = False) -> bool:
    raw = os.environ.get(name)
    if raw is None:
        return default
    return raw.strip().lower() in {"1", "true", "yes", "on"}


def env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    return int(raw) if raw else default


def env_list(name: str, default: list[str]) -> list[str]:
    raw = os.environ.get(name)
    if raw is None:
        return default
    return [item.strip() for item in raw.split(",") if item.strip()]


def profile() -> str:
    value = os.environ.get("FIREFLOW_ENV", "development")
    if value not in PROFILES:
        raise RuntimeError(f"FIREFLOW_ENV must be one of {', '.join(PROFILES)}, not {value!r}")
    return value
