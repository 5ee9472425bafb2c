"""JSON-RPC framing and era rules, without a socket."""

from __future__ import annotations

import orjson
import pytest

from mcp_sse.wire import eras
from mcp_sse.wire.jsonrpc import INVALID_REQUEST, PARSE_ERROR, FramingError, Kind, check_batch, error_body, parse_body


@pytest.mark.parametrize(
    ("message", "kind"),
    [
        ({"jsonrpc": "2.0", "id": 1, "method": "ping"}, Kind.REQUEST),
        ({"jsonrpc": "2.0", "id": "a", "method": "ping", "params": {}}, Kind.REQUEST),
        ({"jsonrpc": "2.0", "method": "notifications/initialized"}, Kind.NOTIFICATION),
        ({"jsonrpc": "2.0", "id": 1, "result": {}}, Kind.RESPONSE),
        ({"jsonrpc": "2.0", "id": 1, "error": {"code": -1, "message": "x"}}, Kind.ERROR),
        ({"jsonrpc": "2.0", "id": None, "error": {"code": -1, "message": "x"}}, Kind.ERROR),
    ],
)
def test_classify(message: dict[str, object], kind: Kind) -> None:
    body = parse_body(orjson.dumps(message))
    assert not body.is_batch
    assert body.messages[0].kind is kind


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        (b"{", PARSE_ERROR),
        (b"\xff", PARSE_ERROR),
        (b"[]", INVALID_REQUEST),
        (b"42", INVALID_REQUEST),
        (b'{"id": 1, "method": "x"}', INVALID_REQUEST),
        (b'{"jsonrpc": "2.0", "id": true, "method": "x"}', INVALID_REQUEST),
        (b'{"jsonrpc": "2.0", "id": 1.5, "method": "x"}', INVALID_REQUEST),
        (b'{"jsonrpc": "2.0", "id": 1, "method": 3}', INVALID_REQUEST),
        (b'{"jsonrpc": "2.0", "id": 1, "method": "x", "params": 3}', INVALID_REQUEST),
        (b'{"jsonrpc": "2.0", "id": 1}', INVALID_REQUEST),
        (b'{"jsonrpc": "2.0", "id": 1, "error": "bad"}', INVALID_REQUEST),
    ],
)
def test_framing_errors(raw: bytes, code: int) -> None:
    with pytest.raises(FramingError) as err:
        parse_body(raw)
    assert err.value.code == code


@pytest.mark.parametrize(
    "batch",
    [
        [{"jsonrpc": "2.0", "id": 1, "method": "a"}, {"jsonrpc": "2.0", "id": 2, "result": {}}],
        [{"jsonrpc": "2.0", "id": 1, "method": "initialize"}],
        [{"jsonrpc": "2.0", "id": 1, "method": "a"}, {"jsonrpc": "2.0", "id": 1, "method": "b"}],
    ],
    ids=["mixed requests and responses", "initialize in a batch", "duplicate ids"],
)
def test_batch_rules(batch: list[object]) -> None:
    with pytest.raises(FramingError):
        check_batch(parse_body(orjson.dumps(batch)))


def test_legal_batches() -> None:
    check_batch(parse_body(b'[{"jsonrpc":"2.0","id":1,"method":"a"},{"jsonrpc":"2.0","method":"n"}]'))
    check_batch(parse_body(b'[{"jsonrpc":"2.0","id":1,"result":{}},{"jsonrpc":"2.0","id":2,"result":{}}]'))


def test_error_body() -> None:
    assert orjson.loads(error_body(-32600, "bad", None)) == {
        "jsonrpc": "2.0",
        "id": None,
        "error": {"code": -32600, "message": "bad"},
    }
    assert orjson.loads(error_body(-32022, "v", 3, {"supported": ["x"]}))["error"]["data"] == {"supported": ["x"]}


def test_era_rules() -> None:
    assert eras.allows_batch("2025-03-26")
    assert not any(eras.allows_batch(v) for v in ("2024-11-05", "2025-06-18", "2025-11-25", "2026-07-28"))
    assert eras.sends_priming("2025-11-25")
    assert not eras.sends_priming("2025-06-18")
    assert not eras.sends_priming("2026-07-28"), "membership, not string order"
    assert eras.negotiate("2025-06-18") == "2025-06-18"
    assert eras.negotiate("2099-01-01") == "2025-11-25"
    assert eras.negotiate(None) == "2025-11-25"
    assert eras.effective_version("2025-03-26", "2025-11-25") == "2025-11-25", "the negotiated version decides"
    assert eras.effective_version("2025-06-18", None) == "2025-06-18"
    assert eras.effective_version(None, "2025-11-25") == "2025-11-25"
    assert eras.effective_version(None, None) == "2025-03-26"
