"""The upstream interface: what the server core needs from whatever answers the messages."""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager
from typing import Any, Protocol

from mcp.server.lowlevel.server import Server

from mcp_sse.core.session import Session

__all__ = ["ModernUpstream", "Upstream"]


class Upstream(Protocol):
    """Answers the messages of sessions.

    ``lifespan()`` is entered once while the app runs (start a shared resource, an SDK server's
    lifespan). ``serve_session(session)`` runs for the life of one session: it takes client
    messages with ``session.receive()`` until ``anyio.EndOfStream`` and pushes every message it
    sends with ``session.emit()``. When it returns, the session ends.
    """

    def lifespan(self) -> AbstractAsyncContextManager[None]: ...

    async def serve_session(self, session: Session) -> None: ...


class ModernUpstream(Upstream, Protocol):
    """An upstream whose SDK server also answers stateless 2026-07-28 requests (the SDK one does).

    It speaks no HTTP either: the server edge hands each such request to the SDK's own stateless
    entry point (``sdk_compat.serve_stateless``) with the server and lifespan state named here.
    """

    def modern_server(self) -> tuple[Server[Any], Any]:
        """The running SDK server and its lifespan state; RuntimeError outside the lifespan."""
        ...

    def end_subscriptions(self) -> None:
        """End every open ``subscriptions/listen`` stream gracefully: each sends its completion
        result, so clients know the end was deliberate (MCP 2026-07-28, Subscriptions:
        https://modelcontextprotocol.io/specification/2026-07-28/basic/patterns/subscriptions).
        Called when shutting down."""
        ...
