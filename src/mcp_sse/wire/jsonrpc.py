"""JSON-RPC 2.0 framing: parse a body once, classify each message, build error bodies.

The transport needs a message's kind, ``id`` and ``method`` to route it, never the whole MCP
schema, so this module validates the envelope only and leaves params and results alone.
It must never do I/O or import an HTTP framework.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any

import orjson

__all__ = [
    "CONNECTION_CLOSED",
    "HEADER_MISMATCH",
    "INTERNAL_ERROR",
    "INVALID_PARAMS",
    "INVALID_REQUEST",
    "MAX_ID_LENGTH",
    "METHOD_NOT_FOUND",
    "MISSING_CLIENT_CAPABILITY",
    "PARSE_ERROR",
    "REQUEST_CANCELLED",
    "UNSUPPORTED_PROTOCOL_VERSION",
    "Body",
    "FramingError",
    "Kind",
    "Message",
    "RequestId",
    "check_batch",
    "classify",
    "error_body",
    "error_message",
    "parse_body",
]

PARSE_ERROR = -32700
INVALID_REQUEST = -32600
METHOD_NOT_FOUND = -32601
INVALID_PARAMS = -32602
INTERNAL_ERROR = -32603
CONNECTION_CLOSED = -32000
REQUEST_CANCELLED = -32800
HEADER_MISMATCH = -32020
MISSING_CLIENT_CAPABILITY = -32021
UNSUPPORTED_PROTOCOL_VERSION = -32022

RequestId = str | int


class Kind(enum.Enum):
    REQUEST = "request"
    NOTIFICATION = "notification"
    RESPONSE = "response"
    ERROR = "error"


@dataclass(slots=True)
class Message:
    """One classified JSON-RPC message; ``obj`` is the parsed JSON object as received."""

    kind: Kind
    obj: dict[str, Any]
    id: RequestId | None = None
    method: str | None = None

    @property
    def is_request(self) -> bool:
        return self.kind is Kind.REQUEST


class FramingError(ValueError):
    """The body is not valid JSON-RPC; ``code`` says which standard error applies."""

    def __init__(self, code: int, message: str, request_id: RequestId | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.request_id = request_id


MAX_ID_LENGTH = 1024
"""The longest string id accepted. JSON-RPC sets no bound, but an id is kept for as long as its
request is in flight and repeated in its answer: a 4 MiB id is an attack, not an identifier (UUIDs
are 36 characters)."""


def _valid_id(value: Any) -> bool:
    # bool is an int subclass, and JSON true is not a valid id.
    if isinstance(value, str):
        return len(value) <= MAX_ID_LENGTH
    return isinstance(value, int) and not isinstance(value, bool)


_BAD_ID = f'Invalid Request: "id" must be an integer or a string of at most {MAX_ID_LENGTH} characters'


def classify(obj: Any) -> Message:
    """Classify one decoded JSON value as a JSON-RPC message, or raise FramingError."""
    if not isinstance(obj, dict):
        raise FramingError(INVALID_REQUEST, "Invalid Request: a JSON-RPC message must be a JSON object")
    if obj.get("jsonrpc") != "2.0":
        raise FramingError(INVALID_REQUEST, 'Invalid Request: "jsonrpc" must be "2.0"', _id_or_none(obj))
    method = obj.get("method")
    if method is not None:
        if not isinstance(method, str):
            raise FramingError(INVALID_REQUEST, 'Invalid Request: "method" must be a string', _id_or_none(obj))
        params = obj.get("params")
        if params is not None and not isinstance(params, dict | list):
            raise FramingError(INVALID_REQUEST, 'Invalid Request: "params" must be an object', _id_or_none(obj))
        if "id" not in obj:
            return Message(Kind.NOTIFICATION, obj, None, method)
        request_id = obj["id"]
        if not _valid_id(request_id):
            raise FramingError(INVALID_REQUEST, _BAD_ID)
        return Message(Kind.REQUEST, obj, request_id, method)
    if "result" in obj:
        request_id = obj.get("id")
        if not _valid_id(request_id):
            raise FramingError(INVALID_REQUEST, 'Invalid Request: a response needs a string or integer "id"')
        return Message(Kind.RESPONSE, obj, request_id)
    if "error" in obj:
        error = obj["error"]
        code = error.get("code") if isinstance(error, dict) else None
        if not isinstance(code, int) or isinstance(code, bool):  # JSON true is not a code
            raise FramingError(INVALID_REQUEST, 'Invalid Request: "error" must be an object with an integer "code"')
        request_id = obj.get("id")
        if request_id is not None and not _valid_id(request_id):
            raise FramingError(INVALID_REQUEST, _BAD_ID)
        return Message(Kind.ERROR, obj, request_id)
    raise FramingError(
        INVALID_REQUEST, 'Invalid Request: neither a request ("method") nor a response ("result" or "error")'
    )


def _id_or_none(obj: dict[str, Any]) -> RequestId | None:
    value = obj.get("id")
    return value if _valid_id(value) else None


@dataclass(slots=True)
class Body:
    """A parsed POST body: its messages and whether they came as a JSON array (a batch)."""

    messages: list[Message]
    is_batch: bool

    @property
    def requests(self) -> list[Message]:
        return [m for m in self.messages if m.kind is Kind.REQUEST]


def parse_body(raw: bytes) -> Body:
    """Parse a POST body once: one message or a batch of them (batch legality is an era rule)."""
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise FramingError(PARSE_ERROR, f"Parse error: body is not valid JSON ({exc})") from None
    if isinstance(value, list):
        if not value:
            raise FramingError(INVALID_REQUEST, "Invalid Request: empty batch")
        return Body([classify(item) for item in value], is_batch=True)
    return Body([classify(value)], is_batch=False)


def check_batch(body: Body) -> None:
    """The 2025-03-26 batch rules: requests and notifications, or replies, never mixed; no initialize."""
    if not body.is_batch:
        return
    kinds = {m.kind for m in body.messages}
    has_reply = bool(kinds & {Kind.RESPONSE, Kind.ERROR})
    has_call = bool(kinds & {Kind.REQUEST, Kind.NOTIFICATION})
    if has_reply and has_call:
        raise FramingError(INVALID_REQUEST, "Invalid Request: a batch may not mix responses with requests")
    if any(m.method == "initialize" for m in body.messages):
        raise FramingError(INVALID_REQUEST, "Invalid Request: initialize must not be part of a batch")
    seen: set[tuple[type, RequestId]] = set()
    for m in body.messages:
        if m.kind is Kind.REQUEST:
            assert m.id is not None
            key = (type(m.id), m.id)
            if key in seen:
                raise FramingError(INVALID_REQUEST, f"Invalid Request: duplicate request id {m.id!r} in batch")
            seen.add(key)


def error_body(code: int, message: str, request_id: RequestId | None = None, data: Any = None) -> bytes:
    """A JSON-RPC error response body; ``id`` is null when the request's id is unknown."""
    error: dict[str, Any] = {"code": code, "message": message}
    if data is not None:
        error["data"] = data
    return orjson.dumps({"jsonrpc": "2.0", "id": request_id, "error": error})


def error_message(code: int, message: str, request_id: RequestId | None = None) -> dict[str, Any]:
    """The same error as a dict, for when it travels on a stream instead of as a body."""
    return {"jsonrpc": "2.0", "id": request_id, "error": {"code": code, "message": message}}
