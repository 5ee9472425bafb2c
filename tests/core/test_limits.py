"""Per-caller limits with no socket and no clock: the token bucket, sessions and streams at once."""

from __future__ import annotations

from mcp_sse.core.limits import CallerLimits, Refused, retry_after_header


def test_a_caller_gets_its_burst_then_the_rate_and_is_told_when_to_come_back() -> None:
    limits = CallerLimits(requests_per_second=2, burst=3)
    assert [limits.request("alice", 0.0) for _ in range(3)] == [None, None, None]
    refused = limits.request("alice", 0.0)
    assert isinstance(refused, Refused) and refused.retry_after == 0.5
    assert retry_after_header(refused.retry_after) == "1"
    assert limits.request("bob", 0.0) is None, "another caller has a bucket of its own"
    assert limits.request("alice", 0.5) is None, "half a second gives one request back at 2/s"
    assert limits.request("alice", 0.5) is not None
    assert all(limits.request("alice", 100.0 + i) is None for i in range(5)), "one a second is under the rate"


def test_no_rate_means_no_limit() -> None:
    limits = CallerLimits()
    assert all(limits.request("x", 0.0) is None for _ in range(10_000))


def test_sessions_and_streams_are_counted_per_caller_and_given_back() -> None:
    limits = CallerLimits(sessions=2, streams=1)
    assert limits.open_session("a") is None and limits.open_session("a") is None
    refused = limits.open_session("a")
    assert refused is not None and "more than 2 sessions" in refused.reason
    assert limits.open_session("b") is None
    limits.close_session("a")
    assert limits.open_session("a") is None
    assert limits.open_stream("a") is None and limits.open_stream("a") is not None
    limits.close_stream("a")
    assert limits.open_stream("a") is None


def test_idle_callers_are_forgotten_first_when_there_are_too_many() -> None:
    limits = CallerLimits(requests_per_second=1, burst=1, max_callers=2)
    limits.request("old", 0.0)
    limits.request("mid", 0.0)
    limits.request("old", 0.0)  # refused, and now the most recent
    limits.request("new", 0.0)  # "mid" is forgotten
    assert limits.request("mid", 0.0) is None, "a forgotten caller starts with a full bucket"
    assert limits.request("new", 0.0) is not None
