"""Rejections as types, each knowing its HTTP status and JSON-RPC code.

Every rejection the server makes is a ``Rejection`` subclass (not to be confused with the HTTP
client's ``TransportError``, a failure of the connection), so the edge can turn any of them into
"the right status plus a JSON-RPC error body that says what was wrong" in one place.
This module must never do I/O.
"""

from __future__ import annotations

from typing import Any, ClassVar

from mcp_sse.wire import jsonrpc
from mcp_sse.wire.jsonrpc import RequestId

__all__ = [
    "Forbidden",
    "HeadersTooLarge",
    "InsufficientScope",
    "InvalidRequest",
    "MethodNotAllowed",
    "MisdirectedHost",
    "MissingSession",
    "NotAcceptable",
    "NotFound",
    "ParseError",
    "PayloadTooLarge",
    "Rejection",
    "ReplayUnavailable",
    "RequestTimeout",
    "ServerNotReady",
    "SessionNotFound",
    "TooManyRequests",
    "TooManySessions",
    "Unauthorized",
    "UnsupportedMediaType",
    "UnsupportedProtocolVersion",
]


class Rejection(Exception):
    """A request the server refuses with an HTTP error status; carries what the client needs to see."""

    status: ClassVar[int] = 400
    code: ClassVar[int] = jsonrpc.INVALID_REQUEST

    def __init__(
        self,
        message: str,
        *,
        request_id: RequestId | None = None,
        data: Any = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.request_id = request_id
        self.data = data
        self.headers = headers or {}

    def body(self) -> bytes:
        """The JSON-RPC error body (``id`` null when the request id is unknown)."""
        return jsonrpc.error_body(self.code, self.message, self.request_id, self.data)


class ParseError(Rejection):
    code = jsonrpc.PARSE_ERROR


class InvalidRequest(Rejection):
    """Not a JSON-RPC message, a bad batch, a bad header value."""


class MissingSession(Rejection):
    """A non-initialize request without ``Mcp-Session-Id`` (MCP 2025-11-25, Transports, "Session
    Management": https://modelcontextprotocol.io/specification/2025-11-25/basic/transports#session-management)."""


class SessionNotFound(Rejection):
    """Unknown or ended session: 404 tells the client to initialize again (MCP 2025-11-25,
    Transports, "Session Management": https://modelcontextprotocol.io/specification/2025-11-25/basic/transports#session-management)."""

    status = 404


class UnsupportedProtocolVersion(Rejection):
    """``MCP-Protocol-Version`` names a version we do not serve; ``data`` lists the ones we do."""

    code = jsonrpc.UNSUPPORTED_PROTOCOL_VERSION


class Unauthorized(Rejection):
    """No valid ``Authorization: Bearer`` credential; ``WWW-Authenticate`` says which (RFC 6750)."""

    status = 401


class InsufficientScope(Rejection):
    """A valid token without a scope the server requires (RFC 6750 §3.1)."""

    status = 403


class Forbidden(Rejection):
    """An ``Origin`` that is present and not allowed (MCP 2025-11-25, Transports, "Security Warning":
    https://modelcontextprotocol.io/specification/2025-11-25/basic/transports#security-warning)."""

    status = 403


class MisdirectedHost(Rejection):
    """A ``Host`` that this server does not answer for (DNS rebinding: the official conformance
    suite's ``dns-rebinding-protection`` scenario expects a 4xx)."""

    status = 421


class NotFound(Rejection):
    status = 404
    code = jsonrpc.METHOD_NOT_FOUND


class MethodNotAllowed(Rejection):
    status = 405


class NotAcceptable(Rejection):
    status = 406


class ReplayUnavailable(Rejection):
    """``Last-Event-ID`` points before what the event log still holds: events were evicted.

    410 Gone, not silence: the client learns it lost events instead of resuming with a gap.
    """

    status = 410


class RequestTimeout(Rejection):
    """The body did not arrive in time (a slow or stalled sender holds a connection otherwise)."""

    status = 408


class HeadersTooLarge(Rejection):
    status = 431


class PayloadTooLarge(Rejection):
    status = 413


class UnsupportedMediaType(Rejection):
    status = 415


class TooManyRequests(Rejection):
    """A caller over one of its limits (``core/limits.py``); ``Retry-After`` says when to come back."""

    status = 429
    code = jsonrpc.INTERNAL_ERROR


class TooManySessions(Rejection):
    status = 503
    code = jsonrpc.INTERNAL_ERROR


class TryAgain(Rejection):
    """Not now, and not the client's fault: a cluster node in the middle of a change (``Retry-After``
    says when to come back)."""

    status = 503
    code = jsonrpc.INTERNAL_ERROR


class ServerNotReady(Rejection):
    """The app got a request before its lifespan started (it was mounted without one)."""

    status = 503
    code = jsonrpc.INTERNAL_ERROR
