"""Host and Origin validation (DNS rebinding), CORS, and the optional bearer token, applied before
any routing.

Default: when a request arrives on a loopback address, only loopback Host names are answered and
an Origin that is present must be local; elsewhere an Origin must be same-origin or allow-listed.
Either way a browser page from another site never reaches a session (MCP 2025-11-25, Transports,
"Security Warning": https://modelcontextprotocol.io/specification/2025-11-25/basic/transports#security-warning; the Host
check is what the official conformance suite's ``dns-rebinding-protection`` scenario tests). With
``auth_token`` set, every request but a CORS preflight and ``/healthz`` must also carry it as
``Authorization: Bearer``: what keeps other local processes and other hosts out (MCP Security Best
Practices, "Local MCP Server Compromise": https://modelcontextprotocol.io/docs/tutorials/security/security_best_practices#local-mcp-server-compromise).
"""

from __future__ import annotations

import hmac
from urllib.parse import urlsplit

from mcp_sse.addresses import LOOPBACK_NAMES, is_loopback_address
from mcp_sse.config import ServerConfig
from mcp_sse.errors import Forbidden, MisdirectedHost, Unauthorized
from mcp_sse.server.asgi import HeaderList, Scope

__all__ = ["RequestGuard"]

EXPOSED_HEADERS = b"Mcp-Session-Id, MCP-Protocol-Version, WWW-Authenticate"
ALLOWED_REQUEST_HEADERS = (
    b"Content-Type, Accept, Authorization, Mcp-Session-Id, MCP-Protocol-Version, Last-Event-ID, Mcp-Method, Mcp-Name"
)
ALLOWED_METHODS = b"GET, POST, DELETE, OPTIONS"


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
        self.token = config.auth_token.encode("ascii") if config.auth_token is not None else None

    def authorize(self, headers: dict[str, str]) -> None:
        """Raise Unauthorized unless the request carries the configured bearer token (if any)."""
        if self.token is None:
            return
        scheme, _, credentials = headers.get("authorization", "").strip().partition(" ")
        if scheme.lower() != "bearer" or not credentials.strip():
            raise Unauthorized(
                "Unauthorized: this server needs an Authorization: Bearer <token> header",
                headers={"WWW-Authenticate": 'Bearer realm="mcp"'},
            )
        # Constant time: how much of a guess matched must not show in how long the answer takes.
        if not hmac.compare_digest(credentials.strip().encode("latin-1"), self.token):
            raise Unauthorized(
                "Unauthorized: the bearer token is not valid",
                headers={"WWW-Authenticate": 'Bearer realm="mcp", error="invalid_token"'},
            )

    def check(self, scope: Scope, headers: dict[str, str]) -> None:
        """Raise MisdirectedHost or Forbidden; return quietly when the request may proceed."""
        server = scope.get("server")
        local = is_loopback_address(server[0] if server else None)
        protect = self.config.dns_rebinding_protection
        if protect is None:
            protect = local
        host = headers.get("host", "")
        if protect:
            name = _hostname(host)
            if name not in LOOPBACK_NAMES and name not in self.extra_hosts:
                raise MisdirectedHost(f"Invalid Host header {host!r}: this server only answers for local names")
        origin = headers.get("origin")
        if origin is not None and not self._origin_allowed(origin, host, protect):
            raise Forbidden(f"Origin {origin!r} is not allowed to use this server")

    def _origin_allowed(self, origin: str, host: str, protect: bool) -> bool:
        normalized = origin.rstrip("/").lower()
        if normalized in self.extra_origins:
            return True
        parts = urlsplit(normalized)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            return False  # "null" and other opaque origins
        if protect:
            return parts.hostname in LOOPBACK_NAMES or parts.hostname in self.extra_hosts
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
            requested = headers.get("access-control-request-headers")
            allowed = requested.encode("latin-1") if requested else ALLOWED_REQUEST_HEADERS
            out += [
                (b"access-control-allow-methods", ALLOWED_METHODS),
                (b"access-control-allow-headers", allowed),
                (b"access-control-max-age", b"86400"),
            ]
        return out
