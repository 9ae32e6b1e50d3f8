"""Following a run live over Server-Sent Events in the AG-UI protocol: replay, then live
tokens while the model writes, reconnection without gaps or repeats, tenancy."""

import json
import time
from typing import Any

import httpx
import pytest
from ag_ui import core as ag
from pydantic import TypeAdapter

from flows.models import Flow
from tests.factories import OrgFixture, make_api_key
from tests.flows.test_flows_api import base, create_flow, wait_run

EVENTS: TypeAdapter[Any] = TypeAdapter(ag.Event)
ASK = {
    "schema": 1,
    "nodes": [
        {"id": "q", "type": "input", "config": {"fields": [{"name": "q", "type": "text"}]}},
        {"id": "llm", "type": "llm_chat", "config": {"provider": "fake", "model": "fake-echo"}},
        {"id": "answer", "type": "output", "config": {"name": "answer"}},
    ],
    "edges": [{"from": "q.q", "to": "llm.prompt"}, {"from": "llm.text", "to": "answer.value"}],
}


def read_sse(response: httpx.Response) -> list[tuple[int | None, Any, float]]:
    """(id, parsed AG-UI event, arrival time) for every event of an SSE response."""
    received: list[tuple[int | None, Any, float]] = []
    event_id: int | None = None
    for line in response.iter_lines():
        if line.startswith("id: "):
            event_id = int(line[4:])
        elif line.startswith("data: "):
            received.append(
                (event_id, EVENTS.validate_python(json.loads(line[6:])), time.monotonic())
            )
            event_id = None
    return received


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("engine_worker")
def test_tokens_arrive_live_and_a_reconnect_misses_nothing(
    web_server: str, fake_llm: Any, org: OrgFixture, other_org: OrgFixture, client_for: Any
) -> None:
    _key, raw = make_api_key(org.owner, org.org, role="owner", name="live")
    headers = {"Authorization": f"Bearer {raw}"}
    client = client_for(org.owner)
    flow_id = create_flow(client, org, ASK)
    prompt = " ".join(f"w{i}" for i in range(50))
    fake_llm.tokens_per_s = 25  # about two seconds of writing
    try:
        run = client.post(
            f"{base(org)}/flows/{flow_id}/runs",
            {"inputs": {"q": prompt}},
            content_type="application/json",
        ).json()
        url = f"{web_server}{base(org)}/runs/{run['id']}/stream"
        with httpx.stream("GET", url, headers=headers, timeout=30) as response:
            assert response.status_code == 200
            assert response.headers["content-type"].startswith("text/event-stream")
            received = read_sse(response)
    finally:
        fake_llm.tokens_per_s = None
    types = [e.type.value for _, e, _ in received]
    assert types[0] == "RUN_STARTED"
    assert types[-1] == "RUN_FINISHED"
    assert types.index("TEXT_MESSAGE_START") < types.index("TEXT_MESSAGE_CONTENT")
    assert types.index("TEXT_MESSAGE_END") < types.index("RUN_FINISHED")
    contents = [(e.delta, at) for _, e, at in received if e.type.value == "TEXT_MESSAGE_CONTENT"]
    done = wait_run(client, org, run["id"])
    assert "".join(delta for delta, _ in contents) == done["outputs"]["answer"]
    assert contents[-1][1] - contents[0][1] > 0.5, "tokens came in one lump, not live"
    ids = [i for i, _, _ in received if i is not None]
    assert ids == sorted(ids)
    assert ids[-1] == len(client.get(f"{base(org)}/runs/{run['id']}/events").json())

    # Reconnect from the middle: exactly what came after, nothing twice.
    middle = ids[len(ids) // 2]
    with httpx.stream(
        "GET", url, headers={**headers, "Last-Event-ID": str(middle)}, timeout=30
    ) as again:
        replay = read_sse(again)
    assert [i for i, _, _ in replay if i is not None] == [i for i in ids if i > middle]

    # Another organisation's owner learns nothing.
    _, foreign = make_api_key(other_org.owner, other_org.org, role="owner", name="x")
    refused = httpx.get(url, headers={"Authorization": f"Bearer {foreign}"}, timeout=10)
    assert refused.status_code == 404
    assert Flow.objects.filter(id=flow_id).exists()


def _sse_lines(response: httpx.Response, received: list[tuple[int | None, Any]]) -> Any:
    """Parse an SSE response into `received` as it arrives; yields after each event."""
    event_id: int | None = None
    for line in response.iter_lines():
        if line.startswith("id: "):
            event_id = int(line[4:])
        elif line.startswith("data: "):
            received.append((event_id, EVENTS.validate_python(json.loads(line[6:]))))
            event_id = None
            yield


@pytest.mark.django_db(transaction=True)
def test_a_worker_killed_mid_stream_costs_the_browser_no_gap_and_no_duplicate(
    session_worker_paused: str, web_server: str, fake_llm: Any, org: OrgFixture, client_for: Any
) -> None:
    """SECURITY.md durable item 7: the worker dies while the model writes; the browser
    reconnects with the last id it saw and gets the rest, each event once; the text of the
    node's new attempt is the run's answer and the earlier partial text is marked superseded."""
    from tests.engine.harness import Worker

    _key, raw = make_api_key(org.owner, org.org, role="owner", name="live-kill")
    client = client_for(org.owner)
    flow_id = create_flow(client, org, ASK)
    prompt = " ".join(f"w{i}" for i in range(60))
    worker = Worker(session_worker_paused, f"live-kill-{org.org.slug}", platform=True)
    fake_llm.tokens_per_s = 25
    first: list[tuple[int | None, Any]] = []
    rest: list[tuple[int | None, Any]] = []
    try:
        run = client.post(
            f"{base(org)}/flows/{flow_id}/runs",
            {"inputs": {"q": prompt}},
            content_type="application/json",
        ).json()
        url = f"{web_server}{base(org)}/runs/{run['id']}/stream"
        headers = {"Authorization": f"Bearer {raw}"}
        with httpx.stream("GET", url, headers=headers, timeout=30) as response:
            for _ in _sse_lines(response, first):
                if sum(e.type.value == "TEXT_MESSAGE_CONTENT" for _, e in first) >= 5:
                    break  # the browser's connection drops here
        worker.kill9()
        worker = Worker(session_worker_paused, f"live-kill-{org.org.slug}", platform=True)
        last_seen = max(i for i, _ in first if i is not None)
        with httpx.stream(
            "GET", url, headers={**headers, "Last-Event-ID": str(last_seen)}, timeout=60
        ) as response:
            for _ in _sse_lines(response, rest):
                pass
        done = wait_run(client, org, run["id"], timeout=60)
    finally:
        fake_llm.tokens_per_s = None
        worker.stop()
    assert done["status"] == "completed", done
    ids = [i for i, _ in first + rest if i is not None]
    assert ids == sorted(ids), "out of order"
    assert min(i for i, _ in rest if i is not None) == last_seen + 1, "a gap at the reconnect"
    assert sorted(set(ids)) == list(range(1, ids[-1] + 1)), "a gap"
    stored = client.get(f"{base(org)}/runs/{run['id']}/events?limit=1000").json()
    assert ids[-1] == len(stored)
    events = [e for _, e in first + rest]
    restarted = [e for e in events if e.type.value == "CUSTOM" and e.name == "NODE_RESTARTED"]
    assert [e.value["attempt"] for e in restarted] == [2]
    texts: dict[str, str] = {}
    for e in events:
        if e.type.value == "TEXT_MESSAGE_CONTENT":
            texts[e.message_id] = texts.get(e.message_id, "") + e.delta
    assert texts[f"{run['id']}:llm:2"] == done["outputs"]["answer"]
    partial = texts[f"{run['id']}:llm"]
    assert partial
    assert done["outputs"]["answer"].startswith(partial)
    ends = [e.message_id for e in events if e.type.value == "TEXT_MESSAGE_END"]
    assert ends == [f"{run['id']}:llm", f"{run['id']}:llm:2"], "each message ends once"
