"""The WebSocket twin of the SSE run stream: the same AG-UI events as JSON messages
`{"id": seq, "event": {...}}`, for the console. Cross-origin handshakes are refused (the
origin validator in asgi.py); the socket is opened only for people who may view the run's
workspace, and otherwise refused like any missing object. While it is open, the session is
checked again every few seconds: a logout, a password change, an ended membership or a
lost workspace role closes the socket (code 4401)."""

import asyncio
import contextlib
import json
from typing import Any
from urllib.parse import parse_qs

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from django.contrib.auth import HASH_SESSION_KEY, SESSION_KEY
from django.utils.crypto import constant_time_compare

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


def _session_valid(scope: dict[str, Any]) -> bool:
    """The socket's session still exists and still belongs to its user as they are now (a
    password change ends every other session, as Django's own middleware decides)."""
    session, user = scope.get("session"), scope.get("user")
    if session is None or user is None or not user.is_authenticated or not session.session_key:
        return False
    from importlib import import_module

    from django.conf import settings

    store = import_module(settings.SESSION_ENGINE).SessionStore(session.session_key)
    data = store.load()
    if str(data.get(SESSION_KEY)) != str(user.pk):
        return False
    user.refresh_from_db()
    if not user.is_active:
        return False
    return constant_time_compare(data.get(HASH_SESSION_KEY, ""), user.get_session_auth_hash())


# How often an open socket checks its session and the user's access again.
RECHECK_SECONDS = 5.0
REVOKED = 4401


class RunStreamConsumer(AsyncWebsocketConsumer):
    async def connect(self) -> None:
        route = self.scope["url_route"]["kwargs"]
        self.run_id = str(route["run_id"])
        self.route = (route["org_slug"], str(route["ws_id"]), self.run_id)
        allowed = await database_sync_to_async(_authorise)(self.scope.get("user"), *self.route)
        if not allowed:
            await self.close(code=4404)  # before accept: the handshake is refused
            return
        query = parse_qs(self.scope.get("query_string", b"").decode())
        after = query.get("after", ["0"])[0]
        await self.accept()
        self.watch = asyncio.create_task(self._watch_session())
        self.relay = asyncio.create_task(self._relay(int(after) if after.isdigit() else 0))

    async def _relay(self, after: int) -> None:
        async for seq, event in live.events(self.run_id, after):
            if event is None:
                continue  # WebSocket pings keep the connection; no keep-alive text needed
            body = event.model_dump(mode="json", by_alias=True, exclude_none=True)
            await self.send(text_data=json.dumps({"id": seq, "event": body}))
        self.watch.cancel()
        await self.close(code=1000)

    def _still_allowed(self) -> bool:
        return _session_valid(self.scope) and _authorise(self.scope.get("user"), *self.route)

    async def _watch_session(self) -> None:
        while True:
            await asyncio.sleep(RECHECK_SECONDS)
            if not await database_sync_to_async(self._still_allowed)():
                self.relay.cancel()
                await self.close(code=REVOKED)
                return

    async def disconnect(self, code: int) -> None:
        for task in (getattr(self, "relay", None), getattr(self, "watch", None)):
            if task is not None and not task.done():
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
