"""Host an official-SDK server (``mcp`` 2.x ``Server`` or ``MCPServer``) in-process.

One SDK serve loop per session, driven through ``mcp.server.runner.serve_loop`` like the SDK's own
session manager does, so the server's lifespan is entered once for the app, not per session. The
loop's read and write streams are the session itself, through the SDK's ``ReadStream`` and
``WriteStream`` protocols.
Outbound messages keep the SDK's ``related_request_id`` so progress and logs reach the stream of
the request they belong to. This is the only module that converts to and from pydantic models.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import anyio
from mcp.server.lowlevel.server import Server
from mcp.server.mcpserver import MCPServer
from mcp.server.runner import serve_loop
from mcp.server.subscriptions import ListenHandler
from mcp.shared.message import ServerMessageMetadata, SessionMessage
from mcp_types import JSONRPCError, JSONRPCNotification, JSONRPCRequest, JSONRPCResponse

from mcp_sse.core.session import Inbound, Outbound, Session
from mcp_sse.sdk_compat import lowlevel_server, request_context
from mcp_sse.wire.jsonrpc import Kind, RequestId
from mcp_sse.wire.sdk_models import to_sdk_message

__all__ = ["SDKUpstream", "as_lowlevel"]

logger = logging.getLogger(__name__)


def as_lowlevel(server: Server[Any] | MCPServer[Any]) -> Server[Any]:
    """The low-level ``Server`` behind an ``MCPServer`` (the SDK's own Client reaches it the same way)."""
    if isinstance(server, MCPServer):
        return lowlevel_server(server)
    if isinstance(server, Server):
        return server
    raise TypeError(f"expected an mcp Server or MCPServer, got {type(server).__name__}")


class SDKUpstream:
    """Serves each session with an in-process official-SDK server."""

    def __init__(self, server: Server[Any] | MCPServer[Any]) -> None:
        self.source = server  # as given: an MCPServer's change events are its own, not the low-level one's
        self.server = as_lowlevel(server)
        self._lifespan_state: Any = None
        self._started = False

    @asynccontextmanager
    async def lifespan(self) -> AsyncIterator[None]:
        async with self.server.lifespan(self.server) as state:
            self._lifespan_state = state
            self._started = True
            try:
                yield
            finally:
                self._started = False

    def modern_server(self) -> tuple[Server[Any], Any]:
        """The SDK server and its lifespan state, for the server edge to hand a stateless 2026-07-28
        request to the SDK's own entry point for that era."""
        if not self._started:
            raise RuntimeError("SDKUpstream.modern_server called outside its lifespan")
        return self.server, self._lifespan_state

    def end_subscriptions(self) -> None:
        entry = self.server.get_request_handler("subscriptions/listen")
        if entry is not None and isinstance(entry.handler, ListenHandler):
            entry.handler.close()  # each stream drains, then answers with its completion result

    async def serve_session(self, session: Session) -> None:
        if not self._started:
            raise RuntimeError("SDKUpstream.serve_session called outside its lifespan")
        # The SDK's dispatcher reads from and writes to the session itself: no memory streams and
        # no pump tasks between them, one task per session (W2 and W3 in docs/benchmarks.md).
        reads, writes = _SessionReads(session), _SessionWrites(session)
        await serve_loop(self.server, reads, writes, lifespan_state=self._lifespan_state, session_id=session.id)

    @staticmethod
    def _to_sdk(session: Session, inbound: Inbound) -> SessionMessage:
        msg = inbound.message
        message = to_sdk_message(msg.obj)
        request = request_context(inbound.context)
        if msg.kind is not Kind.REQUEST:
            return SessionMessage(message, metadata=ServerMessageMetadata(request_context=request))
        assert msg.id is not None
        metadata = ServerMessageMetadata(
            request_context=request,
            close_sse_stream=_closer(session.close_request_stream, msg.id),
            close_standalone_sse_stream=_closer_noarg(session.close_standalone_stream),
            on_request_unanswered=_unanswered(session, msg.id),
            can_send_request=not session.json_response,
        )
        return SessionMessage(message, metadata=metadata)

    @staticmethod
    async def _reject(session: Session, inbound: Inbound, exc: Exception) -> None:
        """A message the SDK cannot even represent: answer a request with -32600 rather than hang it."""
        logger.info("session %s: message rejected by the SDK schema: %s", session.id, exc)
        msg = inbound.message
        if msg.kind is Kind.REQUEST and msg.id is not None:
            error = JSONRPCError.model_validate(
                {"jsonrpc": "2.0", "id": msg.id, "error": {"code": -32600, "message": f"Invalid Request: {exc}"}}
            )
            payload = error.model_dump_json(by_alias=True, exclude_unset=True).encode()
            await session.emit(Outbound(payload, Kind.ERROR, msg.id))


def _closer(close: Callable[[RequestId], None], request_id: RequestId) -> Callable[[], Awaitable[None]]:
    async def callback() -> None:
        close(request_id)

    return callback


def _closer_noarg(close: Callable[[], None]) -> Callable[[], Awaitable[None]]:
    async def callback() -> None:
        close()

    return callback


def _unanswered(session: Session, request_id: RequestId) -> Callable[[], Awaitable[None]]:
    async def callback() -> None:
        await session.request_unanswered(request_id)

    return callback


class _SessionReads:
    """The SDK's ``ReadStream`` over a session's inbound channel: each client message as the SDK's
    ``SessionMessage``; one the SDK's schema refuses is answered here and never reaches it."""

    def __init__(self, session: Session) -> None:
        self.session = session

    async def receive(self) -> SessionMessage | Exception:
        while True:
            inbound = await self.session.receive()  # EndOfStream when the session ends
            try:
                return SDKUpstream._to_sdk(self.session, inbound)
            except Exception as exc:  # the envelope passed our framing but not the SDK's schema
                await SDKUpstream._reject(self.session, inbound, exc)

    def __aiter__(self) -> _SessionReads:
        return self

    async def __anext__(self) -> SessionMessage | Exception:
        try:
            return await self.receive()
        except anyio.EndOfStream:
            raise StopAsyncIteration from None

    async def aclose(self) -> None:
        pass

    async def __aenter__(self) -> _SessionReads:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        pass


class _SessionWrites:
    """The SDK's ``WriteStream`` into a session: serialize once, keep ``related_request_id`` for
    routing, append to the session's log. The SDK's handler task does the append itself."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self.closed = False

    async def send(self, item: SessionMessage, /) -> None:
        if self.closed:
            raise anyio.ClosedResourceError
        message = item.message
        # model_dump_json's bytes, without its decode to str and our encode back (once per message).
        payload = message.__pydantic_serializer__.to_json(message, by_alias=True, exclude_unset=True)
        related = item.metadata.related_request_id if isinstance(item.metadata, ServerMessageMetadata) else None
        if isinstance(message, JSONRPCNotification):
            out = Outbound(payload, Kind.NOTIFICATION, None, related)
        elif isinstance(message, JSONRPCResponse):
            out = Outbound(payload, Kind.RESPONSE, message.id)
        elif isinstance(message, JSONRPCError):
            out = Outbound(payload, Kind.ERROR, message.id)
        else:
            assert isinstance(message, JSONRPCRequest)
            out = Outbound(payload, Kind.REQUEST, message.id, related)
        await self.session.emit(out)

    async def aclose(self) -> None:
        self.closed = True

    async def __aenter__(self) -> _SessionWrites:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self.closed = True
