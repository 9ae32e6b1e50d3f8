"""Secrets in transit to a run: sealed to the run's ephemeral key, bound to their use.

The worker makes a `RunKeyPair` per run and publishes only its public half; the platform
re-encrypts each secret the run needs with `seal_for_run`, and the step that uses the
secret opens it with `open_for_run` and drops it when the step ends. The plaintext is never
a step's output (DBOS stores step outputs), and the blob is useless to any other run,
node, secret, owner or caller, or once the run's private key is gone with its process.

HPKE (RFC 9180, base mode): DHKEM(X25519, HKDF-SHA256), HKDF-SHA256, AES-256-GCM. The
binding is the HPKE ``info``, so it enters the key schedule: a blob opened with another
binding derives another key and fails. Blob: ``b"FFT" | format u8 | enc (32) | ciphertext``.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import NoReturn

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.hpke import AEAD, KDF, KEM, Suite

_MAGIC = b"FFT"
_FORMAT_VERSION = 1
_PREFIX = _MAGIC + bytes([_FORMAT_VERSION])
_LABEL = b"fireflow/transit/v1"
_SUITE = Suite(KEM.X25519, KDF.HKDF_SHA256, AEAD.AES_256_GCM)
PUBLIC_KEY_BYTES = 32
_OPAQUE_MESSAGE = "the secret could not be opened for this run"


class TransitError(Exception):
    """A secret could not be sealed to, or opened in, a run; always the same message."""

    def __init__(self) -> None:
        super().__init__(_OPAQUE_MESSAGE)


@dataclass(frozen=True)
class TransitBinding:
    """What a secret in transit is for: the run and node that may open it, which secret,
    whose it is (the flow owner) and on whose behalf the run acts (the caller)."""

    run_id: str
    node_id: str
    secret_id: str
    owner: str
    caller: str

    def __post_init__(self) -> None:
        for name in ("run_id", "node_id", "secret_id", "owner", "caller"):
            value = getattr(self, name)
            if not isinstance(value, str) or not value:
                raise ValueError(f"TransitBinding.{name} must be a non-empty string")

    def encode(self) -> bytes:
        """Length-prefixed fields under a domain label: unambiguous, so no two
        bindings encode alike."""
        fields = (
            _LABEL,
            _PREFIX,
            self.run_id.encode(),
            self.node_id.encode(),
            self.secret_id.encode(),
            self.owner.encode(),
            self.caller.encode(),
        )
        return b"".join(struct.pack(">I", len(field)) + field for field in fields)


class RunKeyPair:
    """A run's ephemeral X25519 key pair. The private half lives in this object only: it
    has no export and refuses to be pickled, so it cannot land in a DBOS step output."""

    __slots__ = ("_private",)

    def __init__(self, private: X25519PrivateKey) -> None:
        self._private = private

    @classmethod
    def generate(cls) -> RunKeyPair:
        return cls(X25519PrivateKey.generate())

    def public_bytes(self) -> bytes:
        """The raw 32-byte public key, to hand to the platform for `seal_for_run`."""
        return self._private.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )

    def __reduce__(self) -> NoReturn:
        raise TypeError("a RunKeyPair stays in the memory of the process that made it")

    def __repr__(self) -> str:
        return f"RunKeyPair(public={self.public_bytes().hex()})"


def seal_for_run(public_key: bytes, binding: TransitBinding, plaintext: bytes) -> bytes:
    """Encrypt `plaintext` to a run's public key, bound to `binding`."""
    try:
        recipient = X25519PublicKey.from_public_bytes(bytes(public_key))
        return _PREFIX + _SUITE.encrypt(bytes(plaintext), recipient, binding.encode())
    except Exception:
        raise TransitError() from None


def open_for_run(pair: RunKeyPair, binding: TransitBinding, blob: bytes) -> bytes:
    """The plaintext, if `blob` was sealed to `pair` for exactly `binding`; raises
    `TransitError` otherwise, whatever went wrong."""
    blob = bytes(blob)
    if not blob.startswith(_PREFIX):
        raise TransitError()
    try:
        return _SUITE.decrypt(blob[len(_PREFIX) :], pair._private, binding.encode())
    except Exception:
        raise TransitError() from None
