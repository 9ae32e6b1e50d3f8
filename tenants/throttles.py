"""Rate limits per client address for the endpoints anyone can call (sign-up, login,
password reset). Rates come from settings.RATE_LIMITS at request time; the counters live in
the shared cache, so they hold across web processes."""

import threading
import time

from django.conf import settings
from django.http import HttpRequest
from ninja.throttling import SimpleRateThrottle

from fireflow.middleware import client_ip


class ClientRateThrottle(SimpleRateThrottle):
    """ninja's sliding-window throttle, without per-request state on the shared instance
    (ninja keeps one instance per operation and views run on many threads)."""

    def __init__(self, scope: str) -> None:
        self.scope: str = scope
        self._local = threading.local()

    def get_cache_key(self, request: HttpRequest) -> str | None:
        ident = client_ip(request)
        return self.cache_format % {"scope": self.scope, "ident": ident} if ident else None

    def allow_request(self, request: HttpRequest) -> bool:
        num_requests, duration = self.parse_rate(settings.RATE_LIMITS[str(self.scope)])
        key = self.get_cache_key(request)
        if key is None or num_requests is None or duration is None:
            return True
        now = time.time()
        history = [t for t in self.cache.get(key, []) if t > now - duration]
        if len(history) >= num_requests:
            self._local.wait = duration - (now - history[-1])
            return False
        self.cache.set(key, [now, *history], duration)
        return True

    def wait(self) -> float | None:
        return getattr(self._local, "wait", None)
