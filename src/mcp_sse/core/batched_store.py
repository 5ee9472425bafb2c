"""The machinery of a durable event log, whatever keeps it: numbering in memory, a tail of recent
events, one writer task that hands whatever has queued to the backend as one batch, backpressure,
eviction and expiry. ``SQLiteEventStore`` (a file) and ``RedisEventStore`` (a Redis server) are
this class plus five backend methods.

Semantics are those of ``MemoryEventStore`` (the shared ``SessionIndex``): numbering from 1 per
(session, stream), the same count and byte bounds evicting a session's oldest events first, and
``ReplayGap`` for a cursor before the oldest kept event, never a silent gap or a duplicate.

What it must never do: wait for the backend in ``append``. ``append`` numbers the event in
memory, keeps it in the stream's tail and queues it for the writer; reads that the tail cannot
answer go to the backend. It must never know about HTTP.

The durability window: what the backend has accepted survives the process dying; the events
appended but not yet written (at most ``max_pending_events``, usually one batch of a few
milliseconds) are lost with the process.
"""

from __future__ import annotations

import itertools
import logging
import time
from collections import deque
from collections.abc import Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass
from types import TracebackType
from typing import NamedTuple, Self

import anyio
from anyio.abc import TaskGroup

from mcp_sse.core.event_index import Bounds, SessionIndex, StreamIndex
from mcp_sse.core.events import Event, ReplayGap, right_sized

__all__ = ["BatchedEventStore", "CloseRequest", "Drop", "Evict", "Insert", "Op", "OpenRequest", "Purge", "SaveRecord"]

logger = logging.getLogger(__name__)

_incarnations = itertools.count(1)
"""Each in-memory session of a store gets a number, so a write for a dropped one is told apart."""


class _Stream(StreamIndex):
    """A stream's numbering, what of it is stored, and the tail of recent events kept in memory."""

    __slots__ = ("committed", "tail", "tail_bytes")

    def __init__(self) -> None:
        super().__init__()
        self.committed = 0  # every seq up to this one is stored (unless evicted)
        self.tail: deque[Event] = deque()  # a contiguous suffix, every uncommitted event in it
        self.tail_bytes = 0


class _Session(SessionIndex):
    __slots__ = ("incarnation",)

    def __init__(self, incarnation: int) -> None:
        super().__init__()
        self.incarnation = incarnation

    def new_stream(self) -> _Stream:
        return _Stream()

    def evicted(self, stream: StreamIndex) -> None:
        assert isinstance(stream, _Stream)
        tail = stream.tail
        while tail and tail[0].seq < stream.first_seq:
            stream.tail_bytes -= len(tail.popleft().payload)


class Insert(NamedTuple):
    """An event to write. It names its session's incarnation (``_Session.incarnation``) rather than
    holding the stream, so the writer marks committed the stream it belongs to, never one of a
    session dropped and made again meanwhile."""

    session: str
    incarnation: int
    event: Event
    ts: float


@dataclass(slots=True)
class Evict:
    firsts: dict[tuple[str, int], int]  # (session, stream) -> new oldest kept seq
    ts: float


@dataclass(slots=True)
class Drop:
    session: str


@dataclass(slots=True)
class Purge:
    cutoff: float
    more: bool = False  # set by the writer: a full chunk was deleted, there may be more


@dataclass(slots=True)
class SaveRecord:
    session: str
    record: bytes  # a ``SessionRecord``'s bytes
    ts: float


@dataclass(slots=True)
class OpenRequest:
    session: str
    request: str  # ``session_record.request_key`` of the request id
    stream: int


@dataclass(slots=True)
class CloseRequest:
    session: str
    request: str


Op = Insert | Evict | Drop | Purge | SaveRecord | OpenRequest | CloseRequest


class BatchedEventStore:
    """A bounded, durable log per session, written in batches by one writer task.

    Run it with ``async with store:`` (the app does it in its lifespan): entering opens the backend,
    purges what is older than ``max_age_seconds`` and starts the writer; leaving writes everything
    appended, stops the writer and closes the backend.

    Bounds and what happens when each is reached:

    - ``max_events_per_session`` / ``max_bytes_per_session``: the session's oldest events (across
      its streams) are evicted, as in ``MemoryEventStore``; resuming before them is ``ReplayGap``.
    - ``max_age_seconds``: events older than this are evicted from memory and deleted from the
      backend, at open and every ``purge_interval`` seconds, including those of sessions that ended in
      a crash and were never dropped. ``None``: kept until evicted or dropped.
    - ``max_pending_events`` / ``max_pending_bytes``: events appended but not yet committed;
      ``append`` waits for the writer when they are reached (backpressure, never an unbounded queue).
    - ``tail_events`` / ``tail_bytes``: committed events kept in memory per stream so that live
      readers never wait for the backend; older ones are read from it.
    - ``write_retry_seconds``: how long a failing batch is retried before it is given up (logged).
    """

    def __init__(
        self,
        max_events_per_session: int = 10_000,
        max_bytes_per_session: int = 16 * 1024 * 1024,
        *,
        max_age_seconds: float | None = 86_400.0,
        purge_interval: float | None = None,
        max_pending_events: int = 10_000,
        max_pending_bytes: int = 32 * 1024 * 1024,
        tail_events: int = 64,
        tail_bytes: int = 1024 * 1024,
        write_retry_seconds: float = 30.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if max_age_seconds is not None and max_age_seconds <= 0:
            raise ValueError("max_age_seconds must be positive or None")
        if max_pending_events <= 0 or max_pending_bytes <= 0 or tail_events < 0 or tail_bytes < 0:
            raise ValueError(f"{type(self).__name__} bounds must be positive")
        self.max_events = max_events_per_session
        self.max_bytes = max_bytes_per_session
        self.bounds = Bounds(max_events_per_session, max_bytes_per_session)
        self.max_age = max_age_seconds
        default_interval = min(60.0, max_age_seconds / 4) if max_age_seconds is not None else 60.0
        self.purge_interval = purge_interval if purge_interval is not None else default_interval
        self.max_pending_events = max_pending_events
        self.max_pending_bytes = max_pending_bytes
        self.tail_events = tail_events
        self.tail_max_bytes = tail_bytes
        self.write_retry_seconds = write_retry_seconds
        self._clock = clock

        self._sessions: dict[str, _Session] = {}
        self._loading: dict[str, anyio.Event] = {}
        self._dropping: dict[str, int] = {}  # sessions with a drop not yet committed: nothing stored counts
        self._ops: list[Op] = []
        self._evicts: dict[tuple[str, int], int] = {}  # coalesced evictions since the last op that orders them
        self._enqueued = 0  # units of work handed to the writer so far
        self._committed = 0  # ... and how many of them are done
        self._pending_events = 0
        self._pending_bytes = 0
        self._last_ts = 0.0
        self._purge_cutoff = float("-inf")  # rows older than this are (being) deleted: never load them
        self._work = anyio.Event()
        self._progress = anyio.Event()

        self._running = False
        self._closing = False
        self._stack: AsyncExitStack | None = None
        self._tg: TaskGroup | None = None

    # --- what a backend provides ----------------------------------------------------------

    @property
    def where(self) -> str:
        """Where the log is kept, for log lines."""
        raise NotImplementedError

    async def open_backend(self) -> None:
        """Open the file or the connection; purge what is older than ``max_age`` (when set)."""
        raise NotImplementedError

    async def close_backend(self) -> None:
        """Close it; called once everything appended was written (or given up)."""
        raise NotImplementedError

    async def run_backend(self) -> None:
        """What the backend does for as long as the store runs (a lock's heartbeat); cancelled at close."""

    async def write_batch(self, ops: list[Op]) -> None:
        """Write the operations in order, all or nothing where the backend can; raise to be retried."""
        raise NotImplementedError

    async def read_rows(self, session_id: str, stream: int, after: int, limit: int) -> list[tuple[int, bytes | None]]:
        """``(seq, payload)`` of the stream's stored events after ``after``, oldest first (None: evicted)."""
        raise NotImplementedError

    async def load_rows(self, session_id: str, cutoff: float) -> list[tuple[int, int, int | None, float]]:
        """``(stream, seq, size, time)`` of a session's stored events no older than ``cutoff``, in
        append order; a size of None marks a stream's newest evicted event (its numbering goes on)."""
        raise NotImplementedError

    async def read_record(self, session_id: str) -> bytes | None:
        """The session's stored record, if any (no older than ``max_age``)."""
        raise NotImplementedError

    async def read_open_requests(self, session_id: str) -> dict[str, int]:
        """The session's requests stored as open: request key -> its stream."""
        raise NotImplementedError

    # --- lifecycle -------------------------------------------------------------------------

    async def __aenter__(self) -> Self:
        if self._running or self._stack is not None:
            raise RuntimeError(f"this {type(self).__name__} is already running")
        self._closing = False
        await self.open_backend()
        stack = AsyncExitStack()
        try:
            tg: TaskGroup = await stack.enter_async_context(anyio.create_task_group())
            tg.start_soon(self._write_forever)
            tg.start_soon(self.run_backend)
            if self.max_age is not None:
                tg.start_soon(self._purge_forever)
        except BaseException:
            await stack.aclose()
            await self.close_backend()
            raise
        self._stack = stack
        self._tg = tg
        self._running = True
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        stack = self._stack
        if stack is None:
            return
        try:
            with anyio.CancelScope(shield=True):  # commit what was appended, even when cancelled
                self._closing = True
                await self.flush()
        finally:
            self._running = False
            if self._tg is not None:
                self._tg.cancel_scope.cancel()
                self._tg = None
            self._stack = None
            try:
                await stack.aclose()  # the writer and purger tasks end
            finally:
                with anyio.CancelScope(shield=True):
                    await self.close_backend()
                self._sessions.clear()

    @property
    def pending(self) -> int:
        """Events appended but not yet written to the backend."""
        return self._pending_events

    async def flush(self) -> None:
        """Return once everything appended (and dropped, and evicted) before the call is written."""
        self._check_running()
        target = self._enqueued
        while self._committed < target:
            await self._progress.wait()

    def _check_running(self) -> None:
        if not self._running:
            raise RuntimeError(
                f"{type(self).__name__} is not running: use `async with store:` (the app does it in its lifespan)"
            )

    # --- the EventStore protocol ----------------------------------------------------------------

    async def append(self, session_id: str, stream: int, payload: bytes) -> int:
        while True:
            self._check_running()
            log = self._sessions.get(session_id)
            if log is None:
                await self._load(session_id)
                continue
            if self._pending_events >= self.max_pending_events or self._pending_bytes >= self.max_pending_bytes:
                await self._progress.wait()  # backpressure: the writer is behind
                continue
            break
        # From here on nothing awaits: the numbering and the hand-off are atomic on the loop.
        size = len(payload)
        ts = self._now()
        seq = log.append(stream, size, ts)
        slog = log.streams[stream]
        assert isinstance(slog, _Stream)
        event = Event(stream, seq, right_sized(payload))
        slog.tail.append(event)
        slog.tail_bytes += size
        self._ops.append(Insert(session_id, log.incarnation, event, ts))
        self._enqueued += 1
        self._pending_events += 1
        self._pending_bytes += size
        while log.over(self.bounds):
            self._evict_oldest(session_id, log)
        if not self._work.is_set():  # the writer needs one wake-up per batch, not one per event
            self._work.set()
        return seq

    async def _find(self, session_id: str, stream: int) -> tuple[_Session, _Stream | None]:
        """The session's log (loaded from the backend on first use) and the stream's log, if any."""
        while True:
            self._check_running()
            log = self._sessions.get(session_id)
            if log is not None:
                slog = log.streams.get(stream)
                assert slog is None or isinstance(slog, _Stream)
                return log, slog
            await self._load(session_id)

    async def read_after(self, session_id: str, stream: int, after: int, limit: int = 1024) -> list[Event]:
        while True:
            log, _ = await self._find(session_id, stream)
            slog = log.replay_from(stream, after)
            if slog is None:
                return []
            assert isinstance(slog, _Stream)
            first = after + 1
            if first >= slog.next_seq or limit <= 0:
                return []
            tail = slog.tail
            if tail and tail[0].seq <= first:
                start = first - tail[0].seq
                return _slice(tail, start, start + limit)
            # [first, end] is older than the tail, so it is written: read it from the backend.
            end = (tail[0].seq if tail else slog.next_seq) - 1
            rows = await self.read_rows(session_id, stream, after, min(limit, end - after))
            if self._sessions.get(session_id) is not log or log.streams.get(stream) is not slog:
                continue  # dropped (or dropped and recreated) meanwhile: ask again
            if first < slog.first_seq:
                raise ReplayGap(stream, after, slog.first_seq)  # evicted while we read
            events: list[Event] = []
            expected = first
            for seq, payload in rows:
                if seq != expected or payload is None:
                    break
                events.append(Event(stream, seq, payload))
                expected += 1
            if not events:
                # The backend lost what memory says is kept (e.g. the clock went back across a purge).
                oldest = rows[0][0] if rows and rows[0][1] is not None else slog.next_seq
                logger.warning("event store: session %s stream %d: events after %d missing", session_id, stream, after)
                raise ReplayGap(stream, after, oldest)
            tail = slog.tail
            if len(events) < limit and tail and tail[0].seq <= expected:
                start = expected - tail[0].seq
                events.extend(_slice(tail, start, start + limit - len(events)))
            return events

    async def last_seq(self, session_id: str, stream: int) -> int:
        _, slog = await self._find(session_id, stream)
        return 0 if slog is None else slog.last_seq

    # --- the session state beside the events (``SessionStateStore``) -----------------------------

    def save_record(self, session_id: str, record: bytes) -> None:
        """Keep the session's record, written with the next batch, in order with its events."""
        self._queue(SaveRecord(session_id, record, self._now()))

    def request_opened(self, session_id: str, request: str, stream: int) -> None:
        self._queue(OpenRequest(session_id, request, stream))

    def request_closed(self, session_id: str, request: str) -> None:
        self._queue(CloseRequest(session_id, request))

    def _queue(self, op: Op) -> None:
        self._check_running()
        self._ops.append(op)
        self._enqueued += 1
        self._work.set()

    async def load_record(self, session_id: str) -> bytes | None:
        self._check_running()
        if self._dropping.get(session_id):
            return None
        await self.flush()  # what this process queued for the session counts too
        return await self.read_record(session_id)

    async def open_requests(self, session_id: str) -> dict[str, int]:
        self._check_running()
        await self.flush()
        return await self.read_open_requests(session_id)

    async def last_seqs(self, session_id: str) -> dict[int, int]:
        """Each stream's last sequence number (whether or not its events are still kept)."""
        log, _ = await self._find(session_id, 0)
        return {key: stream.last_seq for key, stream in log.streams.items()}

    async def forget(self, session_id: str) -> None:
        """Let go of what this process remembers of a session, keeping it in the backend: another
        process ran it meanwhile (a cluster), so the next use loads it afresh."""
        loading = self._loading.get(session_id)
        if loading is not None:
            await loading.wait()
        self._sessions.pop(session_id, None)

    async def drop_session(self, session_id: str) -> None:
        loading = self._loading.get(session_id)
        if loading is not None:
            await loading.wait()
        self._sessions.pop(session_id, None)
        if not self._running:
            return  # closed: the rows stay until max_age purges them
        self._dropping[session_id] = self._dropping.get(session_id, 0) + 1
        self._enqueue_ordered(Drop(session_id))

    # --- memory ----------------------------------------------------------------------------------

    def _now(self) -> float:
        """Wall-clock time (it must mean something after a restart), never going backwards here."""
        ts = self._clock()
        if ts < self._last_ts:
            ts = self._last_ts
        self._last_ts = ts
        return ts

    def _evict_oldest(self, session_id: str, log: _Session) -> None:
        """Evict a session's oldest event, and have the writer delete its row."""
        stream, slog = log.evict_oldest()
        self._evicts[(session_id, stream)] = slog.first_seq
        self._enqueued += 1

    def _enqueue_ordered(self, op: Drop | Purge) -> None:
        """Queue an operation that must see every earlier one done (so evictions go first)."""
        if self._evicts:
            self._ops.append(Evict(self._evicts, self._now()))
            self._evicts = {}
        self._ops.append(op)
        self._enqueued += 1
        self._work.set()

    def _expire(self, cutoff: float) -> None:
        """Evict, in memory, every kept event older than ``cutoff`` (the backend purges its rows)."""
        for log in self._sessions.values():
            log.expire(cutoff)

    async def _load(self, session_id: str) -> None:
        """Bring a session this process has not seen into memory from the backend (once)."""
        loading = self._loading.get(session_id)
        if loading is not None:
            await loading.wait()
            return
        loading = self._loading[session_id] = anyio.Event()
        try:
            if self._dropping.get(session_id):
                rows: list[tuple[int, int, int | None, float]] = []  # whatever the backend holds is being dropped
            else:
                rows = await self.load_rows(session_id, self._purge_cutoff)
            if session_id not in self._sessions:
                log = self._sessions[session_id] = _build_session(rows)
                while log.over(self.bounds):
                    self._evict_oldest(session_id, log)  # the bounds may have shrunk
                self._work.set()
        finally:
            del self._loading[session_id]
            loading.set()

    # --- the writer and the purger (tasks on the loop) --------

    async def _write_forever(self) -> None:
        while True:
            while not self._ops and not self._evicts:
                self._work = anyio.Event()
                await self._work.wait()
            ops = self._ops
            if self._evicts:
                ops.append(Evict(self._evicts, self._now()))
            self._ops = []
            self._evicts = {}
            taken = self._enqueued
            committed = await self._commit(ops)
            inserted = 0
            inserted_bytes = 0
            touched: dict[int, _Stream] = {}
            for op in ops:
                if isinstance(op, Insert):
                    inserted += 1
                    inserted_bytes += len(op.event.payload)
                    if committed:
                        log = self._sessions.get(op.session)
                        if log is not None and log.incarnation == op.incarnation:
                            slog = log.streams[op.event.stream]
                            assert isinstance(slog, _Stream)
                            slog.committed = op.event.seq
                            touched[id(slog)] = slog
                elif isinstance(op, Drop):
                    left = self._dropping[op.session] - 1
                    if left:
                        self._dropping[op.session] = left
                    else:
                        del self._dropping[op.session]
                elif isinstance(op, Purge) and op.more:
                    self._enqueue_ordered(Purge(op.cutoff))
            for slog in touched.values():
                self._trim(slog)
            self._pending_events -= inserted
            self._pending_bytes -= inserted_bytes
            self._committed = taken
            self._progress.set()
            self._progress = anyio.Event()

    def _trim(self, slog: _Stream) -> None:
        """Drop committed events from the front of the tail beyond its bounds (they are stored)."""
        tail = slog.tail
        while (
            tail
            and tail[0].seq <= slog.committed
            and (len(tail) > self.tail_events or slog.tail_bytes > self.tail_max_bytes)
        ):
            slog.tail_bytes -= len(tail.popleft().payload)

    async def _commit(self, ops: list[Op]) -> bool:
        """Write one batch, retrying with backoff while it fails (disk full, a lost connection, I/O
        error): meanwhile the batch stays in memory and appenders wait at the pending bounds. After
        ``write_retry_seconds`` (three attempts when closing) the batch is given up, loudly: the
        writer goes on, and a replay that needs those events once they have left memory gets a
        ``ReplayGap`` (never a silent gap)."""
        delay = 0.05
        started = anyio.current_time()
        for attempt in itertools.count(1):
            try:
                await self.write_batch(ops)
                return True
            except Exception:
                logger.exception("event store %s: writing a batch failed (attempt %d)", self.where, attempt)
                waited = anyio.current_time() - started
                if (self._closing and attempt >= 3) or waited >= self.write_retry_seconds:
                    lost = sum(1 for op in ops if isinstance(op, Insert))
                    logger.error("event store %s: gave up on a batch; %d events are not stored", self.where, lost)
                    return False
                await anyio.sleep(delay)
                delay = min(delay * 2, 5.0)
        raise AssertionError("unreachable")

    async def _purge_forever(self) -> None:
        assert self.max_age is not None
        while True:
            await anyio.sleep(self.purge_interval)
            self.purge_expired()

    def purge_expired(self) -> None:
        """Evict events older than ``max_age_seconds`` now (the purger does it periodically)."""
        self._check_running()
        if self.max_age is None:
            return
        cutoff = self._clock() - self.max_age
        self._purge_cutoff = max(self._purge_cutoff, cutoff)
        self._expire(cutoff)
        self._enqueue_ordered(Purge(cutoff))


def _slice(tail: deque[Event], start: int, stop: int) -> list[Event]:
    """``tail[start:stop]``, walked from the nearer end (a live reader wants the newest few)."""
    size = len(tail)
    stop = min(stop, size)
    if start >= stop:
        return []
    if start <= size - stop:
        return list(itertools.islice(tail, start, stop))
    events = list(itertools.islice(reversed(tail), size - stop, size - start))
    events.reverse()
    return events


def _build_session(rows: list[tuple[int, int, int | None, float]]) -> _Session:
    """The in-memory index of a session from its rows in insertion order (tombstones have no size)."""
    log = _Session(next(_incarnations))
    log.load(rows)
    for slog in log.streams.values():
        assert isinstance(slog, _Stream)
        slog.committed = slog.last_seq
    return log
