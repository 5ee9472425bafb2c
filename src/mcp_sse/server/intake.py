"""What every POST endpoint does first, whatever its era: check the media type, read and parse the
body once into JSON-RPC messages, open a session under the limit. One place, one set of errors."""

from __future__ import annotations

from mcp_sse.config import ServerConfig
from mcp_sse.core.limits import Refused, retry_after_header
from mcp_sse.core.registry import CallerLimitReached, OwnershipUnavailable, SessionLimitReached, SessionRegistry
from mcp_sse.core.session import Session, SessionKind
from mcp_sse.errors import InvalidRequest, ParseError, TooManyRequests, TooManySessions, TryAgain, UnsupportedMediaType
from mcp_sse.server.asgi import Receive, read_body
from mcp_sse.wire import jsonrpc

__all__ = ["open_session", "read_messages", "require_json"]


def require_json(headers: dict[str, str]) -> None:
    content_type = headers.get("content-type", "")
    if content_type.split(";", 1)[0].strip().lower() != "application/json":
        raise UnsupportedMediaType(
            f"Unsupported Media Type: Content-Type must be application/json, got {content_type or 'none'!r}"
        )


async def read_messages(receive: Receive, headers: dict[str, str], limit: int, within: float) -> jsonrpc.Body:
    """The body, size-checked (413), in time (408), parsed once (400/-32700) and classified (400/-32600)."""
    raw = await read_body(receive, headers, limit, within)
    try:
        return jsonrpc.parse_body(raw)
    except jsonrpc.FramingError as exc:
        error = ParseError if exc.code == jsonrpc.PARSE_ERROR else InvalidRequest
        raise error(exc.message, request_id=exc.request_id) from None


def check_owner(session: Session | None, principal: str | None) -> Session | None:
    """The session if it belongs to the caller; a session id grants nothing by itself, so another
    principal's session is answered exactly as one that does not exist."""
    if session is not None and session.principal != principal:
        return None
    return session


def too_many_for_caller(refused: Refused) -> TooManyRequests:
    """The 429 for a caller over one of its limits (``core/limits.py``)."""
    return TooManyRequests(
        f"Too Many Requests: {refused.reason} for this caller",
        headers={"Retry-After": retry_after_header(refused.retry_after)},
    )


async def revive_session(
    registry: SessionRegistry, config: ServerConfig, session_id: str, caller: str | None = None
) -> Session | None:
    """A session a previous process kept in the durable store, running again; None if there is none."""
    try:
        return await registry.revive(session_id, caller)
    except SessionLimitReached:
        raise too_many_sessions(config) from None
    except CallerLimitReached as exc:
        raise too_many_for_caller(exc.refused) from None


def too_many_sessions(config: ServerConfig) -> TooManySessions:
    """503 for a server at ``max_sessions``."""
    return TooManySessions(
        "Too many open sessions: try again later", headers={"Retry-After": str(config.retry_after_seconds)}
    )


async def open_session(
    registry: SessionRegistry,
    config: ServerConfig,
    kind: SessionKind,
    version: str,
    *,
    initialize: dict[str, object] | None = None,
    principal: str | None = None,
    caller: str | None = None,
) -> Session:
    try:
        return await registry.open(kind, version, initialize, principal, caller)
    except CallerLimitReached as exc:
        raise too_many_for_caller(exc.refused) from None
    except SessionLimitReached:
        raise too_many_sessions(config) from None
    except OwnershipUnavailable as exc:
        raise cluster_away(exc) from None


def cluster_away(exc: Exception) -> TryAgain:
    """503 while the cluster's Redis cannot be reached: nothing is lost, the client comes back."""
    return TryAgain(f"Service Unavailable: {exc}; try again shortly", headers={"Retry-After": "1"})
