"""A session and its streams: where every outbound message is routed, and the cursors that read them.

Routing rules (MCP 2025-11-25, Transports, "Sending Messages to the Server", "Listening for Messages
from the Server" and "Multiple Connections": https://modelcontextprotocol.io/specification/2025-11-25/basic/transports#sending-messages-to-the-server):
a response goes to the stream of its request; a notification or request related to a pending request
goes to that request's stream; everything else goes to the standalone stream (key 0). A message is
appended to exactly one stream, never two.

Each stream has at most one attached writer (an HTTP response). A new writer takes over and the
old one is cancelled, so a stale connection that a proxy dropped silently never locks a client out
(servers that refuse a second GET stream with 409 Conflict while they still hold the dead one leave
such a client without a stream for good). This module must never know about HTTP.
"""

from __future__ import annotations

import enum
import logging
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import anyio
import orjson

from mcp_sse.core.channel import Channel, Wakeup
from mcp_sse.core.events import Event, EventStore, SessionStateStore
from mcp_sse.core.observer import NullObserver, Observer
from mcp_sse.core.session_record import (
    INTERRUPTED,
    ResumePoint,
    SessionRecord,
    format_event_id,
    request_id_of,
    request_key,
)
from mcp_sse.wire import eras
from mcp_sse.wire.jsonrpc import REQUEST_CANCELLED, Kind, Message, RequestId, error_message

__all__ = [
    "INBOUND_BUFFER",
    "READ_BATCH",
    "STANDALONE",
    "Cancellable",
    "Inbound",
    "InvalidTransition",
    "Outbound",
    "ReaderState",
    "Session",
    "SessionClosed",
    "SessionKind",
    "SessionState",
    "Stream",
]

logger = logging.getLogger(__name__)

STANDALONE = 0
"""The key of the stream that carries messages related to no request (the GET stream)."""

READ_BATCH = 1024
"""Events one read of a stream returns at most: a writer sends each batch in one write."""

INBOUND_BUFFER = 32
"""Messages waiting for the upstream to take them; a full buffer makes the POST wait (backpressure)."""


class SessionKind(enum.Enum):
    STREAMABLE = "streamable-http"
    LEGACY_SSE = "http+sse"


class SessionClosed(Exception):
    """The session ended while a message was on its way in."""


class InvalidTransition(RuntimeError):
    """A state change that the state's table of transitions does not allow: a bug, never input."""


class SessionState(enum.Enum):
    """Where a session is in its life; it changes only through the session's own methods.

    ``STARTING`` -> ``RUNNING``: its upstream runs, and can be stopped (``bind_upstream``).
    ``STARTING`` or ``RUNNING`` -> ``CLOSED``: ended (``close``); it answers nothing any more.
    """

    STARTING = "starting"
    RUNNING = "running"
    CLOSED = "closed"

    def can_become(self, new: SessionState) -> bool:
        return new in _SESSION_TRANSITIONS[self]


_SESSION_TRANSITIONS: dict[SessionState, frozenset[SessionState]] = {
    SessionState.STARTING: frozenset({SessionState.RUNNING, SessionState.CLOSED}),
    SessionState.RUNNING: frozenset({SessionState.CLOSED}),
    SessionState.CLOSED: frozenset(),
}


class ReaderState(enum.Enum):
    """Who reads a stream; it changes only through the stream's own methods.

    ``UNCLAIMED``: nobody has asked for it yet (the standalone stream before its first GET, a
    stream that a resume names after it was forgotten). ``EXPECTED``: a POST's own connection is
    about to attach, and producers are held back for it as for a reader. ``ATTACHED``: one
    connection writes it out. ``UNATTENDED``: it had a reader, or the first GET took its backlog,
    and nobody reads it now: the log keeps what it can for a resume.

    ``UNCLAIMED`` -> ``UNATTENDED`` (``claim``, the first GET) or ``ATTACHED`` (``attach``);
    ``EXPECTED`` -> ``ATTACHED`` (``attach``) or ``UNATTENDED`` (cut off before it came, ``cut_off``);
    ``ATTACHED`` -> ``ATTACHED`` (a newer connection takes over) or ``UNATTENDED`` (``detach``);
    ``UNATTENDED`` -> ``ATTACHED`` (a resume).
    """

    UNCLAIMED = "unclaimed"
    EXPECTED = "expected"
    ATTACHED = "attached"
    UNATTENDED = "unattended"

    def can_become(self, new: ReaderState) -> bool:
        return new in _READER_TRANSITIONS[self]


_READER_TRANSITIONS: dict[ReaderState, frozenset[ReaderState]] = {
    ReaderState.UNCLAIMED: frozenset({ReaderState.UNATTENDED, ReaderState.ATTACHED}),
    ReaderState.EXPECTED: frozenset({ReaderState.ATTACHED, ReaderState.UNATTENDED}),
    ReaderState.ATTACHED: frozenset({ReaderState.ATTACHED, ReaderState.UNATTENDED}),
    ReaderState.UNATTENDED: frozenset({ReaderState.ATTACHED}),
}


@dataclass(slots=True)
class Inbound:
    """A client message for the upstream, with what the edge knows of the request it arrived in.

    ``context`` is opaque to the core: the HTTP edge puts its ASGI scope there, and the SDK upstream
    turns it into the request context the SDK gives handlers (``sdk_compat.request_context``).
    """

    message: Message
    context: Mapping[str, Any]


@dataclass(slots=True)
class Outbound:
    """A message from the upstream: the serialized JSON plus what routing needs to know about it."""

    payload: bytes
    kind: Kind
    id: RequestId | None = None
    related_request_id: RequestId | None = None


_OWES_NOTHING: set[RequestId] = set()


class Cancellable(Protocol):
    """What a stream holds of the connection writing it: a way to end that connection, telling the
    client (``retry_ms``) when to come back when it should come back somewhere."""

    def cancel(self, retry_ms: int | None = None) -> object: ...


class Stream:
    """One logical SSE stream of a session: the standalone stream, or the one of a POST.

    Two facts about it change, each only through its methods: who reads it (``reader``, a
    ``ReaderState``) and whether it is complete (every request of its POST answered, ``finish``).
    """

    __slots__ = (
        "_advanced",
        "_changed",
        "_complete",
        "_reader",
        "appended",
        "json_mode",
        "key",
        "pending",
        "sent",
        "writer",
    )

    def __init__(
        self,
        key: int,
        *,
        json_mode: bool = False,
        pending: Iterable[RequestId] = (),
        expecting_writer: bool = False,
        complete: bool = False,
    ) -> None:
        self.key = key
        self.json_mode = json_mode
        # The requests a POST stream still owes an answer; other streams owe none and share one
        # empty set nobody writes to (an empty set is 216 bytes per idle session: docs/benchmarks.md,
        # the W3 workload).
        self.pending: set[RequestId] = set(pending) if pending else _OWES_NOTHING
        self._complete = complete
        self._reader = ReaderState.EXPECTED if expecting_writer else ReaderState.UNCLAIMED
        self.writer: Cancellable | None = None
        self.appended = 0  # the last sequence number appended to this stream
        self.sent = 0  # the last one a connection has written out
        # Made only when someone waits, and dropped once set: most notifications find nobody
        # waiting, and an idle stream should not carry two events (docs/benchmarks.md, W3).
        # Plain asyncio wake-ups: anyio's events cost a backend lookup each, on every call
        # (docs/benchmarks.md, W2).
        self._changed: Wakeup | None = None
        self._advanced: Wakeup | None = None

    @property
    def reader(self) -> ReaderState:
        return self._reader

    @property
    def complete(self) -> bool:
        """Every request of the stream's POST is answered and in the log: nothing more will come."""
        return self._complete

    @property
    def expecting_writer(self) -> bool:
        """A POST stream's own connection is about to attach: the producer is held back for it too."""
        return self._reader is ReaderState.EXPECTED

    def _become(self, new: ReaderState) -> None:
        if not self._reader.can_become(new):
            raise InvalidTransition(f"stream {self.key}: reader {self._reader.value} -> {new.value}")
        self._reader = new

    def finish(self) -> None:
        """Every request of the stream is answered: it is complete (once; it never reopens)."""
        self._complete = True

    @property
    def backlog(self) -> int:
        """Events appended but not yet written to the connection that is (or will be) reading them."""
        return self.appended - self.sent

    @property
    def has_reader(self) -> bool:
        return self._reader is ReaderState.ATTACHED or self._reader is ReaderState.EXPECTED

    def mark_sent(self, seq: int) -> None:
        """The writer has written everything up to ``seq``: a producer waiting for room may go on."""
        self.sent = seq
        if self._advanced is not None:
            self._advanced.set()
            self._advanced = None

    async def wait_advanced(self) -> None:
        if self._advanced is None:
            self._advanced = Wakeup()
        await self._advanced.wait()

    @property
    def changed(self) -> Wakeup:
        """Set at the next append or state change; take it *before* reading to never miss a wake-up."""
        if self._changed is None:
            self._changed = Wakeup()
        return self._changed

    def notify(self) -> None:
        if self._changed is not None:
            self._changed.set()
            self._changed = None

    def claim(self) -> bool:
        """A GET without ``Last-Event-ID`` asks for the standalone stream: True the first time (that
        GET also gets what was sent before it connected), False after (a later one starts live)."""
        if self._reader is not ReaderState.UNCLAIMED:
            return False
        self._become(ReaderState.UNATTENDED)
        return True

    def attach(self, scope: Cancellable) -> None:
        """Make ``scope`` the one writer of this stream, cancelling the writer it replaces."""
        self._become(ReaderState.ATTACHED)
        if self.writer is not None and self.writer is not scope:
            self.writer.cancel()
        self.writer = scope

    def detach(self, scope: Cancellable) -> None:
        if self.writer is scope:
            self.writer = None
            self._become(ReaderState.UNATTENDED)  # the client left: from now on the log keeps what it can
            self.mark_sent(self.sent)  # wake a producer waiting for this reader

    def cut_off(self) -> None:
        """A reader that does not drain is ended: the connection expected for it no longer holds the
        producer back, and an attached one is cancelled (it detaches as it ends)."""
        if self._reader is ReaderState.EXPECTED:
            self._become(ReaderState.UNATTENDED)
        if self.writer is not None:
            self.writer.cancel()


class Session:
    """The server side of one MCP session: its streams, its event log, its channel to the upstream.

    The upstream sees a session through three calls: ``receive()`` for the next client message,
    ``emit()`` for each message it sends, and ``close_request_stream()`` to end a request's
    connection early so a 2025-11-25 client polls (SEP-1699).
    """

    def __init__(
        self,
        session_id: str,
        kind: SessionKind,
        version: str,
        store: EventStore,
        *,
        json_response: bool = False,
        backlog_limit: int = 5_000,
        slow_consumer_timeout: float = 30.0,
        observer: Observer | None = None,
        record: SessionRecord | None = None,
    ) -> None:
        self.id = session_id
        self.backlog_limit = backlog_limit
        self.slow_consumer_timeout = slow_consumer_timeout
        self.kind = kind
        self.version = version
        self.store = store
        self.json_response = json_response
        self.streams: dict[int, Stream] = {STANDALONE: Stream(STANDALONE)}
        self._state = SessionState.STARTING
        self.observer: Observer = observer if observer is not None else NullObserver()
        self._stop_upstream: Callable[[], object] | None = None
        self.opened = self.last_activity = time.monotonic()
        self.active = 0
        self._next_stream = 1
        self._request_streams: dict[RequestId, int] = {}
        self._inbound: Channel[Inbound] = Channel(INBOUND_BUFFER)
        # What outlives the process (a durable store and a session era session), else None.
        self.record: SessionRecord | None = None
        self._state_store: SessionStateStore | None = None
        if record is not None and isinstance(store, SessionStateStore):
            self.record, self._state_store = record, store
            self._next_stream = record.first_free_stream
        self._internal: dict[RequestId, anyio.Event] = {}  # our own requests to the upstream
        self.principal: str | None = None  # whom the session belongs to, when the server checks tokens
        self.caller: str | None = None  # whose per-caller session limit it counts against

    @property
    def state(self) -> SessionState:
        return self._state

    @property
    def closed(self) -> bool:
        return self._state is SessionState.CLOSED

    def _become(self, new: SessionState) -> None:
        if not self._state.can_become(new):
            raise InvalidTransition(f"session {self.id}: {self._state.value} -> {new.value}")
        self._state = new

    def bind_upstream(self, stop: Callable[[], object]) -> None:
        """The session's upstream runs; ``stop`` ends it (called once, when the session closes)."""
        self._become(SessionState.RUNNING)
        self._stop_upstream = stop

    # --- the HTTP edge's side -------------------------------------------------------------

    def activity(self) -> _Activity:
        """Mark an HTTP request or stream in progress, so the idle reaper leaves the session alone."""
        return _Activity(self)

    def idle_for(self, now: float) -> float:
        return 0.0 if self.active else now - self.last_activity

    def is_pending(self, request_id: RequestId) -> bool:
        return request_id in self._request_streams

    def open_request_stream(self, request_ids: list[RequestId], *, json_mode: bool = False) -> Stream:
        """A new stream for the requests of one POST; it completes when all of them are answered."""
        key = self._next_stream
        self._next_stream += 1
        stream = Stream(key, json_mode=json_mode, pending=request_ids, expecting_writer=not json_mode)
        self.streams[key] = stream
        for request_id in request_ids:
            self._request_streams[request_id] = key
        if self._state_store is not None:
            assert self.record is not None
            if self.record.reserve_streams(key):
                self._state_store.save_record(self.id, self.record.to_bytes())
            for request_id in request_ids:
                self._state_store.request_opened(self.id, request_key(request_id), key)
        return stream

    async def send(self, inbound: Inbound) -> None:
        """Hand a client message to the upstream (waits while the upstream is busy)."""
        if self.closed:
            raise SessionClosed(self.id)
        record = self.record
        if record is not None and not record.initialized and inbound.message.method == "notifications/initialized":
            record.initialized = True
            assert self._state_store is not None
            self._state_store.save_record(self.id, record.to_bytes())
        try:
            await self._inbound.send(inbound)
        except (anyio.ClosedResourceError, anyio.BrokenResourceError):
            raise SessionClosed(self.id) from None

    async def standalone_cursor(self) -> int:
        """Where a GET without ``Last-Event-ID`` starts reading the standalone stream: the first one
        also gets what was sent before it connected (from 0), a later one starts live."""
        if self.streams[STANDALONE].claim():
            return 0
        return await self.store.last_seq(self.id, STANDALONE)

    async def read(self, stream: Stream, after: int, limit: int = READ_BATCH) -> list[Event]:
        """Events of ``stream`` after the cursor ``after`` (may raise ReplayGap)."""
        return await self.store.read_after(self.id, stream.key, after, limit)

    # --- the upstream's side ---------------------------------------------------------------

    @property
    def busy(self) -> bool:
        """Whether a request of the client is still being worked on."""
        return bool(self._request_streams)

    async def receive(self) -> Inbound:
        """The next client message; raises anyio.EndOfStream once the session has ended."""
        return await self._inbound.receive()

    async def emit(self, out: Outbound) -> None:
        """Route one upstream message onto exactly one stream and append it to the log."""
        if self.closed:
            return
        if self.kind is SessionKind.LEGACY_SSE:
            await self._append(self.streams[STANDALONE], out.payload)
            return
        if out.kind is Kind.RESPONSE or out.kind is Kind.ERROR:
            key = self._request_streams.pop(out.id, None) if out.id is not None else None
            if key is None:
                answered = self._internal.pop(out.id, None) if out.id is not None else None
                if answered is not None:
                    answered.set()  # our own request (bringing a fresh upstream back): never sent
                    return
                logger.warning("session %s: dropping a response to unknown request %r", self.id, out.id)
                return
            stream = self.streams[key]
            await self._store(stream, out.payload)
            if self._state_store is not None:
                assert out.id is not None
                self._state_store.request_closed(self.id, request_key(out.id))
            # Complete only once the response is in the log: a writer that sees ``complete`` and
            # reads nothing more may end the HTTP response.
            stream.pending.discard(out.id)
            if not stream.pending:
                stream.finish()
            stream.notify()
            return
        key = self._request_streams.get(out.related_request_id) if out.related_request_id is not None else None
        stream = self.streams[key] if key is not None else self.streams[STANDALONE]
        if stream.json_mode:
            # A JSON body carries responses only; request-scoped notifications have nowhere to go.
            return
        await self._append(stream, out.payload)

    async def _append(self, stream: Stream, payload: bytes) -> None:
        await self._store(stream, payload)
        stream.notify()

    async def _store(self, stream: Stream, payload: bytes) -> None:
        if stream.has_reader and stream.backlog >= self.backlog_limit:
            await self._wait_for_room(stream)
        started = time.perf_counter()
        stream.appended = await self.store.append(self.id, stream.key, payload)
        self.observer.event_appended(time.perf_counter() - started)

    async def _wait_for_room(self, stream: Stream) -> None:
        """Backpressure: a connected client is behind, so the producer waits instead of the log
        evicting what that client has not been sent. A client that does not drain for
        ``slow_consumer_timeout`` is cut off; after that the log's eviction policy applies."""
        while stream.has_reader and stream.backlog >= self.backlog_limit and not self.closed:
            with anyio.move_on_after(self.slow_consumer_timeout) as waited:
                await stream.wait_advanced()
            if waited.cancelled_caught:
                logger.warning("session %s stream %d: client not draining; closing it", self.id, stream.key)
                self.observer.slow_consumer_closed()
                stream.cut_off()
                return

    @property
    def inbound_depth(self) -> int:
        """Client messages waiting for the upstream to take them."""
        return len(self._inbound)

    async def request_unanswered(self, request_id: RequestId) -> None:
        """The upstream settled a request without answering: end its stream with an error anyway."""
        if request_id in self._request_streams:
            payload = orjson.dumps(error_message(REQUEST_CANCELLED, "Request cancelled", request_id))
            await self.emit(Outbound(payload, Kind.ERROR, request_id))

    def close_request_stream(self, request_id: RequestId) -> None:
        """End the connection of a request's stream without ending the stream (SSE polling)."""
        if not eras.sends_priming(self.version):
            return  # older clients would take the close as the end of the request
        key = self._request_streams.get(request_id)
        stream = self.streams.get(key) if key is not None else None
        if stream is not None and stream.writer is not None:
            stream.writer.cancel()

    def close_standalone_stream(self) -> None:
        if eras.sends_priming(self.version):
            writer = self.streams[STANDALONE].writer
            if writer is not None:
                writer.cancel()

    def stream_for_resume(self, key: int) -> Stream | None:
        """The stream a ``Last-Event-ID`` names: live, or (once forgotten) a completed stand-in."""
        stream = self.streams.get(key)
        if stream is None and 0 < key < self._next_stream:
            stream = Stream(key, complete=True)
        return stream

    def forget_stream(self, stream: Stream) -> None:
        """Drop a completed stream's bookkeeping (its events stay in the log for replay)."""
        if stream.key != STANDALONE and stream.complete:
            self.streams.pop(stream.key, None)

    async def close(self, *, keep: bool = False) -> None:
        """End the session: stop the upstream, wake every writer so it ends, forget the log.

        ``keep``: the process is stopping, not the session. Its requests in progress are answered
        with the ``INTERRUPTED`` error, and its record and log stay in the durable store, so the
        session comes back in the next process (``SessionRegistry.revive``).
        """
        if self.closed:
            return
        keep = keep and self._state_store is not None
        if keep:
            with anyio.CancelScope(shield=True):
                await self.interrupt_open_requests("the server is restarting")
        self._become(SessionState.CLOSED)
        self._inbound.close()
        if self._stop_upstream is not None:
            self._stop_upstream()
        for stream in list(self.streams.values()):
            stream.notify()
        if not keep:
            with anyio.CancelScope(shield=True):
                await self.store.drop_session(self.id)

    # --- coming back in a new process -------------------------------------------------------------

    @property
    def epoch(self) -> int:
        return self.record.epoch if self.record is not None else 0

    def event_id(self, stream: int, seq: int) -> str:
        """The id a client sees for event ``seq`` of ``stream`` (its epoch named after a restart)."""
        return self.record.event_id(stream, seq) if self.record is not None else format_event_id(0, stream, seq)

    def resume_point(self, epoch: int, stream: int, seq: int) -> ResumePoint | None:
        """Where a resume after the client's cursor starts; None for an epoch this session never had."""
        if self.record is not None:
            return self.record.resume_point(epoch, stream, seq)
        return ResumePoint(seq) if epoch == 0 else None

    def adopt_open_requests(self, open_requests: dict[str, int]) -> None:
        """The requests a previous process left in progress, so they can be answered here."""
        for key, stream_key in open_requests.items():
            request_id = request_id_of(key)
            stream = self.streams.get(stream_key)
            if stream is None:
                stream = self.streams[stream_key] = Stream(stream_key, pending=[request_id])
            else:
                stream.pending.add(request_id)
            self._request_streams[request_id] = stream_key

    async def interrupt_open_requests(self, reason: str) -> None:
        """Answer every request in progress with the ``INTERRUPTED`` error, on its own stream."""
        for request_id in list(self._request_streams):
            message = f"Request interrupted: {reason}; it may be sent again"
            payload = orjson.dumps(error_message(INTERRUPTED, message, request_id))
            await self.emit(Outbound(payload, Kind.ERROR, request_id))

    async def send_internal(self, message: Message) -> None:
        """A message of our own for the upstream; it arrived over no HTTP request."""
        await self.send(Inbound(message, {}))

    async def call_upstream(self, message: Message) -> None:
        """Send a request of our own to the upstream and wait for its answer, which no client sees
        (a fresh upstream brought back to the session's state)."""
        assert message.id is not None
        answered = self._internal[message.id] = anyio.Event()
        try:
            await self.send_internal(message)
            await answered.wait()
        finally:
            self._internal.pop(message.id, None)


class _Activity:
    """``with session.activity():`` as a slotted object: a generator-based context manager kept a
    frame alive for every held stream (W3 in docs/benchmarks.md)."""

    __slots__ = ("session",)

    def __init__(self, session: Session) -> None:
        self.session = session

    def __enter__(self) -> None:
        self.session.active += 1
        self.session.last_activity = time.monotonic()

    def __exit__(self, *exc_info: object) -> None:
        self.session.active -= 1
        self.session.last_activity = time.monotonic()
