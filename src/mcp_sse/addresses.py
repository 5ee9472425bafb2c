"""Which addresses are loopback ones: what the server's default Host check, ``mcp-sse serve``'s
warning about a public bind, and ``mcp-sse doctor``'s expectations all turn on. Pure, no I/O."""

from __future__ import annotations

import functools
import ipaddress

__all__ = ["LOOPBACK_NAMES", "is_loopback_address"]

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
