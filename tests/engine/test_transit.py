"""Secrets in transit to a run open only in that run, for that node, secret, owner, caller."""

import dataclasses
import pickle

import pytest

from engine import RunKeyPair, TransitBinding, TransitError, open_for_run, seal_for_run

BINDING = TransitBinding(
    run_id="run-1", node_id="llm-1", secret_id="sec-1", owner="user-1", caller="user-2"
)
SECRET = b"sk-transit-canary"


@pytest.fixture
def pair() -> RunKeyPair:
    return RunKeyPair.generate()


def test_round_trip(pair: RunKeyPair) -> None:
    blob = seal_for_run(pair.public_bytes(), BINDING, SECRET)
    assert SECRET not in blob
    assert open_for_run(pair, BINDING, blob) == SECRET
    assert seal_for_run(pair.public_bytes(), BINDING, SECRET) != blob  # fresh every time


def test_public_key_is_32_raw_bytes(pair: RunKeyPair) -> None:
    assert len(pair.public_bytes()) == 32
    assert pair.public_bytes() != RunKeyPair.generate().public_bytes()


@pytest.mark.parametrize("field", ["run_id", "node_id", "secret_id", "owner", "caller"])
def test_another_binding_fails(pair: RunKeyPair, field: str) -> None:
    blob = seal_for_run(pair.public_bytes(), BINDING, SECRET)
    other = dataclasses.replace(BINDING, **{field: getattr(BINDING, field) + "x"})
    with pytest.raises(TransitError):
        open_for_run(pair, other, blob)


def test_fields_do_not_run_into_each_other(pair: RunKeyPair) -> None:
    blob = seal_for_run(pair.public_bytes(), BINDING, SECRET)
    shifted = dataclasses.replace(BINDING, run_id="run-1l", node_id="lm-1")
    with pytest.raises(TransitError):
        open_for_run(pair, shifted, blob)


def test_another_key_pair_fails(pair: RunKeyPair) -> None:
    blob = seal_for_run(pair.public_bytes(), BINDING, SECRET)
    with pytest.raises(TransitError):
        open_for_run(RunKeyPair.generate(), BINDING, blob)


def test_every_single_bit_flip_and_truncation_fails(pair: RunKeyPair) -> None:
    blob = seal_for_run(pair.public_bytes(), BINDING, SECRET)
    for bit in range(len(blob) * 8):
        flipped = bytearray(blob)
        flipped[bit // 8] ^= 1 << (bit % 8)
        with pytest.raises(TransitError):
            open_for_run(pair, BINDING, bytes(flipped))
    for length in range(len(blob)):
        with pytest.raises(TransitError):
            open_for_run(pair, BINDING, blob[:length])


def test_all_failures_are_one_opaque_error(pair: RunKeyPair) -> None:
    blob = seal_for_run(pair.public_bytes(), BINDING, SECRET)
    messages = set()
    for attempt in (
        lambda: open_for_run(RunKeyPair.generate(), BINDING, blob),
        lambda: open_for_run(pair, dataclasses.replace(BINDING, caller="user-3"), blob),
        lambda: open_for_run(pair, BINDING, blob[:-1]),
        lambda: open_for_run(pair, BINDING, b""),
        lambda: seal_for_run(b"\x00" * 31, BINDING, SECRET),
    ):
        with pytest.raises(TransitError) as caught:
            attempt()
        assert caught.value.__cause__ is None
        messages.add(str(caught.value))
    assert messages == {"the secret could not be opened for this run"}


def test_the_private_key_cannot_leave_the_process(pair: RunKeyPair) -> None:
    with pytest.raises(TypeError, match="stays in the memory"):
        pickle.dumps(pair)
    assert pair.public_bytes().hex() in repr(pair)


def test_binding_fields_must_be_given() -> None:
    with pytest.raises(ValueError, match=r"TransitBinding\.caller"):
        dataclasses.replace(BINDING, caller="")
