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


WAIT = {
    "schema": 1,
    "nodes": [
        {"id": "q", "type": "input", "config": {"fields": [{"name": "q", "type": "text"}]}},
        {"id": "wait", "type": "delay", "config": {"seconds": 60}},
        {"id": "out", "type": "output", "config": {"name": "q"}},
    ],
    "edges": [{"from": "q.q", "to": "wait.value"}, {"from": "wait.value", "to": "out.value"}],
}


async def _until_closed(path: str, cookie: str, revoke: Any) -> tuple[int | None, float]:
    """Open the socket, revoke once the replay has arrived, and time how long the socket
    stays open after that."""
    from asgiref.sync import sync_to_async

    from fireflow.asgi import application

    communicator = WebsocketCommunicator(
        application,
        path,
        headers=[(b"cookie", f"sessionid={cookie}".encode()), (b"origin", b"http://testserver")],
    )
    connected, _ = await communicator.connect(timeout=10)
    assert connected
    first = await communicator.receive_output(timeout=10)
    assert first["type"] == "websocket.send"  # the replay began: the socket is live
    await sync_to_async(revoke)()
    revoked_at = asyncio.get_running_loop().time()
    while True:
        output = await communicator.receive_output(timeout=10)
        if output["type"] == "websocket.close":
            await communicator.disconnect()
            return output.get("code"), asyncio.get_running_loop().time() - revoked_at


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("engine_worker")
@pytest.mark.parametrize("how", ["logout", "password_change", "removed_from_org"])
def test_a_revoked_session_closes_its_socket(
    org: OrgFixture, client_for: Any, monkeypatch: pytest.MonkeyPatch, how: str
) -> None:
    from flows import consumers
    from tenants.models import Membership

    monkeypatch.setattr(consumers, "RECHECK_SECONDS", 0.3)
    owner = client_for(org.owner)
    flow_id = create_flow(owner, org, WAIT)
    member = org.add_member("member")
    from tenants.roles import WorkspaceRole

    org.grant(member, WorkspaceRole.VIEWER)
    viewer = client_for(member)
    run = owner.post(
        f"{base(org)}/flows/{flow_id}/runs",
        {"inputs": {"q": "hi"}},
        content_type="application/json",
    ).json()
    path = f"/ws/orgs/{org.org.slug}/workspaces/{org.workspace.id}/runs/{run['id']}/?after=0"
    cookie = viewer.cookies["sessionid"].value

    def revoke() -> None:
        if how == "logout":
            viewer.post("/api/auth/logout")
        elif how == "password_change":
            member.set_password("an entirely new passphrase 42")
            member.save()
        else:
            Membership.objects.filter(org=org.org, user=member).delete()

    try:
        code, seconds = asyncio.run(_until_closed(path, cookie, revoke))
    finally:
        owner.post(f"{base(org)}/runs/{run['id']}/cancel")
    assert code == consumers.REVOKED
    assert seconds < 5
