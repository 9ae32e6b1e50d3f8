"""The card node (A2UI v0.9) on real workers: its surface is checked against the basic
catalog when the flow is validated; the card waits, durably, across a worker's kill -9; the
action it is answered with (stored as the answer's arguments) becomes its outputs."""

from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

import engine
from tests.engine.harness import Worker, enqueue, fresh_database, wait_for, wait_terminal

pytestmark = pytest.mark.durability

COMPONENTS: list[dict[str, Any]] = [
    {"id": "root", "component": "Column", "children": ["who", "note", "ok"]},
    {"id": "who", "component": "Text", "text": {"path": "/customer"}},
    {"id": "note", "component": "TextField", "label": "Note", "value": {"path": "/note"}},
    {"id": "ok_label", "component": "Text", "text": "Refund"},
    {"id": "ok", "component": "Button", "child": "ok_label", "action": {"event": {"name": "go"}}},
]


def _card_flow(components: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "schema": 1,
        "nodes": [
            {
                "id": "inp",
                "type": "input",
                "config": {"fields": [{"name": "case", "type": "json"}]},
            },
            {
                "id": "ask",
                "type": "card",
                "config": {"title": "Refund?", "surface": {"components": components}},
            },
            {"id": "out_action", "type": "output", "config": {"name": "action"}},
            {"id": "out_values", "type": "output", "config": {"name": "values"}},
        ],
        "edges": [
            {"from": "inp.case", "to": "ask.data"},
            {"from": "ask.action", "to": "out_action.value"},
            {"from": "ask.values", "to": "out_values.value"},
        ],
    }


def test_a_card_is_checked_against_the_a2ui_basic_catalog() -> None:
    assert [i for i in engine.validate_flow(_card_flow(COMPONENTS)) if i.severity == "error"] == []
    broken = [
        {"id": "root", "component": "Column", "children": ["s", "m"]},
        {"id": "s", "component": "Slider", "value": 3},  # no max
        {"id": "m", "component": "Marquee", "text": "hi"},  # not in the catalog
        {"id": "t", "component": "Text", "text": "x", "colour": "red"},
    ]
    messages = [
        i.message for i in engine.validate_flow(_card_flow(broken)) if i.code == "invalid_config"
    ]
    assert any("components/1: 'max' is a required property" in m for m in messages), messages
    assert any("components/2/component: 'Marquee' is not one of" in m for m in messages), messages
    assert any("components/3" in m and "'colour' was unexpected" in m for m in messages), messages


@pytest.fixture(scope="module")
def url() -> Iterator[str]:
    with fresh_database() as database_url:
        yield database_url


def _request(url: str, run_id: str) -> tuple[Any, ...] | None:
    with psycopg.connect(url) as conn:
        return conn.execute(
            "SELECT request, answer FROM fireflow.human_request "
            "WHERE run_id = %s AND node_id = 'ask'",
            (run_id,),
        ).fetchone()


def test_a_card_waits_across_a_restart_and_outputs_the_action_it_is_answered_with(
    url: str,
) -> None:
    worker = Worker(url, "card-restart")
    run_id = enqueue(url, _card_flow(COMPONENTS), {"case": {"customer": "Ana", "note": ""}})
    request, answer = wait_for(lambda: _request(url, run_id), 30, "the card")
    assert answer is None
    assert (request["kind"], request["title"], request["data"]) == (
        "card",
        "Refund?",
        {"customer": "Ana", "note": ""},
    )
    surface = request["surface"]
    assert (surface["version"], surface["root"], surface["surfaceId"]) == ("v0.9", "root", "ask")
    assert surface["components"] == COMPONENTS
    worker.kill9()
    worker = Worker(url, "card-restart")
    try:
        assert _request(url, run_id)[1] is None  # type: ignore[index]
        action = {"name": "go", "surfaceId": "ask", "sourceComponentId": "ok", "context": {}}
        with psycopg.connect(url) as conn, conn.cursor() as cursor:
            result = engine.answer_request(
                cursor,
                run_id=run_id,
                node_id="ask",
                outcome="approved",
                by="ana@example.com",
                arguments={"action": action, "values": {"note": "late"}},
            )
        assert result.status == "answered"
        state, output = wait_terminal(url, run_id, timeout=30)
    finally:
        worker.stop()
    assert state == "SUCCESS"
    assert output["outputs"] == {"action": action, "values": {"note": "late"}}
    events = [e for e in engine.read_events(url, run_id) if e["node"] == "ask"]
    types = [e["type"] for e in events]
    assert (types.count("HITL_REQUESTED"), types.count("HITL_RESOLVED")) == (1, 1)
    [resolved] = [e["payload"] for e in events if e["type"] == "HITL_RESOLVED"]
    assert (resolved["outcome"], resolved["action"]) == ("approved", "go")


def test_a_card_whose_components_do_not_join_up_is_refused_when_checked() -> None:
    """What the catalog's schema cannot say (ids that join up, a button to answer with,
    patterns that compile) is checked with the flow too, not found by the run."""
    dangling = [*COMPONENTS[:2], {**COMPONENTS[0], "id": "extra", "children": ["nowhere"]}]
    dangling[0] = {**COMPONENTS[0], "children": ["who"]}
    dangling.append(
        {
            "id": "code",
            "component": "TextField",
            "label": "Code",
            "validationRegexp": "([a-z]",
            "checks": [
                {
                    "condition": {
                        "call": "regex",
                        "args": {"value": {"path": "/code"}, "pattern": "*x"},
                    },
                    "message": "a code",
                }
            ],
        }
    )
    issues = [i for i in engine.validate_flow(_card_flow(dangling)) if i.node == "ask"]
    assert {i.code for i in issues} == {"invalid_config"}
    messages = [i.message for i in issues]
    assert (
        "node 'ask' (card): config surface: component 'extra' refers to 'nowhere', which "
        "is missing" in messages
    ), messages
    assert (
        "node 'ask' (card): config surface: the card has no Button with an event action, "
        "so nobody could answer it" in messages
    ), messages
    assert any(
        m.startswith(
            "node 'ask' (card): config surface/components 'code' validationRegexp: not a "
            "valid regular expression"
        )
        for m in messages
    ), messages
    assert any(
        "surface/components 'code' checks/0/condition/args/pattern: not a valid regular "
        "expression" in m
        for m in messages
    ), messages
