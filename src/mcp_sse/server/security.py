"""Host and Origin validation (DNS rebinding) and CORS, applied before any routing.

Default: when a request arrives on a loopback address, only loopback Host names are answered and
an Origin that is present must be local; elsewhere an Origin must be same-origin or allow-listed.
Either way a browser page from another site never reaches a session (MCP 2025-11-25, Transports,
"Security Warning": https://modelcontextprotocol.io/specification/2025-11-25/basic/transports#security-warning; the Host
check is what the official conformance suite's ``dns-rebinding-protection`` scenario tests). Tokens
are ``server/auth.py``'s.

CORS, for the origins that pass: a preflight is answered with the methods and request headers MCP
uses (``Authorization``, the session and version headers, ``Last-Event-ID``, the 2026-07-28 era's
``Mcp-Method``, ``Mcp-Name`` and every ``Mcp-Param-*`` asked for), and responses expose the headers
a browser client must read (``Mcp-Session-Id``, ``MCP-Protocol-Version``, ``WWW-Authenticate``).
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from mcp_sse.addresses import LOOPBACK_NAMES, is_authority, is_loopback_address
from mcp_sse.config import ServerConfig
from mcp_sse.errors import Forbidden, InvalidRequest, MisdirectedHost
from mcp_sse.server.asgi import HeaderList, Scope
from mcp_sse.wire.headers import MCP_PARAM_PREFIX

__all__ = ["RequestGuard"]

_TOKEN = re.compile(r"[A-Za-z0-9!#$%&'*+.^_`|~-]{1,128}")
EXPOSED_HEADERS = b"Mcp-Session-Id, MCP-Protocol-Version, WWW-Authenticate"
ALLOWED_REQUEST_HEADERS = (
    b"Content-Type, Accept, Authorization, Mcp-Session-Id, MCP-Protocol-Version, Last-Event-ID, Mcp-Method, Mcp-Name"
)
ALLOWED_METHODS = b"GET, POST, DELETE, OPTIONS"


def allowed_request_headers(requested: str | None) -> bytes:
    """What a preflight allows: MCP's request headers, plus each ``Mcp-Param-*`` header asked for
    (a wildcard cannot name them: ``Access-Control-Allow-Headers`` has no prefix patterns). Headers
    outside MCP's are not allowed, so a page cannot smuggle others through."""
    params = [
        name.strip()
        for name in (requested or "").split(",")
        if name.strip().lower().startswith(MCP_PARAM_PREFIX) and _TOKEN.fullmatch(name.strip())
    ]
    if not params:
        return ALLOWED_REQUEST_HEADERS
    return ALLOWED_REQUEST_HEADERS + b", " + ", ".join(params).encode("ascii")


def _hostname(authority: str) -> str:
    """The host part of ``host[:port]`` or ``[v6]:port``, lower-case, brackets removed."""
    authority = authority.strip().lower()
    if authority.startswith("["):
        end = authority.find("]")
        return authority[1:end] if end != -1 else authority
    return authority.rsplit(":", 1)[0] if authority.count(":") == 1 else authority


class RequestGuard:
    """Decides, per request, whether its Host and Origin are acceptable, and which CORS headers to add."""

    def __init__(self, config: ServerConfig) -> None:
        self.config = config
        self.extra_hosts = frozenset(h.lower().strip("[]") for h in config.allowed_hosts)
        self.extra_origins = frozenset(o.rstrip("/").lower() for o in config.allowed_origins)

    def check(self, scope: Scope, headers: dict[str, str]) -> None:
        """Raise MisdirectedHost or Forbidden; return quietly when the request may proceed."""
        server = scope.get("server")
        local = is_loopback_address(server[0] if server else None)
        protect = self.config.dns_rebinding_protection
        if protect is None:
            protect = local
        host = headers.get("host", "")
        if host and not is_authority(host.strip()):
            raise InvalidRequest(f"Bad Request: the Host header {host[:100]!r} is not a host name")
        if protect:
            name = _hostname(host)
            if name not in LOOPBACK_NAMES and name not in self.extra_hosts:
                raise MisdirectedHost(
                    f"Invalid Host header {host!r}: this server only answers for local names "
                    "(name others with --allowed-host)"
                )
        origin = headers.get("origin")
        if origin is not None and not self._origin_allowed(origin, host, protect):
            raise Forbidden(f"Origin {origin!r} is not allowed to use this server")

    def _origin_allowed(self, origin: str, host: str, protect: bool) -> bool:
        normalized = origin.rstrip("/").lower()
        if normalized in self.extra_origins:
            return True
        try:
            parts = urlsplit(normalized)
            hostname = parts.hostname
        except ValueError:  # "http://[" and other origins that are not URLs
            return False
        if parts.scheme not in ("http", "https") or not hostname:
            return False  # "null" and other opaque origins
        if protect:
            return hostname in LOOPBACK_NAMES or hostname in self.extra_hosts
        return parts.netloc == host.lower()

    @staticmethod
    def cors_headers(headers: dict[str, str], *, preflight: bool = False) -> HeaderList:
        """CORS headers for a request whose Origin passed ``check`` (none without an Origin)."""
        origin = headers.get("origin")
        if origin is None:
            return []
        out: HeaderList = [
            (b"access-control-allow-origin", origin.encode("latin-1")),
            (b"vary", b"Origin"),
            (b"access-control-expose-headers", EXPOSED_HEADERS),
        ]
        if preflight:
            allowed = allowed_request_headers(headers.get("access-control-request-headers"))
            out += [
                (b"access-control-allow-methods", ALLOWED_METHODS),
                (b"access-control-allow-headers", allowed),
                (b"access-control-max-age", b"86400"),
            ]
        return out
