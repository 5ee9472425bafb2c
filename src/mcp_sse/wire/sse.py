"""Server-Sent Events codec: the ``text/event-stream`` format, both directions, sans I/O.

This module owns turning events into bytes (server side) and bytes into events (client side),
exactly as the WHATWG HTML standard defines it ("Parsing an event stream" / "Interpreting an
event stream"): UTF-8 with replacement, one optional leading BOM, CR / LF / CRLF line endings,
``field: value`` lines, comments, dispatch on a blank line, ``id`` and ``retry`` semantics.

It must never do I/O (no sockets, no asyncio, no HTTP framework) and never parse JSON: event
data is an opaque string here, and the layers above decide what it means.
"""

from __future__ import annotations

import codecs
import contextlib
from dataclasses import dataclass

__all__ = [
    "SSEDecoder",
    "ServerSentEvent",
    "encode_comment",
    "encode_event",
    "encode_json_event",
    "encode_retry",
]

_BOM = "\ufeff"


@dataclass(frozen=True, slots=True)
class ServerSentEvent:
    """One dispatched event, as a browser's ``EventSource`` would deliver it."""

    data: str
    """The data buffer with its one trailing LF removed ("" is possible: priming events)."""
    event: str = "message"
    """The event type; "message" when the stream gave none."""
    id: str = ""
    """The last-event-ID string at dispatch time: it carries over from earlier events."""


# --- encoding ---------------------------------------------------------------------------------


def _data_lines(data: bytes) -> bytes:
    """``data: `` lines for a payload; SSE has no escape for newlines, so each line gets its own field."""
    if b"\r" in data:
        data = data.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
    if b"\n" in data:
        data = data.replace(b"\n", b"\ndata: ")
    return b"data: " + data + b"\n"


def _check_retry(retry: int) -> None:
    # bool is an int subclass, but ``retry=True`` is always a caller bug.
    if not isinstance(retry, int) or isinstance(retry, bool):
        raise TypeError(f"retry must be an int, not {type(retry).__name__}")
    if retry < 0:
        raise ValueError(f"retry must be non-negative, got {retry}")


def encode_event(
    data: str | bytes,
    *,
    id: str | bytes | None = None,
    event: str | None = None,
    retry: int | None = None,
) -> bytes:
    """Encode one event: ``event``, ``id``, ``retry``, then the data lines, then a blank line.

    ``data`` is split on CRLF, CR and LF into several ``data: `` lines, so a decoder gives back
    the same text with every line ending normalised to LF (SSE cannot carry a CR in data).
    ``data == ""`` gives one ``data: `` line: an event a WHATWG parser dispatches with empty
    data (the MCP priming event). Fields that would break the framing raise ValueError: an
    ``id`` with CR, LF or NUL (a parser would ignore or split it) and an ``event`` with CR or LF.
    """
    raw = data.encode("utf-8") if isinstance(data, str) else data
    # Hot path: compact JSON bytes, no line breaks, no extra fields.
    body = _data_lines(raw) + b"\n" if b"\n" in raw or b"\r" in raw else b"data: " + raw + b"\n\n"
    if id is None and event is None and retry is None:
        return body
    head = b""
    if event is not None:
        if "\n" in event or "\r" in event:
            raise ValueError("SSE event type must not contain CR or LF")
        head += b"event: " + event.encode("utf-8") + b"\n"
    if id is not None:
        raw_id = id.encode("utf-8") if isinstance(id, str) else id
        if b"\n" in raw_id or b"\r" in raw_id or b"\x00" in raw_id:
            raise ValueError("SSE event id must not contain CR, LF or NUL")
        head += b"id: " + raw_id + b"\n"
    if retry is not None:
        _check_retry(retry)
        head += b"retry: " + str(retry).encode("ascii") + b"\n"
    return head + body


def encode_json_event(payload: bytes, event_id: bytes | None = None, event: bytes | None = None) -> bytes:
    """Encode a compact JSON payload, the server's per-message hot path.

    The payload is trusted to hold no raw CR or LF (JSON escapes them inside strings and
    orjson emits no whitespace), so it is not scanned; only the short id and event are checked.
    """
    if event_id is None and event is None:
        return b"data: " + payload + b"\n\n"
    head = b""
    if event is not None:
        if b"\n" in event or b"\r" in event:
            raise ValueError("SSE event type must not contain CR or LF")
        head = b"event: " + event + b"\n"
    if event_id is not None:
        if b"\n" in event_id or b"\r" in event_id or b"\x00" in event_id:
            raise ValueError("SSE event id must not contain CR, LF or NUL")
        head += b"id: " + event_id + b"\n"
    return head + b"data: " + payload + b"\n\n"


def encode_comment(text: str = "") -> bytes:
    """A comment (keepalive): parsers ignore it, proxies see traffic.

    The trailing blank line dispatches nothing, because the data buffer is empty.
    """
    if "\n" in text or "\r" in text:
        raise ValueError("SSE comment must not contain CR or LF")
    return b":" + text.encode("utf-8") + b"\n\n"


def encode_retry(milliseconds: int) -> bytes:
    """Tell the client how long to wait before reconnecting, without sending an event."""
    _check_retry(milliseconds)
    return b"retry: " + str(milliseconds).encode("ascii") + b"\n\n"


# --- decoding ---------------------------------------------------------------------------------


class SSEDecoder:
    """Incremental WHATWG event-stream parser: feed() bytes in any chunking, get events out.

    Chunk boundaries never change the result: split UTF-8 sequences, a split BOM and a CRLF
    split between two chunks are all handled. Work is done per line, not per character.
    """

    __slots__ = (
        "_at_start",
        "_data",
        "_event_type",
        "_id_buffer",
        "_pending",
        "_skip_lf",
        "_utf8",
        "last_event_id",
        "retry",
    )

    def __init__(self, last_event_id: str = "") -> None:
        """Start a stream; a resumed stream passes the previous id so events without one keep it."""
        self.last_event_id: str = last_event_id
        """The last event ID string: updated at each dispatch, what a client resumes from."""
        self.retry: int | None = None
        """The latest valid ``retry`` value in milliseconds, None if the stream sent none."""
        self._id_buffer = last_event_id
        self._reset_stream()

    def _reset_stream(self) -> None:
        self._utf8 = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._at_start = True  # a BOM is only stripped before the first character
        self._skip_lf = False  # the previous text ended in CR: a leading LF completes that CRLF
        self._pending: list[str] = []  # pieces of the current, unterminated line
        self._data: list[str] = []  # data buffer as lines; joined with LF it is the spec's buffer
        self._event_type = ""

    def feed(self, chunk: bytes) -> list[ServerSentEvent]:
        """Consume the next bytes of the stream; return the events completed by them."""
        text = self._utf8.decode(chunk)
        if not text:
            return []
        if self._at_start:
            self._at_start = False
            if text.startswith(_BOM):
                text = text[1:]
        if self._skip_lf:
            self._skip_lf = False
            if text.startswith("\n"):
                text = text[1:]
        if "\r" in text:
            # A CR may be the first half of a CRLF whose LF is in the next chunk: the line ends
            # here either way, and the flag swallows that LF so it is not a second (blank) line.
            self._skip_lf = text[-1] == "\r"
            text = text.replace("\r\n", "\n").replace("\r", "\n")
        elif "\n" not in text:
            if text:
                self._pending.append(text)
            return []
        if self._pending:
            self._pending.append(text)
            text = "".join(self._pending)
            self._pending.clear()
        lines = text.split("\n")
        rest = lines.pop()
        if rest:
            self._pending.append(rest)
        return self._process(lines)

    def close(self) -> list[ServerSentEvent]:
        """End of stream: a half-built event is discarded, as the spec says, so this returns [].

        The decoder is then ready for a new stream (a reconnection): line, BOM and buffer state
        start afresh, while ``last_event_id`` and ``retry`` are kept.
        """
        self._id_buffer = self.last_event_id
        self._reset_stream()
        return []

    def _process(self, lines: list[str]) -> list[ServerSentEvent]:
        events: list[ServerSentEvent] = []
        data = self._data
        for line in lines:
            if not line:
                self._dispatch(events)
                data = self._data
                continue
            if line.startswith("data:"):  # by far the most common line: skip the generic split
                data.append(line[6:] if line.startswith(" ", 5) else line[5:])
                continue
            if line.startswith("id: "):  # and the two that come with each MCP event
                if "\x00" not in line:
                    self._id_buffer = line[4:]
                continue
            if line.startswith("event: "):
                self._event_type = line[7:]
                continue
            colon = line.find(":")
            if colon == 0:
                continue  # comment
            if colon < 0:
                field, value = line, ""
            else:
                field = line[:colon]
                value = line[colon + 2 :] if line.startswith(" ", colon + 1) else line[colon + 1 :]
            if field == "data":
                data.append(value)
            elif field == "event":
                self._event_type = value
            elif field == "id":
                if "\x00" not in value:
                    self._id_buffer = value
            elif field == "retry" and value.isascii() and value.isdigit():
                # More digits than Python's int-from-str limit is no usable delay: ignore it.
                with contextlib.suppress(ValueError):
                    self.retry = int(value)
        return events

    def _dispatch(self, events: list[ServerSentEvent]) -> None:
        self.last_event_id = self._id_buffer
        if self._data:
            events.append(ServerSentEvent("\n".join(self._data), self._event_type or "message", self._id_buffer))
            self._data = []
        self._event_type = ""
