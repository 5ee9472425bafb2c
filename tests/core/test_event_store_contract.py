"""One contract for every event store, then what the durable stores (SQLite, Redis) promise.

The contract runs over each store in ``STORES``: the memory store, the SQLite store as it runs
(reads served from its in-memory tail), the SQLite store forced to read from disk (every append
committed at once, no tail), and the Redis store on a real redis-server, as it runs and forced to
read from Redis. Each Redis test has a key prefix of its own.
"""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager, closing
from pathlib import Path
from typing import Any

import anyio
import anyio.lowlevel
import pytest

from mcp_sse.core.batched_store import BatchedEventStore
from mcp_sse.core.events import EventStore, ReplayGap
from mcp_sse.core.memory_store import MemoryEventStore
from mcp_sse.core.redis_store import RedisEventStore
from mcp_sse.core.sqlite_store import EventStoreInUse, SQLiteEventStore
from tests.redis_server import RedisServer

pytestmark = pytest.mark.anyio

OpenStore = Callable[..., AbstractAsyncContextManager[EventStore]]


@asynccontextmanager
async def memory_store(tmp_path: Path, **bounds: Any) -> AsyncIterator[EventStore]:
    yield MemoryEventStore(**bounds)


@asynccontextmanager
async def sqlite_store(tmp_path: Path, **bounds: Any) -> AsyncIterator[EventStore]:
    async with SQLiteEventStore(tmp_path / "events.db", **bounds) as store:
        yield store


class DiskReadingSQLiteStore(SQLiteEventStore):
    """Commits each event before ``append`` returns and keeps no tail: every read goes to the file."""

    async def append(self, session_id: str, stream: int, payload: bytes) -> int:
        seq = await super().append(session_id, stream, payload)
        await self.flush()
        return seq

    async def drop_session(self, session_id: str) -> None:
        await super().drop_session(session_id)
        await self.flush()


@asynccontextmanager
async def sqlite_disk_store(tmp_path: Path, **bounds: Any) -> AsyncIterator[EventStore]:
    async with DiskReadingSQLiteStore(tmp_path / "events.db", tail_events=0, **bounds) as store:
        yield store


class WriteThroughRedisStore(RedisEventStore):
    """Writes each event before ``append`` returns and keeps no tail: every read goes to Redis."""

    async def append(self, session_id: str, stream: int, payload: bytes) -> int:
        seq = await super().append(session_id, stream, payload)
        await self.flush()
        return seq

    async def drop_session(self, session_id: str) -> None:
        await super().drop_session(session_id)
        await self.flush()


def redis_location(tmp_path: Path) -> tuple[str, str]:
    """The test's Redis URL and a key prefix of its own (the tmp path is unique per test)."""
    url = (tmp_path / ".redis-url").read_text()
    return url, "test-" + tmp_path.name


@asynccontextmanager
async def redis_store(tmp_path: Path, **bounds: Any) -> AsyncIterator[EventStore]:
    url, prefix = redis_location(tmp_path)
    async with RedisEventStore(url, prefix=prefix, **bounds) as store:
        yield store


@asynccontextmanager
async def redis_direct_store(tmp_path: Path, **bounds: Any) -> AsyncIterator[EventStore]:
    url, prefix = redis_location(tmp_path)
    async with WriteThroughRedisStore(url, prefix=prefix, tail_events=0, **bounds) as store:
        yield store


STORES = {
    "memory": memory_store,
    "sqlite": sqlite_store,
    "sqlite-disk": sqlite_disk_store,
    "redis": redis_store,
    "redis-direct": redis_direct_store,
}
DURABLE = {"sqlite": sqlite_store, "redis": redis_store}


def _factory(
    stores: dict[str, Callable[..., AbstractAsyncContextManager[EventStore]]],
    request: pytest.FixtureRequest,
    tmp_path: Path,
) -> OpenStore:
    factory = stores[request.param]
    if request.param.startswith("redis"):
        server: RedisServer = request.getfixturevalue("redis")
        (tmp_path / ".redis-url").write_text(server.url)

    def open_(**bounds: Any) -> AbstractAsyncContextManager[EventStore]:
        return factory(tmp_path, **bounds)

    return open_


@pytest.fixture(params=list(STORES))
def open_store(request: pytest.FixtureRequest, tmp_path: Path) -> OpenStore:
    """``async with open_store(max_events_per_session=..., max_bytes_per_session=...) as store:``"""
    return _factory(STORES, request, tmp_path)


@pytest.fixture(params=list(DURABLE))
def open_durable(request: pytest.FixtureRequest, tmp_path: Path) -> OpenStore:
    """A durable store; opening it again opens the same file or the same Redis keys."""
    return _factory(DURABLE, request, tmp_path)


async def seqs_and_payloads(store: EventStore, session: str, stream: int, after: int) -> list[tuple[int, bytes]]:
    return [(e.seq, e.payload) for e in await store.read_after(session, stream, after)]


# --- the contract ------------------------------------------------------------------------------


async def test_sequences_start_at_one_per_stream(open_store: OpenStore) -> None:
    async with open_store() as store:
        assert await store.append("s", 1, b"a") == 1
        assert await store.append("s", 2, b"b") == 1
        assert await store.append("s", 1, b"c") == 2
        assert await seqs_and_payloads(store, "s", 1, 0) == [(1, b"a"), (2, b"c")]
        assert await seqs_and_payloads(store, "s", 1, 1) == [(2, b"c")]
        assert await seqs_and_payloads(store, "s", 2, 0) == [(1, b"b")]
        assert await store.read_after("s", 1, 2) == []
        assert await store.read_after("s", 1, 99) == [], "a cursor past the end reads nothing"
        assert await store.read_after("s", 7, 0) == [], "a stream never written reads nothing"


async def test_read_after_is_oldest_first_and_honours_limit(open_store: OpenStore) -> None:
    async with open_store() as store:
        for i in range(1, 11):
            await store.append("s", 0, b"%d" % i)
        first = await store.read_after("s", 0, 0, limit=4)
        assert [(e.stream, e.seq, e.payload) for e in first] == [(0, i, b"%d" % i) for i in range(1, 5)]
        rest = await store.read_after("s", 0, first[-1].seq, limit=100)
        assert [e.seq for e in rest] == list(range(5, 11))
        assert [e.seq for e in await store.read_after("s", 0, 3, limit=2)] == [4, 5]


async def test_sessions_and_streams_are_isolated(open_store: OpenStore) -> None:
    async with open_store() as store:
        await store.append("a", 0, b"a0")
        await store.append("a", 1, b"a1")
        await store.append("b", 0, b"b0")
        assert await seqs_and_payloads(store, "a", 0, 0) == [(1, b"a0")]
        assert await seqs_and_payloads(store, "a", 1, 0) == [(1, b"a1")]
        assert await seqs_and_payloads(store, "b", 0, 0) == [(1, b"b0")]
        assert await store.read_after("b", 1, 0) == []
        assert await store.read_after("c", 0, 0) == [], "sessions never see each other's events"
        assert await store.append("b", 0, b"b0'") == 2, "numbering is per session"


async def test_last_seq(open_store: OpenStore) -> None:
    async with open_store() as store:
        assert await store.last_seq("s", 0) == 0
        for _ in range(3):
            await store.append("s", 0, b"x")
        await store.append("s", 1, b"y")
        assert await store.last_seq("s", 0) == 3
        assert await store.last_seq("s", 1) == 1
        assert await store.last_seq("other", 0) == 0


async def test_count_bound_evicts_the_sessions_oldest_events_across_streams(open_store: OpenStore) -> None:
    async with open_store(max_events_per_session=3) as store:
        for i in range(5):
            await store.append("s", i % 2, str(i).encode())
        await store.append("other", 0, b"untouched")
        # kept: events 2, 3, 4 -> stream 0 has seq 2 (b"2") and 3 (b"4"); stream 1 has seq 2 (b"3")
        assert await seqs_and_payloads(store, "s", 0, 1) == [(2, b"2"), (3, b"4")]
        assert await seqs_and_payloads(store, "s", 1, 1) == [(2, b"3")]
        with pytest.raises(ReplayGap) as gap:
            await store.read_after("s", 0, 0)
        assert (gap.value.stream, gap.value.after, gap.value.oldest) == (0, 0, 2)
        with pytest.raises(ReplayGap):
            await store.read_after("s", 1, 0)
        assert await store.last_seq("s", 0) == 3, "eviction never renumbers"
        assert await seqs_and_payloads(store, "other", 0, 0) == [(1, b"untouched")], "bounds are per session"


async def test_a_long_run_of_evictions_keeps_the_newest_in_order(open_store: OpenStore) -> None:
    """Thousands of evictions (the stores compact their bookkeeping as they go) lose no order."""
    async with open_store(max_events_per_session=100) as store:
        for i in range(3000):
            await store.append("s", i % 3, str(i).encode())
        # Kept: i = 2900..2999; i goes to stream i % 3 as its seq i // 3 + 1.
        oldest = {0: 968, 1: 968, 2: 967}
        kept = []
        for stream, first in oldest.items():
            events = await seqs_and_payloads(store, "s", stream, first - 1)
            assert [seq for seq, _ in events] == list(range(first, 1001))
            assert all(int(payload) == 3 * (seq - 1) + stream for seq, payload in events)
            kept += [int(payload) for _, payload in events]
            with pytest.raises(ReplayGap):
                await store.read_after("s", stream, first - 2)
        assert sorted(kept) == list(range(2900, 3000))


async def test_a_stream_evicted_entirely_still_reports_the_gap(open_store: OpenStore) -> None:
    async with open_store(max_events_per_session=2) as store:
        await store.append("s", 1, b"old")
        await store.append("s", 0, b"a")
        await store.append("s", 0, b"b")
        with pytest.raises(ReplayGap):
            await store.read_after("s", 1, 0)
        assert await store.read_after("s", 1, 1) == []
        assert await store.append("s", 1, b"new") == 2


async def test_byte_bound_evicts_and_a_late_reader_gets_a_gap(open_store: OpenStore) -> None:
    async with open_store(max_events_per_session=100, max_bytes_per_session=10) as store:
        for i in range(4):
            await store.append("s", 0, b"xxx%d" % i)
        assert await seqs_and_payloads(store, "s", 0, 2) == [(3, b"xxx2"), (4, b"xxx3")]
        with pytest.raises(ReplayGap) as gap:
            await store.read_after("s", 0, 1)
        assert gap.value.oldest == 3
        await store.append("s", 0, b"y" * 50)  # larger than the bound alone: kept, everything else goes
        assert await seqs_and_payloads(store, "s", 0, 4) == [(5, b"y" * 50)]


async def test_long_runs_keep_order(open_store: OpenStore) -> None:
    async with open_store(max_events_per_session=50) as store:
        for i in range(600):
            await store.append("s", 0, str(i).encode())
        events = await store.read_after("s", 0, 550)
        assert [e.payload for e in events] == [str(i).encode() for i in range(550, 600)]
        assert [e.seq for e in events] == list(range(551, 601))


async def test_drop_session_forgets_everything(open_store: OpenStore) -> None:
    async with open_store() as store:
        await store.append("s", 0, b"x")
        await store.append("s", 1, b"y")
        await store.append("keep", 0, b"k")
        await store.drop_session("s")
        assert await store.read_after("s", 0, 0) == []
        assert await store.last_seq("s", 1) == 0
        assert await store.append("s", 0, b"again") == 1, "a dropped session starts over"
        assert await seqs_and_payloads(store, "keep", 0, 0) == [(1, b"k")]


# --- the durable stores ----------------------------------------------------------------------


def rows_in_file(path: Path, session: str | None = None) -> list[tuple[str, int, int, bytes | None]]:
    with closing(sqlite3.connect(path)) as conn:
        rows: list[tuple[str, int, int, bytes | None]] = conn.execute(
            "SELECT session, stream, seq, payload FROM events ORDER BY session, stream, seq"
        ).fetchall()
    return [row for row in rows if session is None or row[0] == session]


async def test_a_reopened_store_reads_everything_back_and_numbering_continues(open_durable: OpenStore) -> None:
    async with open_durable(max_events_per_session=5) as store:
        await store.append("s", 1, b"one-1")  # evicted below: stream 1 survives only as a tombstone
        for i in range(1, 6):
            await store.append("s", 0, b"zero-%d" % i)
        for i in range(1, 4):
            await store.append("t", 2, b"two-%d" % i)
    async with open_durable(max_events_per_session=5) as store:
        assert await store.last_seq("s", 0) == 5
        assert await store.last_seq("s", 1) == 1, "the numbering of a fully evicted stream survives"
        assert await store.last_seq("t", 2) == 3
        assert await seqs_and_payloads(store, "s", 0, 0) == [(i, b"zero-%d" % i) for i in range(1, 6)]
        assert await seqs_and_payloads(store, "t", 2, 1) == [(2, b"two-2"), (3, b"two-3")]
        with pytest.raises(ReplayGap):
            await store.read_after("s", 1, 0)
        assert await store.append("s", 1, b"one-2") == 2
        assert await store.append("t", 2, b"two-4") == 4
        # the session's bound and eviction order carry over: "zero-1" is now the oldest to go
        with pytest.raises(ReplayGap):
            await store.read_after("s", 0, 0)
        assert await seqs_and_payloads(store, "s", 0, 1) == [(i, b"zero-%d" % i) for i in range(2, 6)]
    async with open_durable(max_events_per_session=5) as store:
        assert await seqs_and_payloads(store, "s", 1, 1) == [(2, b"one-2")]
        assert await seqs_and_payloads(store, "t", 2, 0) == [(i, b"two-%d" % i) for i in range(1, 5)]


async def test_drop_session_deletes_the_rows(tmp_path: Path) -> None:
    path = tmp_path / "events.db"
    async with SQLiteEventStore(path) as store:
        await store.append("s", 0, b"x")
        await store.append("keep", 0, b"k")
        await store.flush()
        await store.drop_session("s")
        await store.flush()
        assert [row[0] for row in rows_in_file(path)] == ["keep"]
    async with SQLiteEventStore(path) as store:
        assert await store.last_seq("s", 0) == 0


async def test_a_file_is_used_by_one_store_at_a_time(tmp_path: Path) -> None:
    path = tmp_path / "events.db"
    async with SQLiteEventStore(path):
        with pytest.raises(EventStoreInUse):
            async with SQLiteEventStore(path):
                pass
    async with SQLiteEventStore(path):
        pass  # released on close


async def test_concurrent_appenders_and_readers_see_no_gap_and_no_duplicate(open_durable: OpenStore) -> None:
    """Many tasks append to a few streams while readers follow every stream; the tiny tail and
    pending bounds make reads straddle the backend, the tail and batches being written."""
    streams, writers_per_stream, per_writer = 4, 5, 300
    total = writers_per_stream * per_writer
    async with open_durable(max_events_per_session=100_000, max_pending_events=64, tail_events=3) as opened:
        store = opened
        assert isinstance(store, BatchedEventStore)
        reads_during_batches = 0
        seen: dict[int, list[bytes]] = {}

        async def write(stream: int, writer: int) -> None:
            for i in range(per_writer):
                seq = await store.append("s", stream, b"%d:%d" % (writer, i))
                assert seq >= 1
                if i % 7 == 0:
                    await anyio.lowlevel.checkpoint()

        async def follow(stream: int) -> None:
            nonlocal reads_during_batches
            cursor, payloads = 0, []
            while cursor < total:
                in_flight = store.pending > 0
                events = await store.read_after("s", stream, cursor, limit=37)
                reads_during_batches += in_flight
                for event in events:
                    assert event.seq == cursor + 1, f"stream {stream}: got {event.seq} after {cursor}"
                    cursor = event.seq
                    payloads.append(event.payload)
                # Fall behind now and then, so a read starts in the file and ends in the tail.
                await anyio.sleep(0.002 if len(payloads) % 5 == 0 else 0)
            seen[stream] = payloads

        async with anyio.create_task_group() as tg:
            for stream in range(streams):
                tg.start_soon(follow, stream)
                for writer in range(writers_per_stream):
                    tg.start_soon(write, stream, writer)

        assert reads_during_batches > 0, "the readers never overlapped a batch in flight"
        for stream in range(streams):
            assert await store.last_seq("s", stream) == total
            assert len(seen[stream]) == total
            for writer in range(writers_per_stream):
                mine = [p for p in seen[stream] if p.split(b":")[0] == b"%d" % writer]
                assert mine == [b"%d:%d" % (writer, i) for i in range(per_writer)], "each appender's order kept"
            again = await store.read_after("s", stream, 0, limit=total)
            assert [e.payload for e in again] == seen[stream], "the backend agrees with what was read live"


class FakeClock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


async def test_max_age_purges_at_open(tmp_path: Path) -> None:
    path, clock = tmp_path / "events.db", FakeClock()
    async with SQLiteEventStore(path, max_age_seconds=100, clock=clock) as store:
        await store.append("crashed", 0, b"old")
        clock.now += 60
        await store.append("recent", 0, b"new")
    clock.now += 50  # "crashed" is 110 s old, "recent" 50 s
    async with SQLiteEventStore(path, max_age_seconds=100, clock=clock) as store:
        assert [row[0] for row in rows_in_file(path)] == ["recent"]
        assert await store.last_seq("crashed", 0) == 0
        assert await seqs_and_payloads(store, "recent", 0, 0) == [(1, b"new")]


async def test_max_age_purges_periodically_live_and_abandoned_sessions(tmp_path: Path) -> None:
    path, clock = tmp_path / "events.db", FakeClock()
    async with SQLiteEventStore(path, max_age_seconds=100, clock=clock) as store:
        await store.append("abandoned", 0, b"a")  # on disk only once the store reopens
    async with SQLiteEventStore(path, max_age_seconds=100, purge_interval=0.01, clock=clock) as store:
        await store.append("live", 0, b"old")
        clock.now += 60
        await store.append("live", 0, b"young")
        await store.flush()
        assert len(rows_in_file(path)) == 3, "nothing is old enough yet"
        clock.now += 50
        for _ in range(1000):  # the purger runs on its own schedule
            if len(rows_in_file(path)) == 1:
                break
            await anyio.sleep(0.01)
        assert [row[3] for row in rows_in_file(path)] == [b"young"]
        with pytest.raises(ReplayGap):
            await store.read_after("live", 0, 0)
        assert await seqs_and_payloads(store, "live", 0, 1) == [(2, b"young")]
        assert await store.last_seq("abandoned", 0) == 0


async def test_leaving_the_store_commits_everything_appended(open_durable: OpenStore) -> None:
    async with open_durable() as store:
        assert isinstance(store, BatchedEventStore)
        for i in range(5000):
            await store.append("s", i % 3, b"%d" % i)
        await store.drop_session("gone")
        assert store.pending == 5000, "nothing was committed yet: leaving must do it"
    with pytest.raises(RuntimeError, match="not running"):
        await store.append("s", 0, b"late")
    async with open_durable() as store:
        assert [await store.last_seq("s", stream) for stream in range(3)] == [1667, 1667, 1666]
        assert len(await store.read_after("s", 2, 0, limit=5000)) == 1666


async def test_backpressure_holds_appenders_at_the_pending_bound(open_durable: OpenStore) -> None:
    async with open_durable(max_pending_events=10) as store:
        assert isinstance(store, BatchedEventStore)
        highest = 0

        async def append_many(stream: int) -> None:
            nonlocal highest
            for _ in range(200):
                await store.append("s", stream, b"x")
                highest = max(highest, store.pending)

        async with anyio.create_task_group() as tg:
            for stream in range(3):
                tg.start_soon(append_many, stream)
        assert highest <= 10
        await store.flush()
        assert store.pending == 0


async def test_a_kept_payload_holds_its_length_not_the_serializers_buffer(open_store: OpenStore) -> None:
    """orjson's bytes keep a 4 KiB allocation however short they are; the log must not keep that."""
    import gc
    import tracemalloc

    import orjson

    async with open_store() as store:
        tracemalloc.start()
        try:
            payloads = [orjson.dumps({"jsonrpc": "2.0", "method": "n", "params": {"i": i}}) for i in range(500)]
            for payload in payloads:
                await store.append("s", 0, payload)
            count = len(payloads)
            del payloads, payload
            gc.collect()
            held, _ = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        # Each event's bookkeeping is a few hundred bytes; an orjson buffer kept would be 4 KiB.
        assert held < count * 1024, f"{held} bytes held for {count} events of under 100 bytes"
        assert len(await store.read_after("s", 0, 0)) == 500


async def test_a_batch_that_cannot_be_written_is_given_up_loudly_and_never_becomes_a_silent_gap(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Another process holds the file's write lock past every retry (a real SQLite lock, as a
    backup or an operator's shell would take): the batch is given up and logged, the store goes on,
    and a replay that needs the lost events gets a ReplayGap instead of skipping them."""
    path = tmp_path / "events.db"
    async with SQLiteEventStore(path, tail_events=2, write_retry_seconds=0.2) as store:
        await store.append("s", 0, b"on disk")
        await store.flush()
        with closing(sqlite3.connect(path, isolation_level=None)) as other:
            other.execute("BEGIN EXCLUSIVE")
            for i in range(3):
                await store.append("s", 0, b"lost %d" % i)
            await store.flush()  # returns once the batch is given up (after the 5 s busy timeout)
            other.execute("ROLLBACK")
        assert "gave up on a batch; 3 events are not stored" in caplog.text
        for i in range(5):
            await store.append("s", 0, b"after %d" % i)  # the writer goes on
        await store.flush()
        assert [e.payload for e in await store.read_after("s", 0, 4)] == [b"after %d" % i for i in range(5)]
        with pytest.raises(ReplayGap):
            await store.read_after("s", 0, 1)  # events 2-4 are neither in memory nor in the file
    assert [seq for _, _, seq, _ in rows_in_file(path, "s")] == [1, 5, 6, 7, 8, 9]


# --- Redis only ---------------------------------------------------------------------------------


async def test_a_session_id_that_could_name_another_key_is_refused(redis: RedisServer, tmp_path: Path) -> None:
    async with RedisEventStore(redis.url, prefix="test-" + tmp_path.name) as store:
        await store.append("victim", 0, b"secret")
        for forged in ("victim:e:0", "*", "a b", "", "x" * 300):
            with pytest.raises(ValueError, match="not a session id"):
                await store.append(forged, 0, b"x")
        assert await store.read_after("victim", 0, 0) != []


async def test_redis_keys_carry_a_ttl_and_a_drop_deletes_them(redis: RedisServer, tmp_path: Path) -> None:
    import redis.asyncio as aioredis

    prefix = "test-" + tmp_path.name
    async with RedisEventStore(redis.url, prefix=prefix, ttl_seconds=60) as store:
        await store.append("s", 0, b"x")
        await store.append("s", 3, b"y")
        await store.append("keep", 0, b"k")
        await store.flush()
        client = aioredis.Redis.from_url(redis.url)
        try:
            keys = sorted(k.decode() for k in await client.keys(prefix + ":*") if not k.endswith(b":lock"))
            assert keys == [
                f"{prefix}:keep:e:0",
                f"{prefix}:keep:streams",
                f"{prefix}:s:e:0",
                f"{prefix}:s:e:3",
                f"{prefix}:s:streams",
            ]
            for key in keys:
                assert 0 < await client.pttl(key) <= 60_000
            await store.drop_session("s")
            await store.flush()
            assert sorted(k.decode() for k in await client.keys(prefix + ":*")) == [
                f"{prefix}:keep:e:0",
                f"{prefix}:keep:streams",
                f"{prefix}:lock",
            ]
        finally:
            await client.aclose()


async def test_an_unreachable_redis_is_said_at_start(tmp_path: Path) -> None:
    from mcp_sse.core.redis_store import RedisUnavailable
    from tests.redis_server import free_port

    with pytest.raises(RedisUnavailable, match=r"cannot reach Redis at redis://127\.0\.0\.1"):
        async with RedisEventStore(f"redis://127.0.0.1:{free_port()}/0", connect_timeout=1):
            pass


async def test_a_redis_that_goes_away_and_comes_back_loses_nothing(tmp_path: Path) -> None:
    """Appends go on into memory up to the pending bound, then wait; the writer retries the batch
    until Redis is back, and every event is there, in order, once."""
    server = RedisServer(tmp_path / "redis", persistent=True)
    server.start()
    try:
        async with RedisEventStore(server.url, max_pending_events=50, write_retry_seconds=60) as store:
            await store.append("s", 0, b"0")
            await store.flush()
            server.stop()
            appended: list[int] = []

            async def append_all() -> None:
                for i in range(1, 200):
                    appended.append(await store.append("s", 0, b"%d" % i))

            async with anyio.create_task_group() as tg:
                tg.start_soon(append_all)
                await anyio.sleep(1.0)
                assert 45 <= len(appended) <= 51, "appenders wait at the pending bound while Redis is gone"
                server.start()
            await store.flush()
            assert appended == list(range(2, 201))
        async with RedisEventStore(server.url) as again:
            assert [e.payload for e in await again.read_after("s", 0, 0, limit=500)] == [b"%d" % i for i in range(200)]
    finally:
        server.stop()


# --- session state beside the events (the durable stores) ---------------------------------------


async def test_session_state_round_trips_across_a_reopen_and_a_drop_forgets_it(open_durable: OpenStore) -> None:
    from mcp_sse.core.events import SessionStateStore

    async with open_durable() as store:
        assert isinstance(store, SessionStateStore)
        assert await store.load_record("s") is None
        store.save_record("s", b'{"v":1}')
        store.save_record("s", b'{"v":2}')
        store.request_opened("s", "7", 1)
        store.request_opened("s", '"a"', 2)
        store.request_opened("other", "7", 5)
        store.request_closed("s", "7")
        await store.append("s", 1, b"x")
        await store.append("s", 3, b"y")
        await store.append("s", 3, b"z")
        assert await store.load_record("s") == b'{"v":2}', "the latest record, what this process queued included"
        assert await store.open_requests("s") == {'"a"': 2}
    async with open_durable() as store:
        assert isinstance(store, SessionStateStore)
        assert await store.load_record("s") == b'{"v":2}'
        assert await store.open_requests("s") == {'"a"': 2}
        assert await store.open_requests("other") == {"7": 5}
        assert await store.last_seqs("s") == {1: 1, 3: 2}
        await store.drop_session("s")
        assert await store.load_record("s") is None
        assert await store.open_requests("s") == {}
        assert await store.open_requests("other") == {"7": 5}
    async with open_durable() as store:
        assert isinstance(store, SessionStateStore)
        assert await store.load_record("s") is None
        assert await store.open_requests("s") == {}


async def test_a_record_older_than_max_age_is_purged(tmp_path: Path) -> None:
    path, clock = tmp_path / "events.db", FakeClock()
    async with SQLiteEventStore(path, max_age_seconds=100, clock=clock) as store:
        store.save_record("old", b"r")
        store.request_opened("old", "1", 1)
        await store.flush()
    clock.now += 101
    async with SQLiteEventStore(path, max_age_seconds=100, clock=clock) as store:
        assert await store.load_record("old") is None
        assert await store.open_requests("old") == {}


async def test_the_memory_store_keeps_no_session_state() -> None:
    from mcp_sse.core.events import SessionStateStore

    assert not isinstance(MemoryEventStore(), SessionStateStore)


async def test_one_process_per_redis_key_prefix(redis: RedisServer, tmp_path: Path) -> None:
    """Two processes on one prefix would number the same sessions each on its own: the second is
    refused once the first's lock has been held for twice its TTL; a crashed holder on this machine
    is taken over at once; a clean close lets the next one in straight away."""
    import sys

    from mcp_sse.core.redis_store import RedisStoreInUse

    prefix = "test-" + tmp_path.name
    async with RedisEventStore(redis.url, prefix=prefix, lock_ttl=0.5):
        with pytest.raises(RedisStoreInUse, match="in use by another process"):
            async with RedisEventStore(redis.url, prefix=prefix, lock_ttl=0.5):
                pass
        async with RedisEventStore(redis.url, prefix=prefix + "-other", lock_ttl=0.5):
            pass  # another prefix is another deployment
    async with RedisEventStore(redis.url, prefix=prefix):
        pass  # released on close
    # A process that took the lock and died without releasing it (SIGKILL): taken over at once.
    script = (
        "import anyio, os, signal\n"
        "from mcp_sse.core.redis_store import RedisEventStore\n"
        "async def main():\n"
        f"    async with RedisEventStore({redis.url!r}, prefix={prefix!r}, lock_ttl=60):\n"
        "        os.kill(os.getpid(), signal.SIGKILL)\n"
        "anyio.run(main)\n"
    )
    died = await anyio.run_process([sys.executable, "-c", script], check=False)
    assert died.returncode == -9, died.stderr  # SIGKILL, holding the lock
    with anyio.fail_after(2):  # not the 120 s a live holder of that lock would make us wait
        async with RedisEventStore(redis.url, prefix=prefix):
            pass
