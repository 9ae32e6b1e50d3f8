"""The WebSocket run stream: the same AG-UI events as the SSE stream, same-origin only, and
only for people who may see the run."""

import asyncio
import json
from typing import Any

import pytest
from channels.testing import WebsocketCommunicator

from tests.factories import OrgFixture
from tests.flows.test_flows_api import base, create_flow, wait_run
from tests.flows.test_live_stream import ASK, EVENTS


async def _listen(path: str, cookie: str, origin: str) -> tuple[bool, list[dict[str, Any]]]:
    from fireflow.asgi import application

    communicator = WebsocketCommunicator(
        application,
        path,
        headers=[(b"cookie", f"sessionid={cookie}".encode()), (b"origin", origin.encode())],
    )
    connected, _ = await communicator.connect(timeout=10)
    messages: list[dict[str, Any]] = []
    while connected:
        output = await communicator.receive_output(timeout=10)
        if output["type"] == "websocket.close":
            break
        messages.append(json.loads(output["text"]))
    await communicator.disconnect()
    return connected, messages


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("engine_worker")
def test_websocket_replays_the_run_in_ag_ui_and_refuses_strangers(
    org: OrgFixture, other_org: OrgFixture, client_for: Any
) -> None:
    client = client_for(org.owner)
    flow_id = create_flow(client, org, ASK)
    run = client.post(
        f"{base(org)}/flows/{flow_id}/runs",
        {"inputs": {"q": "hello there"}},
        content_type="application/json",
    ).json()
    done = wait_run(client, org, run["id"])
    path = f"/ws/orgs/{org.org.slug}/workspaces/{org.workspace.id}/runs/{run['id']}/?after=0"
    cookie = client.cookies["sessionid"].value

    connected, messages = asyncio.run(_listen(path, cookie, "http://testserver"))
    assert connected
    events = [EVENTS.validate_python(m["event"]) for m in messages]
    types = [e.type.value for e in events]
    assert (types[0], types[-1]) == ("RUN_STARTED", "RUN_FINISHED")
    text = "".join(e.delta for e in events if e.type.value == "TEXT_MESSAGE_CONTENT")
    assert text == done["outputs"]["answer"]
    ids = [m["id"] for m in messages]
    assert ids == sorted(ids)
    assert ids[-1] == len(client.get(f"{base(org)}/runs/{run['id']}/events").json())

    cross_origin, _ = asyncio.run(_listen(path, cookie, "http://evil.example"))
    assert not cross_origin
    stranger = client_for(other_org.owner).cookies["sessionid"].value
    refused, nothing = asyncio.run(_listen(path, stranger, "http://testserver"))
    assert (refused, nothing) == (False, [])
