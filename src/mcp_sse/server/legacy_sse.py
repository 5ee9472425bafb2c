"""``/sse`` and ``/messages``: the 2024-11-05 HTTP+SSE transport, for clients that predate 2025.

The GET stream is the session: its first event names the POST endpoint, every server message
follows as a ``message`` event, and the session ends when the stream does (that era has no
resumption: MCP 2024-11-05, Transports, "HTTP with SSE": https://modelcontextprotocol.io/specification/2024-11-05/basic/transports#http-with-sse).
POSTs are answered 202; their replies travel on the stream.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import parse_qs

from mcp_sse.config import ServerConfig
from mcp_sse.core.registry import SessionRegistry
from mcp_sse.core.session import STANDALONE, Inbound, Session, SessionClosed, SessionKind
from mcp_sse.errors import (
    InvalidRequest,
    MissingSession,
    SessionNotFound,
)
from mcp_sse.server.asgi import HeaderList, Receive, Scope, Send, send_response
from mcp_sse.server.auth import caller_of, principal_in
from mcp_sse.server.intake import check_owner, open_session, read_messages, require_json
from mcp_sse.server.sse_writer import legacy_encoder, write_stream
from mcp_sse.wire import eras
from mcp_sse.wire.sse import encode_event

__all__ = ["LegacySSE"]


@dataclass(slots=True)
class LegacySSE:
    config: ServerConfig
    registry: SessionRegistry

    async def stream(
        self, scope: Scope, receive: Receive, send: Send, headers: dict[str, str], extra: HeaderList
    ) -> None:
        session = await open_session(
            self.registry,
            self.config,
            SessionKind.LEGACY_SSE,
            eras.LEGACY_SSE,
            principal=principal_in(scope),
            caller=caller_of(scope),
        )
        root = scope.get("root_path", "")
        endpoint = f"{root}{self.config.messages_path}?session_id={session.id}"
        try:
            await write_stream(
                send,
                receive,
                session,
                session.streams[STANDALONE],
                0,
                headers=extra,
                preamble=encode_event(endpoint, event="endpoint"),
                keepalive=self.config.keepalive_interval,
                encode=legacy_encoder,
            )
        finally:
            await self.registry.end(session)

    async def post(
        self, scope: Scope, receive: Receive, send: Send, headers: dict[str, str], extra: HeaderList
    ) -> None:
        require_json(headers)
        session = self._session(scope)
        body = await read_messages(receive, headers, self.config.max_body_bytes, self.config.body_timeout)
        if body.is_batch:
            raise InvalidRequest("Invalid Request: the HTTP+SSE transport takes one message per POST, not a batch")
        with session.activity():
            try:
                await session.send(Inbound(body.messages[0], scope))
            except SessionClosed:
                raise SessionNotFound("Session not found: its SSE stream has closed") from None
        await send_response(send, 202, b"Accepted", extra, b"text/plain; charset=utf-8")

    def _session(self, scope: Scope) -> Session:
        query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
        values = query.get("session_id") or query.get("sessionId")
        if not values:
            raise MissingSession("Bad Request: the session_id query parameter is required")
        session = check_owner(self.registry.get(values[0]), principal_in(scope))
        if session is None or session.kind is not SessionKind.LEGACY_SSE:
            raise SessionNotFound("Session not found: its SSE stream has closed or never existed")
        return session
