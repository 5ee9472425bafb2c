"""The memory event store: sequence numbers, per-stream reads, bounds, and gaps made loud."""

from __future__ import annotations

import pytest

from mcp_sse.core.events import ReplayGap
from mcp_sse.core.memory_store import MemoryEventStore

pytestmark = pytest.mark.anyio


async def test_sequences_are_per_stream_and_start_at_one() -> None:
    store = MemoryEventStore()
    assert [await store.append("s", 1, b"a"), await store.append("s", 2, b"b"), await store.append("s", 1, b"c")] == [
        1,
        1,
        2,
    ]
    assert [(e.seq, e.payload) for e in await store.read_after("s", 1, 0)] == [(1, b"a"), (2, b"c")]
    assert [(e.seq, e.payload) for e in await store.read_after("s", 1, 1)] == [(2, b"c")]
    assert await store.read_after("s", 1, 2) == []
    assert await store.last_seq("s", 1) == 2
    assert await store.read_after("other", 1, 0) == [], "sessions never see each other's events"


async def test_count_bound_evicts_the_sessions_oldest_events_and_a_late_reader_gets_a_gap() -> None:
    store = MemoryEventStore(max_events_per_session=3)
    for i in range(5):
        await store.append("s", i % 2, str(i).encode())
    # kept: events 2, 3, 4 -> stream 0 has seq 2 (b"2") and 3 (b"4"); stream 1 has seq 2 (b"3")
    assert [e.payload for e in await store.read_after("s", 0, 1)] == [b"2", b"4"]
    with pytest.raises(ReplayGap) as gap:
        await store.read_after("s", 0, 0)
    assert gap.value.oldest == 2
    assert [e.payload for e in await store.read_after("s", 1, 1)] == [b"3"]


async def test_byte_bound() -> None:
    store = MemoryEventStore(max_events_per_session=100, max_bytes_per_session=10)
    for _ in range(4):
        await store.append("s", 0, b"xxxx")
    events = await store.read_after("s", 0, 2)
    assert [e.seq for e in events] == [3, 4]


async def test_long_runs_compact_without_losing_order() -> None:
    store = MemoryEventStore(max_events_per_session=50)
    for i in range(2000):
        await store.append("s", 0, str(i).encode())
    events = await store.read_after("s", 0, 1950)
    assert [e.payload for e in events] == [str(i).encode() for i in range(1950, 2000)]
    assert [e.seq for e in events] == list(range(1951, 2001))


async def test_drop_session_forgets_everything() -> None:
    store = MemoryEventStore()
    await store.append("s", 0, b"x")
    await store.drop_session("s")
    assert await store.read_after("s", 0, 0) == []
