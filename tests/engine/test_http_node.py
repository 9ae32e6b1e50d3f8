"""The HTTP node and its SSRF guard (SECURITY.md tenancy item 5): a matrix of addresses
that must be refused, redirects re-checked at every hop, DNS answers checked as a whole and
connected to as checked, the per-workspace allow list, size and time limits."""

import asyncio
import json
import re
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from engine import NodeContext, NodeError, node_type
from engine._net import AllowList, BlockedURL, check_url, guarded_fetch

BLOCKED = [
    "http://127.0.0.1/",
    "http://127.1/",
    "http://localhost/",
    "http://[::1]/",
    "http://[::ffff:127.0.0.1]/",
    "http://[::ffff:7f00:1]/",
    "http://0.0.0.0/",
    "http://[::]/",
    "http://169.254.169.254/latest/meta-data/",
    "http://[fe80::1]/",
    "http://[fd00:ec2::254]/",
    "http://10.0.0.1/",
    "http://172.16.0.1/",
    "http://192.168.1.1/",
    "http://100.64.0.1/",
    "http://2130706433/",  # 127.0.0.1 as an integer
    "http://0x7f000001/",  # ... in hex
    "http://0177.0.0.1/",  # ... in octal
    "http://[2002:7f00:1::]/",  # 6to4 wrapping 127.0.0.1
    "http://user@127.0.0.1/",
    "http://example.com@127.0.0.1/",
    "http://127.0.0.1:80@example.com/",
    "file:///etc/passwd",
    "gopher://127.0.0.1:6379/_INFO",
    "ftp://example.com/",
    "http://224.0.0.1/",
]


@pytest.mark.parametrize("url", BLOCKED)
def test_refused_addresses(url: str) -> None:
    with pytest.raises(BlockedURL):
        asyncio.run(check_url(url, AllowList()))


def test_public_address_is_rewritten_to_the_checked_ip() -> None:
    async def resolve(host: str, port: int) -> list[str]:
        return ["93.184.216.34"]

    target = asyncio.run(check_url("https://example.com/a?b=1", AllowList(), resolve))
    assert target.url == "https://93.184.216.34/a?b=1"
    assert (target.host, target.port) == ("example.com", 443)


def test_any_private_answer_blocks_the_name() -> None:
    """DNS rebinding: one public and one private answer is refused as a whole."""

    async def resolve(host: str, port: int) -> list[str]:
        return ["93.184.216.34", "127.0.0.1"]

    with pytest.raises(BlockedURL, match=re.escape("resolves to 127.0.0.1, a loopback address")):
        asyncio.run(check_url("http://rebind.example/", AllowList(), resolve))


class _Handler(BaseHTTPRequestHandler):
    routes: dict[str, Any] = {}
    seen_hosts: list[str] = []

    def do_GET(self) -> None:
        self.seen_hosts.append(self.headers["Host"])
        kind, value = self.routes.get(self.path, ("json", {"ok": True}))
        if kind == "redirect":
            self.send_response(302)
            self.send_header("Location", value)
            self.end_headers()
            return
        if kind == "sleep":
            time.sleep(value)
        body = json.dumps({"ok": True}).encode() if kind != "big" else b"x" * value
        self.send_response(200)
        self.send_header("Content-Type", "application/json" if kind != "big" else "text/plain")
        if kind != "big":
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def server() -> Iterator[int]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield httpd.server_address[1]
    httpd.shutdown()


def run_node(url: str, allow: list[str], **config: Any) -> dict[str, Any]:
    cls = node_type("http_request")
    assert cls is not None
    ctx = NodeContext(run_id="r", node_id="fetch", extra={"http_allow": allow})
    return asyncio.run(cls().execute({"url": url, **config}, {}, ctx))


def test_local_service_needs_the_allow_list(server: int) -> None:
    url = f"http://127.0.0.1:{server}/health"
    with pytest.raises(NodeError, match="a loopback address; a workspace owner can allow it"):
        run_node(url, [])
    result = run_node(url, [f"127.0.0.1:{server}"])
    assert (result["status"], result["body"]) == (200, {"ok": True})
    assert result["headers"]["content-type"] == "application/json"
    with pytest.raises(NodeError):
        run_node(url, ["127.0.0.1:1"])  # another port is not this service


def test_redirects_are_checked_at_every_hop(server: int) -> None:
    _Handler.routes["/to-metadata"] = ("redirect", "http://169.254.169.254/latest/meta-data/")
    _Handler.routes["/to-other-port"] = ("redirect", "http://127.0.0.1:9/")
    _Handler.routes["/to-health"] = ("redirect", "/health")
    allow = [f"127.0.0.1:{server}"]
    with pytest.raises(NodeError, match=re.escape("169.254.169.254, a link-local address")):
        run_node(f"http://127.0.0.1:{server}/to-metadata", allow)
    with pytest.raises(NodeError, match="loopback"):
        run_node(f"http://127.0.0.1:{server}/to-other-port", allow)
    assert run_node(f"http://127.0.0.1:{server}/to-health", allow)["body"] == {"ok": True}


def test_allowed_name_connects_to_the_address_it_resolved(server: int) -> None:
    calls: list[str] = []

    async def resolve(host: str, port: int) -> list[str]:
        calls.append(host)
        return ["127.0.0.1"]

    _Handler.seen_hosts.clear()
    result = asyncio.run(
        guarded_fetch(
            "GET",
            f"http://svc.internal:{server}/health",
            allow=AllowList(("svc.internal",)),
            resolve=resolve,
        )
    )
    assert result.status == 200
    assert calls == ["svc.internal"]  # resolved once; the connection used that answer
    assert _Handler.seen_hosts == [f"svc.internal:{server}"]


def test_size_and_time_limits(server: int) -> None:
    _Handler.routes["/big"] = ("big", 2_000_000)
    _Handler.routes["/slow"] = ("sleep", 2)
    allow = [f"127.0.0.1:{server}"]
    with pytest.raises(NodeError, match="over the 1000000-byte limit"):
        run_node(f"http://127.0.0.1:{server}/big", allow)
    with pytest.raises(NodeError, match="did not answer in time"):
        run_node(f"http://127.0.0.1:{server}/slow", allow, timeout_seconds=0.5)
