"""The client's decision core, without a socket or a clock."""

from __future__ import annotations

import random

import pytest

from mcp_sse.client.decisions import Backoff, Cursor, EraCache, RetryRules, resolve_endpoint, should_fall_back_to_sse
from mcp_sse.client.policy import ReconnectPolicy


def test_backoff_grows_with_full_jitter_under_the_cap() -> None:
    policy = ReconnectPolicy(initial_delay=1, max_delay=8, multiplier=2, budget=1000)
    backoff = Backoff(policy, random.Random(7))
    ceilings = [1, 2, 4, 8, 8, 8]
    for ceiling in ceilings:
        delay = backoff.next_delay(0)
        assert delay is not None and 0 <= delay <= ceiling
    no_jitter = Backoff(ReconnectPolicy(initial_delay=1, max_delay=8, jitter=False, budget=1000))
    assert [no_jitter.next_delay(0) for _ in range(5)] == [1, 2, 4, 8, 8]


def test_server_retry_replaces_the_next_wait() -> None:
    backoff = Backoff(ReconnectPolicy(initial_delay=1, jitter=False), random.Random(1))
    assert backoff.next_delay(0, server_retry_ms=250) == 0.25


def test_budget_is_time_not_tries() -> None:
    backoff = Backoff(ReconnectPolicy(initial_delay=0.1, max_delay=0.1, jitter=False, budget=10))
    assert backoff.next_delay(100.0) == 0.1  # the clock starts at the first failure
    assert backoff.next_delay(105.0) == 0.1
    assert backoff.next_delay(109.95) == pytest.approx(0.05)  # never waits past the budget
    assert backoff.next_delay(110.0) is None
    backoff.reset()
    assert backoff.next_delay(500.0) == 0.1


@pytest.mark.parametrize(
    ("status", "version", "fallback"),
    [
        (400, "2025-11-25", True),
        (404, "2025-11-25", True),
        (405, "2025-11-25", True),
        (401, "2025-11-25", False),
        (403, "2025-11-25", False),
        (415, "2025-11-25", False),
        (415, "2025-03-26", True),
        (401, "2025-06-18", False),
        (500, "2025-06-18", False),
    ],
)
def test_fallback_rule_per_version(status: int, version: str, fallback: bool) -> None:
    assert should_fall_back_to_sse(status, version) is fallback


def test_era_cache_is_per_origin() -> None:
    cache = EraCache()
    cache.remember("http://Example.com:8080/a/mcp", "sse")
    assert cache.get("http://example.com:8080/other") == "sse"
    assert cache.get("http://example.com:8081/a/mcp") is None
    cache.forget("http://example.com:8080/x")
    assert cache.get("http://example.com:8080/a/mcp") is None


def test_endpoint_is_relative_to_the_sse_url_and_same_origin() -> None:
    assert resolve_endpoint("http://h:1/base/sse", "/messages?session_id=a") == "http://h:1/messages?session_id=a"
    assert resolve_endpoint("http://h:1/base/sse", "messages?x=1") == "http://h:1/base/messages?x=1"
    with pytest.raises(ValueError):
        resolve_endpoint("http://h:1/sse", "http://evil:1/messages")


def test_cursor_drops_duplicates_and_resets_on_empty_id() -> None:
    cursor = Cursor()
    assert cursor.see("1-1") and cursor.see("1-2")
    assert not cursor.see("1-1")
    assert cursor.last_event_id == "1-1"
    assert cursor.see("")
    assert cursor.last_event_id is None


def test_retry_rules() -> None:
    rules = RetryRules(ReconnectPolicy(retry_tools=frozenset({"lookup"})))
    assert rules.is_safe({"method": "tools/list"})
    assert not rules.is_safe({"method": "tools/call", "params": {"name": "delete_all"}})
    assert rules.is_safe({"method": "tools/call", "params": {"name": "lookup"}})
    rules.learn_tools({"tools": [{"name": "read", "annotations": {"readOnlyHint": True}}, {"name": "write"}]})
    assert rules.is_safe({"method": "tools/call", "params": {"name": "read"}})
    assert not rules.is_safe({"method": "tools/call", "params": {"name": "write"}})
    untrusting = RetryRules(ReconnectPolicy(trust_tool_annotations=False))
    untrusting.learn_tools({"tools": [{"name": "read", "annotations": {"readOnlyHint": True}}]})
    assert not untrusting.is_safe({"method": "tools/call", "params": {"name": "read"}})


def test_cursor_counts_events_skipped_between_stream_sequence_ids() -> None:
    cursor = Cursor("2-3")
    for event_id in ("2-4", "2-7", "2-8"):
        cursor.see(event_id)
    assert cursor.lost == 2
    other = Cursor("a1b2")
    other.see("c3d4")
    assert other.lost == 0, "ids that are not <stream>-<seq> say nothing about loss"
