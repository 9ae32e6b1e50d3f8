"""Outbound HTTP without SSRF (SECURITY.md, tenancy item 5).

Every request, and every redirect hop, is checked: http(s) only, no userinfo, and the host
is resolved once, *every* address it resolves to must be public (or on the workspace's
allow list), and the connection goes to that checked address (the URL is rewritten to the
IP, with the original Host header and TLS server name), so DNS rebinding between the check
and the connection is impossible. Responses are size-limited and time-limited."""

import asyncio
import ipaddress
import socket
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urljoin, urlsplit, urlunsplit

import httpx

Resolver = Callable[[str, int], Awaitable[list[str]]]
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
_REDIRECTS = {301, 302, 303, 307, 308}


class BlockedURL(Exception):
    """The URL may not be fetched; the message says why (for the node's user)."""


async def system_resolve(host: str, port: int) -> list[str]:
    loop = asyncio.get_running_loop()
    infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


@dataclass(frozen=True)
class AllowList:
    """Self-hosted endpoints a workspace may reach despite private addresses: host names
    (exact), IP addresses or CIDR ranges, each optionally with `:port`."""

    entries: tuple[str, ...] = ()

    def _parsed(
        self,
    ) -> list[tuple[str | ipaddress.IPv4Network | ipaddress.IPv6Network, int | None]]:
        parsed: list[tuple[str | ipaddress.IPv4Network | ipaddress.IPv6Network, int | None]] = []
        for entry in self.entries:
            value, port = entry.strip().lower(), None
            if value.count(":") == 1 or (value.startswith("[") and "]:" in value):
                value, _, port_text = value.rpartition(":")
                port = int(port_text)
            value = value.strip("[]")
            try:
                parsed.append((ipaddress.ip_network(value, strict=False), port))
            except ValueError:
                parsed.append((value, port))
        return parsed

    def allows(self, host: str, address: IPAddress, port: int) -> bool:
        for target, allowed_port in self._parsed():
            if allowed_port is not None and allowed_port != port:
                continue
            if isinstance(target, str):
                if target == host.lower():
                    return True
            elif address in target:
                return True
        return False


_PROBLEMS: tuple[tuple[Callable[[IPAddress], bool], str], ...] = (
    (lambda a: a.is_loopback, "a loopback address"),
    (lambda a: a.is_unspecified, "the unspecified address"),
    (lambda a: a.is_link_local, "a link-local address (cloud metadata lives there)"),
    (lambda a: a.is_multicast, "a multicast address"),
    (lambda a: a.is_private or not a.is_global, "a private or reserved address"),
)


def address_problem(address: IPAddress) -> str | None:
    """Why an address is off limits, or None for a public one."""
    if isinstance(address, ipaddress.IPv6Address):
        embedded = address.ipv4_mapped or address.sixtofour
        if embedded is not None:
            return address_problem(embedded)
        if address.teredo is not None:
            return "a Teredo tunnel address"
    return next((reason for test, reason in _PROBLEMS if test(address)), None)


@dataclass(frozen=True)
class Target:
    url: str  # the URL rewritten to the checked address
    host: str
    address: str
    port: int


async def check_url(url: str, allow: AllowList, resolve: Resolver = system_resolve) -> Target:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise BlockedURL(f"only http and https URLs may be fetched, not {parts.scheme or '?'}:")
    if parts.username is not None or parts.password is not None or "@" in parts.netloc:
        raise BlockedURL("URLs with user names or passwords in them are refused")
    host = parts.hostname
    if not host:
        raise BlockedURL("the URL has no host")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        raise BlockedURL("the URL's port is not a number between 0 and 65535") from None
    try:
        addresses = await resolve(host, port)
    except OSError:
        raise BlockedURL(f"the host {host} could not be resolved") from None
    if not addresses:
        raise BlockedURL(f"the host {host} could not be resolved")
    checked: list[IPAddress] = []
    for text in addresses:
        address = ipaddress.ip_address(text.split("%", 1)[0])
        problem = address_problem(address)
        if problem and not allow.allows(host, address, port):
            raise BlockedURL(
                f"{host} resolves to {address}, {problem}; a workspace owner can allow it "
                "in the workspace's network settings if it is a trusted self-hosted service"
            )
        checked.append(address)
    address = checked[0]
    netloc = f"[{address}]" if address.version == 6 else str(address)
    if parts.port:
        netloc += f":{parts.port}"
    rewritten = urlunsplit((parts.scheme, netloc, parts.path or "/", parts.query, ""))
    return Target(url=rewritten, host=host, address=str(address), port=port)


@dataclass(frozen=True)
class FetchResult:
    status: int
    headers: dict[str, str]
    body: bytes
    url: str


async def guarded_fetch(
    method: str,
    url: str,
    *,
    allow: AllowList = AllowList(),
    headers: dict[str, str] | None = None,
    json_body: Any = None,
    timeout: float = 10.0,
    max_bytes: int = 1_000_000,
    max_redirects: int = 5,
    resolve: Resolver = system_resolve,
) -> FetchResult:
    """Fetch `url` with every SSRF check applied, following redirects (each re-checked)."""
    async with httpx.AsyncClient(timeout=timeout, follow_redirects=False, trust_env=False) as c:
        for _ in range(max_redirects + 1):
            target = await check_url(url, allow, resolve)
            host_header = urlsplit(url).netloc.rpartition("@")[2]
            request = c.build_request(
                method,
                target.url,
                headers={**(headers or {}), "Host": host_header},
                json=json_body,
                extensions={"sni_hostname": target.host},
            )
            response = await c.send(request, stream=True)
            try:
                if response.status_code in _REDIRECTS and "location" in response.headers:
                    url = urljoin(url, response.headers["location"])
                    if response.status_code == 303 or (
                        response.status_code in (301, 302) and method == "POST"
                    ):
                        method, json_body = "GET", None
                    continue
                body = await _read_limited(response, max_bytes)
                return FetchResult(response.status_code, dict(response.headers), body, url)
            finally:
                await response.aclose()
    raise BlockedURL(f"more than {max_redirects} redirects")


async def _read_limited(response: httpx.Response, max_bytes: int) -> bytes:
    declared = response.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > max_bytes:
        raise BlockedURL(f"the response is {declared} bytes, over the {max_bytes}-byte limit")
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.aiter_bytes():
        size += len(chunk)
        if size > max_bytes:
            raise BlockedURL(f"the response is over the {max_bytes}-byte limit")
        chunks.append(chunk)
    return b"".join(chunks)


def allow_list(entries: Sequence[str] | None) -> AllowList:
    return AllowList(tuple(entries or ()))
