"""Where deliveries may go, and how their addresses are written down.

Destination URLs often carry a secret (a token in the query, a password in the userinfo), and
what Handoff writes down is append-only and kept for years: decisions, attempts, the API, logs.
So an address is always shown through `redacted_url`.

A destination may also be pointed, by mistake or on purpose, at the machine Handoff runs on or at
a cloud metadata service. In production only public addresses are reached unless a setting names
the hosts or networks that are allowed; the check runs on the address actually connected to,
after name resolution, so a name that resolves to a private address is refused too.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import SplitResult, urlsplit, urlunsplit

import anyio
import httpcore
from django.conf import settings

REDACTED = "redacted"

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


def redacted_url(url: str) -> str:
    """The URL with its userinfo and query (and fragment) replaced: what may be written down."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = parts.port
    except ValueError:
        return f"[an unparseable address, {len(url)} characters]"
    if ":" in host:
        host = f"[{host}]"
    netloc = host if port is None else f"{host}:{port}"
    if parts.username is not None or parts.password is not None:
        netloc = f"{REDACTED}@{netloc}"
    query = REDACTED if parts.query else ""
    fragment = REDACTED if parts.fragment else ""
    return urlunsplit(SplitResult(parts.scheme, netloc, parts.path, query, fragment))


def redacted_text(text: str, url: str) -> str:
    """A message (an error, a log line) with the URL in it redacted."""
    redacted = redacted_url(url)
    return text if redacted == url else text.replace(url, redacted)


class DestinationRefused(Exception):
    """The destination's address is not one Handoff may deliver to."""


@dataclass(frozen=True)
class AddressPolicy:
    """Which addresses deliveries may connect to."""

    refuse_private: bool
    allowed_hosts: frozenset[str]
    allowed_networks: tuple[IPNetwork, ...]

    @classmethod
    def from_settings(cls) -> AddressPolicy:
        hosts: set[str] = set()
        networks: list[IPNetwork] = []
        for item in getattr(settings, "HANDOFF_DESTINATION_ALLOWLIST", ()):
            try:
                networks.append(ipaddress.ip_network(item, strict=False))
            except ValueError:
                hosts.add(item.lower().rstrip("."))
        return cls(
            refuse_private=getattr(settings, "HANDOFF_DESTINATION_REFUSE_PRIVATE", True),
            allowed_hosts=frozenset(hosts),
            allowed_networks=tuple(networks),
        )

    def refusal(self, host: str, address: IPAddress) -> str:
        """Why `host` at `address` may not be reached, or "" if it may."""
        if not self.refuse_private or host.lower().rstrip(".") in self.allowed_hosts:
            return ""
        mapped = getattr(address, "ipv4_mapped", None)
        effective: IPAddress = mapped or address
        if any(effective in network for network in self.allowed_networks):
            return ""
        if effective.is_global and not effective.is_multicast:
            return ""
        return (
            f"{host} resolves to {effective}, a {_kind(effective)} address; deliveries go to "
            "public addresses unless HANDOFF_DESTINATION_ALLOWLIST names it"
        )


def _kind(address: IPAddress) -> str:
    if address.is_loopback:
        return "loopback"
    if address.is_link_local:
        return "link-local (metadata services live here)"
    if address.is_private:
        return "private"
    if address.is_multicast:
        return "multicast"
    return "non-public"


class GuardedBackend(httpcore.AsyncNetworkBackend):
    """Resolves the host itself and connects only to an address the policy allows."""

    def __init__(self, policy: AddressPolicy) -> None:
        self.policy = policy
        self.inner = httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        addresses = await _resolve(host, port)
        refusals = []
        for address in addresses:
            refusal = self.policy.refusal(host, address)
            if refusal:
                refusals.append(refusal)
                continue
            return await self.inner.connect_tcp(
                str(address),
                port,
                timeout=timeout,
                local_address=local_address,
                socket_options=socket_options,
            )
        raise DestinationRefused(refusals[0] if refusals else f"{host} has no address")

    async def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Iterable[Any] | None = None
    ) -> httpcore.AsyncNetworkStream:
        raise DestinationRefused("deliveries do not go to unix sockets")

    async def sleep(self, seconds: float) -> None:
        await self.inner.sleep(seconds)


async def _resolve(host: str, port: int) -> list[IPAddress]:
    try:
        return [ipaddress.ip_address(host.strip("[]"))]
    except ValueError:
        pass
    try:
        infos = await anyio.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError as exc:
        raise httpcore.ConnectError(f"cannot resolve {host}: {exc}") from exc
    seen: dict[IPAddress, None] = {}
    for *_, sockaddr in infos:
        seen[ipaddress.ip_address(str(sockaddr[0]).split("%", 1)[0])] = None
    return list(seen)
