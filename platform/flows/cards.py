"""A person's answer to an interactive card (the card node, engine/nodes/_card.py): an A2UI
user action, checked against the card before anything is stored.

The answer names the action (a Button's `action.event.name` on the card) and gives the
values of the card's input components by component id. Each value must fit its component
(TextField: text, numeric for the `number` variant, its `validationRegexp`; CheckBox: a
boolean; ChoicePicker: values among its options, at most one when mutually exclusive;
DateTimeInput: an ISO 8601 date, time or date-time as the component allows, within min and
max; Slider: a number within min and max) and its checks (`required`, `length`, `numeric`,
`regex`, `email` on its own value); values for anything else are refused. An input left out
keeps the value the card showed. The action's context is then resolved here, from the
Button's `action.event.context` over the data model with the values written at the paths
the inputs bind to, as an A2UI renderer would resolve it."""

import copy
import math
import re
from collections.abc import Callable
from datetime import date, datetime, time
from typing import Any

import regex

from fireflow.errors import InvalidInput

_MAX_TEXT = 20_000
_MATCH_SECONDS = 0.1  # the most one pattern may take on one value
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def card_answer(request: dict[str, Any], name: str, values: dict[str, Any]) -> dict[str, Any]:
    """The stored answer for `request` (kind card): {action, values}; InvalidInput (422)
    with `action.name` or `values.<component id>` at fault otherwise."""
    surface = request.get("surface") or {}
    components = [c for c in surface.get("components") or [] if isinstance(c, dict)]
    raw_data = request.get("data")
    data: dict[str, Any] = raw_data if isinstance(raw_data, dict) else {}
    buttons = [
        c
        for c in components
        if c.get("component") == "Button" and "event" in (c.get("action") or {})
    ]
    button = next((b for b in buttons if b["action"]["event"].get("name") == name), None)
    fields: dict[str, str] = {}
    if button is None:
        offered = ", ".join(sorted({str(b["action"]["event"].get("name")) for b in buttons}))
        fields["action.name"] = f"the card has no button with this action; it offers: {offered}"
    inputs = {c["id"]: c for c in components if c.get("component") in _RULES}
    for key in sorted(set(values) - set(inputs)):
        fields[f"values.{key}"] = "the card has no input component with this id"
    model = copy.deepcopy(data)
    resolved: dict[str, Any] = {}
    for component_id, component in inputs.items():
        given = component_id in values
        value = values[component_id] if given else _resolve(component.get("value"), data)
        problem = _RULES[component["component"]](component, value) if given else None
        problem = problem or _check_problem(component, value, data)
        if problem:
            fields[f"values.{component_id}"] = problem
            continue
        resolved[component_id] = value
        binding = component.get("value")
        if isinstance(binding, dict) and isinstance(binding.get("path"), str):
            _write(model, binding["path"], value)
    if fields:
        raise InvalidInput(
            f"The answer does not fit the card '{request.get('title', '')}': nothing was "
            "stored; correct it and answer again.",
            code="invalid_card_answer",
            fields=fields,
        )
    assert button is not None
    event = button["action"]["event"]
    context = {key: _resolve(raw, model) for key, raw in (event.get("context") or {}).items()}
    return {
        "action": {
            "name": name,
            "surfaceId": surface.get("surfaceId", ""),
            "sourceComponentId": button["id"],
            "context": context,
        },
        "values": resolved,
    }


def _text_field(component: dict[str, Any], value: Any) -> str | None:
    if not isinstance(value, str):
        return "expected text"
    if len(value) > _MAX_TEXT:
        return f"at most {_MAX_TEXT} characters"
    if component.get("variant") == "number" and value.strip():
        try:
            if not math.isfinite(float(value)):
                raise ValueError(value)
        except ValueError:
            return "expected a number"
    pattern = component.get("validationRegexp")
    if isinstance(pattern, str) and value:
        return _mismatch(pattern, value, f"does not match the pattern {pattern}")
    return None


def _mismatch(pattern: str, value: str, message: str) -> str | None:
    """`message` when `value` does not match `pattern` (written by the flow's editor, run on
    what an approver typed): with a time limit, so that a pattern that backtracks without end
    refuses the value instead of holding the request. A pattern this side cannot read is
    left to the renderer's own check (flows are checked for those when saved)."""
    try:
        found = regex.search(pattern, value, timeout=_MATCH_SECONDS)
    except regex.error:
        return None
    except TimeoutError:
        return f"could not be checked against the pattern {pattern} in time: shorten it"
    return message if found is None else None


def _check_box(component: dict[str, Any], value: Any) -> str | None:
    return None if isinstance(value, bool) else "expected true or false"


def _choice_picker(component: dict[str, Any], value: Any) -> str | None:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        return "expected a list of option values"
    options = {str(o.get("value")) for o in component.get("options") or [] if isinstance(o, dict)}
    unknown = [v for v in value if v not in options]
    if unknown:
        return f"not an option: {', '.join(unknown)} (options: {', '.join(sorted(options))})"
    if component.get("variant", "mutuallyExclusive") == "mutuallyExclusive" and len(value) > 1:
        return "choose at most one option"
    return None


def _date_time(component: dict[str, Any], value: Any) -> str | None:
    if not isinstance(value, str):
        return "expected an ISO 8601 date or time"
    if not value:
        return None
    with_date, with_time = bool(component.get("enableDate")), bool(component.get("enableTime"))
    parsed = _parse_moment(value, with_date, with_time)
    if parsed is None:
        wanted = (
            "date-time (YYYY-MM-DDTHH:MM)"
            if with_date and with_time
            else "date (YYYY-MM-DD)"
            if with_date
            else "time (HH:MM)"
            if with_time
            else "date, time or date-time"
        )
        return f"expected an ISO 8601 {wanted}"
    for bound, compare in (("min", lambda a, b: a < b), ("max", lambda a, b: a > b)):
        limit = component.get(bound)
        if isinstance(limit, str):
            other = _parse_moment(limit, with_date, with_time)
            if other is not None and type(other) is type(parsed):
                try:
                    if compare(parsed, other):
                        return f"must not be {'before' if bound == 'min' else 'after'} {limit}"
                except TypeError:  # naive against aware date-times: left to the renderer
                    pass
    return None


def _parse_moment(value: str, with_date: bool, with_time: bool) -> date | time | None:
    kinds: list[Callable[[str], date | time]] = (
        [datetime.fromisoformat]
        if with_date and with_time
        else [date.fromisoformat]
        if with_date
        else [time.fromisoformat]
        if with_time
        else [datetime.fromisoformat, date.fromisoformat, time.fromisoformat]
    )
    for parse in kinds:
        try:
            moment: date | time = parse(value)
        except ValueError:
            continue
        if parse is datetime.fromisoformat and "T" not in value.upper() and " " not in value:
            continue  # a bare date is not a date-time
        return moment
    return None


def _slider(component: dict[str, Any], value: Any) -> str | None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return "expected a number"
    low, high = component.get("min", 0), component.get("max")
    if isinstance(low, int | float) and value < low:
        return f"must be at least {low}"
    if isinstance(high, int | float) and value > high:
        return f"must be at most {high}"
    return None


_RULES = {
    "TextField": _text_field,
    "CheckBox": _check_box,
    "ChoicePicker": _choice_picker,
    "DateTimeInput": _date_time,
    "Slider": _slider,
}


def _check_problem(component: dict[str, Any], value: Any, data: Any) -> str | None:
    """The first of the component's A2UI checks on its own value that fails (basic catalog
    functions `required`, `length`, `numeric`, `regex`, `email`; others are the renderer's)."""
    own = component.get("value")
    for check in component.get("checks") or []:
        condition = check.get("condition") if isinstance(check, dict) else None
        if not isinstance(condition, dict) or not isinstance(condition.get("args"), dict):
            continue
        args = condition["args"]
        if "value" in args and args["value"] != own:
            continue  # a check on another value: the renderer's to evaluate
        message = str(check.get("message") or "invalid")
        if _fails(str(condition.get("call")), args, value):
            return message
    return None


def _fails(call: str, args: dict[str, Any], value: Any) -> bool:  # noqa: PLR0911 (one per check)
    if call == "required":
        return value in (None, "", [], False)
    if value in (None, ""):
        return False  # only `required` asks for a value
    if call == "length" and isinstance(value, str | list):
        return not args.get("min", 0) <= len(value) <= args.get("max", math.inf)
    if call == "numeric":
        number = _number(value)
        return number is None or not args.get("min", -math.inf) <= number <= args.get(
            "max", math.inf
        )
    if call == "regex" and isinstance(value, str) and isinstance(args.get("pattern"), str):
        return _mismatch(args["pattern"], value, "mismatch") is not None
    if call == "email":
        return not isinstance(value, str) or not _EMAIL.match(value)
    return False


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _pointer(path: str) -> list[str]:
    return [
        part.replace("~1", "/").replace("~0", "~") for part in path.strip("/").split("/") if part
    ]


def _resolve(raw: Any, model: Any) -> Any:
    """A DynamicValue: a literal as it is, a `{path}` binding read from the data model."""
    if not isinstance(raw, dict):
        return raw
    if not isinstance(raw.get("path"), str):
        return None  # a function call: evaluated by the renderer, not here
    node = model
    for part in _pointer(raw["path"]):
        if isinstance(node, dict):
            node = node.get(part)
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            return None
    return node


def _write(model: dict[str, Any], path: str, value: Any) -> None:
    parts = _pointer(path)
    if not parts:
        return
    node: Any = model
    for part in parts[:-1]:
        if isinstance(node, dict):
            node = node.setdefault(part, {})
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            return
    if isinstance(node, dict):
        node[parts[-1]] = value
    elif isinstance(node, list) and parts[-1].isdigit() and int(parts[-1]) < len(node):
        node[int(parts[-1])] = value
