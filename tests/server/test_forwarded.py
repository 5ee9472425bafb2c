"""Forwarding headers, believed only from trusted proxies: who the client is, and what Host and
scheme it used. No socket: headers and addresses in, a view out."""

from __future__ import annotations

import pytest

from mcp_sse.server.forwarded import ForwardedView, TrustedProxies, parse_forwarded

PROXIES = TrustedProxies(["10.0.0.0/8", "127.0.0.1", "2001:db8::/32"])


def test_an_untrusted_peer_is_not_believed() -> None:
    headers = {"x-forwarded-for": "1.2.3.4", "x-forwarded-host": "evil.example", "forwarded": "for=1.2.3.4"}
    assert PROXIES.resolve("192.0.2.7", headers) is None
    assert TrustedProxies([]).resolve("127.0.0.1", headers) is None
    assert PROXIES.resolve(None, headers) is None


def test_a_trusted_peer_without_forwarding_headers_says_nothing() -> None:
    assert PROXIES.resolve("10.1.2.3", {"host": "x"}) is None


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        (
            {"x-forwarded-for": "203.0.113.9", "x-forwarded-host": "mcp.example.com", "x-forwarded-proto": "https"},
            ForwardedView("203.0.113.9", "mcp.example.com", "https"),
        ),
        # The client claims to be 1.1.1.1 by sending the header itself; the first untrusted hop wins.
        ({"x-forwarded-for": "1.1.1.1, 203.0.113.9, 10.0.0.2"}, ForwardedView("203.0.113.9", None, None)),
        # Every hop trusted: the farthest one named is the client.
        ({"x-forwarded-for": "10.0.0.5, 10.0.0.2"}, ForwardedView("10.0.0.5", None, None)),
        # Host and Proto set (not appended) by our proxy: its value, even with a longer For chain.
        (
            {"x-forwarded-for": "203.0.113.9, 10.0.0.2", "x-forwarded-host": "a.example", "x-forwarded-proto": "HTTPS"},
            ForwardedView("203.0.113.9", "a.example", "https"),
        ),
        # Appended in step with For: the Host and scheme recorded with the client's hop.
        (
            {
                "x-forwarded-for": "203.0.113.9, 10.0.0.2",
                "x-forwarded-host": "public.example, internal.example",
                "x-forwarded-proto": "https, http",
            },
            ForwardedView("203.0.113.9", "public.example", "https"),
        ),
        (
            {"forwarded": 'for=203.0.113.9;host=mcp.example.com:8443;proto=https, for="[2001:db8::1]:4711"'},
            ForwardedView("203.0.113.9", "mcp.example.com:8443", "https"),
        ),
        ({"forwarded": 'for="[2001:db9::7]:99";proto=http'}, ForwardedView("2001:db9::7", None, "http")),
        ({"forwarded": "for=unknown;host=h.example"}, ForwardedView("unknown", "h.example", None)),
        # Forwarded wins over X-Forwarded-* when both come.
        (
            {"forwarded": "for=198.51.100.1", "x-forwarded-for": "203.0.113.9"},
            ForwardedView("198.51.100.1", None, None),
        ),
        # What is not a Host or a scheme is not believed.
        (
            {"x-forwarded-for": "203.0.113.9", "x-forwarded-host": "a b/c", "x-forwarded-proto": "javascript"},
            ForwardedView("203.0.113.9", None, None),
        ),
        ({"x-forwarded-for": "203.0.113.9:5555"}, ForwardedView("203.0.113.9", None, None)),
    ],
)
def test_the_client_is_the_first_hop_not_trusted(headers: dict[str, str], expected: ForwardedView) -> None:
    assert PROXIES.resolve("10.9.9.9", headers) == expected


def test_a_malformed_forwarded_header_is_ignored_as_a_whole() -> None:
    assert parse_forwarded('for="unterminated') == []
    assert parse_forwarded("for") == []
    assert parse_forwarded("for=1.2.3.4 junk") == []
    view = PROXIES.resolve("10.0.0.1", {"forwarded": 'for="unterminated', "x-forwarded-for": "203.0.113.9"})
    assert view == ForwardedView("203.0.113.9", None, None), "then X-Forwarded-For is read instead"


def test_forwarded_elements_and_quoting() -> None:
    assert parse_forwarded('For="[2001:db8:cafe::17]:4711";Proto=https, for=192.0.2.43;by="a\\"b"') == [
        {"for": "[2001:db8:cafe::17]:4711", "proto": "https"},
        {"for": "192.0.2.43", "by": 'a"b'},
    ]


def test_a_very_long_chain_is_walked_only_so_far() -> None:
    chain = ", ".join(["10.0.0.1"] * 10_000)
    view = PROXIES.resolve("10.0.0.1", {"x-forwarded-for": "203.0.113.9, " + chain})
    assert view is not None and view.client == "10.0.0.1", "the walk stops rather than trust a made-up path"


def test_networks_and_addresses_are_matched_as_addresses() -> None:
    assert PROXIES.trusts("10.200.1.1") and PROXIES.trusts("127.0.0.1") and PROXIES.trusts("[2001:db8::5]")
    assert not PROXIES.trusts("127.0.0.2") and not PROXIES.trusts("_hidden") and not PROXIES.trusts("11.0.0.1")
    with pytest.raises(ValueError):
        TrustedProxies(["not-an-address"])
