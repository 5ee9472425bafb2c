"""The index every event store shares: numbering, bounds, eviction and replay ranges, with no
payloads, no file and no socket."""

from __future__ import annotations

import pytest

from mcp_sse.core.event_index import Bounds, SessionIndex, StreamIndex
from mcp_sse.core.events import ReplayGap

ROOMY = Bounds(1_000, 1_000_000)


def test_numbers_start_at_one_per_stream_and_never_repeat() -> None:
    index = SessionIndex()
    assert [index.append(1, 10, 0.0) for _ in range(3)] == [1, 2, 3]
    assert index.append(2, 10, 0.0) == 1
    assert index.streams[1].last_seq == 3
    assert (index.count, index.size) == (4, 40)


def test_the_count_bound_evicts_the_sessions_oldest_event_across_streams() -> None:
    index = SessionIndex()
    bounds = Bounds(3, 1_000_000)
    for key in (1, 2, 1, 2):
        index.append(key, 1, 0.0)
        index.enforce(bounds)
    assert index.count == 3
    assert index.streams[1].first_seq == 2, "stream 1's first event was the session's oldest"
    assert index.streams[2].first_seq == 1


def test_the_byte_bound_keeps_the_newest_event_however_large() -> None:
    index = SessionIndex()
    bounds = Bounds(100, 50)
    index.append(1, 30, 0.0)
    index.enforce(bounds)
    index.append(1, 80, 0.0)
    index.enforce(bounds)
    assert (index.count, index.size) == (1, 80)
    assert index.streams[1].first_seq == 2


def test_a_cursor_before_the_oldest_kept_event_is_a_gap_never_a_skip() -> None:
    index = SessionIndex()
    bounds = Bounds(2, 1_000_000)
    for _ in range(5):
        index.append(7, 1, 0.0)
        index.enforce(bounds)
    stream = index.replay_from(7, 3)
    assert stream is not None and stream.first_seq == 4
    with pytest.raises(ReplayGap) as gap:
        index.replay_from(7, 2)
    assert (gap.value.stream, gap.value.after, gap.value.oldest) == (7, 2, 4)
    assert index.replay_from(8, 0) is None, "a stream with no events has nothing to replay"


def test_expiry_evicts_what_is_older_than_the_cutoff() -> None:
    index = SessionIndex()
    for ts in (1.0, 2.0, 3.0):
        index.append(1, 1, ts)
    index.append(2, 1, 4.0)
    assert index.expire(2.5) == [(1, 3)]
    assert index.oldest_time == 3.0
    assert index.expire(10.0) == [(1, 4), (2, 2)]
    assert index.count == 0 and index.oldest_time is None


def test_a_long_running_session_compacts_its_eviction_order() -> None:
    index = SessionIndex()
    bounds = Bounds(10, 1_000_000)
    for _ in range(10_000):
        index.append(1, 1, 0.0)
        index.enforce(bounds)
    assert index.count == 10
    assert len(index.order) < 600, "the consumed front of the order list is dropped now and then"


def test_a_store_hangs_its_data_on_the_index_and_hears_each_eviction() -> None:
    class Kept(StreamIndex):
        __slots__ = ("payloads",)

        def __init__(self) -> None:
            super().__init__()
            self.payloads: list[str] = []

    class Index(SessionIndex):
        __slots__ = ()

        def new_stream(self) -> Kept:
            return Kept()

        def evicted(self, stream: StreamIndex) -> None:
            assert isinstance(stream, Kept)
            stream.payloads.pop(0)

    index = Index()
    for text in ("a", "b", "c"):
        index.append(1, 1, 0.0)
        stream = index.streams[1]
        assert isinstance(stream, Kept)
        stream.payloads.append(text)
        index.enforce(Bounds(2, 100))
    assert stream.payloads == ["b", "c"]


def test_loading_rows_continues_the_numbering_after_tombstones() -> None:
    index = SessionIndex()
    index.load([(1, 4, None, 1.0), (1, 5, 10, 1.0), (2, 9, None, 1.0), (1, 6, 20, 2.0)])
    assert (index.streams[1].first_seq, index.streams[1].next_seq) == (5, 7)
    assert (index.streams[2].first_seq, index.streams[2].next_seq) == (10, 10), "nothing kept, numbering goes on"
    assert (index.count, index.size) == (2, 30)
    assert index.append(2, 1, 3.0) == 10
    with pytest.raises(ReplayGap):
        index.replay_from(1, 3)


def test_bounds_must_be_positive() -> None:
    with pytest.raises(ValueError, match="positive"):
        Bounds(0, 10)
