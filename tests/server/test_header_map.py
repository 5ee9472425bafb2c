"""Request headers as a dict: joined repeats, lower-case names, and one shared copy of each text."""

from __future__ import annotations

from mcp_sse.server import asgi
from mcp_sse.server.asgi import header_map


def scope_with(*headers: tuple[bytes, bytes]) -> dict[str, object]:
    return {"headers": list(headers)}


def test_repeated_headers_are_joined_and_names_lower_cased() -> None:
    headers = header_map(scope_with((b"Accept", b"application/json"), (b"accept", b"text/event-stream")))
    assert headers == {"accept": "application/json, text/event-stream"}


def test_the_same_header_on_two_requests_is_one_string_not_two() -> None:
    """What every held stream keeps: its header map (docs/benchmarks.md, W3: memory per idle stream)."""
    first = header_map(scope_with((b"host", b"127.0.0.1:" + b"8000")))
    second = header_map(scope_with((b"host", b"127.0.0.1:" + b"8000")))
    (name_1, value_1), (name_2, value_2) = next(iter(first.items())), next(iter(second.items()))
    assert name_1 is name_2 and value_1 is value_2


def test_endless_distinct_values_do_not_grow_the_cache() -> None:
    for i in range(3 * asgi._CACHE_LIMIT):
        header_map(scope_with((b"mcp-session-id", b"%d" % i)))
    assert len(asgi._VALUES) <= asgi._CACHE_LIMIT


def test_long_values_are_not_kept() -> None:
    header_map(scope_with((b"x-long", b"v" * (asgi._CACHED_LENGTH + 1))))
    assert b"v" * (asgi._CACHED_LENGTH + 1) not in asgi._VALUES


def test_values_lose_the_whitespace_around_them_not_inside() -> None:
    """RFC 9110 section 5.5: optional whitespace around a field value is not part of it."""
    headers = header_map(scope_with((b"mcp-protocol-version", b" 2025-11-25\t"), (b"mcp-name", b"  a b  ")))
    assert headers == {"mcp-protocol-version": "2025-11-25", "mcp-name": "a b"}
