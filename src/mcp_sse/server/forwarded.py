"""Who the client really is behind trusted proxies: ``Forwarded`` (RFC 7239) and ``X-Forwarded-*``.

A proxy in front of the server makes every request come from the proxy's address, with the Host
it chose. What the client used is in the headers the proxy adds, and only a proxy we trust may be
believed: anyone else can send those headers too. So they are read only when the peer is one of
``--trusted-proxy``'s addresses or networks, and the chain they describe is walked from the
nearest hop outwards, past every trusted proxy, to the first address we do not trust: that is the
client, and the Host and scheme recorded with it are what the client used. The result feeds the
Host check, the resource URL of the OAuth metadata, the client address in logs and the limits.

Pure: headers and addresses in, a ``ForwardedView`` out, no I/O (tests/server/test_forwarded.py).
uvicorn's own proxy-header support is switched off where we run uvicorn: it knows neither
``Forwarded`` nor ``X-Forwarded-Host``, and it applies only under uvicorn.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from mcp_sse.addresses import is_authority

__all__ = ["ForwardedView", "TrustedProxies", "parse_forwarded"]

Network = ipaddress.IPv4Network | ipaddress.IPv6Network

_MAX_HOPS = 32
"""A chain longer than this is not walked further (a header can be made arbitrarily long)."""


@dataclass(frozen=True, slots=True)
class ForwardedView:
    """What the client used, as the trusted proxies report it (None: not reported)."""

    client: str | None
    host: str | None
    scheme: str | None


class TrustedProxies:
    """The peers whose forwarding headers are believed: addresses or CIDR networks."""

    def __init__(self, entries: Iterable[str]) -> None:
        self.networks: tuple[Network, ...] = tuple(ipaddress.ip_network(e.strip(), strict=False) for e in entries)

    def __bool__(self) -> bool:
        return bool(self.networks)

    def trusts(self, address: str | None) -> bool:
        if address is None or not self.networks:
            return False
        try:
            ip = ipaddress.ip_address(address.strip("[]"))
        except ValueError:
            return False  # "unknown", an obfuscated "_node" name, a Unix socket path
        return any(ip in network for network in self.networks)

    def resolve(self, peer: str | None, headers: Mapping[str, str]) -> ForwardedView | None:
        """The client behind ``peer`` as its forwarding headers describe it; None when the peer is
        not trusted or says nothing. ``Forwarded`` wins over ``X-Forwarded-*`` when both are sent."""
        if not self.trusts(peer):
            return None
        forwarded = headers.get("forwarded")
        if forwarded is not None:
            hops = parse_forwarded(forwarded)
            if hops:
                fors = [hop.get("for") for hop in hops]
                return self._walk(fors, [hop.get("host") for hop in hops], [hop.get("proto") for hop in hops])
        chain = _list(headers.get("x-forwarded-for"))
        hosts = _list(headers.get("x-forwarded-host"))
        schemes = _list(headers.get("x-forwarded-proto"))
        if not chain and not hosts and not schemes:
            return None
        if len(hosts) == len(chain) and len(schemes) == len(chain):
            return self._walk(list(chain), list(hosts), list(schemes))
        # Proxies that set X-Forwarded-Host/Proto rather than append to them: the last value is the
        # one our own (trusted) peer set.
        client = self._walk(list(chain), [None] * len(chain), [None] * len(chain)).client if chain else None
        return ForwardedView(client, _host(hosts[-1]) if hosts else None, _scheme(schemes[-1]) if schemes else None)

    def _walk(self, clients: list[str | None], hosts: list[str | None], schemes: list[str | None]) -> ForwardedView:
        """From the nearest hop outwards, the first hop whose sender we do not trust (else the
        farthest one the headers name)."""
        chosen = len(clients) - 1
        walked = 0
        while chosen > 0 and walked < _MAX_HOPS and self.trusts(_address(clients[chosen])):
            chosen -= 1
            walked += 1
        return ForwardedView(_address(clients[chosen]), _host(hosts[chosen]), _scheme(schemes[chosen]))


def parse_forwarded(value: str) -> list[dict[str, str]]:
    """The elements of a ``Forwarded`` header, each a dict of lower-case parameter names to values
    (quotes removed). A malformed header gives ``[]``: it is ignored as a whole, not half-believed."""
    elements: list[dict[str, str]] = []
    current: dict[str, str] = {}
    i, n = 0, len(value)
    while i < n:
        while i < n and value[i] in " \t":
            i += 1
        start = i
        while i < n and value[i] not in "=;, \t":
            i += 1
        name = value[start:i].lower()
        if not name or i >= n or value[i] != "=":
            return []
        i += 1
        if i < n and value[i] == '"':
            i += 1
            chars: list[str] = []
            while i < n and value[i] != '"':
                if value[i] == "\\" and i + 1 < n:
                    i += 1
                chars.append(value[i])
                i += 1
            if i >= n:
                return []  # an unterminated quoted string
            i += 1
            text = "".join(chars)
        else:
            start = i
            while i < n and value[i] not in ";, \t":
                i += 1
            text = value[start:i]
        current[name] = text
        while i < n and value[i] in " \t":
            i += 1
        if i < n and value[i] == ",":
            elements.append(current)
            current = {}
        elif i < n and value[i] != ";":
            return []
        i += 1
        if len(elements) > 4 * _MAX_HOPS:
            return []
    if current:
        elements.append(current)
    return elements


def _list(value: str | None) -> list[str]:
    if not value:
        return []
    return [part.strip() for part in value.split(",")][-4 * _MAX_HOPS :]  # the nearest hops


def _address(node: str | None) -> str | None:
    """The address of an RFC 7239 node (``192.0.2.1``, ``"[2001:db8::1]:4711"``, ``unknown``),
    without its port."""
    if not node:
        return None
    node = node.strip()
    if node.startswith("["):
        end = node.find("]")
        return node[1:end] if end != -1 else None
    if node.count(":") == 1:  # IPv4 with a port; a bare IPv6 address has several colons
        return node.split(":", 1)[0]
    return node


def _host(value: str | None) -> str | None:
    """A Host value that is one (``name[:port]``, ``[v6]:port``); anything else is not believed:
    it would end up in the resource URL the metadata reflects."""
    if not value or not is_authority(value):
        return None
    return value


def _scheme(value: str | None) -> str | None:
    if value is None:
        return None
    scheme = value.strip().lower()
    return scheme if scheme in ("http", "https") else None
