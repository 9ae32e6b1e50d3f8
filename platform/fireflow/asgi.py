"""ASGI entry point, served by daphne: HTTP, and WebSockets for live runs (same-origin
only, with the browser's session)."""

import gc
import os

from channels.auth import AuthMiddlewareStack
from channels.routing import ProtocolTypeRouter, URLRouter
from channels.security.websocket import AllowedHostsOriginValidator
from django.core.asgi import get_asgi_application
from django.urls import path

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "fireflow.settings")

django_asgi_app = get_asgi_application()

from flows.consumers import RunStreamConsumer  # noqa: E402 (needs the apps loaded)

websocket_urls = [
    path(
        "ws/orgs/<slug:org_slug>/workspaces/<uuid:ws_id>/runs/<uuid:run_id>/",
        RunStreamConsumer.as_asgi(),
    ),
]

application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        "websocket": AllowedHostsOriginValidator(AuthMiddlewareStack(URLRouter(websocket_urls))),
    }
)

# What is loaded by now (Django, the apps, their libraries: some 330,000 objects) lives as
# long as the process: left out of the garbage collector's generations, a full collection
# is a short pause instead of one of ~0.1 s on the way of a request.
gc.freeze()
