"""What both client transports share: the requests in flight, how messages reach the session, the
client's exceptions and its statistics.

Neutral ground, so that neither the Streamable HTTP nor the HTTP+SSE module imports the other.
The decisions about a request live in ``client/lifecycle.py``; a ``Pending`` only adds what the
I/O needs beside them (the session's metadata and the cancel scope of the task that runs it).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import anyio
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream
from mcp.shared.message import ClientMessageMetadata, ServerMessageMetadata, SessionMessage

from mcp_sse.client.lifecycle import RequestLifecycle
from mcp_sse.wire.jsonrpc import RequestId
from mcp_sse.wire.sdk_models import to_sdk_message

__all__ = [
    "ClientStats",
    "FallBack",
    "FromSession",
    "GiveUp",
    "Pending",
    "StreamBroken",
    "ToSession",
    "deliver",
    "error_to_session",
    "to_session_message",
]

ToSession = MemoryObjectSendStream[SessionMessage | Exception]
"""Where the transport puts what the server sent, for ``ClientSession`` to read."""
FromSession = MemoryObjectReceiveStream[SessionMessage]
"""Where the transport takes what ``ClientSession`` sends."""


class FallBack(Exception):
    """The POSTed initialize was refused in a way that means "try HTTP+SSE"."""

    def __init__(self, status: int, first: SessionMessage) -> None:
        super().__init__(f"POST initialize answered {status}")
        self.status = status
        self.first = first


class GiveUp(Exception):
    """Something the transport needed for itself cannot be done; the message says why."""


class StreamBroken(Exception):
    """The connection failed; ``maybe_received`` tells whether the server may have seen the request."""

    def __init__(self, reason: str, *, maybe_received: bool = True) -> None:
        super().__init__(reason)
        self.reason = reason
        self.maybe_received = maybe_received


@dataclass
class ClientStats:
    """What the connection went through, for people and tests to see.

    ``on_resumed(after_event_id, lost)`` is called when a resumed stream delivers its first event:
    ``lost`` counts events the server no longer had (exact for ``<stream>-<seq>`` ids, else 0).
    """

    reconnects: int = 0
    resumes: int = 0
    reinitializations: int = 0
    duplicates_dropped: int = 0
    lost: int = 0
    listen_reopens: int = 0  # 2026-07-28 listen streams re-opened and caught up after a break
    last_resume_event_id: str | None = None
    on_resumed: Callable[[str, int], None] | None = None


class Pending:
    """A request in flight: its lifecycle, plus the session's metadata and the task's cancel scope."""

    __slots__ = ("_catch_up_lock", "cancelled", "life", "metadata", "scope")

    def __init__(self, life: RequestLifecycle, metadata: ClientMessageMetadata | None = None) -> None:
        self.life = life
        self.metadata = metadata
        self.scope: anyio.CancelScope | None = None
        self.cancelled = False
        self._catch_up_lock: anyio.Lock | None = None

    @property
    def catch_up_lock(self) -> anyio.Lock:
        """One re-listing at a time for a ``subscriptions/listen`` request (made when first needed)."""
        if self._catch_up_lock is None:
            self._catch_up_lock = anyio.Lock()
        return self._catch_up_lock

    @property
    def id(self) -> RequestId:
        return self.life.id

    @property
    def method(self) -> str:
        return self.life.method

    def cancel(self) -> None:
        """Stop working on this request: its HTTP response is closed, which the server sees."""
        self.cancelled = True
        if self.scope is not None:
            self.scope.cancel()


def error_to_session(request_id: RequestId, code: int, message: str, data: Any = None) -> SessionMessage:
    """A JSON-RPC error response for the session, answering its request ``request_id``."""
    error: dict[str, Any] = {"code": code, "message": message}
    if data is not None:
        error["data"] = data
    return SessionMessage(to_sdk_message({"jsonrpc": "2.0", "id": request_id, "error": error}))


def to_session_message(obj: dict[str, Any], related: RequestId | None = None) -> SessionMessage:
    """A received message for the session; ``related`` names the request whose stream carried it."""
    metadata = ServerMessageMetadata(related_request_id=related) if related is not None else None
    return SessionMessage(to_sdk_message(obj), metadata=metadata)


async def deliver(to_session: ToSession, message: SessionMessage | Exception) -> None:
    """Hand a message to the session; once the session is gone nobody waits for it any more.

    Into the buffer without a checkpoint while it has room: the events of one received chunk then
    reach the session in one wake-up instead of one loop turn (and one epoll) each. A full buffer
    still makes the reader wait (backpressure).
    """
    try:
        to_session.send_nowait(message)
    except anyio.WouldBlock:
        with contextlib.suppress(anyio.ClosedResourceError, anyio.BrokenResourceError):
            await to_session.send(message)
    except (anyio.ClosedResourceError, anyio.BrokenResourceError):
        pass
