"""``to_sdk_message`` must give exactly what the SDK's union adapter gives, errors included."""

from __future__ import annotations

from typing import Any

import pytest
from mcp_types import jsonrpc_message_adapter
from pydantic import ValidationError

from mcp_sse.wire.sdk_models import to_sdk_message

SHAPES: list[Any] = [
    # well-formed, one of each
    {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "echo", "arguments": {"text": "hi"}}},
    {"jsonrpc": "2.0", "id": "a", "method": "ping"},
    {"jsonrpc": "2.0", "method": "notifications/progress", "params": {"progressToken": 2, "progress": 1}},
    {"jsonrpc": "2.0", "method": "notifications/initialized"},
    {"jsonrpc": "2.0", "id": 7, "result": {"content": [{"type": "text", "text": "x"}]}},
    {"jsonrpc": "2.0", "id": 7, "result": {}},
    {"jsonrpc": "2.0", "id": 7, "error": {"code": -32601, "message": "Method not found", "data": [1]}},
    {"jsonrpc": "2.0", "id": None, "error": {"code": -32700, "message": "Parse error"}},
    # shapes a union may read as another model than the keys suggest
    {"jsonrpc": "2.0", "id": None, "method": "ping"},  # not a request: a notification with an ignored id
    {"jsonrpc": "2.0", "id": 1.5, "method": "ping"},
    {"jsonrpc": "2.0", "id": True, "method": "ping"},
    {"jsonrpc": "2.0", "id": 1, "method": "ping", "result": {}},
    {"jsonrpc": "2.0", "id": 1, "result": {}, "error": {"code": 1, "message": "m"}},
    {"jsonrpc": "2.0", "method": "x", "extra": 1},
    {"jsonrpc": "2.0", "id": 1, "method": "x", "params": None},
    {"jsonrpc": "2.0", "method": "x", "params": [1, 2]},
    {"jsonrpc": "2.0", "id": 1, "result": [1]},
    {"jsonrpc": "2.0", "id": 1, "result": {}, "_meta": {}},
    # refused by every model
    {"jsonrpc": "1.0", "id": 1, "method": "ping"},
    {"jsonrpc": "2.0", "id": 1},
    {"jsonrpc": "2.0"},
    {},
    {"jsonrpc": "2.0", "id": 1, "error": {"code": "x", "message": "m"}},
    {"jsonrpc": "2.0", "method": 5},
    [],
    "ping",
    None,
]


def adapter(obj: Any) -> Any:
    return jsonrpc_message_adapter.validate_python(obj, by_name=False)


@pytest.mark.parametrize("obj", SHAPES, ids=[repr(shape)[:60] for shape in SHAPES])
def test_same_model_or_same_error_as_the_adapter(obj: Any) -> None:
    try:
        expected = adapter(obj)
    except ValidationError as exc:
        with pytest.raises(ValidationError) as ours:
            to_sdk_message(obj)
        assert ours.value.errors() == exc.errors()
        return
    got = to_sdk_message(obj)
    assert type(got) is type(expected)
    assert got == expected
    assert got.model_fields_set == expected.model_fields_set  # what exclude_unset will write back
