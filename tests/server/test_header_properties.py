"""Properties of the header rules, the first code a request from anywhere reaches: the ASGI header
list read into a dict, the Host and Origin checks against DNS rebinding, and the 2026-07-28
per-request headers (``Mcp-Method``, ``Mcp-Name``, ``Mcp-Param-*``) a client of ours sends."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any
from urllib.parse import urlsplit

import orjson
import pytest
from hypothesis import assume, example, given, settings
from hypothesis import strategies as st
from mcp.shared.inbound import decode_header_value, encode_header_value, mcp_param_headers

from mcp_sse.addresses import is_authority
from mcp_sse.client.connection import Connection
from mcp_sse.client.modern import LIST_METHODS, modern_headers
from mcp_sse.client.policy import ReconnectPolicy
from mcp_sse.config import ServerConfig
from mcp_sse.errors import Forbidden, InvalidRequest, MisdirectedHost, Rejection
from mcp_sse.server.asgi import HeaderList, header_map
from mcp_sse.server.security import RequestGuard
from mcp_sse.wire import headers as h

MAX = settings(max_examples=120, deadline=None)

# --- header_map -----------------------------------------------------------------------------------

HEADER_NAMES = [b"Host", b"host", b"HOST", b"Origin", b"Accept", b"Mcp-Session-Id", b"Last-Event-ID", b"X-\xc0\xff"]
raw_names = st.sampled_from(HEADER_NAMES) | st.binary(max_size=20)
raw_values = st.one_of(
    st.binary(max_size=40),
    st.binary(min_size=129, max_size=200),  # longer than what the text cache keeps
    st.lists(st.sampled_from([b" ", b"\t", b"\x0b", b"\xa0", b"\x85", b"\r", b"\n", b"\x00", b"a", b",", b"\xff"])).map(
        b"".join
    ),
)
raw_headers = st.lists(st.tuples(raw_names, raw_values), max_size=10)


def reference_header_map(raw: HeaderList) -> dict[str, str]:
    """RFC 9110 read literally: latin-1 (ASGI hands bytes over as sent), names case-insensitive,
    only SP and HTAB around a value are not part of it, repeats joined with ", " in order."""
    result: dict[str, list[str]] = {}
    for name, value in raw:
        result.setdefault(name.decode("latin-1").lower(), []).append(value.decode("latin-1").strip(" \t"))
    return {name: ", ".join(values) for name, values in result.items()}


@MAX
@given(raw=raw_headers)
@example(raw=[(b"X", b" \xa0a\xa0 \t"), (b"x", b"\x85")])  # NBSP and NEL are not whitespace in HTTP
@example(raw=[(b"\xc0", b"\xc0"), (b"\xe0", b"")])  # latin-1 upper and lower case of one letter
def test_header_map_reads_any_header_list(raw: HeaderList) -> None:
    # Prime the shared text caches with the same bytes in the other role: a name's lower-cased text
    # must never come back as a value, nor a value's as a name.
    header_map({"headers": [(value, name) for name, value in raw]})
    headers = header_map({"headers": raw})
    assert headers == reference_header_map(raw)
    assert headers == header_map({"headers": raw})  # and again, now from the caches
    for name, value in headers.items():
        name.encode("latin-1")  # what was read can be written back as it came
        value.encode("latin-1")
        assert name == name.lower()


# --- RequestGuard.check ---------------------------------------------------------------------------

GUARD = RequestGuard(ServerConfig())
LOOPBACK_SERVERS = [("127.0.0.1", 8000), ("::1", 3000), ("127.9.9.9", 1), None]
PUBLIC_SERVERS = [("192.0.2.10", 8000), ("10.1.2.3", 443), ("2001:db8::1", 80)]

ports = st.one_of(
    st.just(""), st.integers(0, 65535).map(lambda p: f":{p}"), st.text("0123456789", max_size=8).map(":".__add__)
)
loopback_names = st.sampled_from(["localhost", "127.0.0.1", "[::1]"]).flatmap(
    lambda name: st.sampled_from([name, name.upper(), name.title()])
)
loopback_hosts = st.builds(lambda name, port: name + port, loopback_names, ports)

label = st.text("abcdefghijklmnopqrstuvwxyz0123456789-", min_size=1, max_size=12)
dns_names = st.lists(label, min_size=1, max_size=4).map(".".join)
public_names = st.one_of(
    dns_names.filter(lambda n: n != "localhost"),
    st.sampled_from(["localhost.evil.example", "127.0.0.1.nip.io", "localhost6", "local", "", "0.0.0.0", "[::]"]),
    st.ip_addresses(v=4).map(str).filter(lambda a: a != "127.0.0.1"),  # 127.0.0.2 too: not a name we answer for
    st.ip_addresses(v=6).filter(lambda a: not a.is_loopback).map(lambda a: f"[{a}]"),
    # A loopback name as a subdomain ("[::1].x" is no host name at all: no browser sends it).
    st.builds(lambda a, b: f"{a}.{b}", loopback_names.filter(lambda n: "[" not in n), dns_names),
)
public_hosts = st.builds(lambda name, port: name + port, public_names, ports)


def origin_of(host: str, scheme: str = "http") -> str:
    return f"{scheme}://{host}"


latin1_text = st.text(st.characters(max_codepoint=255), max_size=40)
host_ish = st.one_of(
    latin1_text,
    loopback_hosts,
    public_hosts,
    st.lists(st.sampled_from(["[", "]", ":", "::1", "localhost", "127.0.0.1", ".", " ", "\t", "@", "8000"])).map(
        "".join
    ),
)
origin_ish = st.one_of(
    st.none(),
    latin1_text,
    st.builds(
        lambda scheme, host, tail: f"{scheme}://{host}{tail}",
        st.sampled_from(["http", "https", "HTTP", "ftp", ""]),
        host_ish,
        st.sampled_from(["", "/", "//", "/x", "?q", "#f"]),
    ),
    st.sampled_from(["null", "file://", "http://", "http://:80", "http://[", "http://[::1", "http://[x]"]),
)


def urlsplit_raises(origin: str) -> bool:
    try:
        urlsplit(origin.rstrip("/").lower())
    except ValueError:
        return True
    return False


def check(server: tuple[str, int] | None, host: str | None, origin: str | None = None) -> None:
    scope: dict[str, Any] = {"type": "http", "server": server, "headers": []}
    headers = {"host": host, "origin": origin}
    GUARD.check(scope, {name: value for name, value in headers.items() if value is not None})


@MAX
@given(
    server=st.sampled_from([*LOOPBACK_SERVERS, *PUBLIC_SERVERS]),
    host=st.none() | host_ish,
    origin=origin_ish,
)
def test_check_answers_any_host_and_origin_with_a_rejection_or_nothing(
    server: tuple[str, int] | None, host: str | None, origin: str | None
) -> None:
    try:
        check(server, host, origin)
    except Rejection as refused:
        assert isinstance(refused, MisdirectedHost | Forbidden | InvalidRequest)
        assert (refused.status, refused.code) in ((421, -32600), (403, -32600), (400, -32600))
        if isinstance(refused, InvalidRequest):
            assert host is not None and not is_authority(host.strip()), "only a Host that is not one is a 400"
        error = orjson.loads(refused.body())["error"]
        assert error["message"] == refused.message


@pytest.mark.parametrize("origin", ["http://[", "http://[::1", "http://[x]", "https://[localhost]:80"])
def test_an_origin_that_is_not_a_url_is_refused(origin: str) -> None:
    """Such an Origin made urlsplit raise: a 500 until the property above found it."""
    with pytest.raises(Forbidden):
        check(("127.0.0.1", 8000), "localhost:8000", origin)


@MAX
@given(
    server=st.sampled_from(LOOPBACK_SERVERS),
    host=loopback_hosts,
    origin=st.none() | st.builds(origin_of, loopback_hosts, st.sampled_from(["http", "https"])),
    padding=st.sampled_from(["", " ", "\t "]),
    slash=st.sampled_from(["", "/"]),
)
def test_a_loopback_server_answers_every_loopback_host_and_origin(
    server: tuple[str, int] | None, host: str, origin: str | None, padding: str, slash: str
) -> None:
    check(server, padding + host + padding, None if origin is None else origin + slash)


@MAX
@given(
    server=st.sampled_from(LOOPBACK_SERVERS),
    host=public_hosts,
    origin=st.none() | st.builds(origin_of, loopback_hosts) | st.builds(origin_of, public_hosts),
)
@example(server=("127.0.0.1", 8000), host="evil.example:8000", origin=None)
@example(server=("127.0.0.1", 8000), host="localhost.evil.example:8000", origin="http://localhost:8000")
@example(server=("127.0.0.1", 8000), host="127.0.0.1.nip.io", origin=None)
def test_a_loopback_server_refuses_every_other_host_with_421(
    server: tuple[str, int] | None, host: str, origin: str | None
) -> None:
    """DNS rebinding: a page from evil.example, resolved to 127.0.0.1, still says Host: evil.example.
    (A Host with no host name in it, such as ":0", is no host at all: 400.)"""
    no_host = bool(host) and not is_authority(host)
    with pytest.raises(InvalidRequest if no_host else MisdirectedHost) as refused:
        check(server, host, origin)
    assert refused.value.status == (400 if no_host else 421)


@MAX
@given(server=st.sampled_from(LOOPBACK_SERVERS), host=loopback_hosts, origin=st.builds(origin_of, public_hosts))
@example(server=("127.0.0.1", 8000), host="localhost:8000", origin="http://localhost.evil.example:8000")
def test_a_loopback_server_refuses_every_other_origin_with_403(
    server: tuple[str, int] | None, host: str, origin: str
) -> None:
    assume(urlsplit(origin).hostname)  # an origin without a host name ("http://:80") is refused too, below
    with pytest.raises(Forbidden) as refused:
        check(server, host, origin)
    assert refused.value.status == 403


@MAX
@given(server=st.sampled_from(PUBLIC_SERVERS), host=public_hosts | loopback_hosts, other=public_hosts)
def test_a_public_server_answers_any_host_and_only_its_own_origin(
    server: tuple[str, int], host: str, other: str
) -> None:
    assume(host and urlsplit(origin_of(host)).hostname)
    if not is_authority(host):
        with pytest.raises(InvalidRequest):  # not a host name at all: 400 wherever the server listens
            check(server, host)
        return
    check(server, host)
    check(server, host, origin_of(host))
    check(server, host, origin_of(host.upper()) + "/")
    assume(other.lower() != host.lower())
    with pytest.raises(Forbidden):
        check(server, host, origin_of(other))


# --- the client's 2026-07-28 per-request headers ---------------------------------------------------

# What our client sends comes from two places: the SDK's ClientSession stamps each request's
# Mcp-Method, Mcp-Name and Mcp-Param-* (mcp.shared.inbound.encode_header_value, which base64-wraps
# what is not plain printable ASCII), which Connection.headers passes on; and modern_headers builds
# the headers of the client's own re-list requests, where the caller's Mcp-Name and Mcp-Param-*
# do not apply. The server side compares them after header_map.

any_text = st.text(
    st.one_of(st.characters(codec="utf-8"), st.sampled_from(["\x00", "\r", "\n", "\t", " ", "\x7f", "\u2028"])),
    max_size=30,
)
tool_names = st.one_of(
    any_text,
    st.sampled_from(["weather", "météo", " padded ", "=?base64?", "=?base64?d2VhdGhlcg==?=", "=?base64??=", ""]),
)
argument_values = st.one_of(
    tool_names, st.integers(-(10**30), 10**30), st.booleans(), st.floats(allow_nan=False, allow_infinity=False)
)


def valid_field_value(value: str) -> bool:
    """RFC 9110 section 5.5, as strict as a sender must be: visible ASCII and inner spaces only."""
    return all(" " <= c <= "~" for c in value) and value == value.strip(" \t")


def through_the_server(name: str, value: str) -> str:
    """The value as our server's header_map reads it from the wire."""
    return header_map({"headers": [(name.encode("latin-1"), value.encode("latin-1"))]})[name.lower()]


@MAX
@given(name=tool_names)
def test_mcp_name_is_a_valid_header_value_that_round_trips(name: str) -> None:
    value = encode_header_value(name)
    assert valid_field_value(value)
    sent = Connection("http://localhost/mcp", ReconnectPolicy()).headers({"Mcp-Name": value})
    assert sent[h.MCP_NAME] == value
    assert decode_header_value(through_the_server("Mcp-Name", sent[h.MCP_NAME])) == name


@MAX
@given(arguments=st.dictionaries(st.sampled_from(["region", "days", "flag"]), argument_values, max_size=3))
def test_mcp_param_values_are_valid_header_values_that_round_trip(arguments: dict[str, Any]) -> None:
    tokens: dict[tuple[str, ...], str] = {("region",): "Region", ("days",): "Days", ("flag",): "Flag"}
    stamped = mcp_param_headers(tokens, arguments)
    assert set(stamped) == {f"Mcp-Param-{tokens[(key,)]}" for key in arguments}
    for key, argument in arguments.items():
        value = stamped[f"Mcp-Param-{tokens[(key,)]}"]
        assert valid_field_value(value)
        rendered = ("true" if argument else "false") if isinstance(argument, bool) else str(argument)
        assert decode_header_value(through_the_server(f"Mcp-Param-{tokens[(key,)]}", value)) == rendered


stamped_names = st.one_of(
    st.sampled_from(["Mcp-Method", "MCP-NAME", "mcp-name", "Mcp-Param-Region", "MCP-PARAM-days", "mcp-param-"]),
    st.sampled_from(["Mcp-Protocol-Version", "Authorization", "X-Trace", "accept"]),
    st.text("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-", min_size=1, max_size=12).filter(
        lambda n: not n.lower().startswith("mcp-")
    ),
)
PER_REQUEST = (h.MCP_METHOD, h.MCP_NAME)


def per_request(name: str) -> bool:
    name = name.lower()
    return name in PER_REQUEST or name.startswith(h.MCP_PARAM_PREFIX)


@MAX
@given(
    stamped=st.none() | st.dictionaries(stamped_names, any_text, max_size=6),
    method=st.sampled_from(sorted(LIST_METHODS)),
)
def test_a_relist_carries_the_callers_headers_but_names_its_own_method(
    stamped: dict[str, str] | None, method: str
) -> None:
    headers = modern_headers(SimpleNamespace(headers=stamped), method)
    expected = {name.lower(): value for name, value in (stamped or {}).items() if not per_request(name)}
    assert headers == {**expected, h.MCP_METHOD: method}
    assert valid_field_value(headers[h.MCP_METHOD])
    assert modern_headers(None, method) == {h.MCP_METHOD: method}
