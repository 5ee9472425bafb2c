"""Write one stream of the event log to one HTTP response as SSE, live or resumed: the same loop.

The writer is a cursor: it reads what the log holds after its position, sends it (every event
that is ready goes out in one ``send``), then waits for the stream to change or for the keepalive
interval to pass. It ends when the stream is complete and fully sent, when the session ends, when
a newer connection takes the stream over, or when the client goes away. Nothing it does changes
the log, so a dropped connection loses nothing: the next connection resumes from its cursor.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable

import anyio
import orjson

from mcp_sse.core.events import Event, ReplayGap
from mcp_sse.core.session import READ_BATCH, Session, Stream
from mcp_sse.server.asgi import SSE_CONTENT_TYPE, ASGIMessage, HeaderList, Receive, Send
from mcp_sse.wire.sse import encode_comment, encode_json_event, encode_retry

__all__ = [
    "ANSWER_GRACE_SECONDS",
    "END_GRACE_SECONDS",
    "KEEPALIVE",
    "SSE_HEADERS",
    "EventEncoder",
    "epoch_encoder",
    "legacy_encoder",
    "loss_notice",
    "priming_event",
    "streamable_encoder",
    "write_stream",
]

logger = logging.getLogger(__name__)

SSE_HEADERS: HeaderList = [
    (b"content-type", SSE_CONTENT_TYPE),
    (b"cache-control", b"no-cache, no-transform"),
    (b"x-accel-buffering", b"no"),
]
KEEPALIVE = encode_comment("ping")
ANSWER_GRACE_SECONDS = 0.010
"""How long a new stream waits for a quick answer before it writes the priming event alone.

Quick means quick on a busy server: with 16 sessions calling at once, a short handler's answer
waits its turn behind the others for a few ms (W2's p50 in docs/benchmarks.md is about 4 ms). At
1 ms half of those answers took the slow way (the priming event alone, a disconnect watcher, a
second write); at 10 ms almost none do, for about 5 % less server CPU per call. A slow tool's
client gets its priming event 10 ms late, well before any resumption could matter."""
END_GRACE_SECONDS = 1.0
"""How long a writer ended from outside may take to write the end of its response."""

EventEncoder = Callable[[Event], bytes]


def streamable_encoder(event: Event) -> bytes:
    """Streamable HTTP: the id names the stream and the position in it, unique within the session
    (MCP 2025-11-25, Transports, "Resumability and Redelivery":
    https://modelcontextprotocol.io/specification/2025-11-25/basic/transports#resumability-and-redelivery).

    What ``encode_json_event(payload, b"<stream>-<seq>", b"message")`` writes, in one formatting
    step: both numbers are ints, so the id needs no check, and this runs once per event sent.
    """
    return b"event: message\nid: %d-%d\ndata: %b\n\n" % (event.stream, event.seq, event.payload)


def priming_event(stream: int, seq: int, retry_ms: int, epoch: int = 0) -> bytes:
    """The event that opens a resumable stream: its id, the reconnection delay, empty data (MCP
    2025-11-25, Transports, "Resumability and Redelivery":
    https://modelcontextprotocol.io/specification/2025-11-25/basic/transports#resumability-and-redelivery).
    What ``encode_event("", id=..., retry=...)`` writes, in one step, once per stream."""
    if epoch:
        return b"id: %d.%d-%d\nretry: %d\ndata: \n\n" % (epoch, stream, seq, retry_ms)
    return b"id: %d-%d\nretry: %d\ndata: \n\n" % (stream, seq, retry_ms)


def epoch_encoder(name: Callable[[int, int], str]) -> EventEncoder:
    """Streamable HTTP for a session that came back after a restart: each id names the epoch that
    numbered its event (``Session.event_id``, docs/durability.md)."""

    def encode(event: Event) -> bytes:
        return b"event: message\nid: %b\ndata: %b\n\n" % (name(event.stream, event.seq).encode(), event.payload)

    return encode


def loss_notice(lost_after_id: str, resumed_from: str) -> bytes:
    """An event without an id (the client's cursor stays where it is) telling a resuming client that
    events after ``lost_after_id`` did not survive a crash of the server: a log message at level
    warning, which every MCP client can take, and which says what was lost rather than skip it."""
    message = {
        "jsonrpc": "2.0",
        "method": "notifications/message",
        "params": {
            "level": "warning",
            "logger": "mcp-sse",
            "data": {
                "message": f"events after {lost_after_id} were lost in a server restart; "
                f"the stream resumes with what came after them (you had seen up to {resumed_from})",
                "lostAfter": lost_after_id,
                "lastEventId": resumed_from,
            },
        },
    }
    return encode_json_event(orjson.dumps(message), None, b"message")


def legacy_encoder(event: Event) -> bytes:
    """HTTP+SSE (2024-11-05): ``message`` events and no ids, that era has no resumption."""
    return encode_json_event(event.payload, None, b"message")


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
    expires_at: float | None = None,
    retry_ms: int = 1000,
    resumable: bool = False,
) -> None:
    """Serve ``stream`` from ``cursor`` on; raises ReplayGap before the response starts if it can't.

    ``drop_every`` ends the connection (not the stream) after that many events, on purpose.
    Events up to ``replay_until`` were in the log before this connection: they count as replayed.
    ``expires_at`` (a wall-clock time): when the token that opened the stream expires, the
    connection ends with ``retry: retry_ms``, as soon as the client has an event id to resume from;
    it comes back with a fresh token and loses nothing. ``resumable``: the client already has one
    (it is resuming).
    """
    complete = stream.complete  # before the read: then what it returns is all there will be
    first = await session.read(stream, cursor)  # a gap is found before any header is sent
    start: ASGIMessage = {"type": "http.response.start", "status": 200, "headers": SSE_HEADERS + headers}
    observer = session.observer
    pump = _Pump(send, receive, session, stream, start, keepalive, encode, drop_every, replay_until)
    pump.resumable = resumable
    # The handle a newer connection (or a server-side close) uses to end this one; no task group:
    # the disconnect watcher is a plain task started only if the writer ever has to wait, so an
    # answer that is ready costs no task at all.
    handle = _WriterHandle()
    with session.activity():
        if stream.writer is not None:
            observer.stream_taken_over()
        stream.attach(handle)
        observer.stream_opened()
        expiry = None
        if expires_at is not None:
            expiry = pump.loop.call_later(max(0.0, expires_at - time.time()), pump.expire, handle, retry_ms)
        try:
            await pump.run(cursor, first, preamble, complete)
        except asyncio.CancelledError:
            if not handle.took_back():
                raise
            logger.debug("session %s stream %d: connection closed or taken over", session.id, stream.key)
        finally:
            if expiry is not None:
                expiry.cancel()
            handle.retire()
            pump.stop()
            observer.stream_closed()
            stream.detach(handle)
    if stream.complete and stream.writer is None:
        session.forget_stream(stream)
    if pump.client_gone or pump.finished:
        return
    with contextlib.suppress(OSError):
        if not handle.cancelled:
            await pump.write(handle.farewell, more=False)
            return
        # Ended from outside (a newer connection, a server-side close, a slow consumer): its client
        # may not be reading at all, so the end gets a moment, not forever; without it the server
        # closes the connection, which ends the stream just as well. A priming event still held
        # goes out first: a client closed on before it saw an event id could not resume.
        with anyio.move_on_after(END_GRACE_SECONDS):
            await pump.write(pump.held + handle.farewell, more=False)


class _WriterHandle:
    """Ends one writer from another task, even while it is blocked in ``send`` behind a client that
    does not read: a cancellation of the writer's own task, told apart from any other one.

    What a cancel scope per connection did, without its three objects for as long as a stream is
    held (W3 in docs/benchmarks.md). Python 3.11's ``Task.uncancel`` keeps the count exact, so a
    cancellation from outside that coincides with ours still propagates.
    """

    __slots__ = ("cancelled", "farewell", "retired", "task")

    def __init__(self) -> None:
        task = asyncio.current_task()
        assert task is not None, "a writer runs in a task"
        self.task = task
        self.cancelled = False
        self.retired = False
        self.farewell = b""  # what the response ends with: a ``retry`` when the client is to come back

    def cancel(self, retry_ms: int | None = None) -> None:
        if not self.cancelled and not self.retired:
            if retry_ms is not None:
                self.farewell = encode_retry(retry_ms)
            self.cancelled = True
            self.task.cancel()

    def took_back(self) -> bool:
        """In ``except CancelledError``: True when the cancellation was only ours (now undone)."""
        return self.cancelled and self.task.uncancel() == 0

    def retire(self) -> None:
        """The writer is done: later ``cancel`` calls must not reach whatever the task does next."""
        self.retired = True


class _Pump:
    """The cursor loop: send what is ready, then wait; return when the stream has nothing more.

    A wait ends at the stream's next change, which is also how the two other wake-ups arrive: the
    disconnect watcher's end and the keepalive timer each poke the stream. One timer per keepalive
    interval, re-armed only when it fires, so a busy stream does not churn timers.

    The response's headers go out with its first body, not before it: a quick answer then reaches
    the client in back-to-back writes that wake it once, not twice (W2 in docs/benchmarks.md:
    about a third less kernel time per call). A stream with nothing to send yet still gets its
    headers once the answer's grace moment is over, so a client waiting for them never waits on
    the upstream.
    """

    def __init__(
        self,
        send: Send,
        receive: Receive,
        session: Session,
        stream: Stream,
        start: ASGIMessage,
        keepalive: float,
        encode: EventEncoder,
        drop_every: int | None,
        replay_until: int,
    ) -> None:
        self.send = send
        self.start: ASGIMessage | None = start  # until the first write
        self.receive = receive
        self.session = session
        self.stream = stream
        self.keepalive = keepalive
        self.encode = encode
        self.drop_every = drop_every
        self.replay_until = replay_until
        self.loop = asyncio.get_running_loop()
        self.last_write = self.loop.time()
        self.watcher: asyncio.Future[ASGIMessage] | None = None
        self.finished = False  # the response's end has been sent
        self.client_gone = False
        self.held = b""  # the priming event, while it waits a moment for the answer to join it
        self.timer: asyncio.TimerHandle | None = None
        self.resumable = False  # the client has an event id of this stream to come back with
        self.expired = False  # the token that opened the stream has expired

    def expire(self, handle: _WriterHandle, retry_ms: int) -> None:
        """The token that opened the stream expired: end the connection, now if the client can
        resume it, else once it has been sent an event id (the loop checks after each write)."""
        self.expired = True
        handle.farewell = encode_retry(retry_ms)  # however the response ends from here
        logger.info("session %s stream %d: the token expired; ending the connection", self.session.id, self.stream.key)
        if self.resumable:
            handle.cancel(retry_ms)

    async def run(self, cursor: int, ready: list[Event], preamble: bytes, complete: bool) -> None:
        """``complete``: the stream was complete before ``ready`` was read, so nothing follows it."""
        session, stream, observer = self.session, self.stream, self.session.observer
        pending = preamble
        sent = 0
        patient = True
        while True:
            # The last batch of a complete stream carries the end of the response: one write less.
            final = complete and len(ready) < READ_BATCH
            if ready:
                if self.drop_every is not None and len(ready) > self.drop_every - sent:
                    ready = ready[: self.drop_every - sent]
                    final = False
                sent += len(ready)
                replayed = sum(1 for event in ready if event.seq <= self.replay_until)
                observer.events_sent(len(ready) - replayed, replayed)
                pending += b"".join([self.encode(event) for event in ready])
                cursor = ready[-1].seq
            # First pass with nothing to say yet: the priming event waits a moment for the answer.
            hold = patient and not ready and not final
            self.held = pending if hold else b""
            if (pending and not hold) or final:
                await self.write(pending, more=not final)
                self.resumable = self.resumable or (bool(pending) and pending is not KEEPALIVE)
                pending = b""
                self.last_write = self.loop.time()
                stream.mark_sent(cursor)
                if final:
                    self.finished = True
                    return
                if self.expired and self.resumable:
                    return
            if self.drop_every is not None and sent >= self.drop_every:
                logger.info("session %s stream %d: cut after %d events (drop_every)", session.id, stream.key, sent)
                return
            if session.closed:
                return
            changed = stream.changed  # taken before the read, so a change in between still wakes us
            complete = stream.complete
            batch = await self._read(cursor)
            if batch is None:
                return
            ready = batch
            if ready or stream.complete:
                continue  # (complete with nothing read: the loop's top ends the response)
            if self.client_gone:
                return
            if patient:
                # A moment for the upstream before the first real wait: an answer that comes
                # within it needs no disconnect watcher, and goes out with the priming event in
                # one write (W2 in docs/benchmarks.md); a slower one gets the priming event then.
                patient = False
                moment = self.loop.call_later(ANSWER_GRACE_SECONDS, stream.notify)
                await changed.wait()  # taken before the read above: a change since then is not missed
                moment.cancel()
                changed = stream.changed
                complete = stream.complete
                batch = await self._read(cursor)
                if batch is None:
                    return
                ready = batch
                continue
            if self.start is not None:  # nothing to say yet: the headers go out on their own
                await self.write(b"", more=True)
            self._arm()
            await changed.wait()
            if self.client_gone:
                return
            if self.loop.time() >= self.last_write + self.keepalive:
                pending = KEEPALIVE

    async def write(self, body: bytes, *, more: bool) -> None:
        """One body write, preceded by the headers if they have not gone out yet."""
        if self.start is not None:
            start, self.start = self.start, None
            await self.send(start)
            if not body and more:
                return
        await self.send({"type": "http.response.body", "body": body, "more_body": more})

    async def _read(self, cursor: int) -> list[Event] | None:
        """The events after ``cursor``; None when the client fell so far behind that the log
        dropped events it had not been sent: the connection ends, and its resume gets a clear 410
        instead of a silent gap."""
        try:
            return await self.session.read(self.stream, cursor)
        except ReplayGap as gap:
            logger.warning("session %s: slow consumer lost its place (%s); closing the stream", self.session.id, gap)
            self.session.observer.slow_consumer_closed()
            return None

    def _arm(self) -> None:
        if self.watcher is None:
            self._watch()
        if self.timer is None:
            self.timer = self.loop.call_at(self.last_write + self.keepalive, self._keepalive_due)

    def _watch(self) -> None:
        """A task on ``receive()`` itself (no wrapper coroutine: an idle stream holds it all along);
        when it returns anything but the disconnect, the next one is started."""
        self.watcher = asyncio.ensure_future(self.receive(), loop=self.loop)
        self.watcher.add_done_callback(self._received)

    def _received(self, task: asyncio.Future[ASGIMessage]) -> None:
        if task.cancelled():
            return
        error = task.exception()
        if error is None and task.result()["type"] != "http.disconnect":
            self._watch()  # the request's own body (a GET's empty one): keep listening
            return
        if error is not None:  # a server whose receive() fails has lost the connection too
            logger.debug("receive() failed while watching for a disconnect: %r", error)
        self.client_gone = True
        self.stream.notify()

    def _keepalive_due(self) -> None:
        self.timer = None
        self.stream.notify()

    def stop(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        if self.watcher is not None and not self.watcher.done():
            self.watcher.remove_done_callback(self._received)
            self.watcher.cancel()
