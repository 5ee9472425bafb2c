"""The upstream interface: what the server core needs from whatever answers the messages."""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager
from typing import Any, Protocol

from mcp.server.lowlevel.server import Server

from mcp_sse.core.session import Inbound, Outbound, Session

__all__ = ["PRINCIPAL_KEY", "ModernUpstream", "PortUpstream", "Upstream", "UpstreamSession"]

PRINCIPAL_KEY = "mcp_sse.principal"
"""Where the HTTP edge puts the authenticated principal in a request's ASGI scope."""


class UpstreamSession(Protocol):
    """What an upstream that only relays messages needs of a session: a client's session, or a
    session the 2026-07-28 front opens itself (``upstream/link.py``)."""

    @property
    def id(self) -> str: ...

    @property
    def principal(self) -> str | None: ...

    async def receive(self) -> Inbound: ...

    async def emit(self, out: Outbound) -> None: ...


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


class PortUpstream(Protocol):
    """An upstream that relays each session's messages and needs nothing else of it (a stdio
    process, an HTTP server): the 2026-07-28 front can open sessions of its own on one."""

    def lifespan(self) -> AbstractAsyncContextManager[None]: ...

    async def serve_session(self, session: UpstreamSession) -> None: ...
