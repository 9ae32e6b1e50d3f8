"""A fake Stripe: a real HTTP server (standard library only) that speaks enough of Stripe's
wire protocol for the official `stripe` SDK to work unmodified against it, so tests and the
offline demo exercise billing end to end without the internet.

    with FakeStripeServer(webhook_url="http://127.0.0.1:8000/billing/webhook") as server:
        client = stripe.StripeClient(
            "sk_test_fake",
            base_addresses={"api": server.url, "files": server.url,
                            "connect": server.url, "meter_events": server.url},
        )
        customer = client.v1.customers.create({"email": "a@example.com"})
        session = client.v1.checkout.sessions.create({...})   # session.url is on the fake
        server.complete_checkout(session.id)   # or POST the form at session.url
        server.wait_for_webhooks()
        assert server.meter_totals() == {...}

(`stripe.api_base = server.url` works too.) Requests are read the way Stripe reads them:
form-encoded bracket notation for /v1 (`metadata[org]=x`, `line_items[0][price]=p`,
`expand[]=a`), JSON for /v2. Answers are Stripe-shaped JSON objects (`object`, prefixed ids,
`created`, `livemode: false`); lists are `{"object": "list", "data": [...], "has_more", "url"}`
newest first, with `limit` / `starting_after` / `ending_before`; errors are
`{"error": {"type", "message", "param", "code"}}` with 400 / 401 / 404, so the SDK raises
its own exception classes. Any key starting with "sk_test_" (or "rk_test_") is accepted
except `BAD_KEY`. POSTs honour `Idempotency-Key` (a replay answers the stored response with
`Idempotent-Replayed: true`; the same key with other parameters is an `idempotency_error`).

Hosted pages live on the fake too: the Checkout page (`/checkout/<id>`, a "Pay" button), the
billing portal (`/portal/<id>`: switch price, cancel) and hosted invoices (`/invoice/<id>`).
Every event is stored and, when `webhook_url` is set, POSTed to it from a background thread
and signed like Stripe signs (`Stripe-Signature: t=<unix>,v1=<hex hmac-sha256>`), retried on
failures; `hold_webhooks()` / `release_webhooks(order="reverse")` deliver out of order and
`redeliver()` sends an event again.

`main()` serves standalone until interrupted (for the offline demo), e.g.
`python -c "from billing.fake_stripe import main; main()" --port 12111`."""

from __future__ import annotations

import argparse
import base64
import binascii
import calendar
import contextlib
import copy
import hashlib
import heapq
import hmac
import html
import itertools
import json
import re
import secrets
import socket
import string
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Literal, Self, override

__all__ = [
    "API_VERSION",
    "BAD_KEY",
    "DEFAULT_WEBHOOK_SECRET",
    "FakeRequest",
    "FakeStripeError",
    "FakeStripeServer",
    "MeterEventAttempt",
    "WebhookDelivery",
    "main",
    "parse_form",
]

JSON = dict[str, Any]

BAD_KEY = "sk_test_bad"
DEFAULT_WEBHOOK_SECRET = "whsec_fake_0123456789abcdef"
# The API version the pinned SDK (stripe 16.1) sends; events carry it as `api_version`.
API_VERSION = "2026-10-28.endive"
_KEY_PREFIXES = ("sk_test_", "rk_test_")
_ALPHABET = string.ascii_letters + string.digits
_DAY = 86_400
_METER_WINDOW_PAST = 35 * _DAY  # meter event timestamps: at most 35 days old ...
_METER_WINDOW_FUTURE = 5 * 60  # ... and at most 5 minutes ahead
_IDENTIFIER_TTL = _DAY  # identifiers are unique over a rolling 24 hours
_INTERVALS = ("day", "week", "month", "year")
# Dicts under these keys keep their keys as given (never turned into lists).
_FREE_FORM = frozenset({"metadata", "payload"})


def _new_id(prefix: str, length: int = 14) -> str:
    return f"{prefix}_" + "".join(secrets.choice(_ALPHABET) for _ in range(length))


def _iso(ts: int) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")


def _add_interval(ts: int, interval: str, count: int) -> int:
    """`ts` moved on by `count` intervals (calendar months and years, clamped days)."""
    if interval == "day":
        return ts + count * _DAY
    if interval == "week":
        return ts + count * 7 * _DAY
    start = datetime.fromtimestamp(ts, UTC)
    years, month0 = divmod(start.month - 1 + count * (12 if interval == "year" else 1), 12)
    year, month = start.year + years, month0 + 1
    day = min(start.day, calendar.monthrange(year, month)[1])
    return int(start.replace(year=year, month=month, day=day).timestamp())


# --- errors and parameters ----------------------------------------------------------------


class FakeStripeError(Exception):
    """An API error in Stripe's shape; raised by the Python helpers too."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        param: str | None = None,
        code: str | None = None,
        kind: str = "invalid_request_error",
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.param = param
        self.code = code
        self.kind = kind

    def body(self) -> JSON:
        error: JSON = {"type": self.kind, "message": self.message}
        if self.param is not None:
            error["param"] = self.param
        if self.code is not None:
            error["code"] = self.code
            error["doc_url"] = f"https://stripe.com/docs/error-codes/{self.code.replace('_', '-')}"
        return {"error": error}


def _missing(kind: str, ident: str, param: str | None = "id", status: int = 404) -> FakeStripeError:
    return FakeStripeError(
        status, f"No such {kind}: '{ident}'", param=param, code="resource_missing"
    )


def _required(param: str) -> FakeStripeError:
    return FakeStripeError(
        400, f"Missing required param: {param}.", param=param, code="parameter_missing"
    )


def _invalid(param: str, message: str) -> FakeStripeError:
    return FakeStripeError(400, message, param=param, code="parameter_invalid")


def parse_form(query: str) -> JSON:
    """Stripe's form encoding to nested data: `a[b]=1` is {"a": {"b": "1"}}, `a[0]=x` and
    `a[]=x` are lists ({"a": ["x"]}), `a[0][b]=1` a list of dicts. Values stay strings."""
    root: JSON = {}
    for key, value in urllib.parse.parse_qsl(query, keep_blank_values=True):
        base, bracket, rest = key.partition("[")
        segments = [base]
        if bracket and rest.endswith("]"):
            segments += rest[:-1].split("][")
        elif bracket:
            segments = [key]
        node = root
        for position, segment in enumerate(segments):
            name = segment if segment else str(len(node))  # `[]` appends
            if position == len(segments) - 1:
                node[name] = value
                break
            child = node.setdefault(name, {})
            if not isinstance(child, dict):
                raise _invalid(key, f"Invalid parameter: {key} mixes a value and an object.")
            node = child
    listed = _listify(root, None)
    assert isinstance(listed, dict)
    return listed


def _listify(value: Any, key: str | None) -> Any:
    if not isinstance(value, dict):
        return value
    items = {name: _listify(child, name) for name, child in value.items()}
    if key not in _FREE_FORM and items and all(name.isdigit() for name in items):
        return [items[name] for name in sorted(items, key=int)]
    return items


def _str(params: Mapping[str, Any], name: str, *, required: bool = False) -> str | None:
    value = params.get(name)
    if value is None or value == "":
        if required:
            raise _required(name)
        return None
    if not isinstance(value, str | int | float) or isinstance(value, bool):
        raise _invalid(name, f"Invalid string: {name} must be a string.")
    return str(value)


def _int(params: Mapping[str, Any], name: str, default: int | None = None) -> int | None:
    value = params.get(name)
    if value is None or value == "":
        return default
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and re.fullmatch(r"-?\d+", value):
        return int(value)
    raise _invalid(name, f"Invalid integer: {value}")


def _bool(params: Mapping[str, Any], name: str, default: bool | None = None) -> bool | None:
    value = params.get(name)
    if value is None or value == "":
        return default
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in {"true", "false"}:
        return value.lower() == "true"
    raise _invalid(name, f"Invalid boolean: {value}")


def _dict(params: Mapping[str, Any], name: str) -> JSON:
    value = params.get(name)
    if value is None or value == "":
        return {}
    if not isinstance(value, dict):
        raise _invalid(name, f"Invalid object: {name} must be an object.")
    return value


def _list(params: Mapping[str, Any], name: str) -> list[Any]:
    value = params.get(name)
    if value is None or value == "":
        return []
    if isinstance(value, list):
        return value
    if isinstance(value, dict):  # a[x]=... with non-numeric keys
        raise _invalid(name, f"Invalid array: {name} must be an array.")
    return [value]


def _metadata(params: Mapping[str, Any], current: Mapping[str, str] | None = None) -> JSON:
    """The metadata after an update: keys merge, an empty value unsets a key, and
    `metadata=""` unsets all of them."""
    merged: JSON = dict(current or {})
    if params.get("metadata") == "":
        return {}
    for key, value in _dict(params, "metadata").items():
        if not isinstance(value, str | int | float) or isinstance(value, bool):
            raise _invalid(f"metadata[{key}]", "Invalid metadata: values must be strings.")
        if value == "":
            merged.pop(key, None)
        else:
            merged[key] = str(value)
    return merged


def _number(value: Any, param: str) -> int | float:
    """A meter event value: a number, or a string holding one."""
    if isinstance(value, bool):
        raise _invalid(param, f"Invalid numeric value: {value}")
    if isinstance(value, int | float):
        return value
    try:
        number = Decimal(str(value).strip())
    except InvalidOperation:
        raise _invalid(param, f"Invalid numeric value: {value!r}") from None
    if not number.is_finite():
        raise _invalid(param, f"Invalid numeric value: {value!r}")
    return int(number) if number == number.to_integral_value() else float(number)


# --- records ------------------------------------------------------------------------------


@dataclass(frozen=True)
class FakeRequest:
    """One request the server received: headers with lower-case names, the parameters
    parsed (query and body), `body` the raw bytes as sent."""

    method: str
    path: str
    headers: dict[str, str]
    params: JSON
    body: bytes = b""


@dataclass(frozen=True)
class MeterEventAttempt:
    """One meter event request, whatever became of it: `outcome` is "accepted",
    "duplicate" (identifier already seen), "invalid" (rejected otherwise) or "replayed"
    (the same Idempotency-Key again: Stripe answers the stored response)."""

    api: Literal["v1", "v2"]
    event_name: str | None
    identifier: str | None
    customer: str | None
    value: int | float | None
    timestamp: int | None
    outcome: Literal["accepted", "duplicate", "invalid", "replayed"]
    error: str | None
    idempotency_key: str | None
    payload: JSON
    received_at: float


@dataclass(frozen=True)
class WebhookDelivery:
    """One attempt to deliver an event: `status` None when no HTTP answer came."""

    event_id: str
    event_type: str
    attempt: int
    url: str | None
    status: int | None
    error: str | None
    signature: str
    at: float

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


@dataclass(order=True)
class _Job:
    due: float
    seq: int
    event_id: str = field(compare=False)
    attempt: int = field(compare=False)


@dataclass(frozen=True)
class _Stored:
    """A response kept for an idempotency key."""

    method: str
    path: str
    params: JSON
    status: int
    body: bytes


@dataclass(frozen=True)
class _Reply:
    status: int
    body: bytes
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)


def _json_reply(status: int, payload: JSON, headers: Mapping[str, str] | None = None) -> _Reply:
    return _Reply(status, json.dumps(payload, indent=2).encode(), headers=dict(headers or {}))


# --- HTML pages ---------------------------------------------------------------------------

_STYLE = (
    "body{font-family:system-ui,sans-serif;max-width:40rem;margin:3rem auto;color:#1a1f36}"
    "table{border-collapse:collapse;width:100%}td,th{padding:.4rem;border-bottom:1px solid #ddd;"
    "text-align:left}button{background:#635bff;color:#fff;border:0;border-radius:4px;"
    "padding:.5rem 1rem;cursor:pointer}.muted{color:#697386}.danger{background:#df1b41}"
)


def _page(title: str, body: str, status: int = 200) -> _Reply:
    document = (
        f'<!doctype html><html lang="en"><head><meta charset="utf-8">'
        f"<title>{html.escape(title)} - fake Stripe</title><style>{_STYLE}</style></head>"
        f'<body><p class="muted">FireFlow fake Stripe (test mode)</p>'
        f"<h1>{html.escape(title)}</h1>{body}</body></html>"
    )
    return _Reply(status, document.encode(), "text/html; charset=utf-8")


def _redirect(location: str) -> _Reply:
    return _Reply(303, b"", "text/plain", {"Location": location})


def _money(amount: int | None, currency: str | None) -> str:
    if amount is None:
        return "metered"
    return f"{amount / 100:.2f} {(currency or '').upper()}"


def _form(action: str, label: str, fields: Mapping[str, str], css: str = "") -> str:
    hidden = "".join(
        f'<input type="hidden" name="{html.escape(name)}" value="{html.escape(value)}">'
        for name, value in fields.items()
    )
    klass = f' class="{css}"' if css else ""
    return (
        f'<form method="post" action="{html.escape(action)}" style="display:inline">'
        f'{hidden}<button type="submit"{klass}>{html.escape(label)}</button></form>'
    )


# --- the HTTP server ----------------------------------------------------------------------


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], fake: FakeStripeServer) -> None:
        self.fake = fake
        self.connections: set[socket.socket] = set()
        self.connections_lock = threading.Lock()
        super().__init__(address, _Handler)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "FireFlowFakeStripe/1.0"
    server: _HTTPServer

    def setup(self) -> None:
        super().setup()
        # Headers and body go out in two writes: without this, Nagle's algorithm and the
        # client's delayed ACK hold every keep-alive answer back by ~40 ms.
        with contextlib.suppress(OSError):
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        with self.server.connections_lock:
            self.server.connections.add(self.connection)

    def finish(self) -> None:
        with self.server.connections_lock:
            self.server.connections.discard(self.connection)
        with contextlib.suppress(OSError):
            super().finish()

    def log_message(self, format: str, *args: Any) -> None:
        pass  # quiet: tests read `FakeStripeServer.requests` instead

    def do_GET(self) -> None:
        self._handle("GET")

    def do_POST(self) -> None:
        self._handle("POST")

    def do_DELETE(self) -> None:
        self._handle("DELETE")

    def _handle(self, method: str) -> None:
        try:
            length = int(self.headers.get("content-length") or 0)
        except ValueError:
            length = 0
        raw = self.rfile.read(length) if length > 0 else b""
        headers = {name.lower(): value for name, value in self.headers.items()}
        try:
            reply = self.server.fake._serve(method, self.path, headers, raw)
        except Exception as exc:  # a bug in the fake: answer like Stripe's api_error
            reply = _json_reply(
                500, {"error": {"type": "api_error", "message": f"fake Stripe bug: {exc!r}"}}
            )
        if self.server.fake._take_dropped(method, self.path):
            # The request was processed; the answer is lost (a connection cut after Stripe
            # committed): the client sees no response at all.
            self.close_connection = True
            with contextlib.suppress(OSError):
                self.connection.shutdown(socket.SHUT_RDWR)
            return
        try:
            self.send_response(reply.status)
            self.send_header("content-type", reply.content_type)
            self.send_header("content-length", str(len(reply.body)))
            for name, value in reply.headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(reply.body)
        except OSError:  # the client hung up
            self.close_connection = True


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """Webhook deliveries do not follow redirects: Stripe counts a 3xx as a failure."""

    @override
    def redirect_request(
        self,
        req: urllib.request.Request,
        fp: Any,
        code: int,
        msg: str,
        headers: Any,
        newurl: str,
    ) -> urllib.request.Request | None:
        return None


_Route = tuple[str, re.Pattern[str], Callable[[JSON, str], JSON]]


class FakeStripeServer:
    """The fake Stripe on a real socket, served from a background thread.

    `webhook_url` / `webhook_secret` can be changed while running. Failed deliveries (no
    2xx answer, or no answer) are retried after each of `webhook_retry_delays` seconds, so
    an event is tried `len(webhook_retry_delays) + 1` times at most. `public_url` is the
    address put into hosted-page links (default: `url`). Events created while `webhook_url`
    is None are stored, never sent (`redeliver()` sends one on demand)."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        webhook_url: str | None = None,
        webhook_secret: str = DEFAULT_WEBHOOK_SECRET,
        webhook_retry_delays: Sequence[float] = (0.2, 0.5, 1.0, 2.0),
        webhook_timeout_s: float = 5.0,
        api_version: str = API_VERSION,
        public_url: str | None = None,
    ) -> None:
        self.host = host
        self.webhook_url = webhook_url
        self.webhook_secret = webhook_secret
        self.webhook_retry_delays: tuple[float, ...] = tuple(webhook_retry_delays)
        self.webhook_timeout_s = webhook_timeout_s
        self.api_version = api_version
        self.public_url = public_url
        self._port = port
        self._lock = threading.RLock()
        self._context = threading.local()
        self._httpd: _HTTPServer | None = None
        self._thread: threading.Thread | None = None
        # webhook delivery
        self._hooks = threading.Condition()
        self._jobs: list[_Job] = []
        self._held: list[str] = []
        self._holding = False
        self._in_flight = 0
        self._stopping = False
        self._job_seq = itertools.count()
        self._worker: threading.Thread | None = None
        self._opener = urllib.request.build_opener(urllib.request.ProxyHandler({}), _NoRedirect())
        self._routes: list[_Route] = self._build_routes()
        self._clear()

    def _clear(self) -> None:
        self._store: dict[str, dict[str, JSON]] = {}
        self._session_lines: dict[str, list[tuple[str, int | None]]] = {}
        self._session_subscription_data: dict[str, JSON] = {}
        self._idempotency: dict[str, _Stored] = {}
        self._identifiers: dict[str, int] = {}
        self._invoice_counts: dict[str, int] = {}
        self._requests: list[FakeRequest] = []
        self._meter_events: list[MeterEventAttempt] = []
        self._deliveries: list[WebhookDelivery] = []
        self._replays = 0
        self._dropped: list[tuple[str, str]] = []

    def drop_next_response(self, method: str, path_prefix: str) -> None:
        """Process the next `method` request whose path starts with `path_prefix`, then
        close the connection without answering (a response lost after Stripe committed)."""
        with self._lock:
            self._dropped.append((method.upper(), path_prefix))

    def _take_dropped(self, method: str, path: str) -> bool:
        with self._lock:
            for index, (wanted, prefix) in enumerate(self._dropped):
                if wanted == method and path.startswith(prefix):
                    del self._dropped[index]
                    return True
        return False

    # - lifecycle -

    def start(self) -> Self:
        if self._httpd is not None:
            raise RuntimeError("the fake Stripe server is already running")
        httpd = _HTTPServer((self.host, self._port), self)
        self._httpd = httpd
        self._thread = threading.Thread(
            target=httpd.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"fake-stripe:{httpd.server_address[1]}",
            daemon=True,
        )
        self._thread.start()
        with self._hooks:
            self._stopping = False
        self._worker = threading.Thread(
            target=self._deliver_forever, name="fake-stripe-webhooks", daemon=True
        )
        self._worker.start()
        return self

    def stop(self) -> None:
        """Stop serving, drop open connections and undelivered webhooks."""
        httpd, thread, worker = self._httpd, self._thread, self._worker
        if httpd is None:
            return
        with self._hooks:
            self._stopping = True
            self._jobs.clear()
            self._hooks.notify_all()
        httpd.shutdown()
        with httpd.connections_lock:
            connections = list(httpd.connections)
        for connection in connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)
        httpd.server_close()
        if thread is not None:
            thread.join(timeout=5)
        if worker is not None:
            worker.join(timeout=self.webhook_timeout_s + 1)
        self._httpd = self._thread = self._worker = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        return self._httpd is not None

    @property
    def port(self) -> int:
        if self._httpd is None:
            raise RuntimeError("the fake Stripe server is not running: call start()")
        return int(self._httpd.server_address[1])

    @property
    def url(self) -> str:
        """http://host:port, without a path: the SDK's base address for every API."""
        host = self.host if ":" not in self.host else f"[{self.host}]"
        return f"http://{host}:{self.port}"

    def _base(self) -> str:
        if self.public_url:
            return self.public_url.rstrip("/")
        return self.url if self.running else "http://fake-stripe.invalid"

    def reset(self) -> None:
        """Forget every object, event, request, delivery and meter event (settings stay)."""
        with self._lock, self._hooks:
            self._clear()
            self._jobs.clear()
            self._held.clear()
            self._holding = False

    # - read access (copies) -

    def _objects(self, kind: str) -> dict[str, JSON]:
        with self._lock:
            return copy.deepcopy(self._store.get(kind, {}))

    @property
    def customers(self) -> dict[str, JSON]:
        return self._objects("customer")

    @property
    def products(self) -> dict[str, JSON]:
        return self._objects("product")

    @property
    def prices(self) -> dict[str, JSON]:
        return self._objects("price")

    @property
    def meters(self) -> dict[str, JSON]:
        return self._objects("billing.meter")

    @property
    def checkout_sessions(self) -> dict[str, JSON]:
        return self._objects("checkout.session")

    @property
    def portal_sessions(self) -> dict[str, JSON]:
        return self._objects("billing_portal.session")

    @property
    def subscriptions(self) -> dict[str, JSON]:
        return self._objects("subscription")

    @property
    def invoices(self) -> dict[str, JSON]:
        return self._objects("invoice")

    @property
    def events(self) -> list[JSON]:
        """Every event, oldest first."""
        return list(self._objects("event").values())

    def events_of(self, event_type: str) -> list[JSON]:
        return [event for event in self.events if event["type"] == event_type]

    @property
    def requests(self) -> list[FakeRequest]:
        with self._lock:
            return list(self._requests)

    @property
    def meter_events(self) -> list[MeterEventAttempt]:
        """Every meter event request (v1 and v2), duplicates and rejects included."""
        with self._lock:
            return list(self._meter_events)

    @property
    def deliveries(self) -> list[WebhookDelivery]:
        with self._hooks:
            return list(self._deliveries)

    @property
    def idempotent_replays(self) -> int:
        """How many requests were answered from the idempotency store."""
        with self._lock:
            return self._replays

    def meter_totals(self, event_name: str | None = None) -> dict[str, int | float]:
        """Sum of accepted meter event values per customer (for one event name, or all)."""
        totals: dict[str, int | float] = {}
        for attempt in self.meter_events:
            if attempt.outcome != "accepted" or attempt.customer is None:
                continue
            if event_name is not None and attempt.event_name != event_name:
                continue
            totals[attempt.customer] = totals.get(attempt.customer, 0) + (attempt.value or 0)
        return totals

    def duplicate_meter_identifiers(self) -> list[str]:
        """Identifiers sent in more than one request (idempotent replays not counted)."""
        seen: dict[str, int] = {}
        for attempt in self.meter_events:
            if attempt.identifier is not None and attempt.outcome != "replayed":
                seen[attempt.identifier] = seen.get(attempt.identifier, 0) + 1
        return [identifier for identifier, count in seen.items() if count > 1]

    # - the store -

    def _now(self) -> int:
        return int(time.time())

    def _put(self, obj: JSON) -> JSON:
        self._store.setdefault(str(obj["object"]), {})[str(obj["id"])] = obj
        return obj

    def _get(self, kind: str, ident: str, *, param: str | None = "id", status: int = 404) -> JSON:
        obj = self._store.get(kind, {}).get(ident)
        if obj is None:
            raise _missing(kind.rsplit(".", 1)[-1].replace("_", " "), ident, param, status)
        return obj

    def _find(self, ident: str) -> JSON | None:
        for objects in self._store.values():
            if ident in objects:
                return objects[ident]
        return None

    def _all(self, kind: str) -> list[JSON]:
        return list(self._store.get(kind, {}).values())

    # - events and webhooks -

    def _emit(self, event_type: str, obj: JSON, previous: JSON | None = None) -> JSON:
        request = getattr(self._context, "request", None) or {"id": None, "idempotency_key": None}
        data: JSON = {"object": copy.deepcopy(obj)}
        if previous:
            data["previous_attributes"] = copy.deepcopy(previous)
        event: JSON = {
            "id": _new_id("evt", 24),
            "object": "event",
            "api_version": self.api_version,
            "created": self._now(),
            "data": data,
            "livemode": False,
            "pending_webhooks": 1 if self.webhook_url else 0,
            "request": dict(request),
            "type": event_type,
        }
        self._put(event)
        if self.webhook_url:
            self._queue(event["id"])
        return event

    def _queue(self, event_id: str, attempt: int = 1, delay: float = 0.0) -> None:
        with self._hooks:
            if self._holding and attempt == 1:
                self._held.append(event_id)
                return
            job = _Job(time.monotonic() + delay, next(self._job_seq), event_id, attempt)
            heapq.heappush(self._jobs, job)
            self._hooks.notify_all()

    def sign(
        self, payload: bytes | str, timestamp: int | None = None, secret: str | None = None
    ) -> str:
        """A `Stripe-Signature` header for `payload` (now, with the webhook secret, unless
        told otherwise): build stale or forged signatures with it."""
        body = payload.decode() if isinstance(payload, bytes) else payload
        stamp = int(time.time()) if timestamp is None else timestamp
        key = (secret if secret is not None else self.webhook_secret).encode()
        digest = hmac.new(key, f"{stamp}.{body}".encode(), hashlib.sha256).hexdigest()
        return f"t={stamp},v1={digest}"

    def event_payload(self, event_id: str) -> bytes:
        """The body a webhook delivery of this event carries (pretty-printed, as Stripe's)."""
        with self._lock:
            event = self._get("event", event_id)
            return json.dumps(event, indent=2).encode()

    def hold_webhooks(self) -> None:
        """Queue new events instead of delivering them, until `release_webhooks()`."""
        with self._hooks:
            self._holding = True

    def release_webhooks(
        self, order: Literal["as_created", "reverse"] | Sequence[str] = "as_created"
    ) -> list[str]:
        """Deliver the held events, oldest first, newest first ("reverse") or in the order
        of the given event ids (held events not named go last, oldest first). Returns the
        event ids in delivery order."""
        with self._hooks:
            held, self._held, self._holding = list(self._held), [], False
            if order == "as_created":
                ordered = held
            elif order == "reverse":
                ordered = held[::-1]
            else:
                named = [event_id for event_id in order if event_id in held]
                ordered = named + [event_id for event_id in held if event_id not in named]
            now = time.monotonic()
            for event_id in ordered:
                heapq.heappush(self._jobs, _Job(now, next(self._job_seq), event_id, 1))
            self._hooks.notify_all()
        return ordered

    def redeliver(self, event_id: str) -> None:
        """Send an event again (same id and body, a fresh signature), as from the Dashboard."""
        with self._lock:
            self._get("event", event_id)
        self._queue(event_id)

    def wait_for_webhooks(self, timeout: float = 5.0) -> bool:
        """Wait until no delivery is queued, retrying or in flight (held events aside).
        False on timeout."""
        with self._hooks:
            return self._hooks.wait_for(lambda: not self._jobs and not self._in_flight, timeout)

    def _deliver_forever(self) -> None:
        while True:
            with self._hooks:
                while not self._stopping:
                    now = time.monotonic()
                    if self._jobs and self._jobs[0].due <= now:
                        break
                    self._hooks.wait(self._jobs[0].due - now if self._jobs else None)
                if self._stopping:
                    return
                job = heapq.heappop(self._jobs)
                self._in_flight += 1
            try:
                self._deliver(job)
            finally:
                with self._hooks:
                    self._in_flight -= 1
                    self._hooks.notify_all()

    def _deliver(self, job: _Job) -> None:
        url = self.webhook_url
        with self._lock:
            event = self._store.get("event", {}).get(job.event_id)
            body = json.dumps(event, indent=2).encode() if event is not None else None
        if event is None or body is None:
            return  # forgotten by reset()
        signature = self.sign(body)
        status: int | None = None
        error: str | None = None
        if not url:
            error = "no webhook_url"
        elif urllib.parse.urlsplit(url).scheme not in {"http", "https"}:
            error = f"unsupported webhook_url: {url}"
        else:
            status, error = self._post(url, body, signature)
        delivery = WebhookDelivery(
            job.event_id,
            str(event["type"]),
            job.attempt,
            url,
            status,
            error,
            signature,
            time.time(),
        )
        with self._hooks:
            self._deliveries.append(delivery)
        if not delivery.ok and url and job.attempt <= len(self.webhook_retry_delays):
            self._queue(job.event_id, job.attempt + 1, self.webhook_retry_delays[job.attempt - 1])

    def _post(self, url: str, body: bytes, signature: str) -> tuple[int | None, str | None]:
        request = urllib.request.Request(  # noqa: S310 - the scheme was checked
            url,
            data=body,
            method="POST",
            headers={
                "Content-Type": "application/json; charset=utf-8",
                "User-Agent": "Stripe/1.0 (+https://stripe.com/docs/webhooks)",
                "Stripe-Signature": signature,
                "Cache-Control": "no-cache",
            },
        )
        try:
            with self._opener.open(request, timeout=self.webhook_timeout_s) as response:
                response.read()
                return int(response.status), None
        except urllib.error.HTTPError as exc:
            with contextlib.suppress(OSError):
                exc.read()
            return int(exc.code), None
        except (urllib.error.URLError, OSError, ValueError) as exc:
            return None, repr(exc)

    # - serving -

    def _serve(self, method: str, target: str, headers: Mapping[str, str], raw: bytes) -> _Reply:
        split = urllib.parse.urlsplit(target)
        path = split.path.rstrip("/") or "/"
        if path.startswith(("/v1/", "/v2/")):
            return self._serve_api(method, path, split.query, headers, raw)
        params: JSON = {}
        with contextlib.suppress(FakeStripeError):
            params = parse_form(split.query)
        if method == "POST":
            with contextlib.suppress(FakeStripeError, UnicodeDecodeError):
                params.update(parse_form(raw.decode()))
        with self._lock:
            self._requests.append(FakeRequest(method, target, dict(headers), params, raw))
            return self._serve_page(method, path, params)

    def _authorise(self, headers: Mapping[str, str]) -> FakeStripeError | None:
        authorization = headers.get("authorization", "")
        scheme, _, credentials = authorization.partition(" ")
        key = ""
        if scheme.lower() == "bearer":
            key = credentials.strip()
        elif scheme.lower() == "basic":
            with contextlib.suppress(ValueError):
                key = _b64decode(credentials.strip()).partition(":")[0]
        if not key:
            return FakeStripeError(
                401,
                "You did not provide an API key. You need to provide your API key in the "
                "Authorization header, using Bearer auth (e.g. 'Authorization: Bearer "
                "YOUR_SECRET_KEY').",
            )
        if key == BAD_KEY or not key.startswith(_KEY_PREFIXES):
            shown = f"{key[:8]}{'*' * max(len(key) - 12, 0)}{key[-4:]}"
            return FakeStripeError(
                401, f"Invalid API Key provided: {shown}", code="api_key_invalid"
            )
        return None

    def _serve_api(
        self, method: str, path: str, query: str, headers: Mapping[str, str], raw: bytes
    ) -> _Reply:
        v2 = path.startswith("/v2/")
        request_id = _new_id("req")
        answer = {
            "Request-Id": request_id,
            "Stripe-Version": headers.get("stripe-version") or self.api_version,
        }
        try:
            params = self._params(method, query, headers, raw, v2=v2)
        except FakeStripeError as exc:
            params = {}
            failure: FakeStripeError | None = exc
        else:
            failure = None
        with self._lock:
            target = f"{path}?{query}" if query else path
            self._requests.append(FakeRequest(method, target, dict(headers), params, raw))
        denied = self._authorise(headers)
        if denied is not None:
            answer["WWW-Authenticate"] = 'Bearer realm="Stripe"'
            return _json_reply(denied.status, denied.body(), answer)
        if failure is not None:
            return _json_reply(failure.status, failure.body(), answer)
        key = (
            headers.get("idempotency-key")
            if method == "POST" or (v2 and method == "DELETE")
            else None
        )
        if key:
            answer["Idempotency-Key"] = key
        with self._lock:
            self._context.request = {"id": request_id, "idempotency_key": key}
            try:
                return self._answer(method, path, params, key, answer, v2=v2)
            finally:
                self._context.request = None

    def _params(
        self, method: str, query: str, headers: Mapping[str, str], raw: bytes, *, v2: bool
    ) -> JSON:
        params = parse_form(query)
        if method != "POST" or not raw:
            return params
        content_type = headers.get("content-type", "")
        try:
            text = raw.decode()
            if v2 or content_type.startswith("application/json"):
                body = json.loads(text)
                if not isinstance(body, dict):
                    raise FakeStripeError(400, "The request body must be a JSON object.")
                params.update(body)
            else:
                params.update(parse_form(text))
        except (UnicodeDecodeError, json.JSONDecodeError):
            raise FakeStripeError(400, "Invalid request body: could not be parsed.") from None
        return params

    def _answer(
        self,
        method: str,
        path: str,
        params: JSON,
        key: str | None,
        headers: dict[str, str],
        *,
        v2: bool,
    ) -> _Reply:
        if key:
            stored = self._idempotency.get(key)
            if stored is not None:
                return self._replay(stored, (method, path, params), key, headers)
        try:
            result = self._dispatch(method, path, params)
            if not v2:
                result = self._expand(copy.deepcopy(result), _list(params, "expand"))
        except FakeStripeError as exc:
            return _json_reply(exc.status, exc.body(), headers)
        reply = _json_reply(200, result, headers)
        if key:
            self._idempotency[key] = _Stored(method, path, params, 200, reply.body)
        return reply

    def _replay(
        self,
        stored: _Stored,
        request: tuple[str, str, JSON],
        key: str,
        headers: dict[str, str],
    ) -> _Reply:
        """The stored answer again, or an idempotency_error for other parameters."""
        _method, path, params = request
        if (stored.method, stored.path, stored.params) != request:
            error = FakeStripeError(
                400,
                "Keys for idempotent requests can only be used with the same parameters they "
                f"were first used with. Try using a key other than '{key}' if you meant to "
                "execute a different request.",
                kind="idempotency_error",
            )
            return _json_reply(400, error.body(), headers)
        self._replays += 1
        if path.endswith("/billing/meter_events"):
            first = json.loads(stored.body)
            stamp = first["timestamp"]
            if isinstance(stamp, str):
                stamp = int(datetime.fromisoformat(stamp).timestamp())
            self._record_meter_event(
                "v2" if path.startswith("/v2/") else "v1",
                params,
                "replayed",
                idempotency_key=key,
                accepted=(str(first["identifier"]), int(stamp)),
            )
        return _Reply(
            stored.status, stored.body, headers={**headers, "Idempotent-Replayed": "true"}
        )

    def _dispatch(self, method: str, path: str, params: JSON) -> JSON:
        for route_method, pattern, handler in self._routes:
            match = pattern.fullmatch(path)
            if match is not None and route_method == method:
                ident = (
                    urllib.parse.unquote(match.group("id")) if "id" in pattern.groupindex else ""
                )
                return handler(params, ident)
        # Stripe answers a known URL with the wrong method like an unknown URL.
        raise FakeStripeError(
            404,
            f"Unrecognized request URL ({method}: {path}). Please see https://stripe.com/docs "
            "or we can help at https://support.stripe.com/.",
        )

    def _build_routes(self) -> list[_Route]:
        one = r"/(?P<id>[^/]+)"
        table: list[tuple[str, str, Callable[[JSON, str], JSON]]] = [
            ("POST", "/v1/customers", self._create_customer),
            ("GET", "/v1/customers", self._list_customers),
            ("GET", "/v1/customers" + one, self._retrieve("customer")),
            ("POST", "/v1/customers" + one, self._update_customer),
            ("POST", "/v1/products", self._create_product),
            ("GET", "/v1/products", self._list_products),
            ("GET", "/v1/products" + one, self._retrieve("product")),
            ("POST", "/v1/prices", self._create_price),
            ("GET", "/v1/prices", self._list_prices),
            ("GET", "/v1/prices" + one, self._retrieve("price")),
            ("POST", "/v1/billing/meters", self._create_meter),
            ("GET", "/v1/billing/meters", self._list_meters),
            ("GET", "/v1/billing/meters" + one, self._retrieve("billing.meter")),
            ("POST", "/v1/billing/meter_events", self._meter_event_v1),
            ("POST", "/v2/billing/meter_events", self._meter_event_v2),
            ("POST", "/v1/checkout/sessions", self._create_checkout_session),
            ("GET", "/v1/checkout/sessions" + one, self._retrieve("checkout.session")),
            ("POST", "/v1/billing_portal/sessions", self._create_portal_session),
            ("GET", "/v1/subscriptions", self._list_subscriptions),
            ("GET", "/v1/subscriptions" + one, self._retrieve("subscription")),
            ("POST", "/v1/subscriptions" + one, self._update_subscription),
            ("DELETE", "/v1/subscriptions" + one, self._delete_subscription),
            ("GET", "/v1/invoices", self._list_invoices),
            ("GET", "/v1/invoices" + one, self._retrieve("invoice")),
            ("GET", "/v1/events", self._list_events),
            ("GET", "/v1/events" + one, self._retrieve("event")),
        ]
        return [(method, re.compile(pattern), handler) for method, pattern, handler in table]

    def _retrieve(self, kind: str) -> Callable[[JSON, str], JSON]:
        def retrieve(params: JSON, ident: str) -> JSON:
            return self._get(kind, ident)

        return retrieve

    def _expand(self, obj: JSON, paths: Iterable[Any]) -> JSON:
        """Replace ids by their objects along each dotted path (`data.product`, ...)."""
        for path in paths:
            if isinstance(path, str) and path:
                self._expand_path(obj, path.split("."))
        return obj

    def _expand_path(self, node: Any, segments: list[str]) -> None:
        if isinstance(node, list):
            for item in node:
                self._expand_path(item, segments)
            return
        if not isinstance(node, dict) or not segments:
            return
        name, rest = segments[0], segments[1:]
        value = node.get(name)
        if isinstance(value, str):
            found = self._find(value)
            if found is not None:
                value = node[name] = copy.deepcopy(found)
        if rest:
            self._expand_path(value, rest)

    def _page_list(self, items: list[JSON], params: JSON, url: str) -> JSON:
        """A list answer: newest first, `limit` (1-100, default 10) and cursors."""
        limit = _int(params, "limit", 10)
        if limit is None or not 1 <= limit <= 100:
            raise _invalid("limit", "Invalid integer: limit must be between 1 and 100.")
        ordered = sorted(
            enumerate(items), key=lambda pair: (pair[1].get("created", 0), pair[0]), reverse=True
        )
        newest_first = [item for _, item in ordered]
        ids = [item.get("id") for item in newest_first]
        after, before = _str(params, "starting_after"), _str(params, "ending_before")
        if after is not None:
            if after not in ids:
                raise _missing("object", after, "starting_after", 400)
            window = newest_first[ids.index(after) + 1 :]
            page, has_more = window[:limit], len(window) > limit
        elif before is not None:
            if before not in ids:
                raise _missing("object", before, "ending_before", 400)
            window = newest_first[: ids.index(before)]
            page, has_more = window[-limit:], len(window) > limit
        else:
            page, has_more = newest_first[:limit], len(newest_first) > limit
        return {"object": "list", "data": page, "has_more": has_more, "url": url}

    # - customers -

    def _create_customer(self, params: JSON, _: str) -> JSON:
        customer: JSON = {
            "id": _new_id("cus"),
            "object": "customer",
            "address": None,
            "balance": 0,
            "created": self._now(),
            "currency": None,
            "default_source": None,
            "delinquent": False,
            "description": _str(params, "description"),
            "discount": None,
            "email": _str(params, "email"),
            "invoice_prefix": "".join(secrets.choice(string.ascii_uppercase) for _ in range(8)),
            "invoice_settings": {
                "custom_fields": None,
                "default_payment_method": None,
                "footer": None,
                "rendering_options": None,
            },
            "livemode": False,
            "metadata": _metadata(params),
            "name": _str(params, "name"),
            "phone": _str(params, "phone"),
            "preferred_locales": [],
            "shipping": None,
            "tax_exempt": "none",
            "test_clock": None,
        }
        self._put(customer)
        self._emit("customer.created", customer)
        return customer

    def _update_customer(self, params: JSON, ident: str) -> JSON:
        customer = self._get("customer", ident)
        changes: JSON = {
            name: _str(params, name)
            for name in ("email", "name", "description", "phone")
            if name in params
        }
        if "metadata" in params:
            changes["metadata"] = _metadata(params, customer["metadata"])
        previous = {
            name: customer[name] for name, value in changes.items() if customer[name] != value
        }
        if previous:
            customer.update(changes)
            self._emit("customer.updated", customer, previous)
        return customer

    def _list_customers(self, params: JSON, _: str) -> JSON:
        email = _str(params, "email")
        items = [c for c in self._all("customer") if email is None or c["email"] == email]
        return self._page_list(items, params, "/v1/customers")

    # - products and prices -

    def _create_product(self, params: JSON, _: str) -> JSON:
        return self._new_product(params, "")

    def _new_product(self, params: JSON, prefix: str) -> JSON:
        name = _str(params, "name")
        if name is None:
            raise _required(f"{prefix}name" if not prefix else f"{prefix}[name]")
        ident = _str(params, "id") or _new_id("prod")
        if ident in self._store.get("product", {}):
            raise FakeStripeError(
                400, "Product already exists.", param="id", code="resource_already_exists"
            )
        now = self._now()
        product: JSON = {
            "id": ident,
            "object": "product",
            "active": _bool(params, "active", True),
            "created": now,
            "default_price": None,
            "description": _str(params, "description"),
            "images": [],
            "livemode": False,
            "marketing_features": [],
            "metadata": _metadata(params),
            "name": name,
            "package_dimensions": None,
            "shippable": None,
            "statement_descriptor": _str(params, "statement_descriptor"),
            "tax_code": None,
            "type": "service",
            "unit_label": _str(params, "unit_label"),
            "updated": now,
            "url": None,
        }
        return self._put(product)

    def _list_products(self, params: JSON, _: str) -> JSON:
        active = _bool(params, "active")
        items = [p for p in self._all("product") if active is None or p["active"] == active]
        return self._page_list(items, params, "/v1/products")

    def _recurring(self, params: JSON) -> JSON | None:
        if "recurring" not in params:
            return None
        recurring = _dict(params, "recurring")
        interval = _str(recurring, "interval")
        if interval is None:
            raise _required("recurring[interval]")
        if interval not in _INTERVALS:
            raise _invalid("recurring[interval]", f"Invalid recurring[interval]: {interval}")
        usage_type = _str(recurring, "usage_type") or "licensed"
        if usage_type not in {"licensed", "metered"}:
            raise _invalid("recurring[usage_type]", f"Invalid usage_type: {usage_type}")
        meter = _str(recurring, "meter")
        if usage_type == "metered" and meter is None:
            raise FakeStripeError(
                400,
                "Metered prices must be backed by a billing meter: pass recurring[meter].",
                param="recurring[meter]",
                code="parameter_missing",
            )
        if meter is not None:
            self._get("billing.meter", meter, param="recurring[meter]", status=400)
        return {
            "interval": interval,
            "interval_count": _int(recurring, "interval_count", 1),
            "meter": meter,
            "trial_period_days": _int(recurring, "trial_period_days"),
            "usage_type": usage_type,
        }

    def _lookup_key(self, params: JSON) -> str | None:
        lookup_key = _str(params, "lookup_key")
        if lookup_key is None:
            return None
        for price in self._all("price"):
            if price["lookup_key"] == lookup_key:
                if not _bool(params, "transfer_lookup_key", False):
                    raise FakeStripeError(
                        400,
                        f"A price (`{price['id']}`) already uses that lookup key.",
                        param="lookup_key",
                    )
                price["lookup_key"] = None
        return lookup_key

    def _create_price(self, params: JSON, _: str) -> JSON:
        currency = _str(params, "currency", required=True)
        product_id = _str(params, "product")
        if product_id is None:
            if "product_data" not in params:
                raise _required("product")
            product_id = self._new_product(_dict(params, "product_data"), "product_data")["id"]
        else:
            self._get("product", product_id, param="product", status=400)
        unit_amount = _int(params, "unit_amount")
        decimal = _str(params, "unit_amount_decimal")
        if unit_amount is None and decimal is None:
            raise _required("unit_amount")
        if unit_amount is not None and unit_amount < 0:
            raise _invalid("unit_amount", "Invalid unit_amount: must be at least 0.")
        recurring = self._recurring(params)
        price: JSON = {
            "id": _new_id("price"),
            "object": "price",
            "active": _bool(params, "active", True),
            "billing_scheme": "per_unit",
            "created": self._now(),
            "currency": str(currency).lower(),
            "custom_unit_amount": None,
            "livemode": False,
            "lookup_key": self._lookup_key(params),
            "metadata": _metadata(params),
            "nickname": _str(params, "nickname"),
            "product": product_id,
            "recurring": recurring,
            "tax_behavior": _str(params, "tax_behavior") or "unspecified",
            "tiers_mode": None,
            "transform_quantity": None,
            "type": "recurring" if recurring is not None else "one_time",
            "unit_amount": unit_amount,
            "unit_amount_decimal": decimal if decimal is not None else str(unit_amount),
        }
        return self._put(price)

    def _list_prices(self, params: JSON, _: str) -> JSON:
        active = _bool(params, "active")
        product = _str(params, "product")
        kind = _str(params, "type")
        currency = _str(params, "currency")
        lookup_keys = {str(key) for key in _list(params, "lookup_keys")}
        recurring = _dict(params, "recurring")

        def keep(price: JSON) -> bool:
            plan = price["recurring"] or {}
            return (
                (active is None or price["active"] == active)
                and (product is None or price["product"] == product)
                and (kind is None or price["type"] == kind)
                and (currency is None or price["currency"] == currency.lower())
                and (not lookup_keys or price["lookup_key"] in lookup_keys)
                and all(str(plan.get(name)) == str(value) for name, value in recurring.items())
            )

        items = [price for price in self._all("price") if keep(price)]
        return self._page_list(items, params, "/v1/prices")

    # - billing meters and meter events -

    def _create_meter(self, params: JSON, _: str) -> JSON:
        display_name = _str(params, "display_name", required=True)
        event_name = _str(params, "event_name", required=True)
        formula = _str(_dict(params, "default_aggregation"), "formula")
        if formula is None:
            raise _required("default_aggregation[formula]")
        if formula not in {"sum", "count", "last"}:
            raise _invalid("default_aggregation[formula]", f"Invalid formula: {formula}")
        for existing in self._all("billing.meter"):
            if existing["event_name"] == event_name and existing["status"] == "active":
                raise FakeStripeError(
                    400,
                    f"An active meter with event_name '{event_name}' already exists.",
                    param="event_name",
                    code="resource_already_exists",
                )
        mapping = _dict(params, "customer_mapping")
        value_settings = _dict(params, "value_settings")
        now = self._now()
        meter: JSON = {
            "id": _new_id("mtr", 24),
            "object": "billing.meter",
            "created": now,
            "customer_mapping": {
                "event_payload_key": _str(mapping, "event_payload_key") or "stripe_customer_id",
                "type": _str(mapping, "type") or "by_id",
            },
            "default_aggregation": {"formula": formula},
            "display_name": display_name,
            "event_name": event_name,
            "event_time_window": _str(params, "event_time_window"),
            "livemode": False,
            "status": "active",
            "status_transitions": {"deactivated_at": None},
            "updated": now,
            "value_settings": {
                "event_payload_key": _str(value_settings, "event_payload_key") or "value"
            },
        }
        return self._put(meter)

    def _list_meters(self, params: JSON, _: str) -> JSON:
        status = _str(params, "status")
        items = [m for m in self._all("billing.meter") if status is None or m["status"] == status]
        return self._page_list(items, params, "/v1/billing/meters")

    def _meter_event_v1(self, params: JSON, _: str) -> JSON:
        return self._meter_event(params, "v1")

    def _meter_event_v2(self, params: JSON, _: str) -> JSON:
        return self._meter_event(params, "v2")

    def _meter_event(self, params: JSON, api: Literal["v1", "v2"]) -> JSON:
        key = (getattr(self._context, "request", None) or {}).get("idempotency_key")
        try:
            event, identifier, timestamp = self._accept_meter_event(params, api)
        except FakeStripeError as exc:
            outcome: Literal["duplicate", "invalid"] = (
                "duplicate" if exc.code == "duplicate_meter_event" else "invalid"
            )
            self._record_meter_event(api, params, outcome, error=exc.message, idempotency_key=key)
            raise
        self._record_meter_event(
            api, params, "accepted", idempotency_key=key, accepted=(identifier, timestamp)
        )
        return event

    def _meter_keys(self, event_name: str | None) -> tuple[str, str, JSON | None]:
        for meter in self._all("billing.meter"):
            if meter["event_name"] == event_name and meter["status"] == "active":
                return (
                    str(meter["customer_mapping"]["event_payload_key"]),
                    str(meter["value_settings"]["event_payload_key"]),
                    meter,
                )
        return "stripe_customer_id", "value", None

    def _meter_timestamp(self, params: JSON, api: str) -> int:
        now = self._now()
        raw = params.get("timestamp")
        if raw is None or raw == "":
            return now
        if api == "v2" and isinstance(raw, str) and not raw.lstrip("-").isdigit():
            try:
                moment = datetime.fromisoformat(raw)
            except ValueError:
                raise _invalid("timestamp", f"Invalid timestamp: {raw}") from None
            if moment.tzinfo is None:
                moment = moment.replace(tzinfo=UTC)
            stamp = int(moment.timestamp())
        else:
            stamp = _int(params, "timestamp") or 0
        if stamp < now - _METER_WINDOW_PAST:
            raise _invalid(
                "timestamp",
                "Timestamp is too far in the past: meter events must be within the past 35 "
                "calendar days.",
            )
        if stamp > now + _METER_WINDOW_FUTURE:
            raise _invalid(
                "timestamp", "Timestamp is too far in the future: at most 5 minutes ahead."
            )
        return stamp

    def _accept_meter_event(self, params: JSON, api: Literal["v1", "v2"]) -> tuple[JSON, str, int]:
        """The answer to a valid meter event, with its identifier and timestamp."""
        event_name = _str(params, "event_name", required=True)
        payload = _dict(params, "payload")
        customer_key, value_key, meter = self._meter_keys(event_name)
        if _str(payload, customer_key) is None:
            raise _required(f"payload[{customer_key}]")
        if payload.get(value_key) in (None, ""):
            if meter is None or meter["default_aggregation"]["formula"] != "count":
                raise _required(f"payload[{value_key}]")
        else:
            _number(payload[value_key], f"payload[{value_key}]")
        timestamp = self._meter_timestamp(params, api)
        identifier = _str(params, "identifier") or _new_id("mev", 20)
        now = self._now()
        seen = self._identifiers.get(identifier)
        if seen is not None and now - seen < _IDENTIFIER_TTL:
            raise FakeStripeError(
                400,
                f"An event with identifier '{identifier}' already exists. Identifiers must be "
                "unique within a rolling 24 hour period.",
                param="identifier",
                code="duplicate_meter_event",
            )
        self._identifiers[identifier] = now
        answer: JSON
        if api == "v2":
            answer = {
                "object": "v2.billing.meter_event",
                "created": _iso(now),
                "event_name": event_name,
                "identifier": identifier,
                "livemode": False,
                "payload": payload,
                "timestamp": _iso(timestamp),
            }
        else:
            answer = {
                "object": "billing.meter_event",
                "created": now,
                "event_name": event_name,
                "identifier": identifier,
                "livemode": False,
                "payload": payload,
                "timestamp": timestamp,
            }
        return answer, identifier, timestamp

    def _record_meter_event(
        self,
        api: Literal["v1", "v2"],
        params: JSON,
        outcome: Literal["accepted", "duplicate", "invalid", "replayed"],
        *,
        error: str | None = None,
        idempotency_key: str | None = None,
        accepted: tuple[str, int] | None = None,
    ) -> None:
        """Record an attempt; `accepted` is the (identifier, timestamp) given out."""
        payload = params.get("payload") if isinstance(params.get("payload"), dict) else {}
        assert isinstance(payload, dict)
        event_name = params.get("event_name") if isinstance(params.get("event_name"), str) else None
        customer_key, value_key, _ = self._meter_keys(event_name)
        value: int | float | None
        try:
            value = _number(payload[value_key], value_key) if value_key in payload else None
        except FakeStripeError:
            value = None
        if value is None and outcome != "invalid":
            value = 1  # a count meter's event without a value counts one
        identifier: Any = params.get("identifier")
        timestamp: int | None = None
        if accepted is not None:
            identifier, timestamp = accepted
        elif outcome != "invalid":
            with contextlib.suppress(FakeStripeError):
                timestamp = self._meter_timestamp(params, api)
        customer = payload.get(customer_key)
        self._meter_events.append(
            MeterEventAttempt(
                api=api,
                event_name=event_name,
                identifier=identifier if isinstance(identifier, str) else None,
                customer=customer if isinstance(customer, str) else None,
                value=value,
                timestamp=timestamp,
                outcome=outcome,
                error=error,
                idempotency_key=idempotency_key,
                payload=copy.deepcopy(payload),
                received_at=time.time(),
            )
        )

    # - checkout -

    def _checkout_lines(self, params: JSON) -> list[tuple[JSON, int | None]]:
        lines: list[tuple[JSON, int | None]] = []
        for index, item in enumerate(_list(params, "line_items")):
            at = f"line_items[{index}]"
            if not isinstance(item, dict):
                raise _invalid(at, f"Invalid object: {at}")
            price_id = _str(item, "price")
            if price_id is None:
                raise _required(f"{at}[price]")
            price = self._get("price", price_id, param=f"{at}[price]", status=400)
            if not price["active"]:
                raise _invalid(f"{at}[price]", f"The price `{price_id}` is not active.")
            if price["recurring"] is None:
                raise _invalid(
                    f"{at}[price]",
                    "In `subscription` mode every line item must use a recurring price.",
                )
            quantity = _int(item, "quantity")
            metered = price["recurring"]["usage_type"] == "metered"
            if metered and quantity is not None:
                raise _invalid(
                    f"{at}[quantity]",
                    "Quantity should not be specified where usage_type is `metered`. Remove "
                    f"quantity from `{at}`.",
                )
            if not metered and quantity is None:
                raise _required(f"{at}[quantity]")
            if quantity is not None and quantity < 1:
                raise _invalid(f"{at}[quantity]", "Quantity must be at least 1.")
            lines.append((price, quantity))
        if not lines:
            raise _required("line_items")
        if len({price["currency"] for price, _ in lines}) > 1:
            raise _invalid("line_items", "All prices must be in the same currency.")
        return lines

    def _create_checkout_session(self, params: JSON, _: str) -> JSON:
        mode = _str(params, "mode", required=True)
        if mode != "subscription":
            raise _invalid("mode", f"The fake Stripe only supports mode=subscription, not {mode}.")
        customer_id = _str(params, "customer")
        if customer_id is not None:
            self._get("customer", customer_id, param="customer", status=400)
        lines = self._checkout_lines(params)
        subscription_data = _dict(params, "subscription_data")
        now = self._now()
        ident = _new_id("cs_test", 40)
        total = sum((price["unit_amount"] or 0) * (quantity or 0) for price, quantity in lines)
        session: JSON = {
            "id": ident,
            "object": "checkout.session",
            "allow_promotion_codes": _bool(params, "allow_promotion_codes"),
            "amount_subtotal": total,
            "amount_total": total,
            "billing_address_collection": _str(params, "billing_address_collection"),
            "cancel_url": _str(params, "cancel_url"),
            "client_reference_id": _str(params, "client_reference_id"),
            "created": now,
            "currency": lines[0][0]["currency"],
            "customer": customer_id,
            "customer_creation": None if customer_id else "always",
            "customer_details": None,
            "customer_email": _str(params, "customer_email"),
            "expires_at": now + _DAY,
            "invoice": None,
            "livemode": False,
            "locale": _str(params, "locale"),
            "metadata": _metadata(params),
            "mode": mode,
            "payment_status": "unpaid",
            "status": "open",
            "subscription": None,
            "success_url": _str(params, "success_url"),
            "ui_mode": "hosted",
            "url": f"{self._base()}/checkout/{ident}",
        }
        self._session_lines[ident] = [(price["id"], quantity) for price, quantity in lines]
        self._session_subscription_data[ident] = {
            "metadata": _metadata(subscription_data),
            "trial_period_days": _int(subscription_data, "trial_period_days"),
            "description": _str(subscription_data, "description"),
        }
        return self._put(session)

    def complete_checkout(self, session_id: str) -> JSON:
        """Pay an open Checkout Session, as the "Pay" button does: creates the customer (if
        the session had none), the subscription and its paid first invoice, emits the
        events, and returns the completed session."""
        with self._lock:
            session = self._get("checkout.session", session_id)
            if session["status"] != "open":
                raise FakeStripeError(
                    400,
                    f"This Checkout Session is no longer open (status {session['status']}).",
                    code="checkout_session_not_open",
                )
            customer_id = session["customer"]
            if customer_id is None:
                email = session["customer_email"] or "customer@example.com"
                customer_id = self._create_customer({"email": email}, "")["id"]
            customer = self._get("customer", customer_id)
            extra = self._session_subscription_data.get(session_id, {})
            lines = [
                (self._get("price", price_id), quantity)
                for price_id, quantity in self._session_lines.get(session_id, [])
            ]
            subscription = self._new_subscription(customer, lines, extra)
            invoice = self._new_invoice(subscription, "subscription_create")
            subscription["latest_invoice"] = invoice["id"]
            session.update(
                customer=customer_id,
                customer_details={
                    "address": None,
                    "email": customer["email"],
                    "name": customer["name"],
                    "phone": customer["phone"],
                    "tax_exempt": "none",
                    "tax_ids": [],
                },
                invoice=invoice["id"],
                payment_status="paid" if invoice["amount_paid"] else "no_payment_required",
                status="complete",
                subscription=subscription["id"],
                url=None,
            )
            self._emit("checkout.session.completed", session)
            self._emit("customer.subscription.created", subscription)
            self._emit("invoice.paid", invoice)
            self._emit("invoice.payment_succeeded", invoice)
            return copy.deepcopy(session)

    def _new_subscription(
        self, customer: JSON, lines: list[tuple[JSON, int | None]], extra: JSON
    ) -> JSON:
        now = self._now()
        ident = _new_id("sub", 24)
        trial_days = extra.get("trial_period_days")
        first = lines[0][0]["recurring"]
        period_end = _add_interval(now, first["interval"], first["interval_count"])
        trial_end = now + int(trial_days) * _DAY if trial_days else None
        if trial_end is not None:
            period_end = trial_end
        items = [
            self._new_item(ident, price, quantity, now, period_end) for price, quantity in lines
        ]
        subscription: JSON = {
            "id": ident,
            "object": "subscription",
            "application": None,
            "billing_cycle_anchor": period_end if trial_end else now,
            "cancel_at": None,
            "cancel_at_period_end": False,
            "canceled_at": None,
            "cancellation_details": {"comment": None, "feedback": None, "reason": None},
            "collection_method": "charge_automatically",
            "created": now,
            "currency": lines[0][0]["currency"],
            # Since API version 2025-03-31 the period lives on each item; kept here too.
            "current_period_end": period_end,
            "current_period_start": now,
            "customer": customer["id"],
            "days_until_due": None,
            "default_payment_method": None,
            "description": extra.get("description"),
            "discounts": [],
            "ended_at": None,
            "items": self._items_list(ident, items),
            "latest_invoice": None,
            "livemode": False,
            "metadata": dict(extra.get("metadata") or {}),
            "pending_update": None,
            "schedule": None,
            "start_date": now,
            "status": "trialing" if trial_end else "active",
            "test_clock": None,
            "trial_end": trial_end,
            "trial_start": now if trial_end else None,
        }
        return self._put(subscription)

    def _new_item(
        self, subscription_id: str, price: JSON, quantity: int | None, start: int, end: int
    ) -> JSON:
        item: JSON = {
            "id": _new_id("si"),
            "object": "subscription_item",
            "created": self._now(),
            "current_period_end": end,
            "current_period_start": start,
            "discounts": [],
            "metadata": {},
            "price": copy.deepcopy(price),
            "subscription": subscription_id,
            "tax_rates": [],
        }
        if price["recurring"]["usage_type"] != "metered":
            item["quantity"] = quantity if quantity is not None else 1
        return item

    def _items_list(self, subscription_id: str, items: list[JSON]) -> JSON:
        return {
            "object": "list",
            "data": items,
            "has_more": False,
            "total_count": len(items),
            "url": f"/v1/subscription_items?subscription={subscription_id}",
        }

    def _new_invoice(self, subscription: JSON, reason: str) -> JSON:
        now = self._now()
        customer = self._get("customer", subscription["customer"])
        count = self._invoice_counts.get(customer["id"], 0) + 1
        self._invoice_counts[customer["id"]] = count
        ident = _new_id("in", 24)
        trialing = subscription["status"] == "trialing"
        lines: list[JSON] = []
        for item in subscription["items"]["data"]:
            price = item["price"]
            if price["recurring"]["usage_type"] == "metered":
                continue
            quantity = item.get("quantity", 1)
            amount = 0 if trialing else (price["unit_amount"] or 0) * quantity
            lines.append(
                {
                    "id": _new_id("il", 24),
                    "object": "line_item",
                    "amount": amount,
                    "currency": price["currency"],
                    "description": f"{quantity} x {price.get('nickname') or price['product']}",
                    "invoice": ident,
                    "livemode": False,
                    "metadata": {},
                    "period": {
                        "start": item["current_period_start"],
                        "end": item["current_period_end"],
                    },
                    "pricing": {
                        "price_details": {"price": price["id"], "product": price["product"]},
                        "type": "price_details",
                        "unit_amount_decimal": price["unit_amount_decimal"],
                    },
                    "quantity": quantity,
                    "subscription": subscription["id"],
                }
            )
        total = sum(line["amount"] for line in lines)
        invoice: JSON = {
            "id": ident,
            "object": "invoice",
            "account_country": "US",
            "amount_due": total,
            "amount_paid": total,
            "amount_remaining": 0,
            "attempt_count": 1 if total else 0,
            "attempted": bool(total),
            "billing_reason": reason,
            "collection_method": "charge_automatically",
            "created": now,
            "currency": subscription["currency"],
            "customer": customer["id"],
            "customer_email": customer["email"],
            "customer_name": customer["name"],
            "description": None,
            "hosted_invoice_url": f"{self._base()}/invoice/{ident}",
            "invoice_pdf": f"{self._base()}/invoice/{ident}?format=pdf",
            "lines": {
                "object": "list",
                "data": lines,
                "has_more": False,
                "total_count": len(lines),
                "url": f"/v1/invoices/{ident}/lines",
            },
            "livemode": False,
            "metadata": {},
            "number": f"{customer['invoice_prefix']}-{count:04d}",
            # Since API version 2025-03-31 the subscription is under `parent`; kept here too.
            "parent": {
                "quote_details": None,
                "subscription_details": {
                    "metadata": copy.deepcopy(subscription["metadata"]),
                    "subscription": subscription["id"],
                },
                "type": "subscription_details",
            },
            # As on Stripe, a subscription's first invoice has an empty period (start ==
            # end == creation); the lines carry the service period.
            "period_end": now,
            "period_start": now,
            "status": "paid",
            "status_transitions": {
                "finalized_at": now,
                "marked_uncollectible_at": None,
                "paid_at": now,
                "voided_at": None,
            },
            "subscription": subscription["id"],
            "subtotal": total,
            "total": total,
            "total_excluding_tax": total,
        }
        return self._put(invoice)

    # - billing portal and subscription changes -

    def _create_portal_session(self, params: JSON, _: str) -> JSON:
        customer_id = _str(params, "customer", required=True)
        assert customer_id is not None
        self._get("customer", customer_id, param="customer", status=400)
        ident = _new_id("bps", 24)
        session: JSON = {
            "id": ident,
            "object": "billing_portal.session",
            "configuration": _str(params, "configuration") or "bpc_fakedefault",
            "created": self._now(),
            "customer": customer_id,
            "flow": None,
            "livemode": False,
            "locale": _str(params, "locale"),
            "on_behalf_of": None,
            "return_url": _str(params, "return_url"),
            "url": f"{self._base()}/portal/{ident}",
        }
        return self._put(session)

    def _check_price_for(self, price_id: str, param: str) -> JSON:
        price = self._get("price", price_id, param=param, status=400)
        if not price["active"] or price["recurring"] is None:
            raise _invalid(param, f"The price `{price_id}` is not an active recurring price.")
        return price

    def _live_subscription(self, ident: str) -> JSON:
        subscription = self._get("subscription", ident)
        if subscription["status"] == "canceled":
            raise FakeStripeError(
                400,
                "A canceled subscription can only update its cancellation_details and metadata.",
            )
        return subscription

    def switch_price(self, subscription_id: str, price_id: str) -> JSON:
        """Move a subscription's licensed item (the first item if none is) to another price,
        as the portal's "Switch" does; emits customer.subscription.updated."""
        with self._lock:
            subscription = self._live_subscription(subscription_id)
            price = self._check_price_for(price_id, "price")
            items = subscription["items"]["data"]
            licensed = [i for i in items if i["price"]["recurring"]["usage_type"] == "licensed"]
            item = (licensed or items)[0]
            if item["price"]["id"] == price_id:
                return copy.deepcopy(subscription)
            previous = {"items": copy.deepcopy(subscription["items"])}
            item["price"] = copy.deepcopy(price)
            if price["recurring"]["usage_type"] == "metered":
                item.pop("quantity", None)
            else:
                item.setdefault("quantity", 1)
            self._emit("customer.subscription.updated", subscription, previous)
            return copy.deepcopy(subscription)

    def cancel_subscription(self, subscription_id: str, *, at_period_end: bool = False) -> JSON:
        """Cancel now (emits customer.subscription.deleted) or at the period's end (emits
        customer.subscription.updated), as the portal's "Cancel" does."""
        with self._lock:
            subscription = self._live_subscription(subscription_id)
            now = self._now()
            details = {"comment": None, "feedback": None, "reason": "cancellation_requested"}
            if at_period_end:
                previous = {
                    name: subscription[name]
                    for name in ("cancel_at", "cancel_at_period_end", "canceled_at")
                }
                subscription.update(
                    cancel_at=subscription["current_period_end"],
                    cancel_at_period_end=True,
                    canceled_at=now,
                    cancellation_details=details,
                )
                self._emit("customer.subscription.updated", subscription, previous)
            else:
                subscription.update(
                    status="canceled",
                    canceled_at=now,
                    ended_at=now,
                    cancellation_details=details,
                )
                self._emit("customer.subscription.deleted", subscription)
            return copy.deepcopy(subscription)

    def _update_items(self, subscription: JSON, changes: list[Any]) -> None:
        items: list[JSON] = subscription["items"]["data"]
        for index, change in enumerate(changes):
            at = f"items[{index}]"
            if not isinstance(change, dict):
                raise _invalid(at, f"Invalid object: {at}")
            item_id = _str(change, "id")
            price_id = _str(change, "price")
            price = self._check_price_for(price_id, f"{at}[price]") if price_id else None
            if item_id is None:  # no id: a new item, as on Stripe
                if price is None:
                    raise _required(f"{at}[price]")
                if any(existing["price"]["id"] == price["id"] for existing in items):
                    raise _invalid(
                        f"{at}[price]",
                        "Cannot add multiple subscription items with the same price: "
                        f"{price['id']}.",
                    )
                start, end = (
                    subscription["current_period_start"],
                    subscription["current_period_end"],
                )
                new = self._new_item(
                    subscription["id"], price, _int(change, "quantity"), start, end
                )
                items.append(new)
                continue
            matches = [existing for existing in items if existing["id"] == item_id]
            if not matches:
                raise _missing("subscription item", item_id, f"{at}[id]", 400)
            item = matches[0]
            if _bool(change, "deleted", False):
                items.remove(item)
                continue
            if price is not None:
                item["price"] = copy.deepcopy(price)
                if price["recurring"]["usage_type"] == "metered":
                    item.pop("quantity", None)
                else:
                    item.setdefault("quantity", 1)
            quantity = _int(change, "quantity")
            if quantity is not None:
                item["quantity"] = quantity
        subscription["items"] = self._items_list(subscription["id"], items)

    def _update_subscription(self, params: JSON, ident: str) -> JSON:
        subscription = self._get("subscription", ident)
        structural = {"items", "cancel_at_period_end"} & params.keys()
        if structural:
            self._live_subscription(ident)
        before = copy.deepcopy(subscription)
        if "items" in params:
            self._update_items(subscription, _list(params, "items"))
        at_period_end = _bool(params, "cancel_at_period_end")
        if at_period_end is not None:
            subscription.update(
                cancel_at_period_end=at_period_end,
                cancel_at=subscription["current_period_end"] if at_period_end else None,
                canceled_at=self._now() if at_period_end else None,
            )
        if "metadata" in params:
            subscription["metadata"] = _metadata(params, subscription["metadata"])
        if "description" in params:
            subscription["description"] = _str(params, "description")
        previous = {name: before[name] for name in before if before[name] != subscription[name]}
        if previous:
            self._emit("customer.subscription.updated", subscription, previous)
        return subscription

    def _delete_subscription(self, params: JSON, ident: str) -> JSON:
        subscription = self._get("subscription", ident)
        if subscription["status"] == "canceled":
            raise FakeStripeError(
                400, f"The subscription {ident} has already been canceled.", param="subscription"
            )
        self.cancel_subscription(ident)
        return subscription

    def _list_subscriptions(self, params: JSON, _: str) -> JSON:
        customer = _str(params, "customer")
        status = _str(params, "status")
        price = _str(params, "price")

        def keep(subscription: JSON) -> bool:
            if status is None:
                status_ok = subscription["status"] not in {"canceled", "incomplete_expired"}
            else:
                status_ok = status == "all" or subscription["status"] == status
            prices = {item["price"]["id"] for item in subscription["items"]["data"]}
            return (
                status_ok
                and (customer is None or subscription["customer"] == customer)
                and (price is None or price in prices)
            )

        items = [s for s in self._all("subscription") if keep(s)]
        return self._page_list(items, params, "/v1/subscriptions")

    # - invoices and events -

    def _list_invoices(self, params: JSON, _: str) -> JSON:
        filters = {name: _str(params, name) for name in ("customer", "subscription", "status")}
        items = [
            invoice
            for invoice in self._all("invoice")
            if all(value is None or invoice[name] == value for name, value in filters.items())
        ]
        return self._page_list(items, params, "/v1/invoices")

    def _list_events(self, params: JSON, _: str) -> JSON:
        kind = _str(params, "type")
        kinds = {str(value) for value in _list(params, "types")}
        if kind is not None:
            kinds.add(kind)

        def keep(event: JSON) -> bool:
            return not kinds or any(
                event["type"] == wanted
                or (wanted.endswith(".*") and event["type"].startswith(wanted[:-1]))
                for wanted in kinds
            )

        items = [event for event in self._all("event") if keep(event)]
        return self._page_list(items, params, "/v1/events")

    # - hosted pages -

    def _serve_page(self, method: str, path: str, params: JSON) -> _Reply:
        parts = path.strip("/").split("/")
        try:
            if parts[0] == "checkout" and len(parts) in {2, 3}:
                return self._checkout_page(method, parts[1], parts[2:], params)
            if parts[0] == "portal" and len(parts) in {2, 3}:
                return self._portal_page(method, parts[1], parts[2:], params)
            if parts[0] == "invoice" and len(parts) == 2 and method == "GET":
                return self._invoice_page(parts[1])
        except FakeStripeError as exc:
            return _page("Something went wrong", f"<p>{html.escape(exc.message)}</p>", 400)
        return _page("Not found", f"<p>No page at {html.escape(path)}.</p>", 404)

    def _checkout_page(self, method: str, ident: str, action: list[str], params: JSON) -> _Reply:
        session = self._store.get("checkout.session", {}).get(ident)
        if session is None:
            return _page("Not found", "<p>This Checkout Session does not exist.</p>", 404)
        if method == "POST" and action == ["pay"]:
            if session["status"] == "open":
                self.complete_checkout(ident)
            if session["success_url"]:
                return _redirect(session["success_url"].replace("{CHECKOUT_SESSION_ID}", ident))
            return _page("Payment complete", "<p>Thanks! You can close this page.</p>")
        if method != "GET" or action:
            return _page("Not found", "<p>No such action.</p>", 404)
        if session["status"] != "open":
            return _page("Already paid", "<p>This Checkout Session is complete.</p>")
        rows = ""
        for price_id, quantity in self._session_lines.get(ident, []):
            price = self._get("price", price_id)
            product = self._store.get("product", {}).get(price["product"], {})
            name = price.get("nickname") or product.get("name") or price["product"]
            each = None if quantity is None else price["unit_amount"]
            interval = price["recurring"]["interval"]
            rows += (
                f"<tr><td>{html.escape(str(name))}</td><td>{quantity or ''}</td>"
                f"<td>{html.escape(_money(each, price['currency']))} / {interval}</td></tr>"
            )
        email = session["customer_email"] or ""
        if session["customer"]:
            email = self._get("customer", session["customer"])["email"] or email
        cancel = ""
        if session["cancel_url"]:
            cancel = f' <a href="{html.escape(session["cancel_url"])}">Cancel</a>'
        body = (
            f"<p>{html.escape(email)}</p><table><tr><th>Item</th><th>Qty</th><th>Price</th></tr>"
            f"{rows}</table><p>Total due today: "
            f"<strong>{html.escape(_money(session['amount_total'], session['currency']))}"
            f"</strong></p>{_form(f'/checkout/{ident}/pay', 'Pay', {})}{cancel}"
        )
        return _page("Checkout", body)

    def _portal_page(self, method: str, ident: str, action: list[str], params: JSON) -> _Reply:
        session = self._store.get("billing_portal.session", {}).get(ident)
        if session is None:
            return _page("Not found", "<p>This portal session does not exist.</p>", 404)
        back = session["return_url"]
        if method == "POST" and action in (["switch"], ["cancel"]):
            subscription_id = _str(params, "subscription", required=True)
            assert subscription_id is not None
            owned = self._store.get("subscription", {}).get(subscription_id)
            if owned is None or owned["customer"] != session["customer"]:
                return _page("Not allowed", "<p>That subscription is not yours.</p>", 403)
            if action == ["switch"]:
                price_id = _str(params, "price", required=True)
                assert price_id is not None
                self.switch_price(subscription_id, price_id)
            else:
                self.cancel_subscription(subscription_id)
            return _redirect(back) if back else _page("Done", "<p>Your plan was updated.</p>")
        if method != "GET" or action:
            return _page("Not found", "<p>No such action.</p>", 404)
        return _page("Manage your subscription", self._portal_body(session))

    def _portal_body(self, session: JSON) -> str:
        ident = session["id"]
        licensed = [
            price
            for price in self._all("price")
            if price["active"]
            and price["recurring"] is not None
            and price["recurring"]["usage_type"] == "licensed"
        ]
        blocks = []
        for subscription in self._all("subscription"):
            if subscription["customer"] != session["customer"]:
                continue
            if subscription["status"] == "canceled":
                continue
            current = {item["price"]["id"] for item in subscription["items"]["data"]}
            plans = ", ".join(
                html.escape(str(item["price"].get("nickname") or item["price"]["id"]))
                for item in subscription["items"]["data"]
            )
            fields = {"subscription": subscription["id"]}
            switches = "".join(
                _form(
                    f"/portal/{ident}/switch",
                    f"Switch to {price.get('nickname') or price['id']}",
                    {**fields, "price": price["id"]},
                )
                + " "
                for price in licensed
                if price["id"] not in current and price["currency"] == subscription["currency"]
            )
            cancel = _form(f"/portal/{ident}/cancel", "Cancel subscription", fields, "danger")
            blocks.append(
                f'<section data-subscription="{html.escape(subscription["id"])}">'
                f"<h2>{plans}</h2><p>Status: {html.escape(subscription['status'])}</p>"
                f"<p>{switches}</p><p>{cancel}</p></section>"
            )
        if not blocks:
            blocks.append("<p>No active subscriptions.</p>")
        back = session["return_url"]
        link = f'<p><a href="{html.escape(back)}">Return</a></p>' if back else ""
        return "".join(blocks) + link

    def _invoice_page(self, ident: str) -> _Reply:
        invoice = self._store.get("invoice", {}).get(ident)
        if invoice is None:
            return _page("Not found", "<p>This invoice does not exist.</p>", 404)
        rows = "".join(
            f"<tr><td>{html.escape(line['description'])}</td>"
            f"<td>{html.escape(_money(line['amount'], line['currency']))}</td></tr>"
            for line in invoice["lines"]["data"]
        )
        body = (
            f"<p>Invoice {html.escape(invoice['number'])} - {html.escape(invoice['status'])}</p>"
            f"<table>{rows}</table><p>Amount paid: "
            f"{html.escape(_money(invoice['amount_paid'], invoice['currency']))}</p>"
        )
        return _page("Invoice", body)


def _b64decode(text: str) -> str:
    try:
        return base64.b64decode(text, validate=True).decode()
    except (binascii.Error, UnicodeDecodeError) as exc:
        raise ValueError(str(exc)) from exc


def main(argv: Sequence[str] | None = None) -> None:
    """Serve until interrupted: the offline demo's Stripe."""
    parser = argparse.ArgumentParser(description="FireFlow's fake Stripe")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=12111)
    parser.add_argument("--webhook-url", default=None, help="where to POST signed events")
    parser.add_argument("--webhook-secret", default=DEFAULT_WEBHOOK_SECRET)
    parser.add_argument("--public-url", default=None, help="base URL for hosted-page links")
    args = parser.parse_args(argv)
    server = FakeStripeServer(
        args.host,
        args.port,
        webhook_url=args.webhook_url,
        webhook_secret=args.webhook_secret,
        public_url=args.public_url,
    )
    with server:
        print(f"fake Stripe on {server.url} (webhook secret {server.webhook_secret})", flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            threading.Event().wait()
