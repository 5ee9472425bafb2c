"""What a session needs to come back after its process is gone, and the incarnations of its log.

A durable store keeps a ``SessionRecord`` beside the session's events: its id, the negotiated
version, the ``initialize`` request's params (to bring a fresh upstream to the same state), and
where its incarnations begin. Nothing here does I/O; ``core/registry.py`` writes and reads it.

Event ids that never lie after a crash: a store commits in batches, so events a client already saw
may not survive a crash, and the numbering of the next incarnation goes on from the last event that
did. Each incarnation (an *epoch*) therefore names itself in the ids it gives out: epoch 0 writes
``<stream>-<seq>`` as before, epoch N writes ``N.<stream>-<seq>``. When a session comes back, the
record notes for each stream the last sequence number that survived the epoch that ended
(``boundaries``). A cursor from that epoch past its boundary names events that are gone: the
resume starts after the last surviving one (every event after it is new to this client, never a
duplicate) and says what was lost (never a silent gap).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson

from mcp_sse.wire.jsonrpc import RequestId

__all__ = ["INTERRUPTED", "ResumePoint", "SessionRecord", "format_event_id", "parse_event_id", "request_key"]

INTERRUPTED = -32003
"""The JSON-RPC error code of a request that was in progress when its server stopped (documented in
docs/durability.md): the server restarted, the request's work is gone, the client may send it again."""

STREAM_BLOCK = 64
"""Stream numbers a session reserves at a time in its record, so that a stream number used before
a crash is never given to another stream after it (one record write per this many POSTs)."""


def request_key(request_id: RequestId) -> str:
    """A request id as a store key: ``7`` and ``"7"`` are different ids and stay different keys."""
    return orjson.dumps(request_id).decode()


def request_id_of(key: str) -> RequestId:
    value: RequestId = orjson.loads(key)
    return value


def format_event_id(epoch: int, stream: int, seq: int) -> str:
    return f"{stream}-{seq}" if epoch == 0 else f"{epoch}.{stream}-{seq}"


def parse_event_id(value: str) -> tuple[int, int, int] | None:
    """``"<stream>-<seq>"`` or ``"<epoch>.<stream>-<seq>"`` back to numbers; None when it is not one of ours."""
    head, sep, seq = value.strip().partition("-")
    epoch, dot, stream = head.rpartition(".")
    # ASCII digits only: str.isdigit() also takes "²" and the full-width digits, which int() refuses or
    # reads; and few of them: int() refuses more than 4,300, and no id of ours has more than 19.
    if not (value.isascii() and sep and len(value) <= 64 and stream.isdigit() and seq.isdigit()):
        return None
    if dot and not epoch.isdigit():
        return None
    return (int(epoch) if dot else 0), int(stream), int(seq)


@dataclass(frozen=True, slots=True)
class ResumePoint:
    """Where a resume from a client's cursor starts reading, and what it must tell the client."""

    after: int  # read the stream after this sequence number
    lost_after: int | None = None  # events of the cursor's epoch after this one are gone (None: nothing lost)


@dataclass(slots=True)
class SessionRecord:
    """The part of a session that outlives its process."""

    id: str
    version: str
    initialize: dict[str, Any] | None = None  # the initialize request's params
    initialized: bool = False  # the client sent notifications/initialized
    epoch: int = 0
    # boundaries[e]: for each stream, the last sequence number that survived epoch e (past epochs only)
    boundaries: list[dict[int, int]] = field(default_factory=list)
    streams_reserved: int = 0  # stream numbers up to this one may have been given out
    principal: str | None = None  # whom the session belongs to, once the server knows principals

    # --- stream numbers ---------------------------------------------------------------------------

    def reserve_streams(self, next_stream: int) -> bool:
        """About to give out stream ``next_stream``: True when the record must be written first (a
        new block of numbers is reserved)."""
        if next_stream <= self.streams_reserved:
            return False
        self.streams_reserved = next_stream + STREAM_BLOCK - 1
        return True

    @property
    def first_free_stream(self) -> int:
        """After a restart: the first stream number no earlier incarnation can have used."""
        return self.streams_reserved + 1

    # --- incarnations -------------------------------------------------------------------------------

    def begin_epoch(self, surviving: dict[int, int]) -> None:
        """The session comes back in a new process; ``surviving`` is each stream's last stored seq."""
        self.boundaries.append(dict(surviving))
        self.epoch += 1

    def epoch_of(self, stream: int, seq: int) -> int:
        """The epoch that numbered event ``seq`` of ``stream``."""
        for epoch, survived in enumerate(self.boundaries):
            if seq <= survived.get(stream, 0):
                return epoch
        return self.epoch

    def event_id(self, stream: int, seq: int) -> str:
        return format_event_id(self.epoch_of(stream, seq), stream, seq)

    def resume_point(self, epoch: int, stream: int, seq: int) -> ResumePoint | None:
        """Where to resume after the client's cursor ``(epoch, stream, seq)``; None for an epoch this
        session never had (a forged or foreign id)."""
        if epoch > self.epoch:
            return None
        if epoch == self.epoch:
            return ResumePoint(seq)
        survived = self.boundaries[epoch].get(stream, 0)
        if seq <= survived:
            return ResumePoint(seq)
        return ResumePoint(survived, lost_after=survived)

    # --- the bytes a store keeps ---------------------------------------------------------------------

    def to_bytes(self) -> bytes:
        return orjson.dumps(
            {
                "id": self.id,
                "version": self.version,
                "initialize": self.initialize,
                "initialized": self.initialized,
                "epoch": self.epoch,
                "boundaries": [{str(k): v for k, v in b.items()} for b in self.boundaries],
                "streams_reserved": self.streams_reserved,
                "principal": self.principal,
            }
        )

    @classmethod
    def from_bytes(cls, raw: bytes) -> SessionRecord:
        data = orjson.loads(raw)
        return cls(
            id=data["id"],
            version=data["version"],
            initialize=data.get("initialize"),
            initialized=bool(data.get("initialized")),
            epoch=int(data.get("epoch", 0)),
            boundaries=[{int(k): int(v) for k, v in b.items()} for b in data.get("boundaries", [])],
            streams_reserved=int(data.get("streams_reserved", 0)),
            principal=data.get("principal"),
        )
