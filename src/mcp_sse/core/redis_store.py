"""A durable event log in Redis: the ``EventStore`` that several processes or nodes can share.

Numbering, the tail of recent events, batching and backpressure are ``BatchedEventStore``'s
(``core/batched_store.py``); this module is the backend. Each (session, stream) is one Redis
stream whose entry ids are the event's sequence numbers (``<seq>-0``), so a replay is one
``XRANGE`` and an eviction one ``XTRIM MINID``; a Redis stream remembers its last id after a trim,
which is where the numbering goes on after a restart. Each batch is one pipeline (one round trip
for any number of events), and every key of a session carries a TTL refreshed as it is written,
so sessions that were never dropped (a crash) disappear by themselves.

Every key is scoped to its session by construction (``<prefix>:<session>:…``) and a session id is
checked before it becomes part of a key, so a forged or foreign id can never name another
session's events. A Redis that goes away: batches are retried (``write_retry_seconds``) while
appenders wait at the pending bounds, then given up loudly, never dropped in silence. It must
never know about HTTP.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import socket
import struct
import uuid
from typing import Any

import anyio
import redis.asyncio as aioredis
from redis.exceptions import NoScriptError, RedisError

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

__all__ = ["RedisEventStore", "RedisStoreInUse", "RedisUnavailable"]

logger = logging.getLogger(__name__)

_SESSION_ID = re.compile(r"[A-Za-z0-9_.~-]{1,200}")
"""What a session id may be before it becomes part of a key (ours are URL-safe base64)."""


class RedisUnavailable(RuntimeError):
    """Redis cannot be reached (at start: the server refuses to start)."""


class RedisStoreInUse(RuntimeError):
    """Another live process keeps its sessions under the same key prefix."""


LOCK_TTL = 5.0
"""Seconds the prefix's lock outlives the last heartbeat of its process (beats come 3 times as often)."""

# A run of events of one batch, in one argument: for each event a header (the index of its stream
# key in KEYS, its sequence number, its time, its payload's length), then the payload (``_frame``).
# The client packs one argument instead of four per event; Redis unpacks them. The entry id is the
# sequence number, so a replay is one XRANGE.
_APPEND = """
local blob = ARGV[1]
local pos, n = 1, 0
while pos <= #blob do
    local k, seq, ts, size
    k, seq, ts, size, pos = struct.unpack('>I2I4dI4', blob, pos)
    redis.call('XADD', KEYS[k], seq .. '-0', 'p', string.sub(blob, pos, pos + size - 1), 't', ts)
    pos = pos + size
    n = n + 1
end
return n
"""
_HEADER = struct.Struct(">HIdI")

# Take the lock from a holder only if it is still the one we saw (a compare-and-set).
_STEAL = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('set', KEYS[1], ARGV[2], 'PX', ARGV[3]) end"
# Refresh or release the lock only while it is ours.
_REFRESH = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('pexpire', KEYS[1], ARGV[2]) end return 0"
_RELEASE = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end return 0"


def session_key(prefix: str, session_id: str) -> str:
    if not _SESSION_ID.fullmatch(session_id):
        raise ValueError(f"not a session id: {session_id[:40]!r}")
    return f"{prefix}:{session_id}"


class RedisEventStore(BatchedEventStore):
    """A bounded, durable log per session in Redis streams, written one pipeline per batch.

    ``url`` is a ``redis://HOST:PORT/DB`` URL (``rediss://`` for TLS, ``unix://`` for a socket);
    ``prefix`` separates deployments sharing one Redis; ``ttl_seconds`` is how long a session's
    keys outlive its last write (by default ``max_age_seconds``, else a day).
    """

    def __init__(
        self,
        url: str,
        max_events_per_session: int = 10_000,
        max_bytes_per_session: int = 16 * 1024 * 1024,
        *,
        prefix: str = "mcp-sse",
        ttl_seconds: float | None = None,
        connect_timeout: float = 5.0,
        lock_ttl: float = LOCK_TTL,
        shared: bool = False,
        **options: Any,
    ) -> None:
        super().__init__(max_events_per_session, max_bytes_per_session, **options)
        self.url = url
        self.prefix = prefix
        ttl = ttl_seconds if ttl_seconds is not None else (self.max_age or 86_400.0)
        self.ttl_ms = max(1, int(ttl * 1000))
        self.connect_timeout = connect_timeout
        self.shared = shared  # several processes, each writing only the sessions it owns (a cluster)
        self._redis: aioredis.Redis | None = None
        self._append_sha: str | None = None
        self._lock_key = f"{prefix}:lock"
        self._lock_ttl_ms = max(100, int(lock_ttl * 1000))
        self._lock_value = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex}"

    # --- the backend ---------------------------------------------------------------------------

    @property
    def where(self) -> str:
        return _without_password(self.url)

    async def open_backend(self) -> None:
        client = aioredis.Redis.from_url(
            self.url, socket_connect_timeout=self.connect_timeout, socket_timeout=None, health_check_interval=15
        )
        try:
            await client.ping()
        except (RedisError, OSError) as exc:
            await client.aclose()
            raise RedisUnavailable(f"cannot reach Redis at {self.where}: {exc}") from None
        try:
            if not self.shared:
                await self._lock(client)
        except BaseException:
            await client.aclose()
            raise
        self._redis = client

    async def _lock(self, client: aioredis.Redis) -> None:
        """One process per key prefix, as one per SQLite file: two would number the same sessions'
        events each on its own. A holder on this machine whose process is gone (a crash) is taken
        over at once; any other holder is waited for until its lock expires."""
        deadline = anyio.current_time() + 2 * self._lock_ttl_ms / 1000
        while True:
            if await client.set(self._lock_key, self._lock_value, nx=True, px=self._lock_ttl_ms):
                return
            holder: Any = await client.get(self._lock_key)
            if holder is not None and _dead_here(bytes(holder).decode(errors="replace")):
                if await client.eval(_STEAL, 1, self._lock_key, holder, self._lock_value, self._lock_ttl_ms):
                    return
                continue  # someone else was quicker: look again
            if anyio.current_time() >= deadline:
                who = bytes(holder).decode(errors="replace") if holder is not None else "?"
                raise RedisStoreInUse(
                    f"Redis at {self.where} (key prefix {self.prefix!r}) is in use by another process ({who}): "
                    "one process per prefix"
                )
            await anyio.sleep(0.2)

    async def run_backend(self) -> None:
        if self.shared:
            return  # no prefix lock: the cluster's ownership keeps each session to one writer
        while True:
            await anyio.sleep(self._lock_ttl_ms / 3000)
            try:
                held = await self.redis.eval(_REFRESH, 1, self._lock_key, self._lock_value, self._lock_ttl_ms)
            except (RedisError, OSError):
                continue  # Redis is away; the writer says so
            if not held:
                logger.error(
                    "event store %s: lost the lock of key prefix %r to another process", self.where, self.prefix
                )

    async def close_backend(self) -> None:
        if self._redis is not None:
            with contextlib.suppress(RedisError, OSError):
                if not self.shared:
                    await self._redis.eval(_RELEASE, 1, self._lock_key, self._lock_value)
            await self._redis.aclose()
            self._redis = None

    @property
    def redis(self) -> aioredis.Redis:
        if self._redis is None:
            raise RuntimeError("RedisEventStore is not running: use `async with store:`")
        return self._redis

    def _stream_key(self, session_id: str, stream: int) -> str:
        return f"{session_key(self.prefix, session_id)}:e:{stream}"

    def _streams_key(self, session_id: str) -> str:
        return f"{session_key(self.prefix, session_id)}:streams"

    def _record_key(self, session_id: str) -> str:
        return f"{session_key(self.prefix, session_id)}:record"

    def _requests_key(self, session_id: str) -> str:
        return f"{session_key(self.prefix, session_id)}:requests"

    async def write_batch(self, ops: list[Op]) -> None:
        """One ``MULTI`` pipeline for the batch, in order, so it is applied whole or not at all. A
        run of events is one ``EVALSHA`` of ``_APPEND`` (the client packs one command, not one per
        event); the keys it touched get their TTL once, at the end."""
        redis = self.redis
        if self._append_sha is None:
            self._append_sha = await redis.script_load(_APPEND)
        drops = {op.session for op in ops if isinstance(op, Drop)}
        doomed: dict[str, list[bytes]] = {}
        for session_id in drops:  # the stream keys a drop deletes, read before the batch
            doomed[session_id] = _members(await redis.smembers(self._streams_key(session_id)))
        touched: set[str] = set()
        streams: dict[str, set[int]] = {}  # session -> streams written, for its set of stream keys
        run_keys: dict[str, int] = {}  # stream key -> its index in KEYS (from 1, as Lua counts)
        run: list[bytes] = []
        async with redis.pipeline(transaction=True) as pipe:

            def flush_run() -> None:
                if run:
                    pipe.evalsha(self._append_sha, len(run_keys), *run_keys, b"".join(run))  # type: ignore[arg-type]
                    run_keys.clear()
                    run.clear()

            for op in ops:
                if isinstance(op, Insert):
                    key = self._stream_key(op.session, op.event.stream)
                    index = run_keys.setdefault(key, len(run_keys) + 1)
                    payload = op.event.payload
                    run.append(_HEADER.pack(index, op.event.seq, op.ts, len(payload)))
                    run.append(payload)
                    touched.add(key)
                    streams.setdefault(op.session, set()).add(op.event.stream)
                    continue
                flush_run()
                if isinstance(op, Evict):
                    for (session_id, stream), first in op.firsts.items():
                        pipe.xtrim(self._stream_key(session_id, stream), minid=f"{first}-0", approximate=False)
                elif isinstance(op, SaveRecord):
                    pipe.set(self._record_key(op.session), op.record, px=self.ttl_ms)
                elif isinstance(op, OpenRequest):
                    key = self._requests_key(op.session)
                    pipe.hset(key, op.request, op.stream)
                    touched.add(key)
                elif isinstance(op, CloseRequest):
                    pipe.hdel(self._requests_key(op.session), op.request)
                elif isinstance(op, Drop):
                    for stream in streams.pop(op.session, ()):  # written earlier in this batch
                        touched.discard(self._stream_key(op.session, stream))
                    keys = [self._stream_key(op.session, int(s)) for s in doomed.get(op.session, [])]
                    keys += [
                        self._streams_key(op.session),
                        self._record_key(op.session),
                        self._requests_key(op.session),
                    ]
                    pipe.delete(*keys)
                    touched.difference_update(keys)
                elif isinstance(op, Purge):
                    pass  # every key expires by itself; memory was purged when the op was queued
            flush_run()
            for session_id, written in streams.items():
                key = self._streams_key(session_id)
                pipe.sadd(key, *written)
                touched.add(key)
            for key in touched:
                pipe.pexpire(key, self.ttl_ms)
            try:
                await pipe.execute()
            except NoScriptError:
                self._append_sha = None  # Redis restarted without its script cache: load it again
                raise

    async def read_record(self, session_id: str) -> bytes | None:
        record: Any = await self.redis.get(self._record_key(session_id))
        return None if record is None else bytes(record)

    async def read_open_requests(self, session_id: str) -> dict[str, int]:
        raw: Any = await self.redis.hgetall(self._requests_key(session_id))
        return {request.decode(): int(stream) for request, stream in (raw or {}).items()}

    async def read_rows(self, session_id: str, stream: int, after: int, limit: int) -> list[tuple[int, bytes | None]]:
        entries = await self.redis.xrange(self._stream_key(session_id, stream), f"{after + 1}-0", "+", count=limit)
        return [(seq, fields[b"p"]) for seq, fields in _entries(entries)]

    async def load_rows(self, session_id: str, cutoff: float) -> list[tuple[int, int, int | None, float]]:
        """A session's events from Redis, in append order; each stream's last id (kept by Redis
        after a trim) becomes a tombstone when its event is gone, so the numbering goes on."""
        redis = self.redis
        rows: list[tuple[float, int, int, int | None]] = []  # (time, stream, seq, size) to sort
        members = _members(await redis.smembers(self._streams_key(session_id)))
        for member in members:
            stream = int(member)
            key = self._stream_key(session_id, stream)
            try:
                info = await redis.xinfo_stream(key)
            except RedisError:
                continue  # expired between the two calls
            last = _seq(info["last-generated-id"])
            kept_last = 0
            for seq, fields in _entries(await redis.xrange(key, "-", "+")):
                ts = float(fields[b"t"])
                size: int | None = len(fields[b"p"]) if ts >= cutoff else None
                rows.append((ts, stream, seq, size))
                kept_last = seq
            if last > kept_last:
                rows.append((float("-inf"), stream, last, None))  # a tombstone: evicted up to here
        rows.sort(key=lambda row: (row[0], row[1], row[2]))
        return [(stream, seq, size, ts) for ts, stream, seq, size in rows]


def _entries(raw: Any) -> list[tuple[int, dict[bytes, bytes]]]:
    """``XRANGE``'s reply as (seq, fields): redis-py's types allow None where Redis never sends it."""
    return [(_seq(entry_id), fields) for entry_id, fields in raw or ()]


def _members(raw: Any) -> list[bytes]:
    return list(raw or ())


def _dead_here(holder: str) -> bool:
    """Whether a lock value names a process of this machine that no longer runs."""
    host, _, rest = holder.partition(":")
    pid = rest.partition(":")[0]
    if host != socket.gethostname() or not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def _seq(entry_id: bytes | str) -> int:
    text = entry_id.decode() if isinstance(entry_id, bytes) else entry_id
    return int(text.partition("-")[0])


def _without_password(url: str) -> str:
    """The URL for log lines: a password stays out of them."""
    return re.sub(r"//([^:/@]*):[^@/]*@", r"//\1:***@", url)
