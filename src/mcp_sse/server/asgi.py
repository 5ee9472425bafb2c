"""The ASGI vocabulary of the server edge and its helpers: read headers and bodies, send small
responses and JSON-RPC errors.

Raw ASGI instead of a framework keeps the hot path to one header pass and one body read.
``ASGIMessage`` is an ASGI event dict (``http.request``, ``http.response.start``...), never a
JSON-RPC message (that is ``wire.jsonrpc.Message``).
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from mcp_sse.errors import PayloadTooLarge, Rejection, RequestTimeout

__all__ = [
    "JSON_CONTENT_TYPE",
    "SSE_CONTENT_TYPE",
    "ASGIMessage",
    "ClientGone",
    "HeaderList",
    "Receive",
    "Scope",
    "Send",
    "accepts",
    "header_map",
    "media_types",
    "read_body",
    "send_error",
    "send_response",
]

Scope = MutableMapping[str, Any]
ASGIMessage = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[ASGIMessage]]
Send = Callable[[ASGIMessage], Awaitable[None]]
HeaderList = list[tuple[bytes, bytes]]

JSON_CONTENT_TYPE = b"application/json"
SSE_CONTENT_TYPE = b"text/event-stream"


def header_map(scope: Scope) -> dict[str, str]:
    """Request headers by lower-case name, each value without the whitespace around it (not part
    of it, RFC 9110 section 5.5); repeated headers are joined with ", " (RFC 9110)."""
    result: dict[str, str] = {}
    for raw_name, raw_value in scope["headers"]:
        name = _decoded(raw_name, _NAMES, lower=True)
        value = _decoded(raw_value, _VALUES, lower=False)
        result[name] = f"{result[name]}, {value}" if name in result else value
    return result


# Header names, and most values (Host, Accept, Content-Type, the protocol version), are the same on
# every request: decoded once and shared, they are not copied into each held stream's header map
# (docs/benchmarks.md, W3: memory per idle stream). Bounded: only short texts are kept, and a
# client sending endless distinct headers only empties the cache.
_NAMES: dict[bytes, str] = {}
_VALUES: dict[bytes, str] = {}
_CACHE_LIMIT = 1024
_CACHED_LENGTH = 128


def _decoded(raw: bytes, cache: dict[bytes, str], *, lower: bool) -> str:
    text = cache.get(raw)
    if text is None:
        text = raw.decode("latin-1")
        text = text.lower() if lower else text.strip(" \t")
        if len(raw) <= _CACHED_LENGTH:
            if len(cache) >= _CACHE_LIMIT:
                cache.clear()
            cache[raw] = text
    return text


@functools.lru_cache(maxsize=256)
def media_types(value: str) -> frozenset[str]:
    """The media types named in an Accept-like header, without parameters, lower-case.

    Cached: a client sends the same Accept on every request, and this runs on every POST."""
    return frozenset(part.split(";", 1)[0].strip().lower() for part in value.split(",") if part.strip())


def accepts(header: str, wanted: str) -> bool:
    """Whether an Accept header admits ``wanted``, wildcards included (RFC 9110 §12.5.1)."""
    types = media_types(header)
    major = wanted.split("/", 1)[0]
    return wanted in types or "*/*" in types or f"{major}/*" in types


async def read_body(receive: Receive, headers: dict[str, str], limit: int, within: float) -> bytes:
    """The whole request body, refusing (413) as soon as it is known to exceed ``limit``, and (408)
    when it has not all arrived within ``within`` seconds: a sender that stalls mid-body (slowloris)
    would otherwise hold its connection and its memory for ever."""
    declared = headers.get("content-length")
    if declared is not None and declared.isascii() and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(f"Request body of {declared} bytes exceeds the limit of {limit} bytes")
    try:
        async with asyncio.timeout(within):  # one timer per request, not one per chunk
            return await _read_chunks(receive, limit)
    except TimeoutError:
        raise RequestTimeout(f"Request Timeout: the body did not arrive within {within:g} seconds") from None


async def _read_chunks(receive: Receive, limit: int) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientGone
        chunk = message.get("body", b"")
        if chunk:
            size += len(chunk)
            if size > limit:
                raise PayloadTooLarge(f"Request body exceeds the limit of {limit} bytes")
            chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


class ClientGone(Exception):
    """The client went away before the request was read; there is nobody to answer."""


async def send_response(
    send: Send, status: int, body: bytes = b"", headers: HeaderList | None = None, content_type: bytes | None = None
) -> None:
    out: HeaderList = list(headers or [])
    if content_type is not None:
        out.append((b"content-type", content_type))
    out.append((b"content-length", str(len(body)).encode()))
    await send({"type": "http.response.start", "status": status, "headers": out})
    await send({"type": "http.response.body", "body": body})


async def send_error(send: Send, error: Rejection, headers: HeaderList | None = None) -> None:
    """The error's HTTP status with its JSON-RPC error body."""
    out: HeaderList = list(headers or [])
    out.extend((name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in error.headers.items())
    await send_response(send, error.status, error.body(), out, JSON_CONTENT_TYPE)
