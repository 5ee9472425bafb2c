"""The event log: every message the server pushes is appended here before any socket sees it.

Connections are cursors over this log. A live stream and a resumed one run the same code,
"read what is after my cursor, then wait", which is why resumption has no gap and no duplicate
by construction. Stores only keep payload bytes; framing (event ids, SSE) is the writer's job.
This module must never know about HTTP.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol


def right_sized(payload: bytes) -> bytes:
    """A copy of ``payload`` that owns exactly its length, for bytes the log keeps a long time.

    orjson (3.12 and later) returns bytes whose allocation is rounded up to at least 4 KiB and never
    shrunk: a 100-byte notification kept in the log held 4 KiB, and the log's byte bound counted
    a fortieth of what it really held. Copying costs a small memcpy per appended event.
    """
    return bytes(memoryview(payload))


@dataclass(frozen=True, slots=True)
class Event:
    """One stored event: its stream, its sequence number within that stream (from 1), its payload."""

    stream: int
    seq: int
    payload: bytes


class ReplayGap(Exception):
    """The cursor points before the oldest event still kept for that stream: events were evicted."""

    def __init__(self, stream: int, after: int, oldest: int) -> None:
        super().__init__(f"events of stream {stream} after {after} are gone; the oldest kept is {oldest}")
        self.stream = stream
        self.after = after
        self.oldest = oldest


class EventStore(Protocol):
    """Where events live. Sequence numbers are assigned by the store: 1, 2, 3 ... per (session, stream)."""

    async def append(self, session_id: str, stream: int, payload: bytes) -> int:
        """Store one event and return its sequence number."""
        ...

    async def read_after(self, session_id: str, stream: int, after: int, limit: int = 1024) -> list[Event]:
        """Events of one stream with seq > after, oldest first; ReplayGap if some were evicted."""
        ...

    async def last_seq(self, session_id: str, stream: int) -> int:
        """The highest sequence number appended to the stream so far (0 when none)."""
        ...

    async def drop_session(self, session_id: str) -> None:
        """Forget everything about a session (it ended)."""
        ...


@dataclass(slots=True)
class _StreamLog:
    events: list[bytes] = field(default_factory=list)
    head: int = 0  # index of the oldest kept event in ``events``
    first_seq: int = 1  # seq of events[head]

    @property
    def next_seq(self) -> int:
        return self.first_seq + len(self.events) - self.head


@dataclass(slots=True)
class _SessionLog:
    streams: dict[int, _StreamLog] = field(default_factory=dict)
    # (stream, size) oldest first from ``order_head``: a list, not a deque, whose first block alone
    # is 760 bytes for a session that has logged one answer (W3 in docs/benchmarks.md).
    order: list[tuple[int, int]] = field(default_factory=list)
    order_head: int = 0
    count: int = 0
    size: int = 0


class MemoryEventStore:
    """A bounded in-process log per session; when full, the session's oldest events go first.

    Policy when the bound is exceeded: the oldest events of the session (across all its streams) are
    evicted. A client that later resumes from before them gets ``ReplayGap``, which the edge turns
    into 410 Gone with a JSON-RPC error, never a silent gap.
    """

    def __init__(self, max_events_per_session: int = 10_000, max_bytes_per_session: int = 16 * 1024 * 1024) -> None:
        self.max_events = max_events_per_session
        self.max_bytes = max_bytes_per_session
        self._sessions: dict[str, _SessionLog] = {}

    async def append(self, session_id: str, stream: int, payload: bytes) -> int:
        return self.append_now(session_id, stream, payload)

    def append_now(self, session_id: str, stream: int, payload: bytes) -> int:
        log = self._sessions.get(session_id)
        if log is None:
            log = self._sessions[session_id] = _SessionLog()
        slog = log.streams.get(stream)
        if slog is None:
            slog = log.streams[stream] = _StreamLog()
        seq = slog.next_seq
        payload = right_sized(payload)
        slog.events.append(payload)
        size = len(payload)
        log.order.append((stream, size))
        log.count += 1
        log.size += size
        while log.count > self.max_events or (log.size > self.max_bytes and log.count > 1):
            self._evict_oldest(log)
        return seq

    @staticmethod
    def _evict_oldest(log: _SessionLog) -> None:
        stream, size = log.order[log.order_head]
        log.order_head += 1
        if log.order_head > 256 and log.order_head * 2 > len(log.order):
            del log.order[: log.order_head]
            log.order_head = 0
        slog = log.streams[stream]
        slog.events[slog.head] = b""
        slog.head += 1
        slog.first_seq += 1
        log.count -= 1
        log.size -= size
        if slog.head > 256 and slog.head * 2 > len(slog.events):
            del slog.events[: slog.head]
            slog.head = 0

    async def read_after(self, session_id: str, stream: int, after: int, limit: int = 1024) -> list[Event]:
        return self.read_after_now(session_id, stream, after, limit)

    def read_after_now(self, session_id: str, stream: int, after: int, limit: int = 1024) -> list[Event]:
        log = self._sessions.get(session_id)
        slog = log.streams.get(stream) if log is not None else None
        if slog is None:
            return []
        if after + 1 < slog.first_seq:
            raise ReplayGap(stream, after, slog.first_seq)
        start = slog.head + (after + 1 - slog.first_seq)
        end = min(len(slog.events), start + limit)
        first = after + 1
        return [Event(stream, first + i, slog.events[start + i]) for i in range(max(0, end - start))]

    async def last_seq(self, session_id: str, stream: int) -> int:
        log = self._sessions.get(session_id)
        slog = log.streams.get(stream) if log is not None else None
        return 0 if slog is None else slog.next_seq - 1

    async def drop_session(self, session_id: str) -> None:
        self._sessions.pop(session_id, None)
