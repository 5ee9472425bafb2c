"""The in-process event log: ``MemoryEventStore``, the default when nothing must outlive the process.

Numbering, bounds and eviction are ``SessionIndex``'s (``core/event_index.py``), as in every
store; this module keeps the payloads. It must never know about HTTP.
"""

from __future__ import annotations

from mcp_sse.core.event_index import Bounds, SessionIndex, StreamIndex
from mcp_sse.core.events import Event, right_sized

__all__ = ["MemoryEventStore"]


class _StreamLog(StreamIndex):
    """A stream of the memory store: its numbering, and the payloads it keeps."""

    __slots__ = ("events", "head")

    def __init__(self) -> None:
        super().__init__()
        self.events: list[bytes] = []
        self.head = 0  # index of the oldest kept event in ``events``


class _SessionLog(SessionIndex):
    __slots__ = ()

    def new_stream(self) -> _StreamLog:
        return _StreamLog()

    def evicted(self, stream: StreamIndex) -> None:
        assert isinstance(stream, _StreamLog)
        stream.events[stream.head] = b""
        stream.head += 1
        if stream.head > 256 and stream.head * 2 > len(stream.events):
            del stream.events[: stream.head]
            stream.head = 0


class MemoryEventStore:
    """A bounded in-process log per session; when full, the session's oldest events go first.

    Policy when the bound is exceeded: the oldest events of the session (across all its streams) are
    evicted. A client that later resumes from before them gets ``ReplayGap``, which the edge turns
    into 410 Gone with a JSON-RPC error, never a silent gap. Numbering, bounds and eviction are
    ``SessionIndex``'s, as in every store.
    """

    def __init__(self, max_events_per_session: int = 10_000, max_bytes_per_session: int = 16 * 1024 * 1024) -> None:
        self.max_events = max_events_per_session
        self.max_bytes = max_bytes_per_session
        self.bounds = Bounds(max_events_per_session, max_bytes_per_session)
        self._sessions: dict[str, _SessionLog] = {}

    async def append(self, session_id: str, stream: int, payload: bytes) -> int:
        return self.append_now(session_id, stream, payload)

    def append_now(self, session_id: str, stream: int, payload: bytes) -> int:
        log = self._sessions.get(session_id)
        if log is None:
            log = self._sessions[session_id] = _SessionLog()
        payload = right_sized(payload)
        seq = log.append(stream, len(payload), 0.0)
        slog = log.streams[stream]
        assert isinstance(slog, _StreamLog)
        slog.events.append(payload)
        log.enforce(self.bounds)
        return seq

    async def read_after(self, session_id: str, stream: int, after: int, limit: int = 1024) -> list[Event]:
        return self.read_after_now(session_id, stream, after, limit)

    def read_after_now(self, session_id: str, stream: int, after: int, limit: int = 1024) -> list[Event]:
        log = self._sessions.get(session_id)
        slog = log.replay_from(stream, after) if log is not None else None
        if slog is None:
            return []
        assert isinstance(slog, _StreamLog)
        start = slog.head + (after + 1 - slog.first_seq)
        end = min(len(slog.events), start + limit)
        first = after + 1
        return [Event(stream, first + i, slog.events[start + i]) for i in range(max(0, end - start))]

    async def last_seq(self, session_id: str, stream: int) -> int:
        log = self._sessions.get(session_id)
        slog = log.streams.get(stream) if log is not None else None
        return 0 if slog is None else slog.last_seq

    async def drop_session(self, session_id: str) -> None:
        self._sessions.pop(session_id, None)
