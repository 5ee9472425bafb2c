"""The event log: every message the server pushes is appended here before any socket sees it.

Connections are cursors over this log. A live stream and a resumed one run the same code,
"read what is after my cursor, then wait", which is why resumption has no gap and no duplicate
by construction. Stores only keep payload bytes; framing (event ids, SSE) is the writer's job.
This module must never know about HTTP.
"""

from __future__ import annotations

from typing import NamedTuple, Protocol, runtime_checkable


def right_sized(payload: bytes) -> bytes:
    """A copy of ``payload`` that owns exactly its length, for bytes the log keeps a long time.

    orjson (3.12 and later) returns bytes whose allocation is rounded up to at least 4 KiB and never
    shrunk: a 100-byte notification kept in the log held 4 KiB, and the log's byte bound counted
    a fortieth of what it really held. Copying costs a small memcpy per appended event.
    """
    return bytes(memoryview(payload))


class Event(NamedTuple):
    """One stored event: its stream, its sequence number within that stream (from 1), its payload.

    A named tuple rather than a frozen dataclass: made once per appended event by a durable store
    and once per replayed one by every store, it costs 300 ns to make against 530.
    """

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


@runtime_checkable
class SessionStateStore(EventStore, Protocol):
    """An event store that also keeps what a session needs to come back after a restart: its record
    (``core/session_record.py``) and the requests open on it, written in order with its events.
    ``drop_session`` forgets them too. The durable stores (SQLite, Redis) are such stores."""

    def save_record(self, session_id: str, record: bytes) -> None:
        """Keep the session's record (queued with the events; ``flush`` waits for it)."""
        ...

    def request_opened(self, session_id: str, request: str, stream: int) -> None:
        """A request (``session_record.request_key``) is in progress on ``stream``."""
        ...

    def request_closed(self, session_id: str, request: str) -> None:
        """That request is answered."""
        ...

    async def load_record(self, session_id: str) -> bytes | None: ...

    async def open_requests(self, session_id: str) -> dict[str, int]: ...

    async def last_seqs(self, session_id: str) -> dict[int, int]:
        """Each stream's last sequence number, kept or evicted."""
        ...

    async def flush(self) -> None:
        """Return once everything queued before the call is stored."""
        ...
