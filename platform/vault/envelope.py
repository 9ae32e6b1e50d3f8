"""The vault envelope: one secret sealed under a key derived for its exact context.

Layout (all integers big-endian)::

    magic "FFV" | format u8 | suite u8 | master version u32 | owner epoch u32
    | message id (32) | key commitment (32) | nonce (12) | AES-256-GCM ciphertext + tag (16)

Everything before the ciphertext is the header. For each message, HKDF-SHA256 over the
master key of the header's version (salt = message id, info = length-prefixed purpose,
tenant, owner, epoch) gives 64 bytes: the AES-256-GCM key and a key commitment, checked in
constant time before decrypting. A fresh key per message sidesteps GCM's nonce and volume
limits; the commitment means a blob opens under one key only. The associated data is the
whole header plus the length-prefixed tenant, owner, secret id and purpose, rebuilt from
the caller's `Context` and never stored, so a blob copied to another row, owner,
organisation or purpose does not open.

Every failure to open raises the same `VaultError`, whatever went wrong, so an error tells
an attacker nothing about which check failed. This module imports no Django.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import os
import re
import struct
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

__all__ = [
    "Context",
    "MasterKeys",
    "VaultError",
    "header_info",
    "open_sealed",
    "rewrap",
    "seal",
]

MAGIC = b"FFV"
FORMAT_VERSION = 1
# Suite 1: HKDF-SHA256 key derivation with commitment, AES-256-GCM.
SUITE_HKDF_SHA256_AES_256_GCM = 1

KEY_BYTES = 32
MESSAGE_ID_BYTES = 32
COMMITMENT_BYTES = 32
NONCE_BYTES = 12
TAG_BYTES = 16
MAX_U32 = 2**32 - 1

_FIXED = struct.Struct(">3sBBII")
HEADER_BYTES = _FIXED.size + MESSAGE_ID_BYTES + COMMITMENT_BYTES + NONCE_BYTES
MIN_BLOB_BYTES = HEADER_BYTES + TAG_BYTES

_OPAQUE_MESSAGE = "the secret could not be opened"
_URLSAFE_BASE64 = re.compile(r"[A-Za-z0-9_-]+={0,2}")

RandomSource = Callable[[int], bytes]


class VaultError(Exception):
    """A sealed secret could not be opened (or rewrapped).

    Always the same message: which check failed (tampering, wrong context, retired or
    unknown key version, truncation) is deliberately not said."""

    def __init__(self) -> None:
        super().__init__(_OPAQUE_MESSAGE)


@dataclass(frozen=True)
class Context:
    """Where a secret belongs; bound into its key and its associated data.

    `tenant` is the organisation id, `owner` a user id or ``"workspace:<id>"``,
    `secret_id` the row's id and `purpose` what the blob is for (``"secret"``)."""

    tenant: str
    owner: str
    secret_id: str
    purpose: str = "secret"

    def __post_init__(self) -> None:
        for name in ("tenant", "owner", "secret_id", "purpose"):
            value = getattr(self, name)
            if not isinstance(value, str) or not value:
                raise ValueError(f"Context.{name} must be a non-empty string")


class MasterKeys:
    """Versioned 32-byte master keys: seal under `current`, open any version from
    `min_version` up. Rotation: add version v+1 and make it current, rewrap every row,
    then raise `min_version` so the old key may be retired."""

    __slots__ = ("_keys", "current", "min_version")

    def __init__(self, keys: Mapping[int, bytes], current: int, min_version: int) -> None:
        if not keys:
            raise ValueError("at least one master key is needed")
        for version, key in keys.items():
            if not isinstance(version, int) or not 1 <= version <= MAX_U32:
                raise ValueError(f"master key version must be an integer 1..{MAX_U32}")
            if not isinstance(key, bytes) or len(key) != KEY_BYTES:
                raise ValueError(f"master key version {version} is not {KEY_BYTES} bytes")
        if current not in keys:
            raise ValueError(f"the current master key version {current} has no key")
        if not 1 <= min_version <= current:
            raise ValueError(
                f"the minimum version {min_version} must be between 1 and the current "
                f"version {current}"
            )
        self._keys = dict(keys)
        self.current = current
        self.min_version = min_version

    @classmethod
    def parse(
        cls, spec: str, current: int | None = None, min_version: int | None = None
    ) -> MasterKeys:
        """Read ``"1:<urlsafe base64 of 32 bytes>,2:<...>"``.

        `current` defaults to the highest version, `min_version` to the lowest. Errors
        say which entry is wrong and never repeat key material."""
        keys: dict[int, bytes] = {}
        entries = [entry.strip() for entry in spec.split(",")]
        if not any(entries):
            raise ValueError("no master key given: expected '1:<urlsafe base64 of 32 bytes>'")
        for position, entry in enumerate(entries, start=1):
            if not entry:
                raise ValueError(f"master key entry {position} is empty")
            version_text, colon, encoded = entry.partition(":")
            if not colon:
                raise ValueError(f"master key entry {position} lacks its 'version:' prefix")
            version_text = version_text.strip()
            if not version_text.isdigit() or not 1 <= int(version_text) <= MAX_U32:
                raise ValueError(
                    f"master key entry {position}: the version must be an integer 1..{MAX_U32}"
                )
            version = int(version_text)
            if version in keys:
                raise ValueError(f"master key version {version} is given twice")
            keys[version] = _decode_key(encoded.strip(), version)
        chosen_current = max(keys) if current is None else current
        chosen_min = min(keys) if min_version is None else min_version
        return cls(keys, current=chosen_current, min_version=chosen_min)

    @property
    def versions(self) -> tuple[int, ...]:
        return tuple(sorted(self._keys))

    def _key_for(self, version: int) -> bytes:
        """The key of a version still allowed to decrypt; VaultError otherwise."""
        key = self._keys.get(version)
        if key is None or version < self.min_version:
            raise VaultError()
        return key

    def __repr__(self) -> str:
        # Never the key material.
        return (
            f"MasterKeys(versions={list(self.versions)}, current={self.current}, "
            f"min_version={self.min_version})"
        )


def _decode_key(encoded: str, version: int) -> bytes:
    if not _URLSAFE_BASE64.fullmatch(encoded):
        raise ValueError(f"master key version {version} is not valid urlsafe base64")
    padded = encoded + "=" * (-len(encoded) % 4)
    try:
        key = base64.b64decode(padded, altchars=b"-_", validate=True)
    except (binascii.Error, ValueError):
        raise ValueError(f"master key version {version} is not valid urlsafe base64") from None
    if len(key) != KEY_BYTES:
        raise ValueError(f"master key version {version} is not {KEY_BYTES} bytes")
    return key


def _length_prefixed(*fields: bytes) -> bytes:
    return b"".join(struct.pack(">I", len(field)) + field for field in fields)


def _derive(master_key: bytes, message_id: bytes, ctx: Context, epoch: int) -> tuple[bytes, bytes]:
    info = _length_prefixed(
        ctx.purpose.encode(), ctx.tenant.encode(), ctx.owner.encode(), struct.pack(">I", epoch)
    )
    okm = HKDF(
        algorithm=hashes.SHA256(),
        length=KEY_BYTES + COMMITMENT_BYTES,
        salt=message_id,
        info=info,
    ).derive(master_key)
    return okm[:KEY_BYTES], okm[KEY_BYTES:]


def _aad(header: bytes, ctx: Context) -> bytes:
    return header + _length_prefixed(
        ctx.tenant.encode(), ctx.owner.encode(), ctx.secret_id.encode(), ctx.purpose.encode()
    )


@dataclass(frozen=True)
class _Header:
    raw: bytes
    master_version: int
    epoch: int
    message_id: bytes
    commitment: bytes
    nonce: bytes


def _parse_header(blob: bytes) -> _Header:
    if not isinstance(blob, bytes | bytearray | memoryview) or len(blob) < MIN_BLOB_BYTES:
        raise VaultError()
    blob = bytes(blob)
    magic, fmt, suite, master_version, epoch = _FIXED.unpack_from(blob)
    if (
        magic != MAGIC
        or fmt != FORMAT_VERSION
        or suite != SUITE_HKDF_SHA256_AES_256_GCM
        or master_version == 0
    ):
        raise VaultError()
    offset = _FIXED.size
    message_id = blob[offset : offset + MESSAGE_ID_BYTES]
    offset += MESSAGE_ID_BYTES
    commitment = blob[offset : offset + COMMITMENT_BYTES]
    offset += COMMITMENT_BYTES
    nonce = blob[offset : offset + NONCE_BYTES]
    return _Header(blob[:HEADER_BYTES], master_version, epoch, message_id, commitment, nonce)


def _check_epoch(epoch: int) -> None:
    if not isinstance(epoch, int) or not 0 <= epoch <= MAX_U32:
        raise ValueError(f"the key epoch must be an integer 0..{MAX_U32}")


def header_info(blob: bytes) -> tuple[int, int]:
    """``(master key version, owner key epoch)`` of a sealed blob, without opening it.

    For a rewrap job to find rows still under an old version. The values are not
    authenticated until the blob is opened. Raises `VaultError` on anything malformed."""
    header = _parse_header(blob)
    return header.master_version, header.epoch


def seal(
    keys: MasterKeys,
    ctx: Context,
    epoch: int,
    plaintext: bytes,
    *,
    _random: RandomSource = os.urandom,
) -> bytes:
    """Seal `plaintext` for `ctx` under the current master key and the owner's `epoch`.

    `_random` exists for the known-answer test only: it supplies the message id, then
    the nonce."""
    _check_epoch(epoch)
    if not isinstance(plaintext, bytes | bytearray | memoryview):
        raise TypeError("the plaintext must be bytes")
    version = keys.current
    message_id = _random(MESSAGE_ID_BYTES)
    nonce = _random(NONCE_BYTES)
    if len(message_id) != MESSAGE_ID_BYTES or len(nonce) != NONCE_BYTES:
        raise ValueError("the random source returned the wrong number of bytes")
    aes_key, commitment = _derive(keys._key_for(version), message_id, ctx, epoch)
    header = (
        _FIXED.pack(MAGIC, FORMAT_VERSION, SUITE_HKDF_SHA256_AES_256_GCM, version, epoch)
        + message_id
        + commitment
        + nonce
    )
    return header + AESGCM(aes_key).encrypt(nonce, bytes(plaintext), _aad(header, ctx))


def open_sealed(keys: MasterKeys, ctx: Context, epoch: int, blob: bytes) -> bytes:
    """The plaintext of `blob`, if it was sealed for exactly `ctx` and `epoch` under a
    master key version still allowed. Raises `VaultError` otherwise."""
    header = _parse_header(blob)
    if header.epoch != epoch:
        raise VaultError()
    master_key = keys._key_for(header.master_version)
    aes_key, commitment = _derive(master_key, header.message_id, ctx, header.epoch)
    if not hmac.compare_digest(commitment, header.commitment):
        raise VaultError()
    try:
        return AESGCM(aes_key).decrypt(
            header.nonce, bytes(blob[HEADER_BYTES:]), _aad(header.raw, ctx)
        )
    except InvalidTag:
        raise VaultError() from None


def rewrap(
    keys: MasterKeys,
    ctx: Context,
    epoch: int,
    blob: bytes,
    new_epoch: int | None = None,
    *,
    _random: RandomSource = os.urandom,
) -> bytes:
    """Re-seal `blob` under the current master key and `new_epoch` (default: `epoch`).

    Idempotent, so a rotation job can be stopped and run again: a blob already under the
    current version and the target epoch is checked and returned unchanged, and a blob
    already moved to `new_epoch` is accepted although the caller still names the old
    epoch. Raises `VaultError` if the blob does not open."""
    target = epoch if new_epoch is None else new_epoch
    _check_epoch(target)
    master_version, blob_epoch = header_info(blob)
    if blob_epoch not in (epoch, target):
        raise VaultError()
    plaintext = open_sealed(keys, ctx, blob_epoch, blob)
    if master_version == keys.current and blob_epoch == target:
        return bytes(blob)
    return seal(keys, ctx, target, plaintext, _random=_random)
