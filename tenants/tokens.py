"""Random credentials: API keys (``ff_<prefix>_<secret>``) and invitation tokens.

Only SHA-256 digests are stored. The secrets carry 256 bits of entropy, so a fast hash is
the right tool (a slow password hash would only slow every request)."""

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass

API_KEY_PREFIX = "ff_"
_API_KEY_RE = re.compile(r"^ff_([a-z0-9]{12})_([A-Za-z0-9_-]{43})$")
# Anything that looks like one of our keys (API keys `ff_`, mini-app keys `ffa_`), wherever it
# appears (used to refuse keys in URLs).
API_KEY_LIKE = re.compile(r"ffa?_[a-z0-9]{12}_[A-Za-z0-9_-]{20,}")


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def digests_match(secret: str, stored_digest: str) -> bool:
    return hmac.compare_digest(digest(secret), stored_digest)


@dataclass(frozen=True)
class NewApiKey:
    raw: str
    prefix: str
    key_hash: str


def new_api_key() -> NewApiKey:
    prefix = secrets.token_hex(6)
    raw = f"{API_KEY_PREFIX}{prefix}_{secrets.token_urlsafe(32)}"
    return NewApiKey(raw=raw, prefix=prefix, key_hash=digest(raw))


def api_key_prefix(raw: str) -> str | None:
    """The lookup prefix of a well-formed key, else None."""
    match = _API_KEY_RE.match(raw)
    return match.group(1) if match else None


def new_invitation_token() -> tuple[str, str]:
    """A fresh invitation token and its digest."""
    token = secrets.token_urlsafe(32)
    return token, digest(token)
