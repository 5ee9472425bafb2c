"""Protocol eras: which versions we serve and what each one allows on the wire.

Versions are compared by membership in explicit sets, never by string order: a version string we
do not know is not "newer", and dates that sort later say nothing about what a peer understands.
Pure data and functions; no I/O.
"""

from __future__ import annotations

from typing import Final

__all__ = [
    "DEFAULT_VERSION_WHEN_ABSENT",
    "LATEST_VERSION",
    "LEGACY_SSE",
    "MODERN_VERSIONS",
    "SUPPORTED_VERSIONS",
    "V2025_03",
    "V2025_06",
    "V2025_11",
    "allows_batch",
    "effective_version",
    "is_modern",
    "is_supported",
    "negotiate",
    "sends_priming",
]

LEGACY_SSE: Final = "2024-11-05"
V2025_03: Final = "2025-03-26"
V2025_06: Final = "2025-06-18"
V2025_11: Final = "2025-11-25"

SUPPORTED_VERSIONS: Final = (LEGACY_SSE, V2025_03, V2025_06, V2025_11)
"""Every handshake-era version, oldest first; the last one is what we prefer."""

LATEST_VERSION: Final = SUPPORTED_VERSIONS[-1]

MODERN_VERSIONS: Final = ("2026-07-28",)
"""The stateless era's versions: served only where the upstream has a modern path."""

DEFAULT_VERSION_WHEN_ABSENT: Final = V2025_03
"""A request with no ``MCP-Protocol-Version`` and no negotiated version is 2025-03-26 (MCP 2025-11-25,
Transports, "Protocol Version Header": https://modelcontextprotocol.io/specification/2025-11-25/basic/transports#protocol-version-header)."""

_BATCH_VERSIONS: Final = frozenset({V2025_03})
_POLLING_VERSIONS: Final = frozenset({V2025_11})


def is_supported(version: str) -> bool:
    return version in SUPPORTED_VERSIONS


def is_modern(version: str) -> bool:
    return version in MODERN_VERSIONS


def allows_batch(version: str) -> bool:
    """JSON-RPC arrays exist only in 2025-03-26 (MCP 2025-03-26, Transports, "Sending Messages to the
    Server": https://modelcontextprotocol.io/specification/2025-03-26/basic/transports#sending-messages-to-the-server;
    2025-06-18 removed them)."""
    return version in _BATCH_VERSIONS


def sends_priming(version: str) -> bool:
    """Priming events, ``retry`` and server-side close only for clients that negotiated 2025-11-25:
    older SDK clients fail on an event with empty data, so every SDK's server sends them only then."""
    return version in _POLLING_VERSIONS


def negotiate(requested: object) -> str:
    """The version a server answers an initialize with: the client's if we serve it, else our latest."""
    if isinstance(requested, str) and requested in SUPPORTED_VERSIONS:
        return requested
    return LATEST_VERSION


def effective_version(header: str | None, negotiated: str | None) -> str:
    """The version whose rules a request follows: the session's negotiated one, else the header's,
    else 2025-03-26 (MCP 2025-11-25, Transports, "Protocol Version Header":
    https://modelcontextprotocol.io/specification/2025-11-25/basic/transports#protocol-version-header).

    The negotiated version wins over the header because what it protects is the client's parser:
    a client that negotiated 2025-11-25 understands priming events whatever its header says (the
    conformance suite sends 2025-03-26 headers on such sessions and expects priming), and one that
    negotiated an older version must never get them. The header is still validated by the caller.
    """
    if negotiated is not None:
        return negotiated
    if header is not None:
        return header
    return DEFAULT_VERSION_WHEN_ABSENT
