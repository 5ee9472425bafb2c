"""``/mcp``: Streamable HTTP for 2025-03-26, 2025-06-18 and 2025-11-25 (POST, GET, DELETE).

Each handler checks the request in the order a client can fix it (media types, size, JSON, session,
version), hands messages to the session, and answers with SSE, JSON, 202 or an error.
"""

from __future__ import annotations

import logging
from collections.abc import Coroutine
from dataclasses import dataclass
from typing import Any

import anyio
import orjson

from mcp_sse.config import ServerConfig
from mcp_sse.core.events import ReplayGap
from mcp_sse.core.registry import SessionRegistry
from mcp_sse.core.session import STANDALONE, Inbound, Session, SessionClosed, SessionKind, Stream
from mcp_sse.core.session_record import parse_event_id
from mcp_sse.errors import (
    InvalidRequest,
    MissingSession,
    NotAcceptable,
    ReplayUnavailable,
    SessionNotFound,
    UnsupportedProtocolVersion,
)
from mcp_sse.sdk_compat import serve_stateless
from mcp_sse.server.asgi import (
    JSON_CONTENT_TYPE,
    ASGIMessage,
    HeaderList,
    Receive,
    Scope,
    Send,
    accepts,
    read_body,
    send_response,
)
from mcp_sse.server.auth import caller_of, principal_in, token_expiry
from mcp_sse.server.intake import (
    check_owner,
    open_session,
    read_messages,
    require_json,
    revive_session,
    too_many_for_caller,
)
from mcp_sse.server.sse_writer import (
    EventEncoder,
    epoch_encoder,
    loss_notice,
    priming_event,
    streamable_encoder,
    write_stream,
)
from mcp_sse.server.token_deadline import serve_until
from mcp_sse.upstream.base import ModernUpstream
from mcp_sse.wire import eras, jsonrpc
from mcp_sse.wire.headers import LAST_EVENT_ID, MCP_METHOD, PROTOCOL_VERSION, SESSION_ID

__all__ = ["Streamable"]

logger = logging.getLogger(__name__)

_SESSION_ID = SESSION_ID.encode()
_SESSION_ERA_ONLY = frozenset({_SESSION_ID, LAST_EVENT_ID.encode()})
"""Headers a modern-only server ignores: it never has a session, nor a stream to resume."""


@dataclass(slots=True)
class Streamable:
    config: ServerConfig
    registry: SessionRegistry
    modern: ModernUpstream | None = None
    """An upstream that serves the stateless 2026-07-28 era itself; None: such requests get -32022."""

    async def post_stateless(self, scope: Scope, receive: Receive, send: Send, headers: dict[str, str]) -> None:
        """Modern-only mode: every POST goes to the stateless path, session-era headers stripped;
        an ``initialize`` is told which versions this server speaks (MCP 2026-07-28, Versioning:
        https://modelcontextprotocol.io/specification/2026-07-28/basic/versioning)."""
        body = await read_body(receive, headers, self.config.max_body_bytes, self.config.body_timeout)
        try:
            message = jsonrpc.parse_body(body).messages[0]
        except jsonrpc.FramingError:
            message = None  # the stateless path answers malformed bodies itself
        if message is not None and message.method == "initialize":
            params = message.obj.get("params")
            requested = params.get("protocolVersion") if isinstance(params, dict) else None
            supported = list(eras.MODERN_VERSIONS)
            raise UnsupportedProtocolVersion(
                f"Bad Request: this server speaks only the stateless era ({', '.join(supported)}); "
                "send requests with their version in _meta instead of initialize",
                request_id=message.id,
                data={"supported": supported, "requested": requested},
            )
        scope = dict(scope, headers=[(k, v) for k, v in scope["headers"] if k.lower() not in _SESSION_ERA_ONLY])
        await self._post_modern(scope, receive, send, headers, body)

    async def _post_modern(
        self, scope: Scope, receive: Receive, send: Send, headers: dict[str, str], body: bytes | None = None
    ) -> None:
        """Hand a stateless-era POST to the upstream, its body read once under our size limit."""
        assert self.modern is not None
        if body is None:
            body = await read_body(receive, headers, self.config.max_body_bytes, self.config.body_timeout)
        delivered = False
        scope = _without_edge_whitespace(scope)

        async def replay() -> ASGIMessage:
            nonlocal delivered
            if not delivered:
                delivered = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()  # after the body: the disconnect, which cancels the request

        server, lifespan_state = self.modern.modern_server()
        json_response = self.config.json_response
        expires_at = token_expiry(scope)
        if expires_at is not None and headers.get(MCP_METHOD, "").strip() == "subscriptions/listen":
            # Other requests end with their answer; a listen stream would outlive its token.
            await serve_until(
                expires_at,
                lambda receive, send: serve_stateless(
                    server, lifespan_state, scope, receive, send, json_response=json_response
                ),
                replay,
                send,
            )
            return
        await serve_stateless(server, lifespan_state, scope, replay, send, json_response=json_response)

    # --- POST ---------------------------------------------------------------------------

    async def post(
        self, scope: Scope, receive: Receive, send: Send, headers: dict[str, str], extra: HeaderList
    ) -> None:
        if self.modern is not None and _names_modern_era(headers):
            await self._post_modern(scope, receive, send, headers)
            return
        require_json(headers)
        accept = headers.get("accept", "")
        if not (accepts(accept, "application/json") and accepts(accept, "text/event-stream")):
            raise NotAcceptable("Not Acceptable: Accept must list both application/json and text/event-stream")
        body = await read_messages(receive, headers, self.config.max_body_bytes, self.config.body_timeout)
        first = body.messages[0]
        header_version = self._check_version_header(headers, first.id if first.is_request else None)

        initializing = any(m.method == "initialize" for m in body.messages) and not body.is_batch
        if initializing:
            session = await self._open_session(first.obj.get("params"), scope)
        else:
            session = await self._session(scope, headers, first.id if first.is_request else None)
        version = eras.effective_version(header_version, session.version)
        if body.is_batch:
            if not eras.allows_batch(version):
                raise InvalidRequest(f"Invalid Request: JSON-RPC batches are not allowed in protocol version {version}")
            try:
                jsonrpc.check_batch(body)
            except jsonrpc.FramingError as exc:
                raise InvalidRequest(exc.message) from None

        requests = body.requests
        for request in requests:
            assert request.id is not None
            if session.is_pending(request.id):
                raise InvalidRequest(
                    f"Invalid Request: request id {request.id!r} is already in flight in this session",
                    request_id=request.id,
                )
        session_headers = [*extra, (_SESSION_ID, session.id.encode())]
        with session.activity():
            if not requests:
                for message in body.messages:
                    await self._deliver(session, Inbound(message, scope))
                await send_response(send, 202, b"", session_headers)
                return
            stream = session.open_request_stream(
                [r.id for r in requests if r.id is not None], json_mode=self.config.json_response
            )
            for message in body.messages:
                await self._deliver(session, Inbound(message, scope))
        try:
            if self.config.json_response:
                await self._answer_json(send, receive, session, stream, body.is_batch, session_headers)
                return
            preamble = b""
            if eras.sends_priming(version):
                preamble = priming_event(stream.key, 0, self.config.retry_ms, session.epoch)
            await self._serve_stream(scope, send, receive, session, stream, 0, session_headers, preamble)
        finally:
            if initializing:
                await self._end_if_refused(session, stream)

    async def _end_if_refused(self, session: Session, stream: Stream) -> None:
        """An initialize answered with an error opened nothing: end the session now, not at idle timeout."""
        if not stream.complete:
            return  # the client left before the answer; it may still resume and read it
        try:
            events = await session.read(stream, 0)
        except ReplayGap:
            return
        if events and b'"error"' in events[-1].payload and "error" in orjson.loads(events[-1].payload):
            await self.registry.end(session)

    async def _open_session(self, params: object, scope: Scope) -> Session:
        requested = params.get("protocolVersion") if isinstance(params, dict) else None
        kept = params if isinstance(params, dict) else None  # what a durable store keeps to bring it back
        version = eras.negotiate(requested)
        return await open_session(
            self.registry,
            self.config,
            SessionKind.STREAMABLE,
            version,
            initialize=kept,
            principal=principal_in(scope),
            caller=caller_of(scope),
        )

    @staticmethod
    async def _deliver(session: Session, inbound: Inbound) -> None:
        try:
            await session.send(inbound)
        except SessionClosed:
            raise SessionNotFound("Session not found: it ended while the request was being delivered") from None

    async def _answer_json(
        self, send: Send, receive: Receive, session: Session, stream: Stream, batch: bool, headers: HeaderList
    ) -> None:
        """JSON-response mode: wait for every response of the POST, then answer with one body.

        A client that leaves meanwhile is not waited for. Its request runs on (a disconnect is not
        a cancellation), but nobody can read this answer any more, so the session is no longer
        held active on its behalf, as when an SSE stream's client leaves.
        """
        left = False

        async def watch_for_disconnect() -> None:
            nonlocal left
            while (await receive())["type"] != "http.disconnect":
                pass
            left = True
            stream.notify()

        with session.activity():
            if not stream.complete:
                async with anyio.create_task_group() as tg:
                    tg.start_soon(watch_for_disconnect)
                    while not stream.complete and not session.closed and not left:
                        await stream.changed.wait()
                    tg.cancel_scope.cancel()
        if left:
            logger.debug("session %s: the client left before its JSON answer", session.id)
            return
        if not stream.complete:
            raise SessionNotFound("Session not found: it ended before the request was answered")
        replies = [e.payload for e in await session.read(stream, 0)]
        session.forget_stream(stream)
        body = b"[" + b",".join(replies) + b"]" if batch else replies[-1]
        await send_response(send, 200, body, headers, JSON_CONTENT_TYPE)

    # --- GET ----------------------------------------------------------------------------

    async def get(self, scope: Scope, receive: Receive, send: Send, headers: dict[str, str], extra: HeaderList) -> None:
        if not accepts(headers.get("accept", ""), "text/event-stream"):
            raise NotAcceptable("Not Acceptable: Accept must list text/event-stream")
        header_version = self._check_version_header(headers, None)
        session = await self._session(scope, headers, None)
        version = eras.effective_version(header_version, session.version)
        session_headers = [*extra, (_SESSION_ID, session.id.encode())]
        last_event_id = headers.get(LAST_EVENT_ID)
        preamble = b""
        replay_until = 0
        if last_event_id:
            parsed = parse_event_id(last_event_id)
            point = session.resume_point(*parsed) if parsed is not None else None
            stream = session.stream_for_resume(parsed[1]) if parsed is not None and point is not None else None
            if point is None or stream is None:
                raise InvalidRequest(f"Invalid Last-Event-ID {last_event_id!r}: no such stream in this session")
            cursor = point.after
            replay_until = await session.store.last_seq(session.id, stream.key)
            if cursor > replay_until:
                raise InvalidRequest(f"Invalid Last-Event-ID {last_event_id!r}: this session never sent that event")
            session.observer.resumed()
            if eras.sends_priming(version):
                preamble = f"retry: {self.config.retry_ms}\n\n".encode()
            if point.lost_after is not None:  # the client saw events a crash did not keep: say so
                preamble += loss_notice(session.event_id(stream.key, point.lost_after), last_event_id)
        else:
            stream = session.streams[STANDALONE]
            # The first GET also gets what was sent before it connected; a later one starts live.
            cursor = await session.standalone_cursor()
            if eras.sends_priming(version):
                preamble = priming_event(STANDALONE, cursor, self.config.retry_ms, session.epoch)
        caller = caller_of(scope)
        if (refused := self.registry.limits.open_stream(caller)) is not None:
            raise too_many_for_caller(refused)
        try:
            resumed = bool(last_event_id)
            await self._serve_stream(
                scope, send, receive, session, stream, cursor, session_headers, preamble, replay_until, resumed
            )
        except ReplayGap as gap:
            session.observer.replay_missed()
            raise ReplayUnavailable(
                f"Cannot resume after event {last_event_id}: the events up to "
                f"{session.event_id(gap.stream, gap.oldest - 1)} are no longer kept (the session's replay "
                "window was exceeded)",
                data={"lastEventId": last_event_id, "oldestAvailable": session.event_id(gap.stream, gap.oldest)},
            ) from None
        finally:
            self.registry.limits.close_stream(caller)

    def _serve_stream(
        self,
        scope: Scope,
        send: Send,
        receive: Receive,
        session: Session,
        stream: Stream,
        cursor: int,
        headers: HeaderList,
        preamble: bytes,
        replay_until: int = 0,
        resumed: bool = False,
    ) -> Coroutine[Any, Any, None]:
        """The writer's coroutine, returned rather than awaited: a held stream keeps one frame less."""
        return write_stream(
            send,
            receive,
            session,
            stream,
            cursor,
            headers=headers,
            preamble=preamble,
            keepalive=self.config.keepalive_interval,
            encode=_encoder(session),
            drop_every=self.config.drop_every,
            replay_until=replay_until,
            expires_at=token_expiry(scope),
            retry_ms=self.config.retry_ms,
            resumable=resumed,
        )

    # --- DELETE -------------------------------------------------------------------------

    async def delete(
        self, scope: Scope, receive: Receive, send: Send, headers: dict[str, str], extra: HeaderList
    ) -> None:
        self._check_version_header(headers, None)
        session = await self._session(scope, headers, None)
        await self.registry.end(session)
        await send_response(send, 204, b"", extra)

    # --- shared checks ------------------------------------------------------------------

    async def _session(self, scope: Scope, headers: dict[str, str], request_id: jsonrpc.RequestId | None) -> Session:
        """The session the request names, if it belongs to the caller: live here, or brought back
        from a durable store."""
        session_id = headers.get(SESSION_ID)
        if not session_id:
            raise MissingSession("Bad Request: Mcp-Session-Id header is required", request_id=request_id)
        session = self.registry.get(session_id)
        if session is None:
            session = await revive_session(self.registry, self.config, session_id, caller_of(scope))
        session = check_owner(session, principal_in(scope))
        if session is None or session.kind is not SessionKind.STREAMABLE:
            raise SessionNotFound("Session not found: it ended or never existed; initialize a new one")
        return session

    def _check_version_header(self, headers: dict[str, str], request_id: jsonrpc.RequestId | None) -> str | None:
        version = headers.get(PROTOCOL_VERSION)
        if version is None:
            return None
        if not eras.is_supported(version):
            supported = list(eras.SUPPORTED_VERSIONS) + (list(eras.MODERN_VERSIONS) if self.modern else [])
            raise UnsupportedProtocolVersion(
                f"Bad Request: unsupported protocol version {version!r}; supported versions are {', '.join(supported)}",
                request_id=request_id,
                data={"supported": supported, "requested": version},
            )
        return version


def _encoder(session: Session) -> EventEncoder:
    """Ids as ``<stream>-<seq>``, or with their epoch once the session came back after a restart."""
    return streamable_encoder if session.epoch == 0 else epoch_encoder(session.event_id)


def _names_modern_era(headers: dict[str, str]) -> bool:
    """A stateless-era POST: it belongs to no session and names a 2026-07-28 version, or names a
    version nobody serves while carrying the era's ``Mcp-Method`` header (a modern client probing
    with a newer version), so its -32022 lists what ``server/discover`` lists.

    A request that carries ``Mcp-Session-Id`` is session-era traffic whatever its header says, and
    gets the session era's answer to a bad version (400/-32022), not the stateless path's.
    """
    version = headers.get(PROTOCOL_VERSION)
    if version is None or SESSION_ID in headers:
        return False
    if eras.is_modern(version):
        return True
    method = headers.get(MCP_METHOD)
    return method is not None and method != "initialize" and not eras.is_supported(version)


_OWS = b" \t"


def _without_edge_whitespace(scope: Scope) -> Scope:
    """The scope with each header value's surrounding whitespace removed, as ``header_map`` reads
    them (RFC 9110 section 5.5), for the upstream's stateless path, which reads the raw scope and
    compares the values against the body byte for byte."""
    headers = scope["headers"]
    if all(value == value.strip(_OWS) for _, value in headers):
        return scope
    return dict(scope, headers=[(name, value.strip(_OWS)) for name, value in headers])
