"""Properties of the JSON-RPC framing and of our SSE event ids: the parts of the server that read a
hostile client's bytes. Whatever arrives, ``parse_body`` answers with a ``Body`` or a
``FramingError`` (the 400 the edge turns it into), never another exception (a 500 with a traceback
in the log); what it accepts it classifies right; what ``error_body`` writes is a JSON-RPC error."""

from __future__ import annotations

import json
from typing import Any

import orjson
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from mcp_sse.core.session_record import format_event_id, parse_event_id
from mcp_sse.wire.jsonrpc import (
    INVALID_REQUEST,
    MAX_ID_LENGTH,
    PARSE_ERROR,
    Body,
    FramingError,
    Kind,
    check_batch,
    classify,
    error_body,
    parse_body,
)
from mcp_sse.wire.sse import encode_event

MAX = settings(max_examples=120, deadline=None)

# --- strategies -----------------------------------------------------------------------------------

# orjson reads integers in [-2**63, 2**64 - 1] as ints (and larger ones as floats), so these are the
# ids a parsed message can carry; error_body must be able to echo every one of them.
JSON_INTS = st.integers(min_value=-(2**63), max_value=2**64 - 1)
# Text as JSON can carry it: any code point but a lone surrogate, with the ones that break naive
# framing (NUL, CR, LF, the JavaScript line separators, DEL, a BOM) drawn often.
tricky = st.sampled_from(["\x00", "\r", "\n", "\t", "\x1b", "\x7f", "\u2028", "\u2029", "\ufeff", '"', "\\"])
texts = st.text(st.one_of(st.characters(codec="utf-8"), tricky), max_size=30)
# Small ints and their strings often: 7 and "7" are different ids, and a batch may hold both.
ids = st.integers(0, 3) | st.sampled_from(["0", "1", "2", "3"]) | JSON_INTS | texts
methods = st.sampled_from(["initialize", "ping", "tools/call", "notifications/initialized"]) | texts
scalars = st.none() | st.booleans() | JSON_INTS | st.floats(allow_nan=False, allow_infinity=False) | texts
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(texts, inner, max_size=4),
    max_leaves=12,
)
params = st.none() | st.dictionaries(texts, json_values, max_size=4) | st.lists(json_values, max_size=4)


@st.composite
def messages(draw: st.DrawFn) -> tuple[dict[str, Any], Kind]:
    """A valid JSON-RPC 2.0 message of each kind, with the kind ``classify`` must give it."""
    kind = draw(st.sampled_from(Kind))
    obj: dict[str, Any] = {"jsonrpc": "2.0"}
    if kind in (Kind.REQUEST, Kind.NOTIFICATION):
        obj["method"] = draw(methods)
        if (p := draw(params)) is not None:
            obj["params"] = p
        if kind is Kind.REQUEST:
            obj["id"] = draw(ids)
    elif kind is Kind.RESPONSE:
        obj["id"] = draw(ids)
        obj["result"] = draw(json_values)
    else:
        obj["id"] = draw(st.none() | ids)
        error: dict[str, Any] = {"code": draw(JSON_INTS), "message": draw(texts)}
        if draw(st.booleans()):
            error["data"] = draw(json_values)
        obj["error"] = error
    # Members in any order: classify must not depend on it.
    items = draw(st.permutations(list(obj.items())))
    return dict(items), kind


JSON_FRAGMENTS = [
    *(b"{", b"}", b"[", b"]", b",", b":", b'"', b"\\", b"\\u0000", b"\\ud800", b"\\udc00", b" ", b"\n"),
    *(b'"jsonrpc"', b'"2.0"', b'"1.0"', b'"id"', b'"method"', b'"params"', b'"result"', b'"error"', b'"code"'),
    *(b"null", b"true", b"false", b"0", b"-1", b"1e999", b"-0", b"1.5", b"18446744073709551616"),
    *(b"9" * 400, b"\x00", b"\xff", b"\xc3", b"\xed\xa0\x80", b"\xef\xbb\xbf", b"NaN", b"Infinity"),
]


@st.composite
def mangled(draw: st.DrawFn) -> bytes:
    """A valid message's bytes with a few bytes replaced, inserted or cut: close to what parses."""
    obj, _ = draw(messages())
    value: Any = [obj] if draw(st.booleans()) else obj
    raw = bytearray(orjson.dumps(value))
    for _ in range(draw(st.integers(1, 3))):
        at = draw(st.integers(0, len(raw)))
        piece = draw(st.sampled_from(JSON_FRAGMENTS))
        cut = draw(st.integers(0, 2))
        raw[at : at + cut] = piece
    return bytes(raw)


@st.composite
def almost_messages(draw: st.DrawFn) -> Any:
    """A valid message with one member replaced by any JSON value or removed: what a sloppy or
    hostile peer sends (``"id": null``, ``"id": true``, ``"params": 7``, ``"code": "x"``...)."""
    obj, _ = draw(messages())
    if "error" in obj and draw(st.booleans()):
        obj["error"] = dict(obj["error"])
        target, key = obj["error"], draw(st.sampled_from(["code", "message"]))
    else:
        target, key = obj, draw(st.sampled_from(["jsonrpc", "id", "method", "params", "result", "error"]))
    if draw(st.booleans()):
        target.pop(key, None)
    else:
        target[key] = draw(json_values | st.sampled_from(["x" * MAX_ID_LENGTH, "x" * (MAX_ID_LENGTH + 1)]))
    return [obj] if draw(st.booleans()) else obj


hostile_bodies = st.one_of(
    st.binary(max_size=200),
    st.lists(st.sampled_from(JSON_FRAGMENTS), max_size=40).map(b"".join),
    mangled(),
    almost_messages().map(orjson.dumps),
    st.integers(1, 3000).map(lambda n: b"[" * n + b"]" * n),  # past orjson's depth limit too
    st.integers(1, 1500).map(lambda n: b'{"a":' * n + b"1" + b"}" * n),
    json_values.map(orjson.dumps),  # any JSON at all, valid JSON-RPC or not
    messages().map(lambda m: orjson.dumps(m[0])),
    st.lists(messages().map(lambda m: m[0]), max_size=4).map(orjson.dumps),
)


def valid_id(value: Any) -> bool:
    """What may be kept while a request is in flight and repeated in its answer."""
    return type(value) is int or (type(value) is str and len(value) <= MAX_ID_LENGTH)


def assert_valid_error_body(raw: bytes, code: int, message: str, request_id: Any, data: Any = None) -> None:
    """``raw`` is strict JSON (the standard library's parser, not orjson's) and the error it says."""
    decoded = json.loads(raw.decode("utf-8"))  # strict: no raw control characters inside strings
    error: dict[str, Any] = {"code": code, "message": message}
    if data is not None:
        error["data"] = data
    assert decoded == {"jsonrpc": "2.0", "id": request_id, "error": error}
    assert type(decoded["id"]) is type(request_id)  # 7 and "7" are different ids
    assert b"\n" not in raw and b"\r" not in raw  # one line: safe inside an SSE data field
    echoed = classify(orjson.loads(raw))
    assert (echoed.kind, echoed.id) == (Kind.ERROR, request_id)


# --- parse_body on anything -----------------------------------------------------------------------


@MAX
@given(raw=hostile_bodies)
@example(raw=b"")
@example(raw=b"\x00")
@example(raw=b"\xff\xfe")
@example(raw=b"[" * 100_000)
@example(raw=b'"\\ud800"')
@example(raw=b'{"jsonrpc":"2.0","id":' + b"9" * 5000 + b',"method":"x"}')
@example(raw=b'{"jsonrpc":"2.0","id":1e999,"result":1}')
@example(raw=b'{"jsonrpc":"2.0","id":true,"method":"x"}')
@example(raw=b'{"jsonrpc":"2.0","id":null,"method":"x"}')
@example(raw=b'{"jsonrpc":"2.0","id":"' + b"x" * (MAX_ID_LENGTH + 1) + b'","result":{}}')
@example(raw=b'{"jsonrpc":"2.0","method":"x","params":7}')
@example(raw=b'{"jsonrpc":"2.0","id":1,"error":{"code":1.5}}')
@example(raw=b'[{"jsonrpc":"2.0","id":1,"method":"a"},{"jsonrpc":"2.0","id":1,"method":"b"}]')
def test_parse_body_returns_a_body_or_raises_framing_error(raw: bytes) -> None:
    try:
        body = parse_body(raw)
    except FramingError as exc:
        # What the edge does with it: a 400 whose body is a JSON-RPC error naming the request if it can.
        assert exc.code in (PARSE_ERROR, INVALID_REQUEST)
        assert exc.request_id is None or valid_id(exc.request_id)
        assert_valid_error_body(
            error_body(exc.code, exc.message, exc.request_id), exc.code, exc.message, exc.request_id
        )
        return
    assert isinstance(body, Body)
    decoded = orjson.loads(raw)
    assert body.is_batch == isinstance(decoded, list)
    assert [m.obj for m in body.messages] == (decoded if body.is_batch else [decoded])
    for message in body.messages:
        assert message.obj["jsonrpc"] == "2.0"
        if message.kind in (Kind.REQUEST, Kind.NOTIFICATION):
            assert message.method == message.obj["method"]
            assert isinstance(message.method, str)
            # "params": null reads as no params (classify's choice: null is no structured value).
            assert message.obj.get("params") is None or isinstance(message.obj["params"], dict | list)
        else:
            assert message.method is None
        if message.kind is Kind.RESPONSE:
            assert "result" in message.obj
        if message.kind is Kind.ERROR:
            error = message.obj["error"]
            assert isinstance(error, dict) and isinstance(error["code"], int) and not isinstance(error["code"], bool)
        if message.kind is Kind.NOTIFICATION:
            assert message.id is None and "id" not in message.obj
        elif message.id is not None:
            assert valid_id(message.id)
            assert message.id == message.obj["id"]
        else:
            assert message.kind is Kind.ERROR
        # Every id the parser hands on can be echoed in an answer.
        assert_valid_error_body(error_body(INVALID_REQUEST, "x", message.id), INVALID_REQUEST, "x", message.id)
    try:
        check_batch(body)
    except FramingError as exc:
        assert body.is_batch and exc.code == INVALID_REQUEST


def test_an_error_whose_code_is_true_is_refused() -> None:
    """``"code": true`` is refused as ``"id": true`` is (bool is an int subclass in Python; the SDK
    would read it as code 1). Found by the property above."""
    with pytest.raises(FramingError):
        parse_body(b'{"jsonrpc":"2.0","id":1,"error":{"code":true,"message":"x"}}')


# --- valid messages round-trip --------------------------------------------------------------------


@MAX
@given(message=messages())
def test_a_valid_message_is_classified_with_its_id_and_method(message: tuple[dict[str, Any], Kind]) -> None:
    obj, kind = message
    body = parse_body(orjson.dumps(obj))
    assert not body.is_batch
    (parsed,) = body.messages
    assert parsed.kind is kind
    assert parsed.obj == obj
    assert parsed.id == obj.get("id")
    assert type(parsed.id) is type(obj.get("id"))
    assert parsed.method == obj.get("method")
    assert parsed.is_request == (kind is Kind.REQUEST)
    assert body.requests == ([parsed] if kind is Kind.REQUEST else [])
    check_batch(body)  # a single message is never a batch, whatever it is


@settings(MAX, max_examples=60)
@given(batch=st.lists(messages(), min_size=1, max_size=6))
def test_a_batch_keeps_its_order_and_the_batch_rules_hold(batch: list[tuple[dict[str, Any], Kind]]) -> None:
    objs = [obj for obj, _ in batch]
    body = parse_body(orjson.dumps(objs))
    assert body.is_batch
    assert [(m.kind, m.obj) for m in body.messages] == [(kind, obj) for obj, kind in batch]
    kinds = {kind for _, kind in batch}
    request_ids = [(type(obj["id"]), obj["id"]) for obj, kind in batch if kind is Kind.REQUEST]
    legal = (
        not (kinds & {Kind.RESPONSE, Kind.ERROR} and kinds & {Kind.REQUEST, Kind.NOTIFICATION})
        and not any(obj.get("method") == "initialize" for obj in objs)
        and len(set(request_ids)) == len(request_ids)
    )
    if legal:
        check_batch(body)
    else:
        with pytest.raises(FramingError) as raised:
            check_batch(body)
        assert raised.value.code == INVALID_REQUEST


@MAX
@given(requests=st.lists(st.tuples(ids, methods.filter(lambda m: m != "initialize")), min_size=1, max_size=6))
def test_check_batch_refuses_exactly_the_repeated_request_ids(requests: list[tuple[Any, str]]) -> None:
    """``7`` and ``"7"`` are different ids; the same id twice in one batch is refused."""
    body = parse_body(orjson.dumps([{"jsonrpc": "2.0", "id": i, "method": m} for i, m in requests]))
    keys = [(type(i), i) for i, _ in requests]
    if len(set(keys)) == len(keys):
        check_batch(body)
    else:
        with pytest.raises(FramingError, match="duplicate request id"):
            check_batch(body)


# --- error_body -----------------------------------------------------------------------------------


@MAX
@given(
    code=st.integers(min_value=-(2**63), max_value=2**63 - 1),
    message=texts,
    request_id=st.none() | ids,
    data=json_values,
)
@example(code=-32700, message="\x00\r\n\u2028", request_id="\r\n", data="\x00")
@example(code=-32600, message="é 漢字 \U0001f600", request_id=2**64 - 1, data={"\n": [None, -(2**63)]})
def test_error_body_is_always_a_valid_json_rpc_error(code: int, message: str, request_id: Any, data: Any) -> None:
    assert_valid_error_body(error_body(code, message, request_id, data), code, message, request_id, data)


# --- SSE event ids --------------------------------------------------------------------------------

counts = st.integers(min_value=0, max_value=2**63 - 1)  # a counter of ours never passes it


@MAX
@given(epoch=counts, stream=counts, seq=counts)
def test_event_ids_round_trip(epoch: int, stream: int, seq: int) -> None:
    text = format_event_id(epoch, stream, seq)
    assert parse_event_id(text) == (epoch, stream, seq)
    assert parse_event_id(f" {text}\t") == (epoch, stream, seq)  # as a header may carry it
    encode_event("", id=text)  # a valid SSE id field: no CR, LF or NUL


# Digits str.isdigit() takes and int() refuses or reads differently: superscripts ("\xb2" is
# latin-1, so a Last-Event-ID header can carry it), other scripts' digits, fullwidth digits.
ODD_DIGITS = ["\xb2", "\xb3", "\xb9", "\u0663", "\uff11", "\u2081"]
id_chars = st.one_of(st.sampled_from([*"0123456789.- \t\x00\r\n", *ODD_DIGITS]), st.characters(codec="utf-8"))
id_like = st.one_of(
    st.text(id_chars, max_size=40),
    st.lists(st.sampled_from(["1", "23", "-", ".", " ", "0", "x", "--", "..", *ODD_DIGITS]), max_size=12).map("".join),
)


@MAX
@given(value=id_like)
@example(value="")
@example(value="-")
@example(value="1-")
@example(value="-1")
@example(value="1.-2")
@example(value=".1-2")
@example(value="1.2.3-4")
@example(value="1--2")
@example(value="1-2-3")
@example(value="1-" + "9" * 4000)
def test_any_string_parses_as_an_event_id_or_is_none(value: str) -> None:
    parsed = parse_event_id(value)
    if parsed is None:
        return
    assert len(parsed) == 3 and all(type(n) is int and n >= 0 for n in parsed)
    assert parse_event_id(format_event_id(*parsed)) == parsed


@pytest.mark.parametrize(
    "value", ["0-" + "9" * 4301, "9" * 4301 + "-1", "9" * 4301 + ".1-1"], ids=["seq", "stream", "epoch"]
)
def test_an_event_id_past_the_int_digit_limit_is_not_one(value: str) -> None:
    """int() refuses more than 4,300 digits: such a Last-Event-ID was a 500 (found by the fuzz target)."""
    assert parse_event_id(value) is None
