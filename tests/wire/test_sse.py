"""The SSE codec against the WHATWG rules: one table row per rule, then chunking properties."""

from __future__ import annotations

import itertools
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mcp_sse.wire.sse import (
    ServerSentEvent,
    SSEDecoder,
    encode_comment,
    encode_event,
    encode_json_event,
    encode_retry,
)

E = ServerSentEvent


def decode(chunks: list[bytes], last_event_id: str = "") -> tuple[list[ServerSentEvent], SSEDecoder]:
    decoder = SSEDecoder(last_event_id)
    events: list[ServerSentEvent] = []
    for chunk in chunks:
        events.extend(decoder.feed(chunk))
    events.extend(decoder.close())
    return events, decoder


def reference(blob: bytes, last_event_id: str = "") -> tuple[list[ServerSentEvent], str, int | None]:
    """The spec's algorithm read literally, on the whole stream at once: the oracle for properties."""
    text = blob.decode("utf-8", "replace")
    if text.startswith("\ufeff"):
        text = text[1:]
    lines = re.split("\r\n|\r|\n", text)
    lines.pop()  # the unterminated tail (or "" after the last line ending): discarded at end of stream
    events: list[ServerSentEvent] = []
    data, event_type, id_buffer, retry = "", "", last_event_id, None
    for line in lines:
        if line == "":
            last_event_id = id_buffer
            if data:
                events.append(E(data[:-1] if data.endswith("\n") else data, event_type or "message", id_buffer))
            data, event_type = "", ""
            continue
        if line.startswith(":"):
            continue
        field, colon, value = line.partition(":")
        if colon and value.startswith(" "):
            value = value[1:]
        if field == "data":
            data += value + "\n"
        elif field == "event":
            event_type = value
        elif field == "id" and "\x00" not in value:
            id_buffer = value
        elif field == "retry" and value and all(c in "0123456789" for c in value):
            retry = int(value)
    return events, last_event_id, retry


def split_at(blob: bytes, cuts: list[int]) -> list[bytes]:
    bounds = [0, *sorted(cuts), len(blob)]
    return [blob[a:b] for a, b in itertools.pairwise(bounds)]


def case(
    name: str,
    chunks: bytes | list[bytes],
    events: list[ServerSentEvent],
    *,
    last_event_id: str | None = None,
    retry: int | None = None,
    start_id: str = "",
) -> object:
    if isinstance(chunks, bytes):
        chunks = [chunks]
    if last_event_id is None:
        last_event_id = events[-1].id if events else start_id
    return pytest.param(chunks, events, last_event_id, retry, start_id, id=name)


RETRY_IGNORED = [b"1000x", b"-1", b"1.5", b"  1000", b"", b"\xd9\xa1\xd9\xa2", b"1 000"]

TABLE = [
    # line endings
    case("lf", b"data: a\n\n", [E("a")]),
    case("cr", b"data: a\r\r", [E("a")]),
    case("crlf", b"data: a\r\n\r\n", [E("a")]),
    case("mixed-endings", b"data: a\rdata: b\ndata: c\r\n\r", [E("a\nb\nc")]),
    case("crlf-split-across-chunks", [b"data: a\r", b"\ndata: b\r", b"\n\r", b"\n"], [E("a\nb")]),
    case("cr-then-empty-chunk-then-lf", [b"data: a\r", b"", b"\ndata: b\n\n"], [E("a\nb")]),
    case("cr-at-chunk-end-then-cr", [b"data: a\r", b"\r"], [E("a")]),
    case("lf-lf-split", [b"data: a\n", b"\n"], [E("a")]),
    # byte order mark
    case("bom", b"\xef\xbb\xbfdata: x\n\n", [E("x")]),
    case("bom-split-1-2", [b"\xef", b"\xbb\xbfdata: x\n\n"], [E("x")]),
    case("bom-split-1-1-1", [b"\xef", b"\xbb", b"\xbf", b"data: x\n\n"], [E("x")]),
    case("second-bom-kept", b"\xef\xbb\xbf\xef\xbb\xbfdata: x\ndata: y\n\n", [E("y")]),
    case("bom-after-start-kept", b"data: a\n\n\xef\xbb\xbfdata: b\n\n", [E("a")]),
    # fields and values
    case("multiline-data-joined-with-lf", b"data: a\ndata: b\n\n", [E("a\nb")]),
    case("data-without-colon-appends-empty-line", b"data: a\ndata\n\n", [E("a\n")]),
    case("one-leading-space-stripped", b"data:  a\n\n", [E(" a")]),
    case("no-space-after-colon", b"data:a\n\n", [E("a")]),
    case("tab-kept", b"data:\ta\n\n", [E("\ta")]),
    case("value-keeps-later-colons", b"data: a: b:c\n\n", [E("a: b:c")]),
    case("trailing-spaces-kept", b"data: a  \n\n", [E("a  ")]),
    case("event-type", b"event: ping\ndata: a\n\n", [E("a", "ping")]),
    case("event-type-reset-after-dispatch", b"event: ping\ndata: a\n\ndata: b\n\n", [E("a", "ping"), E("b")]),
    case("event-type-reset-even-without-data", b"event: ping\n\ndata: b\n\n", [E("b")]),
    case("empty-event-type-is-message", b"event:\ndata: a\n\n", [E("a")]),
    case("comments-ignored", b": hello\ndata: a\n:\n: x: y\n\n", [E("a")]),
    case("unknown-fields-ignored", b"foo: b\nretryx: 1\nidx: 2\ndata: d\n\n", [E("d")]),
    case("field-names-case-sensitive", b"Data: a\nEVENT: e\nID: 1\ndata: d\n\n", [E("d")]),
    case("field-name-with-space-ignored", b"data : a\ndata: b\n\n", [E("b")]),
    # id
    case("id", b"id: 7\ndata: a\n\n", [E("a", id="7")]),
    case("id-after-data-applies", b"data: a\nid: 5\n\n", [E("a", id="5")]),
    case("id-carried-over", b"id: 7\ndata: a\n\ndata: b\n\n", [E("a", id="7"), E("b", id="7")]),
    case("id-with-nul-ignored", b"id: 1\ndata: a\n\nid: 2\x00x\ndata: b\n\n", [E("a", id="1"), E("b", id="1")]),
    case(
        "empty-id-resets",
        b"id: 1\ndata: a\n\nid\ndata: b\n\nid: 2\n\nid:\ndata: c\n\n",
        [E("a", id="1"), E("b", id=""), E("c", id="")],
    ),
    case("id-leading-space-stripped-once", b"id:  3\ndata: a\n\n", [E("a", id=" 3")]),
    case("resumed-stream-keeps-id", b"data: a\n\n", [E("a", id="41")], start_id="41"),
    case("empty-data-buffer-sets-id-only", b"id: 9\n\n", [], last_event_id="9"),
    case("id-without-dispatch-not-committed", b"id: 9\ndata: a\n", [], last_event_id=""),
    # retry
    case("retry-digits", b"retry: 1000\n\n", [], retry=1000),
    case("retry-zero", b"retry: 0\n", [], retry=0),
    case("retry-later-invalid-keeps-valid", b"retry: 1000\nretry: x\n", [], retry=1000),
    *[case(f"retry-ignored-{v!r}", b"retry: " + v + b"\n\n", []) for v in RETRY_IGNORED],
    # dispatch and end of stream
    case("data-colon-alone-fires-empty", b"data:\n\n", [E("")]),
    case("data-alone-fires-empty", b"data\n\n", [E("")]),
    case("blank-lines-fire-nothing", b"\n\n\r\n\r\r", []),
    case("unterminated-event-dropped", b"data: a\n\ndata: b\n", [E("a")]),
    case("unterminated-line-dropped", [b"data: a\n\n", b"data: b"], [E("a")]),
    case("priming-event", b"id: 3-0\nretry: 500\ndata: \n\n", [E("", id="3-0")], retry=500),
    # UTF-8
    case("invalid-utf8-replaced", b"data: a\xffb\n\n", [E("a\ufffdb")]),
    case("truncated-sequence-replaced", b"data: \xe2\x82\n\n", [E("\ufffd")]),
    case("multibyte-split", [b"data: \xe2\x82", b"\xac\n\n"], [E("\u20ac")]),
    case("four-byte-split-three-ways", [b"data: \xf0", b"\x9f\x98", b"\x80\n\n"], [E("\U0001f600")]),
    case("multibyte-split-after-cr", [b"data: a\r", b"\xc3", b"\xa9:\n\n"], [E("a")]),
]


@pytest.mark.parametrize(("chunks", "expected", "last_event_id", "retry", "start_id"), TABLE)
def test_whatwg_rules(
    chunks: list[bytes],
    expected: list[ServerSentEvent],
    last_event_id: str,
    retry: int | None,
    start_id: str,
) -> None:
    events, decoder = decode(chunks, start_id)
    assert events == expected
    assert decoder.last_event_id == last_event_id
    assert decoder.retry == retry
    # The oracle used by the properties below must agree with every row too.
    assert reference(b"".join(chunks), start_id) == (expected, last_event_id, retry)


def test_close_drops_partial_event_and_decoder_is_reusable() -> None:
    decoder = SSEDecoder()
    assert decoder.feed(b"id: 1\ndata: a\n\nid: 2\nevent: e\ndata: half") == [E("a", id="1")]
    assert decoder.close() == []
    assert decoder.last_event_id == "1"
    # A reconnection on the same decoder: fresh line state and BOM handling, id carried forward.
    assert decoder.feed(b"\xef\xbb\xbf\ndata: b\n\n") == [E("b", id="1")]


# --- properties -------------------------------------------------------------------------------

MAX = settings(max_examples=250, deadline=None)

line_breaks = st.sampled_from(["\r", "\n", "\r\n", "\r\r", "\n\r"])
texty = st.one_of(
    st.text(max_size=40),
    st.lists(
        st.one_of(line_breaks, st.sampled_from([" ", ":", "data: ", "\ufeff", "\xe9", "\U0001f600", "x"])),
        max_size=12,
    ).map("".join),
)
no_crlf = st.characters(codec="utf-8", exclude_characters="\r\n")
ids = st.none() | st.text(st.characters(codec="utf-8", exclude_characters="\r\n\x00"), max_size=12)
types = st.none() | st.text(no_crlf, min_size=1, max_size=12)
retries = st.none() | st.integers(min_value=0, max_value=10**6)
event_specs = st.lists(st.tuples(texty, ids, types, retries), max_size=8)


def cuts_for(data: st.DataObject, blob: bytes) -> list[int]:
    return data.draw(st.lists(st.integers(0, len(blob)), max_size=10), label="cuts")


@MAX
@given(specs=event_specs, data=st.data())
def test_encode_then_decode_round_trips_in_any_chunking(
    specs: list[tuple[str, str | None, str | None, int | None]], data: st.DataObject
) -> None:
    blob = b"".join(encode_event(d, id=i, event=t, retry=r) for d, i, t, r in specs)
    expected, current_id, last_retry = [], "", None
    for d, i, t, r in specs:
        if i is not None:
            current_id = i
        if r is not None:
            last_retry = r
        # SSE has no way to carry a CR in data: every line ending comes back as LF.
        expected.append(E(re.sub("\r\n|\r", "\n", d), t or "message", current_id))

    whole, decoder = decode([blob])
    assert whole == expected
    assert decoder.last_event_id == current_id
    assert decoder.retry == last_retry
    pieces, _ = decode(split_at(blob, cuts_for(data, blob)))
    assert pieces == whole


fragments = st.sampled_from(
    [
        *(b"data:", b"data: ", b"id:", b"event:", b"retry:", b"Data:", b":", b" ", b"\t", b"x", b"5", b"\x00"),
        *(b"\r", b"\n", b"\r\n", b"\xef\xbb\xbf", b"\xef", b"\xe2\x82\xac", b"\xff"),
    ]
)
sse_ish = st.one_of(st.binary(max_size=120), st.lists(fragments, max_size=40).map(b"".join))


@MAX
@given(blob=sse_ish, start_id=st.sampled_from(["", "7"]), data=st.data())
def test_any_bytes_decode_the_same_in_any_chunking(blob: bytes, start_id: str, data: st.DataObject) -> None:
    whole, whole_decoder = decode([blob], start_id)
    pieces, pieces_decoder = decode(split_at(blob, cuts_for(data, blob)), start_id)
    assert pieces == whole
    assert pieces_decoder.last_event_id == whole_decoder.last_event_id
    assert pieces_decoder.retry == whole_decoder.retry
    assert (whole, whole_decoder.last_event_id, whole_decoder.retry) == reference(blob, start_id)


@MAX
@given(blob=sse_ish)
def test_byte_at_a_time(blob: bytes) -> None:
    one_by_one, _ = decode([blob[i : i + 1] for i in range(len(blob))])
    assert one_by_one == reference(blob)[0]


# --- encoder ----------------------------------------------------------------------------------


def test_field_order_and_lf_endings() -> None:
    assert encode_event("x", id="1", event="e", retry=5) == b"event: e\nid: 1\nretry: 5\ndata: x\n\n"
    assert encode_event(b'{"a":1}') == b'data: {"a":1}\n\n'
    assert encode_event("a\r\nb\rc\nd") == b"data: a\ndata: b\ndata: c\ndata: d\n\n"
    assert encode_event(b"a\r\n") == b"data: a\ndata: \n\n"


def test_empty_data_is_one_data_line() -> None:
    assert encode_event("") == encode_event(b"") == b"data: \n\n"
    assert decode([encode_event("")])[0] == [E("")]


def test_priming_event() -> None:
    primer = b"id: 3-0\ndata: \n\n"
    assert encode_event("", id="3-0") == encode_event(b"", id=b"3-0") == primer
    assert decode([primer])[0] == [E(data="", id="3-0")]


@pytest.mark.parametrize("bad", ["a\nb", "a\rb", "a\x00b", b"a\nb", b"\r", b"\x00"], ids=repr)
def test_id_framing_characters_rejected(bad: str | bytes) -> None:
    with pytest.raises(ValueError):
        encode_event("x", id=bad)
    with pytest.raises(ValueError):
        encode_json_event(b"{}", bad if isinstance(bad, bytes) else bad.encode())


@pytest.mark.parametrize("bad", ["a\nb", "a\rb", "\r\n"], ids=repr)
def test_event_type_newline_rejected(bad: str) -> None:
    with pytest.raises(ValueError):
        encode_event("x", event=bad)
    with pytest.raises(ValueError):
        encode_json_event(b"{}", None, bad.encode())


def test_retry_validated() -> None:
    with pytest.raises(ValueError):
        encode_event("x", retry=-1)
    with pytest.raises(ValueError):
        encode_retry(-1)
    with pytest.raises(TypeError):
        encode_retry(True)
    with pytest.raises(TypeError):
        encode_event("x", retry=1.5)  # type: ignore[arg-type]


@pytest.mark.parametrize("event_id", [None, b"12-7"])
@pytest.mark.parametrize("event", [None, b"message", b"endpoint"])
def test_json_fast_path_matches_general_encoder(event_id: bytes | None, event: bytes | None) -> None:
    payload = b'{"jsonrpc":"2.0","id":1,"result":{"text":"line\\nbreak \\u00e9"}}'
    general = encode_event(payload, id=event_id, event=None if event is None else event.decode())
    assert encode_json_event(payload, event_id, event) == general
    expected = E(payload.decode(), (event or b"message").decode(), (event_id or b"").decode())
    assert decode([general])[0] == [expected]


def test_comment_and_retry_dispatch_nothing() -> None:
    assert encode_comment() == b":\n\n"
    assert encode_comment("ping") == b":ping\n\n"
    assert encode_retry(3000) == b"retry: 3000\n\n"
    events, decoder = decode([encode_comment("ping"), encode_retry(3000), encode_comment()])
    assert events == []
    assert decoder.retry == 3000
    for bad in ["a\nb", "a\rb"]:
        with pytest.raises(ValueError):
            encode_comment(bad)
