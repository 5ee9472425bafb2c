"""Write one stream of the event log to one HTTP response as SSE, live or resumed: the same loop.

The writer is a cursor: it reads what the log holds after its position, sends it (every event
that is ready goes out in one ``send``), then waits for the stream to change or for the keepalive
interval to pass. It ends when the stream is complete and fully sent, when the session ends, when
a newer connection takes the stream over, or when the client goes away. Nothing it does changes
the log, so a dropped connection loses nothing: the next connection resumes from its cursor.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import anyio

from mcp_sse.core.events import Event, ReplayGap
from mcp_sse.core.session import Session, Stream
from mcp_sse.server.http import HeaderList, Receive, Send
from mcp_sse.wire.sse import encode_comment, encode_json_event

logger = logging.getLogger(__name__)

SSE_HEADERS: HeaderList = [
    (b"content-type", b"text/event-stream"),
    (b"cache-control", b"no-cache, no-transform"),
    (b"x-accel-buffering", b"no"),
]
KEEPALIVE = encode_comment("ping")

EventEncoder = Callable[[Event], bytes]


def streamable_encoder(event: Event) -> bytes:
    """Streamable HTTP: the id names the stream and the position in it (SPEC items 37-38)."""
    return encode_json_event(event.payload, f"{event.stream}-{event.seq}".encode(), b"message")


def legacy_encoder(event: Event) -> bytes:
    """HTTP+SSE (2024-11-05): ``message`` events and no ids, that era has no resumption."""
    return encode_json_event(event.payload, None, b"message")


def event_id(stream: int, seq: int) -> str:
    return f"{stream}-{seq}"


def parse_event_id(value: str) -> tuple[int, int] | None:
    """``"<stream>-<seq>"`` back to numbers; None when it is not one of ours."""
    stream, sep, seq = value.strip().partition("-")
    if not sep or not stream.isdigit() or not seq.isdigit():
        return None
    return int(stream), int(seq)


async def write_stream(
    send: Send,
    receive: Receive,
    session: Session,
    stream: Stream,
    cursor: int,
    *,
    headers: HeaderList,
    preamble: bytes = b"",
    keepalive: float,
    encode: EventEncoder,
    drop_every: int | None = None,
    replay_until: int = 0,
) -> None:
    """Serve ``stream`` from ``cursor`` on; raises ReplayGap before the response starts if it can't.

    ``drop_every`` ends the connection (not the stream) after that many events, on purpose.
    Events up to ``replay_until`` were in the log before this connection: they count as replayed.
    """
    first = await session.read(stream, cursor)  # a gap is found before any header is sent
    await send({"type": "http.response.start", "status": 200, "headers": SSE_HEADERS + headers})
    gone = anyio.Event()
    observer = session.observer
    with anyio.CancelScope() as scope, session.activity():
        if stream.writer is not None:
            observer.stream_taken_over()
        stream.attach(scope)
        observer.stream_opened()
        try:
            async with anyio.create_task_group() as tg:
                tg.start_soon(_watch_disconnect, receive, tg.cancel_scope, gone)
                pump = _Pump(send, session, stream, keepalive, encode, drop_every, replay_until)
                await pump.run(cursor, first, preamble)
                tg.cancel_scope.cancel()
        finally:
            observer.stream_closed()
            stream.detach(scope)
    if scope.cancelled_caught:
        logger.debug("session %s stream %d: connection closed or taken over", session.id, stream.key)
    if stream.complete and stream.writer is None:
        session.forget_stream(stream)
    if not gone.is_set():
        try:
            with anyio.CancelScope(shield=True):
                await send({"type": "http.response.body", "body": b"", "more_body": False})
        except OSError:
            pass


class _Pump:
    """The cursor loop: send what is ready, then wait; return when the stream has nothing more."""

    def __init__(
        self,
        send: Send,
        session: Session,
        stream: Stream,
        keepalive: float,
        encode: EventEncoder,
        drop_every: int | None,
        replay_until: int,
    ) -> None:
        self.send = send
        self.session = session
        self.stream = stream
        self.keepalive = keepalive
        self.encode = encode
        self.drop_every = drop_every
        self.replay_until = replay_until

    async def run(self, cursor: int, ready: list[Event], preamble: bytes) -> None:
        session, stream, observer = self.session, self.stream, self.session.observer
        pending = preamble
        sent = 0
        while True:
            changed = stream.changed
            if ready:
                if self.drop_every is not None:
                    ready = ready[: self.drop_every - sent]
                sent += len(ready)
                replayed = sum(1 for event in ready if event.seq <= self.replay_until)
                observer.events_sent(len(ready) - replayed, replayed)
                pending += b"".join([self.encode(event) for event in ready])
                cursor = ready[-1].seq
            if pending:
                await self.send({"type": "http.response.body", "body": pending, "more_body": True})
                pending = b""
                stream.mark_sent(cursor)
            if self.drop_every is not None and sent >= self.drop_every:
                logger.info("session %s stream %d: cut after %d events (drop_every)", session.id, stream.key, sent)
                return
            if session.closed:
                return
            try:
                ready = await session.read(stream, cursor)
            except ReplayGap as gap:
                # The client fell so far behind that the log dropped events it had not been sent.
                # End the connection: its resume will get a clear 410 instead of a silent gap.
                logger.warning("session %s: slow consumer lost its place (%s); closing the stream", session.id, gap)
                observer.slow_consumer_closed()
                return
            if ready:
                continue
            if stream.complete:
                return
            with anyio.move_on_after(self.keepalive):
                await changed.wait()
                continue
            pending = KEEPALIVE


async def _watch_disconnect(receive: Receive, scope: anyio.CancelScope, gone: anyio.Event) -> None:
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            gone.set()
            scope.cancel()
            return
