"""The vault envelope: what it opens, and everything it refuses with one opaque error."""

import base64
import dataclasses
import hmac
import re
import struct
from collections.abc import Callable, Iterator

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from vault.envelope import (
    HEADER_BYTES,
    Context,
    MasterKeys,
    VaultError,
    header_info,
    open_sealed,
    rewrap,
    seal,
)

KEY_1 = bytes(range(32))
KEY_2 = bytes(range(32, 64))
CTX = Context(tenant="org-1", owner="user-7", secret_id="sec-42", purpose="secret")
SECRET = b"sk-canary-123"


def spec(**keys: bytes) -> str:
    return ",".join(
        f"{name.removeprefix('v')}:{base64.urlsafe_b64encode(key).decode()}"
        for name, key in keys.items()
    )


def v1_only() -> MasterKeys:
    return MasterKeys.parse(spec(v1=KEY_1))


def v1_and_v2(min_version: int | None = None) -> MasterKeys:
    return MasterKeys.parse(spec(v1=KEY_1, v2=KEY_2), min_version=min_version)


def fixed_random(*chunks: bytes) -> Callable[[int], bytes]:
    supply: Iterator[bytes] = iter(chunks)

    def draw(size: int) -> bytes:
        chunk = next(supply)
        assert len(chunk) == size
        return chunk

    return draw


def refused(action: Callable[[], object]) -> VaultError:
    with pytest.raises(VaultError) as caught:
        action()
    return caught.value


def test_round_trip() -> None:
    keys = v1_only()
    blob = seal(keys, CTX, 0, SECRET)
    assert SECRET not in blob
    assert open_sealed(keys, CTX, 0, blob) == SECRET
    assert header_info(blob) == (1, 0)


def test_round_trip_of_empty_and_large_secrets() -> None:
    keys = v1_only()
    for plaintext in (b"", bytes(range(256)) * 400):
        assert open_sealed(keys, CTX, 3, seal(keys, CTX, 3, plaintext)) == plaintext


def test_sealing_twice_gives_different_blobs() -> None:
    keys = v1_only()
    assert seal(keys, CTX, 0, SECRET) != seal(keys, CTX, 0, SECRET)


def test_every_single_bit_flip_fails() -> None:
    keys = v1_only()
    blob = seal(keys, CTX, 0, SECRET)
    for bit in range(len(blob) * 8):
        flipped = bytearray(blob)
        flipped[bit // 8] ^= 1 << (bit % 8)
        with pytest.raises(VaultError):
            open_sealed(keys, CTX, 0, bytes(flipped))


def test_every_truncation_and_an_extension_fail() -> None:
    keys = v1_only()
    blob = seal(keys, CTX, 0, SECRET)
    for length in range(len(blob)):
        with pytest.raises(VaultError):
            open_sealed(keys, CTX, 0, blob[:length])
    refused(lambda: open_sealed(keys, CTX, 0, blob + b"\x00"))


@pytest.mark.parametrize(
    "other",
    [
        dataclasses.replace(CTX, tenant="org-2"),
        dataclasses.replace(CTX, owner="user-8"),
        dataclasses.replace(CTX, owner="workspace:user-7"),
        dataclasses.replace(CTX, secret_id="sec-43"),
        dataclasses.replace(CTX, purpose="oauth-refresh"),
    ],
    ids=["tenant", "owner", "owner-kind", "secret-id", "purpose"],
)
def test_another_context_fails(other: Context) -> None:
    keys = v1_only()
    blob = seal(keys, CTX, 0, SECRET)
    refused(lambda: open_sealed(keys, other, 0, blob))


def test_fields_do_not_run_into_each_other() -> None:
    """Length prefixes: moving characters from one field to the next is another context."""
    keys = v1_only()
    first = Context(tenant="org-1", owner="ab", secret_id="c", purpose="secret")
    shifted = Context(tenant="org-1", owner="a", secret_id="bc", purpose="secret")
    refused(lambda: open_sealed(keys, shifted, 0, seal(keys, first, 0, SECRET)))


def test_another_epoch_fails() -> None:
    keys = v1_only()
    blob = seal(keys, CTX, 4, SECRET)
    refused(lambda: open_sealed(keys, CTX, 5, blob))
    refused(lambda: open_sealed(keys, CTX, 3, blob))
    # Rewriting the header's epoch to the one the caller expects does not help either.
    forged = blob[:9] + struct.pack(">I", 5) + blob[13:]
    refused(lambda: open_sealed(keys, CTX, 5, forged))


@pytest.mark.parametrize(
    ("offset", "value"),
    [(0, b"X"), (2, b"W"), (3, b"\x02"), (3, b"\x00"), (4, b"\x02"), (4, b"\x00")],
    ids=["magic-first", "magic-last", "format-2", "format-0", "suite-2", "suite-0"],
)
def test_forged_magic_format_or_suite_fails(offset: int, value: bytes) -> None:
    keys = v1_only()
    blob = seal(keys, CTX, 0, SECRET)
    forged = blob[:offset] + value + blob[offset + 1 :]
    refused(lambda: header_info(forged))
    refused(lambda: open_sealed(keys, CTX, 0, forged))


def test_forged_master_version_fails() -> None:
    keys = v1_and_v2()
    blob = seal(keys, CTX, 0, SECRET)
    assert header_info(blob) == (2, 0)
    as_v1 = blob[:5] + struct.pack(">I", 1) + blob[9:]
    refused(lambda: open_sealed(keys, CTX, 0, as_v1))


def test_unknown_master_version_fails() -> None:
    blob = seal(v1_and_v2(), CTX, 0, SECRET)
    refused(lambda: open_sealed(v1_only(), CTX, 0, blob))
    as_v9 = blob[:5] + struct.pack(">I", 9) + blob[9:]
    refused(lambda: open_sealed(v1_and_v2(), CTX, 0, as_v9))


def test_another_master_key_under_the_same_version_fails() -> None:
    blob = seal(v1_only(), CTX, 0, SECRET)
    impostor = MasterKeys.parse(spec(v1=KEY_2))
    refused(lambda: open_sealed(impostor, CTX, 0, blob))


def test_rotation_keeps_old_rows_readable_then_rewrap_moves_and_retires_them() -> None:
    old_blob = seal(v1_only(), CTX, 0, SECRET)

    # v2 added and current: v1 rows still open, new rows go under v2.
    rotated = v1_and_v2()
    assert rotated.current == 2
    assert open_sealed(rotated, CTX, 0, old_blob) == SECRET
    assert header_info(seal(rotated, CTX, 0, SECRET)) == (2, 0)

    # The rewrap job moves the row to v2; running it again changes nothing.
    moved = rewrap(rotated, CTX, 0, old_blob)
    assert header_info(moved) == (2, 0)
    assert open_sealed(rotated, CTX, 0, moved) == SECRET
    assert rewrap(rotated, CTX, 0, moved) == moved

    # v1 retired: rewrapped rows open, rows left behind do not.
    retired = v1_and_v2(min_version=2)
    assert open_sealed(retired, CTX, 0, moved) == SECRET
    refused(lambda: open_sealed(retired, CTX, 0, old_blob))
    refused(lambda: rewrap(retired, CTX, 0, old_blob))


def test_epoch_bump_for_one_owner() -> None:
    keys = v1_and_v2()
    blob = seal(keys, CTX, 0, SECRET)
    bumped = rewrap(keys, CTX, 0, blob, new_epoch=1)
    assert header_info(bumped) == (2, 1)
    assert open_sealed(keys, CTX, 1, bumped) == SECRET
    refused(lambda: open_sealed(keys, CTX, 0, bumped))
    # A resumed job that meets a row it already moved leaves it as it is.
    assert rewrap(keys, CTX, 0, bumped, new_epoch=1) == bumped
    assert rewrap(keys, CTX, 1, bumped) == bumped
    # A row at neither the old nor the new epoch is refused.
    refused(lambda: rewrap(keys, CTX, 5, blob, new_epoch=6))


def test_rewrap_of_a_current_but_tampered_blob_fails() -> None:
    keys = v1_only()
    blob = bytearray(seal(keys, CTX, 0, SECRET))
    blob[-1] ^= 1
    refused(lambda: rewrap(keys, CTX, 0, bytes(blob)))
    refused(lambda: rewrap(keys, dataclasses.replace(CTX, owner="x"), 0, seal(keys, CTX, 0, b"")))


def test_every_failure_is_the_same_opaque_error() -> None:
    keys = v1_and_v2()
    blob = seal(keys, CTX, 0, SECRET)
    failures = [
        refused(lambda: open_sealed(keys, CTX, 0, blob[:-1])),
        refused(lambda: open_sealed(keys, CTX, 0, b"")),
        refused(lambda: open_sealed(keys, CTX, 1, blob)),
        refused(lambda: open_sealed(keys, dataclasses.replace(CTX, tenant="t"), 0, blob)),
        refused(lambda: open_sealed(v1_only(), CTX, 0, blob)),
        refused(lambda: open_sealed(keys, CTX, 0, b"XYZ" + blob[3:])),
        refused(lambda: open_sealed(keys, CTX, 0, blob[:-1] + bytes([blob[-1] ^ 1]))),
        refused(lambda: open_sealed(keys, CTX, 0, blob[:60] + bytes([blob[60] ^ 1]) + blob[61:])),
        refused(lambda: header_info(b"FFV")),
        refused(lambda: rewrap(keys, CTX, 3, blob)),
    ]
    assert {str(error) for error in failures} == {"the secret could not be opened"}
    for error in failures:
        assert error.args == ("the secret could not be opened",)
        assert error.__cause__ is None
        assert SECRET.decode() not in repr(error)


# The known-answer vector: master key v1 = 00..1f, message id = 32 x 0xa5, nonce = 12 x 0x5a.
KNOWN_CTX = Context(tenant="org-1", owner="user-7", secret_id="sec-42", purpose="secret")
KNOWN_MESSAGE_ID = b"\xa5" * 32
KNOWN_NONCE = b"\x5a" * 12
KNOWN_PLAINTEXT = b"sk-known-answer"
KNOWN_BLOB_HEX = (
    "464656"
    "01"
    "01"
    "00000001"
    "00000007"  # magic, format, suite, master version, epoch
    "a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5"  # message id
    "9964518f2431db9e02b6d3db9cbe2e28c490838fbbf778421abd10f988a9620f"  # commitment
    "5a5a5a5a5a5a5a5a5a5a5a5a"  # nonce
    "4941b66136ef461983da1bf9192248d0d0a043129becbe2d4f7881e2083031"  # ciphertext + tag
)


def test_known_answer_vector() -> None:
    keys = v1_only()
    blob = seal(
        keys, KNOWN_CTX, 7, KNOWN_PLAINTEXT, _random=fixed_random(KNOWN_MESSAGE_ID, KNOWN_NONCE)
    )
    assert blob.hex() == KNOWN_BLOB_HEX
    assert open_sealed(keys, KNOWN_CTX, 7, bytes.fromhex(KNOWN_BLOB_HEX)) == KNOWN_PLAINTEXT


def test_known_answer_vector_matches_the_documented_construction() -> None:
    """Rebuilt step by step from the layout in SECURITY.md with the primitives alone."""

    def lp(*fields: bytes) -> bytes:
        return b"".join(struct.pack(">I", len(field)) + field for field in fields)

    okm = HKDF(
        algorithm=hashes.SHA256(),
        length=64,
        salt=KNOWN_MESSAGE_ID,
        info=lp(b"secret", b"org-1", b"user-7", struct.pack(">I", 7)),
    ).derive(KEY_1)
    header = b"FFV" + bytes([1, 1]) + struct.pack(">II", 1, 7)
    header += KNOWN_MESSAGE_ID + okm[32:] + KNOWN_NONCE
    assert len(header) == HEADER_BYTES
    aad = header + lp(b"org-1", b"user-7", b"sec-42", b"secret")
    expected = header + AESGCM(okm[:32]).encrypt(KNOWN_NONCE, KNOWN_PLAINTEXT, aad)
    assert hmac.compare_digest(expected, bytes.fromhex(KNOWN_BLOB_HEX))


class TestMasterKeysParse:
    def test_defaults_current_to_the_highest_and_minimum_to_the_lowest(self) -> None:
        keys = MasterKeys.parse(f" {spec(v3=KEY_2, v1=KEY_1)} ")
        assert (keys.versions, keys.current, keys.min_version) == ((1, 3), 3, 1)

    def test_explicit_current_and_minimum(self) -> None:
        keys = MasterKeys.parse(spec(v1=KEY_1, v2=KEY_2), current=1, min_version=1)
        assert header_info(seal(keys, CTX, 0, SECRET)) == (1, 0)

    def test_unpadded_base64_is_accepted(self) -> None:
        unpadded = f"1:{base64.urlsafe_b64encode(KEY_1).decode().rstrip('=')}"
        blob = seal(MasterKeys.parse(unpadded), CTX, 0, SECRET)
        assert open_sealed(v1_only(), CTX, 0, blob) == SECRET

    def test_repr_shows_no_key_material(self) -> None:
        keys = v1_and_v2()
        assert repr(keys) == "MasterKeys(versions=[1, 2], current=2, min_version=1)"

    @pytest.mark.parametrize(
        ("bad", "complaint"),
        [
            ("", "no master key given"),
            (spec(v1=KEY_1) + ", ,", "entry 2 is empty"),
            (base64.urlsafe_b64encode(KEY_1).decode(), "lacks its 'version:' prefix"),
            (f"x:{base64.urlsafe_b64encode(KEY_1).decode()}", "the version must be an integer"),
            (f"0:{base64.urlsafe_b64encode(KEY_1).decode()}", "the version must be an integer"),
            (f"1:{base64.urlsafe_b64encode(KEY_1[:16]).decode()}", "is not 32 bytes"),
            ("1:" + "!" * 43, "is not valid urlsafe base64"),
            (f"1:{base64.b64encode(b'\xfb' * 32).decode()}", "is not valid urlsafe base64"),
            (spec(v1=KEY_1) + "," + spec(v1=KEY_2), "version 1 is given twice"),
        ],
    )
    def test_bad_specs_are_refused_without_echoing_keys(self, bad: str, complaint: str) -> None:
        with pytest.raises(ValueError, match=re.escape(complaint)) as caught:
            MasterKeys.parse(bad)
        message = str(caught.value)
        for secret_part in (base64.urlsafe_b64encode(KEY_1).decode()[:12], "!!!!"):
            assert secret_part not in message

    def test_current_and_minimum_must_make_sense(self) -> None:
        with pytest.raises(ValueError, match="current master key version 5 has no key"):
            MasterKeys.parse(spec(v1=KEY_1), current=5)
        with pytest.raises(ValueError, match="minimum version 3 must be between 1 and"):
            MasterKeys.parse(spec(v1=KEY_1, v2=KEY_2), min_version=3)
