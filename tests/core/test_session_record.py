"""A session's record and its epochs, with no store and no socket: ids that never lie after a crash."""

from __future__ import annotations

import pytest

from mcp_sse.core.session_record import (
    STREAM_BLOCK,
    ResumePoint,
    SessionRecord,
    format_event_id,
    parse_event_id,
    request_id_of,
    request_key,
)


def test_epoch_zero_ids_are_the_old_ones_and_later_epochs_name_themselves() -> None:
    assert format_event_id(0, 3, 7) == "3-7"
    assert format_event_id(2, 3, 7) == "2.3-7"
    assert parse_event_id("3-7") == (0, 3, 7)
    assert parse_event_id(" 2.3-7 ") == (2, 3, 7)
    for bad in ("", "3", "a-1", "3-x", ".3-7", "x.3-7", "3-7-8", "-1"):
        assert parse_event_id(bad) is None, bad


def test_request_keys_keep_numbers_and_strings_apart() -> None:
    assert request_key(7) != request_key("7")
    assert request_id_of(request_key(7)) == 7
    assert request_id_of(request_key("7")) == "7"


def test_a_record_round_trips_through_bytes() -> None:
    record = SessionRecord("s", "2025-11-25", {"protocolVersion": "2025-11-25", "clientInfo": {"name": "c"}})
    record.initialized = True
    record.reserve_streams(1)
    record.begin_epoch({0: 4, 3: 9})
    again = SessionRecord.from_bytes(record.to_bytes())
    assert again == record


def test_stream_numbers_are_reserved_in_blocks_and_never_given_twice() -> None:
    record = SessionRecord("s", "2025-11-25")
    assert record.reserve_streams(1), "the first stream reserves a block: write the record"
    assert not any(record.reserve_streams(n) for n in range(2, STREAM_BLOCK + 1))
    assert record.reserve_streams(STREAM_BLOCK + 1)
    assert record.first_free_stream == 2 * STREAM_BLOCK + 1, "after a crash: past every number handed out"


def test_each_event_belongs_to_the_epoch_that_numbered_it() -> None:
    record = SessionRecord("s", "2025-11-25")
    record.begin_epoch({1: 5})  # epoch 0 kept events 1-5 of stream 1
    record.begin_epoch({1: 7, 2: 3})  # epoch 1 kept 6-7 of stream 1, 1-3 of stream 2
    assert [record.epoch_of(1, seq) for seq in (1, 5, 6, 7, 8)] == [0, 0, 1, 1, 2]
    assert record.event_id(1, 5) == "1-5"
    assert record.event_id(1, 6) == "1.1-6"
    assert record.event_id(2, 4) == "2.2-4"


def test_a_cursor_past_what_survived_resumes_after_the_last_survivor_and_says_so() -> None:
    record = SessionRecord("s", "2025-11-25")
    record.begin_epoch({1: 50})
    assert record.resume_point(0, 1, 40) == ResumePoint(40), "seen and kept: resume as ever"
    assert record.resume_point(0, 1, 300) == ResumePoint(50, lost_after=50), "seen, then lost"
    assert record.resume_point(0, 2, 9) == ResumePoint(0, lost_after=0), "nothing of stream 2 survived"
    assert record.resume_point(1, 1, 60) == ResumePoint(60), "the current epoch"
    assert record.resume_point(2, 1, 1) is None, "an epoch this session never had"


@pytest.mark.parametrize("epochs", [0, 1, 3])
def test_an_id_given_out_resumes_exactly_after_itself(epochs: int) -> None:
    record = SessionRecord("s", "2025-11-25")
    for n in range(epochs):
        record.begin_epoch({1: 10 * (n + 1)})
    for seq in range(1, 10 * epochs + 15):
        parsed = parse_event_id(record.event_id(1, seq))
        assert parsed is not None
        assert record.resume_point(*parsed) == ResumePoint(seq)
