"""The HTTP node and its SSRF guard (SECURITY.md tenancy item 5): a matrix of addresses
that must be refused, redirects re-checked at every hop, DNS answers checked as a whole and
connected to as checked, the per-workspace allow list, size and time limits."""

import asyncio
import ipaddress
import json
import re
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from engine import NodeContext, NodeError, node_type
from engine._net import (
    DEFAULT_ALLOWABLE,
    AllowList,
    BadAllowEntry,
    BlockedURL,
    check_allow_entry,
    check_url,
    guarded_fetch,
)

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
    "http://[64:ff9b::a9fe:a9fe]/",  # NAT64 of 169.254.169.254
    "http://[64:ff9b::a00:1]/",  # NAT64 of 10.0.0.1
    "http://[::7f00:1]/",  # IPv4-compatible 127.0.0.1
    "http://[::ffff:0:7f00:1]/",  # IPv4-translated 127.0.0.1
    "http://[fec0::1]/",  # site-local
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

    seen: list[tuple[str, str, str | None]] = []

    def do_GET(self) -> None:
        self.seen_hosts.append(self.headers["Host"])
        self.seen.append((self.path, self.headers["Host"], self.headers.get("Authorization")))
        kind, value = self.routes.get(self.path.split("?")[0], ("json", {"ok": True}))
        if kind == "redirect":
            self.send_response(302)
            self.send_header("Location", value)
            self.end_headers()
            return
        if kind == "sleep":
            time.sleep(value)
        body = json.dumps({"ok": True}).encode() if kind != "big" else b"x" * value
        self.send_response(200)
        self.send_header("Set-Cookie", "session=abc")
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


LOOPBACK_ALLOWABLE = ["127.0.0.0/8"]  # what a development installation lets workspaces open


def run_node(url: str, allow: list[str], **config: Any) -> dict[str, Any]:
    cls = node_type("http_request")
    assert cls is not None
    extra = {"http_allow": allow, "http_allowable": LOOPBACK_ALLOWABLE}
    ctx = NodeContext(run_id="r", node_id="fetch", extra=extra)
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
            allow=AllowList(("svc.internal",), tuple(LOOPBACK_ALLOWABLE)),
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


def test_the_allow_list_cannot_open_what_the_operator_did_not() -> None:
    """A workspace owner's entries count only inside the installation's allowable networks:
    cloud metadata, loopback (in production) and the like stay closed whatever they write."""
    metadata = ipaddress.ip_address("169.254.169.254")
    assert not AllowList(("169.254.169.254", "0.0.0.0/0")).allows("x", metadata, 80)
    assert not AllowList(("127.0.0.1",)).allows("x", ipaddress.ip_address("127.0.0.1"), 80)
    assert AllowList(("10.1.2.3",)).allows("x", ipaddress.ip_address("10.1.2.3"), 80)
    for entry in ("169.254.169.254", "0.0.0.0/0", "127.0.0.1:5432", "[::1]", "::/0"):
        with pytest.raises(BadAllowEntry, match="outside the networks"):
            check_allow_entry(entry, DEFAULT_ALLOWABLE)
    for entry in ("http://10.0.0.1/", "a b", "10.0.0.1:99999", "[fd00::1"):
        with pytest.raises(BadAllowEntry):
            check_allow_entry(entry, DEFAULT_ALLOWABLE)
    check_allow_entry("ollama.internal:11434", DEFAULT_ALLOWABLE)
    check_allow_entry("10.20.0.0/16", DEFAULT_ALLOWABLE)
    check_allow_entry("[fd00::5]:8080", DEFAULT_ALLOWABLE)


def test_flows_cannot_set_host_or_leak_credentials(server: int) -> None:
    _Handler.seen.clear()
    _Handler.routes["/hop"] = ("redirect", f"http://localhost:{server}/landing")
    allow = [f"127.0.0.1:{server}", f"localhost:{server}"]
    result = run_node(
        f"http://127.0.0.1:{server}/hop?token=s3cr3t",
        allow,
        headers={"hOsT": "admin.internal", "Authorization": "Bearer s3cr3t"},
    )
    assert result["status"] == 200
    first, second = _Handler.seen
    assert first == ("/hop?token=s3cr3t", f"127.0.0.1:{server}", "Bearer s3cr3t")
    # Another origin: the flow's headers stay behind.
    assert second == ("/landing", f"localhost:{server}", None)
    assert "set-cookie" not in result["headers"]

    _Handler.routes["/to-metadata-with-token"] = ("redirect", "http://169.254.169.254/")
    with pytest.raises(NodeError) as caught:
        run_node(f"http://127.0.0.1:{server}/to-metadata-with-token?token=s3cr3t", allow)
    assert "s3cr3t" not in str(caught.value)
