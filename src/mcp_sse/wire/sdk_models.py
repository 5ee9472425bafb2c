"""A parsed JSON-RPC message as the SDK's pydantic model, at a third of the adapter's cost.

``mcp_types.jsonrpc_message_adapter`` validates a union of four models, and in pydantic's smart
mode that means trying each of them to pick the best fit: about 4.5 µs for a progress
notification, once per message on the client's receive path and on the way into a hosted SDK
server (docs/benchmarks.md). A message whose top-level keys belong to exactly one model's shape
can only be that model (or, if it fails there, whatever the union falls back to), so that model
alone is validated, about 1.5 µs. Anything else, and anything the model refuses, goes through the
adapter itself, so the result, and the error raised, are always the adapter's.
"""

from __future__ import annotations

from typing import Any

from mcp_types import (
    JSONRPCError,
    JSONRPCMessage,
    JSONRPCNotification,
    JSONRPCRequest,
    JSONRPCResponse,
    jsonrpc_message_adapter,
)
from pydantic import ValidationError

__all__ = ["to_sdk_message"]

_REQUEST_KEYS = frozenset({"jsonrpc", "id", "method", "params"})
_NOTIFICATION_KEYS = frozenset({"jsonrpc", "method", "params"})
_RESPONSE_KEYS = frozenset({"jsonrpc", "id", "result"})
_ERROR_KEYS = frozenset({"jsonrpc", "id", "error"})

_request = JSONRPCRequest.__pydantic_validator__
_notification = JSONRPCNotification.__pydantic_validator__
_response = JSONRPCResponse.__pydantic_validator__
_error = JSONRPCError.__pydantic_validator__


def to_sdk_message(obj: Any) -> JSONRPCMessage:
    """``jsonrpc_message_adapter.validate_python(obj, by_name=False)``: the same answer, faster."""
    if type(obj) is dict:
        keys = obj.keys()
        if "method" in obj:
            if "id" in obj:
                validator = _request if keys <= _REQUEST_KEYS else None
            else:
                validator = _notification if keys <= _NOTIFICATION_KEYS else None
        elif "result" in obj:
            validator = _response if keys <= _RESPONSE_KEYS else None
        else:
            validator = _error if keys <= _ERROR_KEYS else None
        if validator is not None:
            try:
                message: JSONRPCMessage = validator.validate_python(obj, by_name=False)
                return message
            except ValidationError:
                pass  # the union may still take it as another model; it decides, and words the error
    return jsonrpc_message_adapter.validate_python(obj, by_name=False)
