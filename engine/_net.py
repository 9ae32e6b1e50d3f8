"""Outbound HTTP without SSRF (SECURITY.md, tenancy item 5).

Every request, and every redirect hop, is checked: http(s) only, no userinfo, and the host
is resolved once, *every* address it resolves to must be public (or on the workspace's
allow list), and the connection goes to that checked address (the URL is rewritten to the
IP, with the original Host header and TLS server name), so DNS rebinding between the check
and the connection is impossible. Responses are size-limited and time-limited."""

import asyncio
import ipaddress
import logging
import socket
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urljoin, urlsplit, urlunsplit

import httpx

Resolver = Callable[[str, int], Awaitable[list[str]]]
# httpx logs every request's full URL at INFO, query string (and its tokens) included.
logging.getLogger("httpx").setLevel(logging.WARNING)
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
_REDIRECTS = {301, 302, 303, 307, 308}


class BlockedURL(Exception):
    """The URL may not be fetched; the message says why (for the node's user)."""


async def system_resolve(host: str, port: int) -> list[str]:
    loop = asyncio.get_running_loop()
    infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


Network = ipaddress.IPv4Network | ipaddress.IPv6Network

# Private ranges an operator lets workspaces allow by default (never link-local, where cloud
# metadata lives, nor loopback, where the worker's own services listen).
DEFAULT_ALLOWABLE = ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10", "fc00::/7")


class BadAllowEntry(ValueError):
    """An allow-list entry that cannot be used; the message names it and says why."""


def parse_allow_entry(entry: str) -> tuple[str | Network, int | None]:
    """`host`, `IP` or `CIDR`, each with an optional `:port` (`[v6]:port` for IPv6)."""
    value, port_text = entry.strip().lower(), ""
    if value.startswith("["):
        address, sep, rest = value[1:].partition("]")
        if not sep or (rest and not rest.startswith(":")):
            raise BadAllowEntry(f"'{entry}': write IPv6 with a port as [address]:port")
        value, port_text = address, rest[1:]
    elif value.count(":") == 1:
        value, _, port_text = value.partition(":")
    port = None
    if port_text:
        if not port_text.isdigit() or not 0 < int(port_text) < 65536:
            raise BadAllowEntry(f"'{entry}': the port must be a number from 1 to 65535")
        port = int(port_text)
    try:
        return ipaddress.ip_network(value, strict=False), port
    except ValueError:
        pass
    labels = value.rstrip(".").split(".")
    if (
        not value
        or any(not label or len(label) > 63 for label in labels)
        or not all(c.isalnum() or c == "-" for label in labels for c in label)
    ):
        raise BadAllowEntry(f"'{entry}' is neither a host name, an IP address nor a CIDR range")
    return value.rstrip("."), port


def check_allow_entry(entry: str, allowable: Sequence[str]) -> None:
    """Raise BadAllowEntry unless `entry` may be put on a workspace's allow list: an address
    or range must lie inside what the operator made allowable."""
    target, _ = parse_allow_entry(entry)
    if isinstance(target, str):
        return  # a host name: what it resolves to is checked against `allowable` per fetch
    ceiling = [ipaddress.ip_network(n, strict=False) for n in allowable]
    if not any(
        target.version == net.version and target.subnet_of(net)  # type: ignore[arg-type]
        for net in ceiling
    ):
        raise BadAllowEntry(
            f"'{entry}' is outside the networks this installation lets workspaces reach "
            f"({', '.join(allowable) or 'none'})"
        )


@dataclass(frozen=True)
class AllowList:
    """Self-hosted endpoints a workspace may reach although they are private: host names
    (exact), IP addresses or CIDR ranges, each optionally with `:port`; and only inside the
    operator's `allowable` networks, whatever the entries say."""

    entries: tuple[str, ...] = ()
    allowable: tuple[str, ...] = DEFAULT_ALLOWABLE
    _targets: tuple[tuple[str | Network, int | None], ...] = field(init=False, default=())
    _ceiling: tuple[Network, ...] = field(init=False, default=())

    def __post_init__(self) -> None:
        targets = []
        for entry in self.entries:
            try:
                targets.append(parse_allow_entry(entry))
            except BadAllowEntry:
                continue  # refused when saved; an old bad entry simply allows nothing
        object.__setattr__(self, "_targets", tuple(targets))
        ceiling = tuple(ipaddress.ip_network(n, strict=False) for n in self.allowable)
        object.__setattr__(self, "_ceiling", ceiling)

    def allows(self, host: str, address: IPAddress, port: int) -> bool:
        if not any(address in net for net in self._ceiling):
            return False
        for target, allowed_port in self._targets:
            if allowed_port is not None and allowed_port != port:
                continue
            if isinstance(target, str):
                if target == host.lower().rstrip("."):
                    return True
            elif address in target:
                return True
        return False


# IPv6 prefixes that carry an IPv4 address in their last 32 bits (NAT64, IPv4-compatible,
# IPv4-translated): the embedded address is what gets reached, so it is what is checked.
_EMBEDS_IPV4 = tuple(
    ipaddress.IPv6Network(n) for n in ("64:ff9b::/96", "64:ff9b:1::/48", "::/96", "::ffff:0:0:0/96")
)
_NEVER_V6 = tuple(ipaddress.IPv6Network(n) for n in ("fec0::/10", "100::/64", "2001:db8::/32"))


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
        if embedded is None and any(address in net for net in _EMBEDS_IPV4):
            if address == ipaddress.IPv6Address("::"):
                return "the unspecified address"
            if address == ipaddress.IPv6Address("::1"):
                return "a loopback address"
            embedded = ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
        if embedded is not None:
            return address_problem(embedded)
        if address.teredo is not None:
            return "a Teredo tunnel address"
        if any(address in net for net in _NEVER_V6):
            return "a private or reserved address"
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


# Headers a flow may not set: they belong to the connection, or would pick another virtual
# host or proxy than the checked one.
_RESERVED_HEADERS = {
    "host",
    "content-length",
    "transfer-encoding",
    "connection",
    "te",
    "upgrade",
    "keep-alive",
    "trailer",
}


def user_headers(headers: dict[str, str] | None) -> dict[str, str]:
    return {
        name: value
        for name, value in (headers or {}).items()
        if name.lower() not in _RESERVED_HEADERS and not name.lower().startswith("proxy-")
    }


def redact(url: str) -> str:
    """A URL fit for an error message or an event: no user info, no query (tokens live
    there), no fragment."""
    parts = urlsplit(url)
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit((parts.scheme, host, parts.path, "", ""))


async def guarded_fetch(
    method: str,
    url: str,
    *,
    allow: AllowList = AllowList(),
    headers: dict[str, str] | None = None,
    json_body: Any = None,
    content: bytes | None = None,
    timeout: float = 10.0,
    max_bytes: int = 1_000_000,
    max_redirects: int = 5,
    resolve: Resolver = system_resolve,
) -> FetchResult:
    """Fetch `url` with every SSRF check applied, following redirects (each re-checked).
    `timeout` bounds the whole exchange, redirects included. A redirect to another origin
    carries none of the flow's headers or body, and https never downgrades to http.
    `content` sends these exact bytes (a signed body) instead of `json_body`."""
    sent_headers = user_headers(headers)
    async with (
        asyncio.timeout(timeout),
        httpx.AsyncClient(
            timeout=timeout,
            follow_redirects=False,
            trust_env=False,
            # A fresh TLS connection per host name: never one verified for another name.
            limits=httpx.Limits(max_keepalive_connections=0),
        ) as client,
    ):
        for _ in range(max_redirects + 1):
            target = await check_url(url, allow, resolve)
            host_header = urlsplit(url).netloc.rpartition("@")[2]
            request = client.build_request(
                method,
                target.url,
                headers={**sent_headers, "Host": host_header},
                json=json_body,
                content=content,
                extensions={"sni_hostname": target.host},
            )
            response = await client.send(request, stream=True)
            try:
                if response.status_code in _REDIRECTS and "location" in response.headers:
                    next_url = urljoin(url, response.headers["location"])
                    old, new = urlsplit(url), urlsplit(next_url)
                    if old.scheme == "https" and new.scheme == "http":
                        raise BlockedURL("refused a redirect from https to plain http")
                    if (old.scheme, old.netloc) != (new.scheme, new.netloc):
                        sent_headers, json_body, content = {}, None, None
                    if response.status_code == 303 or (
                        response.status_code in (301, 302) and method == "POST"
                    ):
                        method, json_body, content = "GET", None, None
                    url = next_url
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


def allow_list(entries: Sequence[str] | None, allowable: Sequence[str] | None = None) -> AllowList:
    if allowable is None:
        return AllowList(tuple(entries or ()))
    return AllowList(tuple(entries or ()), tuple(allowable))
