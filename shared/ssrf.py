"""Refuse to connect to internal addresses (SSRF guard).

The check runs where the connection is made, on the address actually dialled:
the host is resolved here, every address it resolves to is checked, and the
socket goes to a checked address. So neither a redirect nor DNS that answers
differently the second time (rebinding) can lead a fetch inside the network.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import ssl
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import httpcore
import httpx

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


class AddressRefused(Exception):
    """The host is, or resolves to, an address that fetches must not reach."""


@dataclass(frozen=True)
class AllowList:
    """Hosts (by name) and networks that may be fetched although internal."""

    hosts: frozenset[str] = frozenset()
    networks: tuple[IPNetwork, ...] = ()

    @classmethod
    def parse(cls, text: str) -> AllowList:
        """`"localhost, 127.0.0.0/8, ::1"`: CIDRs and addresses are networks, the rest names."""
        hosts: set[str] = set()
        networks: list[IPNetwork] = []
        for item in (part.strip() for part in text.split(",")):
            if not item:
                continue
            try:
                networks.append(ipaddress.ip_network(item, strict=False))
            except ValueError:
                hosts.add(item.lower().rstrip("."))
        return cls(frozenset(hosts), tuple(networks))


# Where an IPv6 address is only a wrapper around an IPv4 one, the IPv4 address is
# what the connection reaches (directly, or through a NAT64 gateway or 6to4 relay),
# so it is checked too: 64:ff9b::a9fe:a9fe is the metadata address.
NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
IPV4_COMPATIBLE = ipaddress.IPv6Network("::/96")
IPV4_TRANSLATED = ipaddress.IPv6Network("::ffff:0:0:0/96")  # SIIT (RFC 2765)
# Refused whole: RFC 8215's local-use NAT64 prefix leads wherever the site's own
# translator points, and 6to4 (deprecated by RFC 7526) goes through relays anyone
# can run (Python 3.12.4 and later count 2002::/16 as not global, 3.11 does not).
# Site-local addresses (fec0::/10, deprecated by RFC 3879) still route inside some
# networks, and Python counts them as global.
REFUSED_WHOLE = (
    ipaddress.IPv6Network("64:ff9b:1::/48"),
    ipaddress.IPv6Network("2002::/16"),
    ipaddress.IPv6Network("fec0::/10"),
)
# IANA's IETF protocol assignments, not globally reachable (but for two anycast
# addresses no news site is on); Python counts 192.0.0.8, the dummy address, as global.
REFUSED_IPV4 = ipaddress.IPv4Network("192.0.0.0/24")


def embedded_ipv4(address: IPAddress) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv4-mapped, -compatible or -translated, NAT64 or 6to4 one reaches."""
    if isinstance(address, ipaddress.IPv4Address):
        return None
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address in NAT64 or address in IPV4_COMPATIBLE or address in IPV4_TRANSLATED:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def _internal(address: IPAddress) -> bool:
    # is_global is False for loopback, private, link-local (169.254.169.254, the
    # cloud metadata address), carrier-grade NAT, documentation and reserved ranges.
    return (
        not address.is_global
        or address.is_multicast
        or (
            any(address in network for network in REFUSED_WHOLE)
            if isinstance(address, ipaddress.IPv6Address)
            else address in REFUSED_IPV4
        )
    )


def refusal(host: str, address: IPAddress, allow: AllowList) -> str | None:
    """Why `address` (which `host` resolved to) must not be fetched, or None if it may."""
    if host.lower().rstrip(".") in allow.hosts:
        return None
    embedded = embedded_ipv4(address)
    reached = [a for a in (address, embedded) if a is not None]
    if any(a in network for a in reached for network in allow.networks):
        return None
    if not any(_internal(a) for a in reached):
        return None
    shown = f"{address} ({embedded})" if embedded is not None else str(address)
    where = f"{host} is" if host == str(address) else f"{host} resolves to {shown},"
    return f"{where} an internal address (see CARAVAN_FETCH_ALLOW)"


def check_all(host: str, addresses: Iterable[IPAddress], allow: AllowList) -> None:
    """Raise AddressRefused unless every address is fetchable: one bad one taints the name."""
    for address in addresses:
        reason = refusal(host, address, allow)
        if reason:
            raise AddressRefused(reason)


async def resolve(host: str, port: int) -> list[IPAddress]:
    try:
        return [ipaddress.ip_address(host)]
    except ValueError:
        pass
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise httpcore.ConnectError(f"cannot resolve {host}: {exc.strerror}") from exc
    except UnicodeError as exc:
        # A label empty or over 63 characters (`a..example`): no name to look up, and
        # the IDNA codec's error would escape every caller's fetch failure.
        raise httpcore.ConnectError(f"cannot resolve {host}: {exc}") from exc
    # The scope id (`%eth0`) of a link-local IPv6 address is not part of the address.
    return list(
        dict.fromkeys(ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in infos)
    )


# What a server may send after a request before its answer's head is whole: the head
# (h11 takes 16 KiB of it), the first read of the body with it, and a few interim (1xx)
# answers. httpcore reads interim answers for as long as they come: an endless stream of
# "100 Continue" kept the process at a full core until the fetch's deadline, every try.
HEAD_MAX_BYTES = 256 * 1024


class HeadBounded(httpcore.AsyncNetworkStream):
    """A connection that reads at most HEAD_MAX_BYTES from a request going out until its
    answer's head is taken (`head_taken`); the body's bounds are the fetcher's."""

    def __init__(self, stream: httpcore.AsyncNetworkStream) -> None:
        self._stream = stream
        self._head_bytes: int | None = 0  # None once the head is taken

    def head_taken(self) -> None:
        self._head_bytes = None

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:  # noqa: ASYNC109
        data = await self._stream.read(max_bytes, timeout)
        if self._head_bytes is not None:
            self._head_bytes += len(data)
            if self._head_bytes > HEAD_MAX_BYTES:
                msg = f"over {HEAD_MAX_BYTES} bytes came before the answer's head was whole"
                raise httpcore.ReadError(msg)
        return data

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:  # noqa: ASYNC109
        self._head_bytes = 0  # a request going out: its answer's head is next
        await self._stream.write(buffer, timeout)

    async def aclose(self) -> None:
        await self._stream.aclose()

    async def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,  # noqa: ASYNC109 - httpcore's interface
    ) -> httpcore.AsyncNetworkStream:
        return HeadBounded(await self._stream.start_tls(ssl_context, server_hostname, timeout))

    def get_extra_info(self, info: str) -> Any:
        return self._stream.get_extra_info(info)


class GuardedBackend(httpcore.AsyncNetworkBackend):
    """httpcore's own backend, dialling only addresses that passed the check, its
    connections bounded in what comes before an answer's head (HeadBounded)."""

    def __init__(self, allow: AllowList) -> None:
        self._allow = allow
        self._backend = httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 - httpcore's interface
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        try:
            async with asyncio.timeout(timeout):
                addresses = await resolve(host, port)
        except TimeoutError as exc:
            raise httpcore.ConnectTimeout(f"resolving {host} timed out") from exc
        check_all(host, addresses, self._allow)
        # TLS still verifies the certificate against `host`: httpcore passes the
        # origin's name to start_tls, not the address dialled here.
        stream = await self._backend.connect_tcp(
            str(addresses[0]),
            port,
            timeout=timeout,
            local_address=local_address,
            socket_options=socket_options,
        )
        return HeadBounded(stream)

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,  # noqa: ASYNC109 - httpcore's interface
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise AddressRefused(f"unix socket {path}: not a web address")

    async def sleep(self, seconds: float) -> None:
        await self._backend.sleep(seconds)


def guarded_transport(allow: AllowList, *, max_connections: int) -> httpx.AsyncHTTPTransport:
    """An httpx transport whose every connection goes through GuardedBackend.

    httpx has no parameter for the network backend, so its pool is replaced by
    an identical one built with ours; the transport keeps httpx's request and
    error mapping. No proxy: a proxy would resolve names where we cannot check them.
    """
    transport = httpx.AsyncHTTPTransport(trust_env=False)
    transport._pool = httpcore.AsyncConnectionPool(
        ssl_context=httpx.create_ssl_context(trust_env=False),
        max_connections=max_connections,
        network_backend=GuardedBackend(allow),
    )
    return transport
