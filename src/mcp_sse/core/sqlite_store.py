"""A durable event log in one SQLite file: the ``EventStore`` for deployments that must survive a crash.

It owns the file (one process at a time, enforced with a lock file where the OS has ``flock``),
its schema, one writer and a few readers. The numbering, the tail of recent events, batching and
backpressure are ``BatchedEventStore``'s (``core/batched_store.py``); this module is the backend:
each batch is one transaction in a worker thread (limited to one), and reads that the tail cannot
answer go to a reader thread. It must never block the event loop on disk, never know about HTTP,
and never share its file with another process.

The durability window: a committed transaction survives the process dying (WAL,
``synchronous=NORMAL``); the events appended but not yet committed (at most
``max_pending_events``, usually one batch of a few milliseconds) are lost with the process.
An OS crash or power loss can also lose the last transactions since the WAL was last synced
(SQLite keeps the file consistent either way).
"""

from __future__ import annotations

import logging
import os
import queue
import sqlite3
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import anyio
import anyio.to_thread

from mcp_sse.core.batched_store import (
    BatchedEventStore,
    CloseRequest,
    Drop,
    Evict,
    Insert,
    Op,
    OpenRequest,
    Purge,
    SaveRecord,
)

logger = logging.getLogger(__name__)

T = TypeVar("T")

SCHEMA_VERSION = 2
"""1: events only. 2: the sessions and requests tables beside them (added to a version 1 file as it opens)."""

_SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    session TEXT NOT NULL,
    stream INTEGER NOT NULL,
    seq INTEGER NOT NULL,
    ts REAL NOT NULL,
    payload BLOB,
    PRIMARY KEY (session, stream, seq)
);
CREATE INDEX IF NOT EXISTS events_ts ON events (ts);
CREATE TABLE IF NOT EXISTS sessions (
    session TEXT PRIMARY KEY,
    record BLOB NOT NULL,
    ts REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS sessions_ts ON sessions (ts);
CREATE TABLE IF NOT EXISTS requests (
    session TEXT NOT NULL,
    request TEXT NOT NULL,
    stream INTEGER NOT NULL,
    PRIMARY KEY (session, request)
);
"""
# ``payload`` is NULL for a tombstone: the row just before a stream's oldest kept event, kept so a
# reopened store still knows where the stream's numbering stands after eviction. Insertion order
# within a session (the eviction order across its streams) is the rowid order.

# OR REPLACE: the seqs this process assigned are the truth, even over rows a lost drop left behind.
_INSERT = "INSERT OR REPLACE INTO events (session, stream, seq, ts, payload) VALUES (?, ?, ?, ?, ?)"
_DELETE_BEFORE = "DELETE FROM events WHERE session = ? AND stream = ? AND seq < ?"
_TOMBSTONE = "UPDATE events SET payload = NULL, ts = ? WHERE session = ? AND stream = ? AND seq = ?"
_DELETE_SESSION = (
    "DELETE FROM events WHERE session = ?",
    "DELETE FROM sessions WHERE session = ?",
    "DELETE FROM requests WHERE session = ?",
)
_SAVE_RECORD = "INSERT OR REPLACE INTO sessions (session, record, ts) VALUES (?, ?, ?)"
_OPEN_REQUEST = "INSERT OR REPLACE INTO requests (session, request, stream) VALUES (?, ?, ?)"
_CLOSE_REQUEST = "DELETE FROM requests WHERE session = ? AND request = ?"
_PURGE_SESSIONS = (
    "DELETE FROM requests WHERE session IN (SELECT session FROM sessions WHERE ts < ?)",
    "DELETE FROM sessions WHERE ts < ?",
)
_SELECT_RECORD = "SELECT record FROM sessions WHERE session = ? AND ts >= ?"
_SELECT_REQUESTS = "SELECT request, stream FROM requests WHERE session = ?"
_PURGE_CHUNK = 10_000
_PURGE = "DELETE FROM events WHERE rowid IN (SELECT rowid FROM events WHERE ts < ? LIMIT ?)"
# length(NULL) is NULL: a tombstone has no size.
_LOAD = "SELECT stream, seq, length(payload), ts FROM events WHERE session = ? AND ts >= ? ORDER BY rowid"
_SELECT = "SELECT seq, payload FROM events WHERE session = ? AND stream = ? AND seq > ? ORDER BY seq LIMIT ?"


class EventStoreInUse(RuntimeError):
    """Another store (in this process or another) has the file open."""


class SQLiteEventStore(BatchedEventStore):
    """A bounded, durable log per session in one SQLite file (WAL), written by one worker thread.

    The bounds and what happens at each are ``BatchedEventStore``'s; ``readers`` is the number of
    connections (and threads) for reads that go to the file.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        max_events_per_session: int = 10_000,
        max_bytes_per_session: int = 16 * 1024 * 1024,
        *,
        readers: int = 2,
        **options: Any,
    ) -> None:
        if str(path) == ":memory:" or not str(path):
            raise ValueError("SQLiteEventStore needs a file path (':memory:' cannot be shared by its connections)")
        if readers <= 0:
            raise ValueError("SQLiteEventStore bounds must be positive")
        super().__init__(max_events_per_session, max_bytes_per_session, **options)
        self.path = Path(path)
        self.readers = readers
        self._write_limiter = anyio.CapacityLimiter(1)
        self._read_limiter = anyio.CapacityLimiter(readers)
        self._writer: sqlite3.Connection | None = None
        self._pool: queue.SimpleQueue[sqlite3.Connection] = queue.SimpleQueue()
        self._read_conns: list[sqlite3.Connection] = []
        self._lock_fd: int | None = None

    # --- the backend ---------------------------------------------------------------------------

    @property
    def where(self) -> str:
        return str(self.path)

    async def open_backend(self) -> None:
        await anyio.to_thread.run_sync(self._open, limiter=self._write_limiter)

    async def close_backend(self) -> None:
        await anyio.to_thread.run_sync(self._close_files, limiter=self._write_limiter)

    async def write_batch(self, ops: list[Op]) -> None:
        await anyio.to_thread.run_sync(self._write, ops, limiter=self._write_limiter)

    async def read_rows(self, session_id: str, stream: int, after: int, limit: int) -> list[tuple[int, bytes | None]]:
        return await self._read(_select, session_id, stream, after, limit)

    async def load_rows(self, session_id: str, cutoff: float) -> list[tuple[int, int, int | None, float]]:
        return await self._read(_load_rows, session_id, cutoff)

    async def read_record(self, session_id: str) -> bytes | None:
        return await self._read(_select_record, session_id, self._purge_cutoff)

    async def read_open_requests(self, session_id: str) -> dict[str, int]:
        return await self._read(_select_requests, session_id)

    async def _read(self, fn: Callable[..., T], *args: object) -> T:
        return await anyio.to_thread.run_sync(self._with_reader, fn, args, limiter=self._read_limiter)

    def _with_reader(self, fn: Callable[..., T], args: tuple[object, ...]) -> T:
        conn = self._pool.get_nowait()  # the limiter leaves one free for every running reader thread
        try:
            return fn(conn, *args)
        finally:
            self._pool.put(conn)

    # --- in worker threads only -------------------------------------------------------------------

    def _open(self) -> None:
        if not self.path.parent.is_dir():
            raise FileNotFoundError(f"event store: directory {self.path.parent} does not exist")
        self._lock_fd = _lock(self.path)
        try:
            # Create the file private to us: it holds message payloads (the WAL files inherit it).
            os.close(os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600))
            writer = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            self._writer = writer
            writer.execute("PRAGMA journal_mode=WAL")
            writer.execute("PRAGMA synchronous=NORMAL")
            writer.execute("PRAGMA busy_timeout=5000")
            version = writer.execute("PRAGMA user_version").fetchone()[0]
            if version not in (0, 1, SCHEMA_VERSION):
                raise RuntimeError(f"event store {self.path}: schema version {version}, expected {SCHEMA_VERSION}")
            writer.executescript(_SCHEMA)
            writer.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
            if self.max_age is not None:
                cutoff = self._clock() - self.max_age
                self._purge_cutoff = cutoff
                purge = Purge(cutoff, more=True)
                while purge.more:
                    self._write([purge])
            for _ in range(self.readers):
                conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
                conn.execute("PRAGMA query_only=1")
                conn.execute("PRAGMA busy_timeout=5000")
                self._read_conns.append(conn)
                self._pool.put(conn)
        except BaseException:
            self._close_files()
            raise

    def _close_files(self) -> None:
        for conn in self._read_conns:
            conn.close()
        self._read_conns.clear()
        self._pool = queue.SimpleQueue()
        if self._writer is not None:
            self._writer.close()
            self._writer = None
        if self._lock_fd is not None:
            os.close(self._lock_fd)  # releases the lock
            self._lock_fd = None

    def _write(self, ops: list[Op]) -> None:
        conn = self._writer
        assert conn is not None
        conn.execute("BEGIN IMMEDIATE")
        try:
            rows: list[tuple[str, int, int, float, bytes]] = []
            for op in ops:
                if isinstance(op, Insert):
                    rows.append((op.session, op.event.stream, op.event.seq, op.ts, op.event.payload))
                    continue
                if rows:
                    conn.executemany(_INSERT, rows)
                    rows = []
                if isinstance(op, Evict):
                    # Delete what was evicted, but keep the newest evicted row as a tombstone.
                    conn.executemany(_DELETE_BEFORE, [(s, st, first - 1) for (s, st), first in op.firsts.items()])
                    conn.executemany(_TOMBSTONE, [(op.ts, s, st, first - 1) for (s, st), first in op.firsts.items()])
                elif isinstance(op, SaveRecord):
                    conn.execute(_SAVE_RECORD, (op.session, op.record, op.ts))
                elif isinstance(op, OpenRequest):
                    conn.execute(_OPEN_REQUEST, (op.session, op.request, op.stream))
                elif isinstance(op, CloseRequest):
                    conn.execute(_CLOSE_REQUEST, (op.session, op.request))
                elif isinstance(op, Drop):
                    for statement in _DELETE_SESSION:
                        conn.execute(statement, (op.session,))
                else:
                    for statement in _PURGE_SESSIONS:
                        conn.execute(statement, (op.cutoff,))
                    op.more = conn.execute(_PURGE, (op.cutoff, _PURGE_CHUNK)).rowcount >= _PURGE_CHUNK
            if rows:
                conn.executemany(_INSERT, rows)
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise


def _select(
    conn: sqlite3.Connection, session_id: str, stream: int, after: int, limit: int
) -> list[tuple[int, bytes | None]]:
    rows: list[tuple[int, bytes | None]] = conn.execute(_SELECT, (session_id, stream, after, limit)).fetchall()
    return rows


def _load_rows(conn: sqlite3.Connection, session_id: str, cutoff: float) -> list[tuple[int, int, int | None, float]]:
    rows: list[tuple[int, int, int | None, float]] = conn.execute(_LOAD, (session_id, cutoff)).fetchall()
    return rows


def _select_record(conn: sqlite3.Connection, session_id: str, cutoff: float) -> bytes | None:
    row = conn.execute(_SELECT_RECORD, (session_id, cutoff)).fetchone()
    return None if row is None else bytes(row[0])


def _select_requests(conn: sqlite3.Connection, session_id: str) -> dict[str, int]:
    return {request: stream for request, stream in conn.execute(_SELECT_REQUESTS, (session_id,))}


def _lock(path: Path) -> int | None:
    """Hold ``<path>.lock`` exclusively while the store is open: two writers would corrupt the numbering."""
    if sys.platform == "win32":
        return None  # no flock: one process per file is then the operator's promise
    import fcntl

    fd = os.open(f"{path}.lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise EventStoreInUse(f"event store {path} is in use by another store (another process?)") from None
    return fd


__all__ = ["EventStoreInUse", "SQLiteEventStore"]
