"""The WebSocket twin of the SSE run stream: the same AG-UI events as JSON messages
`{"id": seq, "event": {...}}`, for the console. Cross-origin handshakes are refused (the
origin validator in asgi.py); the socket is opened only for people who may view the run's
workspace, and otherwise refused like any missing object."""

import json
from typing import Any
from urllib.parse import parse_qs

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer

from fireflow.errors import NotFound
from tenants.access import access_workspace, resolve_org
from tenants.context import Actor

from . import live, selectors


def _authorise(user: Any, org_slug: str, ws_id: str, run_id: str) -> bool:
    if user is None or not user.is_authenticated:
        return False
    try:
        ctx = resolve_org(Actor(user=user), org_slug)
        wctx = access_workspace(ctx, ws_id)
        selectors.run_get_row(wctx=wctx, run_id=run_id)  # type: ignore[arg-type]
    except (NotFound, ValueError):
        return False
    return True


class RunStreamConsumer(AsyncWebsocketConsumer):
    async def connect(self) -> None:
        route = self.scope["url_route"]["kwargs"]
        self.run_id = str(route["run_id"])
        allowed = await database_sync_to_async(_authorise)(
            self.scope.get("user"), route["org_slug"], str(route["ws_id"]), self.run_id
        )
        if not allowed:
            await self.close(code=4404)  # before accept: the handshake is refused
            return
        query = parse_qs(self.scope.get("query_string", b"").decode())
        after = query.get("after", ["0"])[0]
        await self.accept()
        async for seq, event in live.events(self.run_id, int(after) if after.isdigit() else 0):
            if event is None:
                continue  # WebSocket pings keep the connection; no keep-alive text needed
            body = event.model_dump(mode="json", by_alias=True, exclude_none=True)
            await self.send(text_data=json.dumps({"id": seq, "event": body}))
        await self.close(code=1000)
