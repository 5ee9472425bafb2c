"""What every event store decides the same way, with no payloads and no I/O: numbering, bounds,
eviction and replay ranges for the streams of one session.

A store keeps the bytes where it keeps them (a list in memory, rows in SQLite, a Redis stream) and
asks a ``SessionIndex`` what number an event gets, which events the bounds evict, and whether a
cursor can still be served. The memory, SQLite and Redis stores share it, so their semantics are
one piece of code, unit-tested without a file or a socket (``tests/core/test_event_index.py``).

The rules:

- Sequence numbers start at 1 per (session, stream) and never repeat.
- A session keeps at most ``max_events`` events and ``max_bytes`` bytes across its streams; past
  either bound its oldest events go first (the newest one always stays, however large).
- A cursor before the oldest kept event of its stream is a ``ReplayGap``: a gap is said, never
  silently skipped.

A store subclasses ``StreamIndex`` to hang its own per-stream data on the index (the memory store
keeps its payloads there) and overrides ``SessionIndex.new_stream`` and ``evicted``, so a stream
costs one object, not two (W3 in docs/benchmarks.md counts every byte of an idle stream).
"""

from __future__ import annotations

from collections.abc import Iterable

from mcp_sse.core.events import ReplayGap

__all__ = ["Bounds", "SessionIndex", "StreamIndex"]

_COMPACT_AFTER = 256
"""Entries consumed from the front of the eviction order before the list is compacted."""


class Bounds:
    """The limits of one session's log."""

    __slots__ = ("max_bytes", "max_events")

    def __init__(self, max_events: int, max_bytes: int) -> None:
        if max_events <= 0 or max_bytes <= 0:
            raise ValueError("event store bounds must be positive")
        self.max_events = max_events
        self.max_bytes = max_bytes


class StreamIndex:
    """One stream's numbering: the next sequence number and the oldest one still kept."""

    __slots__ = ("first_seq", "next_seq")

    def __init__(self) -> None:
        self.next_seq = 1
        self.first_seq = 1  # the oldest kept event; == next_seq when none is kept

    @property
    def last_seq(self) -> int:
        """The highest sequence number given so far (0 when none)."""
        return self.next_seq - 1


class SessionIndex:
    """The streams of one session and the order their kept events were appended in.

    The order is a list with a moving head rather than a deque: a deque's first block alone is
    760 bytes for a session that has logged one answer (W3 in docs/benchmarks.md).
    """

    __slots__ = ("count", "order", "order_head", "size", "streams")

    def __init__(self) -> None:
        self.streams: dict[int, StreamIndex] = {}
        self.order: list[tuple[int, int, float]] = []  # (stream, size, time) of kept events, oldest first
        self.order_head = 0
        self.count = 0
        self.size = 0

    # --- what a store overrides ---------------------------------------------------------------

    def new_stream(self) -> StreamIndex:
        return StreamIndex()

    def evicted(self, stream: StreamIndex) -> None:
        """The oldest kept event of ``stream`` was just evicted (``first_seq`` has moved past it)."""

    # --- numbering and bounds -----------------------------------------------------------------

    def stream(self, key: int) -> StreamIndex:
        """The stream ``key``, made on first use."""
        stream = self.streams.get(key)
        if stream is None:
            stream = self.streams[key] = self.new_stream()
        return stream

    def append(self, key: int, size: int, ts: float) -> int:
        """Number one event of ``size`` bytes appended to stream ``key`` at time ``ts``, and return
        its sequence number. The caller then evicts what the bounds exceed (``enforce``)."""
        stream = self.stream(key)
        seq = stream.next_seq
        stream.next_seq = seq + 1
        self.order.append((key, size, ts))
        self.count += 1
        self.size += size
        return seq

    def over(self, bounds: Bounds) -> bool:
        """Whether a bound is exceeded (the newest event always stays, however large)."""
        return self.count > bounds.max_events or (self.size > bounds.max_bytes and self.count > 1)

    def enforce(self, bounds: Bounds) -> None:
        """Evict the oldest events while a bound is exceeded."""
        while self.over(bounds):
            self.evict_oldest()

    def evict_oldest(self) -> tuple[int, StreamIndex]:
        """Evict the session's oldest kept event; (its stream's key, the stream)."""
        key, size, _ = self.order[self.order_head]
        self.order_head += 1
        if self.order_head > _COMPACT_AFTER and self.order_head * 2 > len(self.order):
            del self.order[: self.order_head]
            self.order_head = 0
        stream = self.streams[key]
        stream.first_seq += 1
        self.count -= 1
        self.size -= size
        self.evicted(stream)
        return key, stream

    def expire(self, cutoff: float) -> list[tuple[int, int]]:
        """Evict every kept event older than ``cutoff``; the (stream, new oldest seq) that moved."""
        moved: dict[int, int] = {}
        while self.count and self.order[self.order_head][2] < cutoff:
            key, stream = self.evict_oldest()
            moved[key] = stream.first_seq
        return list(moved.items())

    @property
    def oldest_time(self) -> float | None:
        return self.order[self.order_head][2] if self.count else None

    # --- reading --------------------------------------------------------------------------------

    def replay_from(self, key: int, after: int) -> StreamIndex | None:
        """The stream a read after ``after`` is served from (None: it has no events at all);
        ``ReplayGap`` when events after the cursor were evicted."""
        stream = self.streams.get(key)
        if stream is not None and after + 1 < stream.first_seq:
            raise ReplayGap(key, after, stream.first_seq)
        return stream

    # --- loading what a durable store kept --------------------------------------------------------

    def load(self, rows: Iterable[tuple[int, int, int | None, float]]) -> None:
        """Rebuild from a durable store's rows ``(stream, seq, size, time)`` in append order; a row
        whose size is None is a tombstone: the newest evicted event of its stream, kept so that the
        numbering goes on after it."""
        kept: dict[int, int] = {}  # stream -> its oldest kept seq
        for key, seq, size, ts in rows:
            stream = self.stream(key)
            stream.next_seq = max(stream.next_seq, seq + 1)
            if size is None:
                continue
            kept.setdefault(key, seq)
            self.order.append((key, size, ts))
            self.count += 1
            self.size += size
        for key, stream in self.streams.items():
            stream.first_seq = kept.get(key, stream.next_seq)
