"""App keys (``ffa_<prefix>_<secret>``, only the digest kept) and anonymous visitor tokens
(signed, bound to one app, so a token gives no identity anywhere else)."""

import re
import secrets
from uuid import UUID

from django.core import signing

from tenants.tokens import NewApiKey, digest

_APP_KEY_RE = re.compile(r"^ffa_([a-z0-9]{12})_([A-Za-z0-9_-]{43})$")
_VISITOR_SALT = "fireflow.miniapps.visitor"
# An anonymous visitor keeps their identity (their runs, their rate limit) for a year.
_VISITOR_MAX_AGE = 365 * 24 * 3600


def new_app_key() -> NewApiKey:
    prefix = secrets.token_hex(6)
    raw = f"ffa_{prefix}_{secrets.token_urlsafe(32)}"
    return NewApiKey(raw=raw, prefix=prefix, key_hash=digest(raw))


def app_key_prefix(raw: str) -> str | None:
    match = _APP_KEY_RE.match(raw)
    return match.group(1) if match else None


def new_visitor_token(app_id: UUID) -> tuple[str, str]:
    """A fresh anonymous identity for one app: (token, visitor id)."""
    visitor = secrets.token_urlsafe(16)
    return signing.dumps({"a": str(app_id), "v": visitor}, salt=_VISITOR_SALT), visitor


def visitor_of_token(token: str, app_id: UUID) -> str | None:
    """The visitor id a token stands for on this app, or None (forged, expired, other app)."""
    try:
        data = signing.loads(token, salt=_VISITOR_SALT, max_age=_VISITOR_MAX_AGE)
    except signing.BadSignature:
        return None
    if not isinstance(data, dict) or data.get("a") != str(app_id):
        return None
    visitor = data.get("v")
    return visitor if isinstance(visitor, str) and visitor else None
