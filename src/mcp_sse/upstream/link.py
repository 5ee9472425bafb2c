"""A session the 2026-07-28 front opens itself on a relaying upstream, and forwards requests on.

A stateless request has no session, but a stdio process or a 2025 HTTP server only answers
inside an initialized one. ``UpstreamLink`` is such a session, served by the upstream exactly as a
client's would be (``serve_session``), opened with one ``initialize``, and shared by every
stateless request of one principal and one set of client capabilities (``upstream/modern_front.py``
keeps them).

``LinkTable`` is the sans-I/O part: each forwarded request gets an id and, when the client asked
for progress, a progress token of the link's own (two clients' id 1 never meet), and each message
the upstream sends comes back as a ``LinkRoute``: the answer to a call, a message for a call (by
the request it says it relates to, or by its progress token), a question from the upstream, or a
notification for nobody in particular (a list changed). Tests: tests/upstream/test_link.py.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

import anyio
import orjson
from anyio.streams.memory import MemoryObjectSendStream

from mcp_sse.core.session import Inbound, Outbound
from mcp_sse.wire.jsonrpc import CONNECTION_CLOSED, METHOD_NOT_FOUND, RequestId, classify, error_message

__all__ = [
    "Answer",
    "AskedDuring",
    "AskedOutside",
    "ForCall",
    "LinkClosed",
    "LinkRoute",
    "LinkTable",
    "Stray",
    "Unrelated",
    "UpstreamLink",
]

logger = logging.getLogger(__name__)

INIT_TIMEOUT = 60.0
"""How long an upstream may take to answer the link's ``initialize`` (a stdio child may be slow
to start)."""


@dataclass(frozen=True, slots=True)
class Answer:
    """The response (result or error) to the call ``call``."""

    call: str
    message: dict[str, Any]


@dataclass(frozen=True, slots=True)
class ForCall:
    """A notification (progress, a log) belonging to the call ``call``."""

    call: str
    message: dict[str, Any]


@dataclass(frozen=True, slots=True)
class AskedDuring:
    """A request of the upstream's (sampling, elicitation, roots) made while serving ``call``."""

    call: str
    message: dict[str, Any]


@dataclass(frozen=True, slots=True)
class AskedOutside:
    """A request of the upstream's tied to no call (a ping, roots)."""

    message: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Unrelated:
    """A notification tied to no call: a list changed, a resource updated, a stray log."""

    message: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Stray:
    """A response to nothing in flight (answered late, or after its call was cancelled)."""

    message: dict[str, Any]


LinkRoute = Answer | ForCall | AskedDuring | AskedOutside | Unrelated | Stray

SERVER_WIDE = frozenset(
    {
        "notifications/tools/list_changed",
        "notifications/prompts/list_changed",
        "notifications/resources/list_changed",
        "notifications/resources/updated",
    }
)
"""Notifications about the server, never about a request, whatever a transport ties them to (a
stdio child's routing gives a notification tied to nothing to its one request in flight)."""


class LinkTable:
    """Ids and progress tokens of the calls in flight on one link; no I/O."""

    def __init__(self, prefix: str = "link-") -> None:
        self._prefix = prefix
        self._numbers = itertools.count(1)
        self._open: set[str] = set()
        self._tokens: dict[str, str] = {}  # the link's progress token -> its call
        self._call_tokens: dict[str, str] = {}  # call -> the link's progress token

    def start(self, method: str, params: Mapping[str, Any] | None) -> dict[str, Any]:
        """The request to send upstream for a new call: its id (the call's name from now on) and,
        if it asked for progress, its progress token are the link's own."""
        call = f"{self._prefix}{next(self._numbers)}"
        self._open.add(call)
        message: dict[str, Any] = {"jsonrpc": "2.0", "id": call, "method": method}
        if params is not None:
            out = dict(params)
            meta = out.get("_meta")
            if isinstance(meta, Mapping) and meta.get("progressToken") is not None:
                self._tokens[call] = call
                self._call_tokens[call] = call
                out["_meta"] = {**meta, "progressToken": call}
            message["params"] = out
        return message

    @property
    def in_flight(self) -> int:
        return len(self._open)

    def route(self, message: dict[str, Any], related: RequestId | None = None) -> LinkRoute:
        """Where a message from the upstream goes. ``related`` is the request the upstream's
        transport says it belongs to, when it says (ours over HTTP does; a stdio child's relation
        comes from its routing table)."""
        method = message.get("method")
        msg_id = message.get("id")
        if method is None:
            call = str(msg_id) if msg_id is not None else None
            if call is not None and call in self._open:
                self._forget(call)
                return Answer(call, message)
            return Stray(message)
        owner = None if method in SERVER_WIDE else self._owner(message, related)
        if msg_id is not None:
            return AskedDuring(owner, message) if owner is not None else AskedOutside(message)
        return ForCall(owner, message) if owner is not None else Unrelated(message)

    def _owner(self, message: dict[str, Any], related: RequestId | None) -> str | None:
        if related is not None and str(related) in self._open:
            return str(related)
        params = message.get("params")
        if message.get("method") == "notifications/progress" and isinstance(params, Mapping):
            token = params.get("progressToken")
            return self._tokens.get(str(token)) if token is not None else None
        return None

    def abandon(self, call: str, reason: str) -> dict[str, Any] | None:
        """The call's client went away: the cancellation to send upstream, if it is still open."""
        if call not in self._open:
            return None
        self._forget(call)
        return {"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": call, "reason": reason}}

    def fail_all(self, reason: str) -> list[Answer]:
        """The upstream is gone: an error answer for every call in flight."""
        failed = [Answer(call, error_message(CONNECTION_CLOSED, reason, call)) for call in sorted(self._open)]
        for answer in failed:
            self._forget(answer.call)
        return failed

    def _forget(self, call: str) -> None:
        self._open.discard(call)
        token = self._call_tokens.pop(call, None)
        if token is not None:
            self._tokens.pop(token, None)


class LinkClosed(Exception):
    """The link ended (its upstream went away, or the front is stopping)."""


OnMessage = Callable[[dict[str, Any]], Awaitable[None]]
OnRequest = Callable[[dict[str, Any]], Awaitable[dict[str, Any]]]


def refuse(request: Mapping[str, Any]) -> dict[str, Any]:
    """What a question from the upstream gets when the client it concerns cannot be asked."""
    method = request.get("method")
    return error_message(
        METHOD_NOT_FOUND,
        f"{method} cannot reach the client: it made a stateless 2026-07-28 request, which has no "
        "channel for the server's own requests",
        request.get("id"),
    )


class _Call:
    __slots__ = ("answer",)

    def __init__(self) -> None:
        self.answer: dict[str, Any] | None = None


class UpstreamLink:
    """One upstream session of the front's own. ``run`` serves it (the upstream's
    ``serve_session``), ``open`` initializes it, ``call`` forwards one request and waits for its
    answer, relaying what the upstream says about it meanwhile."""

    def __init__(
        self,
        serve: Callable[[UpstreamLink], Awaitable[None]],
        *,
        name: str,
        principal: str | None,
        capabilities: Mapping[str, Any],
        client_info: Mapping[str, Any],
        on_unrelated: OnMessage,
    ) -> None:
        self._serve = serve
        self._name = name
        self._principal = principal
        self.capabilities = dict(capabilities)
        self.client_info = dict(client_info)
        self.on_unrelated = on_unrelated
        self.table = LinkTable(f"{name}-")
        self._to_upstream, self._from_front = anyio.create_memory_object_stream[dict[str, Any]](64)
        self._calls: dict[str, tuple[_Call, MemoryObjectSendStream[dict[str, Any]]]] = {}
        self.initialize_result: dict[str, Any] = {}
        self.closed = anyio.Event()
        self.pins = 0  # listen streams that keep this link open while idle
        self.warm_start = False  # a spare: the upstream may start its process before the first message
        self.last_used = anyio.current_time()

    # --- the session the upstream serves -------------------------------------------------------

    @property
    def id(self) -> str:
        return self._name

    @property
    def principal(self) -> str | None:
        return self._principal

    async def receive(self) -> Inbound:
        message = await self._from_front.receive()  # EndOfStream once the link is closed
        return Inbound(classify(message), {})

    async def emit(self, out: Outbound) -> None:
        route = self.table.route(orjson.loads(out.payload), out.related_request_id)
        if isinstance(route, Answer):
            entry = self._calls.get(route.call)
            if entry is not None:
                entry[0].answer = route.message
                entry[1].close()
        elif isinstance(route, ForCall | AskedDuring):
            entry = self._calls.get(route.call)
            if entry is not None:
                with contextlib.suppress(anyio.ClosedResourceError, anyio.BrokenResourceError):
                    await entry[1].send(route.message)  # unless the call just ended
        elif isinstance(route, AskedOutside):
            method = route.message.get("method")
            answer = (
                {"jsonrpc": "2.0", "id": route.message.get("id"), "result": {}}
                if method == "ping"
                else refuse(route.message)
            )
            await self._send(answer)
        elif isinstance(route, Unrelated):
            await self.on_unrelated(route.message)
        else:
            logger.debug("link %s: a response to nothing in flight: %r", self._name, route.message.get("id"))

    # --- the front's side ---------------------------------------------------------------------

    async def run(self, *, task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """Serve the link until it is closed or its upstream ends it; every call then fails."""
        task_status.started()
        try:
            await self._serve(self)
        except Exception:
            logger.exception("link %s: the upstream session failed", self._name)
        finally:
            self.closed.set()
            self._to_upstream.close()
            for answer in self.table.fail_all("the upstream session ended"):
                entry = self._calls.get(answer.call)
                if entry is not None:
                    entry[0].answer = answer.message
                    entry[1].close()

    async def open(self, protocol_version: str) -> dict[str, Any]:
        """Initialize the upstream session; its ``initialize`` result (or LinkClosed)."""
        params = {
            "protocolVersion": protocol_version,
            "capabilities": self.capabilities,
            "clientInfo": self.client_info,
        }
        with anyio.move_on_after(INIT_TIMEOUT) as waited:
            answer = await self.call("initialize", params)
        if waited.cancelled_caught:
            raise LinkClosed("the upstream did not answer initialize in time")
        if "result" not in answer or not isinstance(answer["result"], dict):
            error = answer.get("error")
            reason = error.get("message") if isinstance(error, dict) else "no result"
            raise LinkClosed(f"the upstream refused initialize: {reason}")
        self.initialize_result = answer["result"]
        await self._send({"jsonrpc": "2.0", "method": "notifications/initialized"})
        return self.initialize_result

    async def call(
        self,
        method: str,
        params: Mapping[str, Any] | None,
        *,
        on_message: OnMessage | None = None,
        on_request: OnRequest | None = None,
    ) -> dict[str, Any]:
        """Forward one request and wait for its answer (a response or error object). A cancelled
        caller's call is cancelled upstream (``notifications/cancelled``)."""
        if self.closed.is_set():
            raise LinkClosed("the upstream session ended")
        request = self.table.start(method, params)
        call_id = request["id"]
        entry = _Call()
        send, receive = anyio.create_memory_object_stream[dict[str, Any]](256)
        self._calls[call_id] = (entry, send)
        self.last_used = anyio.current_time()
        try:
            await self._send(request)
            async with receive:
                async for message in receive:
                    if "id" in message and on_request is not None:
                        await self._send(await on_request(message))
                    elif "id" in message:
                        await self._send(refuse(message))
                    elif on_message is not None:
                        await on_message(message)
            if entry.answer is None:
                raise LinkClosed("the upstream session ended")
            return entry.answer
        finally:
            del self._calls[call_id]
            self.last_used = anyio.current_time()
            cancel = self.table.abandon(call_id, "the client closed its request")
            if cancel is not None:
                with anyio.CancelScope(shield=True), anyio.move_on_after(5), contextlib.suppress(LinkClosed):
                    await self._send(cancel)

    async def _send(self, message: dict[str, Any]) -> None:
        try:
            await self._to_upstream.send(message)
        except (anyio.ClosedResourceError, anyio.BrokenResourceError):
            raise LinkClosed("the upstream session ended") from None

    def close(self) -> None:
        """End the session: the upstream sees its end of stream, as when a client's session ends."""
        self._to_upstream.close()

    @property
    def idle(self) -> bool:
        return not self._calls and self.pins == 0
