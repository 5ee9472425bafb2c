"""Streamable HTTP client I/O: POST each message, read JSON or SSE answers, resume, re-initialize.

Every request runs as its own task that finishes the job: it reads its POST's SSE stream, and when
the stream breaks it resumes with GET + ``Last-Event-ID`` from its cursor, waiting as the backoff
(or the server's ``retry``) says, until the response arrives or the time budget is spent. A 404
for a known session opens a new session with the original initialize parameters. Whatever can no
longer be answered is answered with a CONNECTION_CLOSED error, so no caller ever hangs.
The decisions themselves live in ``client.core``; this module only does what they say.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import anyio
import httpx2
import orjson
from anyio.abc import TaskGroup
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream
from mcp.shared.message import ClientMessageMetadata, ServerMessageMetadata, SessionMessage

from mcp_sse.client.core import ERA_CACHE, Backoff, Cursor, RetryRules, should_fall_back_to_sse
from mcp_sse.client.modern import (
    LIST_METHODS,
    ListenState,
    is_modern_request,
    list_changed_notification,
    modern_headers,
    names_stateless_era,
    relist_request,
)
from mcp_sse.client.policy import ReconnectPolicy
from mcp_sse.wire.jsonrpc import CONNECTION_CLOSED, INTERNAL_ERROR, METHOD_NOT_FOUND, RequestId
from mcp_sse.wire.sdk_models import to_sdk_message
from mcp_sse.wire.sse import SSEDecoder

logger = logging.getLogger(__name__)

PROBE_REMEMBERED = "server/discover: this origin refused the 2026-07-28 probe before and took an initialize"

ToSession = MemoryObjectSendStream[SessionMessage | Exception]
FromSession = MemoryObjectReceiveStream[SessionMessage]


class FallBack(Exception):
    """The POSTed initialize was refused in a way that means "try HTTP+SSE" (SPEC item 89)."""

    def __init__(self, status: int, first: SessionMessage) -> None:
        super().__init__(f"POST initialize answered {status}")
        self.status = status
        self.first = first


class GiveUp(Exception):
    """This request can no longer be answered; the message says why, for the caller."""


class SessionGone(Exception):
    """The server answered 404 for our session id: it ended (restart, expiry, DELETE)."""


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


@dataclass
class Pending:
    request: dict[str, Any]
    metadata: ClientMessageMetadata | None
    safe: bool
    cursor: Cursor = field(default_factory=Cursor)
    resends: int = 0
    # 2026-07-28: no session, no resumption; closing the POST is how it is cancelled.
    modern: bool = False
    listen: ListenState | None = None
    scope: anyio.CancelScope | None = None
    cancelled: bool = False

    def cancel(self) -> None:
        """Stop working on this request: its HTTP response is closed, which the server sees."""
        self.cancelled = True
        if self.scope is not None:
            self.scope.cancel()

    @property
    def wire_request(self) -> dict[str, Any]:
        """What goes on the wire: a resend carries a new id, because the first attempt may still be
        running on the server under the old one; its response is mapped back to the caller's id."""
        if not self.resends:
            return self.request
        return dict(self.request, id=f"{self.request['id']}.mcp-sse-resend-{self.resends}")

    @property
    def id(self) -> RequestId:
        request_id: RequestId = self.request["id"]
        return request_id

    @property
    def method(self) -> str:
        method: str = self.request["method"]
        return method


def error_message(request_id: RequestId, code: int, message: str, data: Any = None) -> SessionMessage:
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


def is_response(obj: dict[str, Any]) -> bool:
    return "method" not in obj and ("result" in obj or "error" in obj)


class StreamableHTTPClient:
    """One client connection over Streamable HTTP (2025-03-26 … 2025-11-25)."""

    def __init__(
        self,
        url: str,
        http: httpx2.AsyncClient,
        policy: ReconnectPolicy,
        to_session: ToSession,
        *,
        allow_fallback: bool = False,
        terminate_on_close: bool = True,
        stats: ClientStats | None = None,
    ) -> None:
        self.url = url
        self.http = http
        self.policy = policy
        self.rules = RetryRules(policy)
        self.to_session = to_session
        self.allow_fallback = allow_fallback
        self.terminate_on_close = terminate_on_close
        self.stats = stats or ClientStats()
        self.session_id: str | None = None
        self.protocol_version: str | None = None
        self.init_request: dict[str, Any] | None = None
        self.pending: dict[RequestId, Pending] = {}
        self._recover_lock = anyio.Lock()
        self._task_group: TaskGroup | None = None
        self._standalone_started = False
        self._reinit_counter = 0
        self._modern = False  # the last request went out in the stateless era
        self._internal_ids = 0
        self._probe_refused = False  # this connection's server/discover got an error
        self._probe_answered_locally = False

    # --- the loop that takes the session's messages ---------------------------------------

    async def run(self, from_session: FromSession, first: SessionMessage | None = None) -> None:
        try:
            async with anyio.create_task_group() as tg:
                self._task_group = tg
                if first is not None:
                    await self._outgoing(first)
                async for message in from_session:
                    await self._outgoing(message)
                tg.cancel_scope.cancel()
        finally:
            with anyio.CancelScope(shield=True):
                await self._terminate()

    async def _outgoing(self, message: SessionMessage) -> None:
        obj = message.message.model_dump(by_alias=True, mode="json", exclude_unset=True)
        metadata = message.metadata if isinstance(message.metadata, ClientMessageMetadata) else None
        if "method" in obj and "id" in obj:
            if obj["method"] == "server/discover" and ERA_CACHE.stateless(self.url) is False:
                # This origin refused the probe before and took an initialize: say so at once.
                self._probe_answered_locally = True
                await self._deliver(error_message(obj["id"], METHOD_NOT_FOUND, PROBE_REMEMBERED))
                return
            pending = Pending(obj, metadata, self.rules.is_safe(obj))
            if is_modern_request(obj):
                self._modern = pending.modern = True
                if pending.method == "subscriptions/listen":
                    pending.listen = ListenState()
            elif pending.method == "initialize":
                self._modern = False
            self.pending[pending.id] = pending
            if pending.method == "initialize":
                self.init_request = obj
                try:
                    await self._complete(pending)
                except FallBack as fallback:
                    fallback.first = message
                    raise
                finally:
                    self.pending.pop(pending.id, None)
            else:
                assert self._task_group is not None
                self._task_group.start_soon(self._run_request, pending)
            return
        if obj.get("method") == "notifications/cancelled":
            if self._cancel_by_closing(obj):
                return
            obj = self._cancel_under_wire_id(obj)
        await self._post_one_way(obj, metadata)
        if obj.get("method") == "notifications/initialized":
            self._start_standalone()

    def _cancel_by_closing(self, obj: dict[str, Any]) -> bool:
        """2026-07-28 has no client notifications: closing a request's stream cancels it (SPEC 79).
        True when the cancellation was done that way and nothing must be POSTed."""
        params = obj.get("params")
        request_id = params.get("requestId") if isinstance(params, dict) else None
        pending = self.pending.get(request_id) if request_id is not None else None
        if pending is None:
            return self._modern  # too late to matter; never leak a notification onto a stateless server
        if not pending.modern:
            return False
        pending.cancel()
        return True

    def _cancel_under_wire_id(self, obj: dict[str, Any]) -> dict[str, Any]:
        """A cancellation names the caller's id; the server knows the request by its latest wire id."""
        params = obj.get("params")
        if not isinstance(params, dict):
            return obj
        pending = self.pending.get(params.get("requestId", ""))
        if pending is None or not pending.resends:
            return obj
        return dict(obj, params=dict(params, requestId=pending.wire_request["id"]))

    async def _run_request(self, pending: Pending) -> None:
        try:
            with anyio.CancelScope() as pending.scope:
                if pending.cancelled:
                    pending.scope.cancel()
                await self._complete(pending)
        finally:
            if self.pending.get(pending.id) is pending:
                del self.pending[pending.id]

    # --- one request, finished whatever happens ------------------------------------------

    async def _complete(self, pending: Pending) -> None:
        try:
            await self._drive(pending)
        except FallBack:
            raise
        except GiveUp as exc:
            await self._deliver(error_message(pending.id, CONNECTION_CLOSED, str(exc)))
        except Exception as exc:
            logger.exception("request %r failed", pending.id)
            await self._deliver(error_message(pending.id, CONNECTION_CLOSED, f"request failed: {exc}"))

    async def _drive(self, pending: Pending) -> None:
        backoff = Backoff(self.policy)
        token = pending.metadata.resumption_token if pending.metadata else None
        if token:
            pending.cursor = Cursor(token)
        resume = token is not None
        first_failure: str | None = None
        while True:
            session_before = self.session_id
            try:
                if resume:
                    await self._resume(pending)
                else:
                    await self._post_request(pending)
                return
            except SessionGone:
                if pending.method == "initialize" or not self.policy.reinitialize:
                    raise GiveUp("the server ended the session (404) and it cannot be reopened") from None
                await self._recover(session_before)
                if resume and not pending.safe:
                    raise GiveUp(
                        "the session ended while the request was in progress on the server; it is not marked "
                        "safe to retry, so it was not sent again"
                    ) from None
                pending.resends += 1
                resume = False
                pending.cursor = Cursor()
                backoff.reset()
            except StreamBroken as broken:
                first_failure = first_failure or broken.reason
                if pending.modern:
                    # No resumption in this era: a broken request is lost and only a new one can follow.
                    pending.cursor = Cursor()
                    if pending.listen is not None and pending.listen.acked:
                        backoff.reset()  # each outage gets the whole budget
                if pending.cursor.last_event_id is not None:
                    resume = True
                elif not broken.maybe_received or pending.safe or pending.listen is not None:
                    if resume or broken.maybe_received:
                        pending.resends += 1
                    resume = False
                elif pending.modern:
                    raise GiveUp(
                        f"the response stream broke ({broken.reason}); in the 2026-07-28 era a broken request "
                        "is lost, and this one is not marked safe to retry, so it was not sent again"
                    ) from None
                else:
                    raise GiveUp(
                        f"the connection broke before the server sent a resumable event id ({broken.reason}); "
                        "the request is not marked safe to retry, so it was not sent again"
                    ) from None
                delay = backoff.next_delay(anyio.current_time(), pending.cursor.retry_ms)
                if delay is None:
                    raise GiveUp(
                        f"gave up after {self.policy.budget:g}s of failed reconnection attempts "
                        f"(first failure: {first_failure}; last: {broken.reason})"
                    ) from None
                self.stats.reconnects += 1
                logger.info("request %r: %s; retrying in %.2fs", pending.id, broken.reason, delay)
                await anyio.sleep(delay)

    async def _post_request(self, pending: Pending) -> None:
        headers = self._headers(pending.metadata)
        async with self._open("POST", headers, orjson.dumps(pending.wire_request)) as response:
            status = response.status_code
            if pending.method == "initialize" and status >= 400 and self.allow_fallback:
                version = (pending.request.get("params") or {}).get("protocolVersion")
                if should_fall_back_to_sse(status, version):
                    text = await self._read_all(response)
                    if not names_stateless_era(text):
                        raise FallBack(status, SessionMessage(to_session_message(pending.request).message))
                    # A stateless server refusing the handshake (SPEC item 90): its error is the answer.
                    await self._deliver_http_error(pending, response, text)
                    return
            if status == 404 and self.session_id is not None:
                raise SessionGone
            if status in (502, 503, 504):
                raise StreamBroken(f"the server answered {status}", maybe_received=False)
            if status == 202:
                raise GiveUp("the server answered a request with 202 Accepted: no response will come")
            if status >= 400:
                await self._deliver_http_error(pending, response)
                return
            if pending.method == "initialize":
                self.session_id = response.headers.get("mcp-session-id") or None
            content_type = response.headers.get("content-type", "").lower()
            if content_type.startswith("application/json"):
                body = await self._read_all(response)
                await self._deliver_response(pending, orjson.loads(body))
            elif content_type.startswith("text/event-stream"):
                await self._consume(response, pending)
            else:
                raise GiveUp(f"unexpected Content-Type {content_type!r} in the answer to a request")

    async def _resume(self, pending: Pending) -> None:
        assert pending.cursor.last_event_id is not None
        headers = self._headers(pending.metadata, accept="text/event-stream")
        headers["last-event-id"] = pending.cursor.last_event_id
        self.stats.resumes += 1
        self.stats.last_resume_event_id = pending.cursor.last_event_id
        async with self._open("GET", headers) as response:
            status = response.status_code
            if status == 404:
                raise SessionGone
            if status == 410 or 400 <= status < 500:
                detail = await self._error_text(response)
                raise GiveUp(f"cannot resume after event {pending.cursor.last_event_id}: {detail}")
            if status >= 500:
                raise StreamBroken(f"the server answered {status} to a resume")
            await self._consume(response, pending)

    # --- reading an SSE answer -----------------------------------------------------------

    async def _consume(self, response: httpx2.Response, pending: Pending) -> None:
        """Deliver a request's stream until its response; StreamBroken if it ends before that."""
        answered = await self._read_events(response, pending.cursor, pending)
        if not answered:
            raise StreamBroken("the stream ended before the response arrived")

    async def _read_events(self, response: httpx2.Response, cursor: Cursor, pending: Pending | None) -> bool:
        decoder = SSEDecoder()
        previous_id = ""
        on_token = pending.metadata.on_resumption_token_update if pending and pending.metadata else None
        resumed_from = cursor.last_event_id
        lost_before = cursor.lost
        chunks = response.aiter_raw()
        while True:
            try:
                with anyio.fail_after(self.policy.idle_timeout):
                    chunk = await chunks.__anext__()
            except StopAsyncIteration:
                return False
            except TimeoutError:
                raise StreamBroken(
                    f"no data from the server for {self.policy.idle_timeout:g}s (idle timeout; not even a keepalive)"
                ) from None
            except httpx2.TransportError as exc:
                raise StreamBroken(f"the connection broke: {exc!r}") from None
            for event in decoder.feed(chunk):
                if decoder.retry is not None:
                    cursor.retry_ms = decoder.retry
                new_id = event.id != previous_id
                previous_id = event.id
                if new_id and event.id:
                    if not cursor.see(event.id):
                        self.stats.duplicates_dropped += 1
                        continue
                    if resumed_from is not None:
                        lost = cursor.lost - lost_before
                        self.stats.lost += lost
                        if self.stats.on_resumed is not None:
                            self.stats.on_resumed(resumed_from, lost)
                        resumed_from = None
                    if on_token is not None:
                        await on_token(event.id)
                if not event.data:
                    continue  # a priming event: its id is the whole point (SPEC item 47)
                obj = orjson.loads(event.data)
                if pending is not None and is_response(obj):
                    await self._deliver_response(pending, obj)
                    return True
                if pending is not None and pending.listen is not None and not await self._listened(pending, obj):
                    continue
                # Say which request this came with, for a gateway that must route it onward.
                await self._deliver(to_session_message(obj, pending.id if pending is not None else None))
            if decoder.retry is not None:
                cursor.retry_ms = decoder.retry

    async def _deliver_response(self, pending: Pending, obj: Any) -> None:
        if isinstance(obj, list):  # a batch answer to a single request: take ours
            obj = next((item for item in obj if item.get("id") == pending.id), obj[-1] if obj else {})
        if not isinstance(obj, dict) or not is_response(obj):
            raise GiveUp("the server's answer is not a JSON-RPC response")
        obj["id"] = pending.id  # a resumed stream answers under the original id (SDK contract)
        if pending.method == "initialize" and "result" in obj:
            self.protocol_version = obj["result"].get("protocolVersion")
        elif pending.modern and pending.method == "server/discover" and "result" in obj:
            self.protocol_version = None  # stateless: each request carries its own version header
        elif pending.method == "tools/list" and "result" in obj:
            self.rules.learn_tools(obj["result"])
        self._learn_era(pending, answered="result" in obj)
        await self._deliver(to_session_message(obj))

    def _learn_era(self, pending: Pending, *, answered: bool) -> None:
        """Remember per origin whether the stateless probe works, and forget it when it misled us."""
        if pending.method == "server/discover" and pending.modern:
            if answered:
                ERA_CACHE.remember_stateless(self.url, True)
            else:
                self._probe_refused = True
        elif pending.method == "initialize":
            if answered and self._probe_refused:
                ERA_CACHE.remember_stateless(self.url, False)
            elif not answered and self._probe_answered_locally:
                ERA_CACHE.forget_stateless(self.url)  # remembered wrongly: the next probe goes out

    async def _deliver_http_error(self, pending: Pending, response: httpx2.Response, text: bytes | None = None) -> None:
        self._learn_era(pending, answered=False)
        if text is None:
            text = await self._read_all(response)
        try:
            body = orjson.loads(text)
        except orjson.JSONDecodeError:
            body = None
        if isinstance(body, dict) and isinstance(body.get("error"), dict):
            error = body["error"]
            await self._deliver(
                error_message(
                    pending.id, error.get("code", INTERNAL_ERROR), error.get("message", ""), error.get("data")
                )
            )
            return
        snippet = text[:200].decode("utf-8", "replace")
        await self._deliver(error_message(pending.id, INTERNAL_ERROR, f"HTTP {response.status_code}: {snippet}"))

    # --- one-way messages and the standalone stream -----------------------------------------

    async def _post_one_way(self, obj: dict[str, Any], metadata: ClientMessageMetadata | None) -> None:
        """POST a notification or a response; retried within the budget, dropped if the session is gone."""
        backoff = Backoff(self.policy)
        while True:
            session_before = self.session_id
            try:
                async with self._open("POST", self._headers(metadata), orjson.dumps(obj)) as response:
                    if response.status_code == 404 and session_before is not None:
                        await self._recover(session_before)
                        return  # it belonged to the session that ended
                    if response.status_code in (502, 503, 504):
                        raise StreamBroken(f"the server answered {response.status_code}")
                    if response.status_code >= 400:
                        logger.warning(
                            "the server refused %s: %s",
                            obj.get("method", "a response"),
                            await self._error_text(response),
                        )
                    return
            except (StreamBroken, GiveUp) as exc:
                delay = backoff.next_delay(anyio.current_time())
                if delay is None:
                    logger.warning("dropping %s after %gs of failures: %s", obj.get("method"), self.policy.budget, exc)
                    return
                await anyio.sleep(delay)

    def _start_standalone(self) -> None:
        if not self._standalone_started and self._task_group is not None:
            self._standalone_started = True
            self._task_group.start_soon(self._standalone)

    async def _standalone(self) -> None:
        """The GET stream: kept open, resumed, and reopened for a new session, for the life of the client."""
        backoff = Backoff(self.policy)
        cursor = Cursor()
        session = self.session_id
        while True:
            if self.session_id != session:
                session, cursor = self.session_id, Cursor()
            headers = self._headers(None, accept="text/event-stream")
            if cursor.last_event_id:
                headers["last-event-id"] = cursor.last_event_id
            try:
                async with self._open("GET", headers) as response:
                    status = response.status_code
                    if status == 405:
                        return  # the server offers no standalone stream (SPEC item 32)
                    if status == 404 and session is not None:
                        await self._recover(session)
                        continue
                    if status >= 400:
                        raise StreamBroken(f"GET answered {status}")
                    backoff.reset()
                    await self._read_events(response, cursor, None)
            except (StreamBroken, GiveUp) as exc:
                logger.debug("standalone stream: %s", exc)
            delay = backoff.next_delay(anyio.current_time(), cursor.retry_ms)
            if delay is None:
                logger.warning("standalone stream: gave up after %gs of failures", self.policy.budget)
                return
            await anyio.sleep(delay)

    # --- a lost session ----------------------------------------------------------------------

    async def _recover(self, lost: str | None) -> None:
        """Open a new session with the original initialize parameters (once, however many notice)."""
        async with self._recover_lock:
            if self.session_id != lost:
                return
            if self.init_request is None:
                raise GiveUp("the session ended before it was initialized")
            self.session_id = None
            self._reinit_counter += 1
            request = dict(self.init_request, id=f"mcp-sse-reinitialize-{self._reinit_counter}")
            holder = Pending(request, None, safe=True)
            backoff = Backoff(self.policy)
            while True:
                try:
                    result = await self._internal_request(holder)
                    break
                except StreamBroken as broken:
                    delay = backoff.next_delay(anyio.current_time())
                    if delay is None:
                        raise GiveUp(f"could not open a new session: {broken.reason}") from None
                    await anyio.sleep(delay)
            self.protocol_version = result.get("protocolVersion", self.protocol_version)
            self.stats.reinitializations += 1
            logger.info("session %s was lost; continuing on new session %s", lost, self.session_id)
            await self._post_one_way({"jsonrpc": "2.0", "method": "notifications/initialized"}, None)

    async def _internal_request(self, pending: Pending) -> dict[str, Any]:
        """Send a request of our own (re-initialize) and return its result without telling the session."""
        result, headers = await self._own_request(self._headers(None), pending.request)
        self.session_id = headers.get("mcp-session-id") or None
        return result

    async def _own_request(self, headers: dict[str, str], request: dict[str, Any]) -> tuple[dict[str, Any], Any]:
        """POST a request the session never sees; its result (JSON body or the first response on an
        SSE stream) and the response headers. GiveUp when it is refused or answered with an error."""
        method = request["method"]
        async with self._open("POST", headers, orjson.dumps(request)) as response:
            if response.status_code >= 400:
                raise GiveUp(f"{method} was refused: {await self._error_text(response)}")
            if response.headers.get("content-type", "").startswith("application/json"):
                answer = orjson.loads(await self._read_all(response))
            else:
                answer = await self._first_response(response)
        result = answer.get("result")
        if not isinstance(result, dict):
            raise GiveUp(f"{method} failed: {answer.get('error')}")
        return result, response.headers

    async def _first_response(self, response: httpx2.Response) -> dict[str, Any]:
        decoder = SSEDecoder()
        async for chunk in response.aiter_raw():
            for event in decoder.feed(chunk):
                if event.data:
                    obj: dict[str, Any] = orjson.loads(event.data)
                    if is_response(obj):
                        return obj
        raise StreamBroken("the initialize stream ended before its response")

    # --- 2026-07-28 subscriptions, made safe to lose ----------------------------------------

    async def _listened(self, pending: Pending, obj: dict[str, Any]) -> bool:
        """A message on a listen stream: rewrite the subscription id to the caller's, and after a
        re-open, swallow the repeated acknowledgment and look for what changed meanwhile."""
        listen = pending.listen
        assert listen is not None
        ListenState.stamp(obj, pending.id)
        if obj.get("method") != "notifications/subscriptions/acknowledged":
            return True
        first = not listen.acked
        listen.acknowledged(obj)
        assert self._task_group is not None
        self._task_group.start_soon(self._catch_up, pending, first)
        return first

    async def _catch_up(self, pending: Pending, baseline: bool) -> None:
        """Re-list what the subscription covers; raise a change event for whatever differs from what
        was known before the stream broke. On the first acknowledgment this only records a baseline."""
        listen = pending.listen
        assert listen is not None
        async with listen.catching_up:
            for method in listen.covered_lists():
                try:
                    digest = await self._list_digest(pending, method)
                except (StreamBroken, GiveUp) as exc:
                    logger.info("re-listing %s after a listen re-open failed: %s", method, exc)
                    digest = None
                if listen.changed(method, digest, baseline):
                    await self._deliver(to_session_message(list_changed_notification(method, pending.id)))
            if not baseline:
                self.stats.listen_reopens += 1

    async def _list_digest(self, pending: Pending, method: str) -> bytes:
        """Every page of a list, reduced to bytes that compare equal exactly when the lists do."""
        pages: list[Any] = []
        cursor: str | None = None
        for _ in range(100):  # a paginator that never ends cannot hang the catch-up
            self._internal_ids += 1
            request = relist_request(pending.request, method, cursor, f"mcp-sse-relist-{self._internal_ids}")
            headers = self._headers(None)
            headers.update(modern_headers(pending.metadata, method))
            result, _ = await self._own_request(headers, request)
            pages.append(result.get(LIST_METHODS[method]))
            cursor = result.get("nextCursor")
            if not cursor:
                break
        return orjson.dumps(pages, option=orjson.OPT_SORT_KEYS)

    # --- HTTP plumbing -----------------------------------------------------------------------

    def _headers(self, metadata: ClientMessageMetadata | None, *, accept: str | None = None) -> dict[str, str]:
        headers = {"accept": accept or "application/json, text/event-stream"}
        if accept is None:
            headers["content-type"] = "application/json"
        if self.session_id:
            headers["mcp-session-id"] = self.session_id
        if self.protocol_version:
            headers["mcp-protocol-version"] = self.protocol_version
        if metadata is not None and metadata.headers:
            # Lower-case, so a header the session stamps replaces ours instead of going out twice.
            headers.update((name.lower(), value) for name, value in metadata.headers.items())
        return headers

    @asynccontextmanager
    async def _open(
        self, method: str, headers: dict[str, str], body: bytes | None = None
    ) -> AsyncIterator[httpx2.Response]:
        """A streamed request whose headers must arrive within ``response_timeout``."""
        request = self.http.build_request(method, self.url, headers=headers, content=body)
        try:
            with anyio.fail_after(self.policy.response_timeout):
                response = await self.http.send(request, stream=True)
        except TimeoutError:
            raise StreamBroken(f"no answer within {self.policy.response_timeout:g}s") from None
        except (httpx2.ConnectError, httpx2.ConnectTimeout) as exc:
            raise StreamBroken(f"cannot connect: {exc!r}", maybe_received=False) from None
        except httpx2.TransportError as exc:
            raise StreamBroken(f"the connection broke: {exc!r}") from None
        try:
            yield response
        finally:
            with anyio.CancelScope(shield=True):
                await response.aclose()

    async def _read_all(self, response: httpx2.Response) -> bytes:
        try:
            with anyio.fail_after(self.policy.idle_timeout):
                return await response.aread()
        except TimeoutError:
            raise StreamBroken("the response body stalled") from None
        except httpx2.TransportError as exc:
            raise StreamBroken(f"the connection broke: {exc!r}") from None

    async def _error_text(self, response: httpx2.Response) -> str:
        try:
            body = orjson.loads(await self._read_all(response))
            message = body["error"]["message"]
            return str(message)
        except Exception:
            return f"HTTP {response.status_code}"

    async def _deliver(self, message: SessionMessage | Exception) -> None:
        await deliver(self.to_session, message)

    async def _terminate(self) -> None:
        for pending in list(self.pending.values()):
            await self._deliver(error_message(pending.id, CONNECTION_CLOSED, "the connection was closed"))
        if self.terminate_on_close and self.session_id:
            try:
                with anyio.fail_after(5):
                    await self.http.delete(self.url, headers=self._headers(None, accept="application/json"))
            except Exception as exc:
                logger.debug("DELETE of session %s failed: %r", self.session_id, exc)
