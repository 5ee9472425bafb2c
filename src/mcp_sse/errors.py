"""Transport errors as types, each knowing its HTTP status and JSON-RPC code.

Every rejection the server makes is one of these, so the edge can turn any of them into
"the right status plus a JSON-RPC error body that says what was wrong" in one place.
This module must never do I/O.
"""

from __future__ import annotations

from typing import Any, ClassVar

from mcp_sse.wire import jsonrpc

RequestId = str | int


class TransportError(Exception):
    """A request the transport refuses; carries what the client needs to see."""

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


class ParseError(TransportError):
    code = jsonrpc.PARSE_ERROR


class InvalidRequest(TransportError):
    """Not a JSON-RPC message, a bad batch, a bad header value."""


class MissingSession(TransportError):
    """A non-initialize request without ``Mcp-Session-Id`` (SPEC item 51)."""


class SessionNotFound(TransportError):
    """Unknown or ended session: 404 tells the client to initialize again (SPEC items 52-53)."""

    status = 404


class UnsupportedProtocolVersion(TransportError):
    """``MCP-Protocol-Version`` names a version we do not serve; ``data`` lists the ones we do."""

    code = jsonrpc.UNSUPPORTED_PROTOCOL_VERSION


class Unauthorized(TransportError):
    """No valid ``Authorization: Bearer`` credential; ``WWW-Authenticate`` says which (RFC 6750)."""

    status = 401


class Forbidden(TransportError):
    """An ``Origin`` that is present and not allowed (SPEC items 27, 57-58)."""

    status = 403


class MisdirectedHost(TransportError):
    """A ``Host`` that this server does not answer for (DNS rebinding, SPEC item 60)."""

    status = 421


class NotFound(TransportError):
    status = 404
    code = jsonrpc.METHOD_NOT_FOUND


class MethodNotAllowed(TransportError):
    status = 405


class NotAcceptable(TransportError):
    status = 406


class ReplayUnavailable(TransportError):
    """``Last-Event-ID`` points before what the event log still holds: events were evicted.

    410 Gone, not silence: the client learns it lost events instead of resuming with a gap.
    """

    status = 410


class PayloadTooLarge(TransportError):
    status = 413


class UnsupportedMediaType(TransportError):
    status = 415


class TooManySessions(TransportError):
    status = 503
    code = jsonrpc.INTERNAL_ERROR


class ServerNotReady(TransportError):
    """The app got a request before its lifespan started (it was mounted without one)."""

    status = 503
    code = jsonrpc.INTERNAL_ERROR
