"""Which addresses are loopback ones: what the server's default Host check, ``mcp-sse serve``'s
warning about a public bind, and ``mcp-sse doctor``'s expectations all turn on. Pure, no I/O."""

from __future__ import annotations

import functools
import ipaddress
import re

__all__ = ["LOOPBACK_NAMES", "is_authority", "is_loopback_address"]

_AUTHORITY = re.compile(r"[A-Za-z0-9._~!$&'()*+,;=%-]+(:[0-9]*)?|\[[0-9A-Fa-f:.]+\](:[0-9]*)?")


def is_authority(value: str) -> bool:
    """Whether a Host value is ``host[:port]`` or ``[v6]:port`` (RFC 9110 section 7.2, RFC 3986
    section 3.2.2), what a URL can be built from; anything else is refused (400), or, from a proxy,
    not believed."""
    return len(value) <= 255 and _AUTHORITY.fullmatch(value) is not None


LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1"})
"""The Host names a server bound to a loopback address answers for by default."""


@functools.lru_cache(maxsize=256)
def is_loopback_address(host: str | None) -> bool:
    """Whether the address a request arrived on is a loopback one (cached: the server's few own
    addresses, parsed once instead of on every request)."""
    if host is None:
        return True  # a Unix socket: only local processes reach it
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False
