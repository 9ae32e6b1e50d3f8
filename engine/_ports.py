"""Port types and the rules for which output may feed which input."""

from collections.abc import Callable
from enum import StrEnum


class PortType(StrEnum):
    TEXT = "text"
    NUMBER = "number"
    BOOLEAN = "boolean"
    JSON = "json"
    LIST = "list"
    MESSAGES = "messages"
    STREAM = "stream"
    FILE = "file"
    SECRET_REF = "secret_ref"
    # Only where a node declares it: accepts (or produces) any plain value.
    ANY = "any"


P = PortType

# source type -> the input types it may connect to (besides its own).
# A stream reaching a text (or any) input is collected first: that input waits for the whole
# text, while a stream input reads it as it is written; numbers and booleans become text.
# A secret reference never flows anywhere but into a secret-reference input.
_COMPATIBLE: dict[PortType, frozenset[PortType]] = {
    P.TEXT: frozenset({P.TEXT, P.JSON, P.ANY}),
    P.NUMBER: frozenset({P.NUMBER, P.TEXT, P.JSON, P.ANY}),
    P.BOOLEAN: frozenset({P.BOOLEAN, P.TEXT, P.JSON, P.ANY}),
    P.JSON: frozenset({P.JSON, P.ANY}),
    P.LIST: frozenset({P.LIST, P.JSON, P.ANY}),
    P.MESSAGES: frozenset({P.MESSAGES, P.JSON, P.ANY}),
    P.STREAM: frozenset({P.STREAM, P.TEXT, P.ANY}),
    P.FILE: frozenset({P.FILE, P.ANY}),
    P.SECRET_REF: frozenset({P.SECRET_REF}),
    # An `any` output is checked against the input's type when the value arrives.
    P.ANY: frozenset({P.ANY, P.JSON, P.TEXT, P.NUMBER, P.BOOLEAN, P.LIST, P.MESSAGES}),
}


def can_connect(source: PortType, target: PortType) -> bool:
    """True when an output of type `source` may feed an input of type `target`."""
    return target in _COMPATIBLE[source]


def accepted_sources(target: PortType) -> list[PortType]:
    """The output types an input of type `target` accepts (for error messages and the UI)."""
    return [source for source in PortType if can_connect(source, target)]


def compatibility_table() -> dict[str, list[str]]:
    """The whole rule set, as served to the builder so it mirrors the server."""
    return {
        source.value: sorted(t.value for t in targets) for source, targets in _COMPATIBLE.items()
    }


_JSON_NAMES = {
    str: "text",
    bool: "boolean",
    int: "number",
    float: "number",
    list: "list",
    dict: "object",
    type(None): "null",
}


def describe(value: object) -> str:
    return _JSON_NAMES.get(type(value), type(value).__name__)


def is_stream_ref(value: object) -> bool:
    """A stream reference: `{"$stream": {"run": ..., "key": ...}}`."""
    ref = value.get("$stream") if isinstance(value, dict) else None
    return (
        isinstance(ref, dict)
        and isinstance(ref.get("run"), str)
        and isinstance(ref.get("key"), str)
    )


_CHECKS: dict[PortType, Callable[[object], bool]] = {
    # A stream passed on as a value (a parent run's stream, given to its child as an input)
    PortType.STREAM: is_stream_ref,
    PortType.NUMBER: lambda v: isinstance(v, int | float) and not isinstance(v, bool),
    PortType.BOOLEAN: lambda v: isinstance(v, bool),
    PortType.LIST: lambda v: isinstance(v, list),
    PortType.MESSAGES: lambda v: isinstance(v, list),
}


def conform(value: object, target: PortType) -> object:
    """The value an input of type `target` receives, or TypeError saying what was wrong.
    Numbers and booleans become text where text is expected; otherwise types must match
    (json, any, file and secret-ref inputs take what their edges allow; a stream input given
    as a value takes a stream reference)."""
    if target is PortType.TEXT:
        if isinstance(value, bool):
            return str(value).lower()
        if isinstance(value, str | int | float):
            return str(value)
    else:
        check = _CHECKS.get(target)
        if check is None or check(value):
            return value
    raise TypeError(f"expected {target.value}, got {describe(value)}")
