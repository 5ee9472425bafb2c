"""Streamable HTTP client I/O (2025-03-26 … 2025-11-25, and 2026-07-28 requests): it does what the
decisions say, and decides nothing itself.

Every request runs as its own task driven by its ``RequestLifecycle`` (``client/lifecycle.py``):
this module POSTs, GETs with ``Last-Event-ID``, sleeps, re-opens the session, reads JSON or SSE
answers (``client/responses.py``, never past the idle timeout) and delivers what the lifecycle
answers, until it says Finish or Fail. The connection's own state (session, version, headers, era
learning) is a ``Connection`` (``client/connection.py``). Whatever can no longer be answered is
answered with a CONNECTION_CLOSED error, so no caller ever hangs.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from contextlib import AbstractAsyncContextManager
from typing import Any

import anyio
import httpx2
import orjson
from anyio.abc import TaskGroup
from mcp.shared.message import ClientMessageMetadata, SessionMessage

from mcp_sse.client.connection import Cancellation, Connection
from mcp_sse.client.decisions import PROBE_REMEMBERED, Backoff, Cursor, EventVerdict
from mcp_sse.client.inflight import (
    ClientStats,
    FallBack,
    FromSession,
    GiveUp,
    Pending,
    StreamBroken,
    ToSession,
    deliver,
    error_to_session,
    to_session_message,
)
from mcp_sse.client.lifecycle import (
    Action,
    Fail,
    FallBackToSSE,
    Finish,
    OneWayLifecycle,
    Post,
    ReadError,
    ReadJSON,
    ReadStream,
    Reinitialize,
    Resume,
    StandaloneLifecycle,
    Verdict,
    Wait,
    error_from_http,
    is_response,
)
from mcp_sse.client.modern import LIST_METHODS, ListenState, list_changed_notification, modern_headers, relist_request
from mcp_sse.client.policy import ReconnectPolicy
from mcp_sse.client.responses import SSEReader, open_response, read_body
from mcp_sse.wire.jsonrpc import CONNECTION_CLOSED, METHOD_NOT_FOUND, RequestId

__all__ = ["StreamableHTTPClient"]

logger = logging.getLogger(__name__)

SSE_ONLY = "text/event-stream"


class StreamableHTTPClient:
    """One client connection over Streamable HTTP."""

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
        self.to_session = to_session
        self.terminate_on_close = terminate_on_close
        self.stats = stats or ClientStats()
        self.connection = Connection(url, policy, allow_fallback=allow_fallback)
        self.pending: dict[RequestId, Pending] = {}
        self._recover_lock = anyio.Lock()
        self._task_group: TaskGroup | None = None
        self._standalone_started = False

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
            if self.connection.probe.answer_locally(obj["method"]):
                await self._deliver(error_to_session(obj["id"], METHOD_NOT_FOUND, PROBE_REMEMBERED))
                return
            token = metadata.resumption_token if metadata else None
            pending = Pending(self.connection.request(obj, token), metadata)
            self.pending[pending.id] = pending
            if pending.method == "initialize":
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
            params = obj.get("params")
            request_id = params.get("requestId") if isinstance(params, dict) else None
            cancelled = self.pending.get(request_id) if request_id is not None else None
            how, obj = self.connection.cancellation(obj, cancelled.life if cancelled else None)
            if how is Cancellation.CLOSE and cancelled is not None:
                cancelled.cancel()
            if how is not Cancellation.POST:
                return
        await self._post_one_way(obj, metadata)
        if obj.get("method") == "notifications/initialized":
            self._start_standalone()

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
            outcome = await self._drive(pending)
        except FallBack:
            raise
        except Exception as exc:
            logger.exception("request %r failed", pending.id)
            outcome = Fail(f"request failed: {exc}")
        if isinstance(outcome, Finish):
            self.connection.answered(pending.life, outcome.response)
            await self._deliver(to_session_message(outcome.response))
        else:
            await self._deliver(error_to_session(pending.id, outcome.code, outcome.message))

    async def _drive(self, pending: Pending) -> Finish | Fail:
        """Do what the request's lifecycle says until it says Finish or Fail."""
        life = pending.life
        action: Action = life.start()
        while True:
            if isinstance(action, Finish | Fail):
                return action
            if isinstance(action, FallBackToSSE):
                raise FallBack(action.status, SessionMessage(to_session_message(life.request).message))
            if isinstance(action, Wait):
                self.stats.reconnects += 1
                logger.info("request %r: %s; retrying in %.2fs", life.id, action.reason, action.seconds)
                await anyio.sleep(action.seconds)
                action = life.wait_over()
            elif isinstance(action, Reinitialize):
                try:
                    await self._recover(action.lost_session)
                    action = life.session_reopened()
                except GiveUp as exc:
                    action = life.reopen_failed(str(exc))
            elif isinstance(action, Post | Resume):
                try:
                    action = await self._exchange(pending, action)
                except StreamBroken as broken:
                    action = life.broke(broken.reason, maybe_received=broken.maybe_received, now=anyio.current_time())
            else:
                raise AssertionError(f"{action!r} is not an action for the driver")

    async def _exchange(self, pending: Pending, action: Post | Resume) -> Action:
        """One HTTP exchange for a request: POST it or resume its stream, and read the answer."""
        life = pending.life
        session = self.connection.session_id
        stamped = pending.metadata.headers if pending.metadata is not None else None
        if isinstance(action, Resume):
            self.stats.resumes += 1
            self.stats.last_resume_event_id = action.last_event_id
            headers = self.connection.headers(stamped, accept=SSE_ONLY, last_event_id=action.last_event_id)
            opened = self._open("GET", headers)
        else:
            opened = self._open("POST", self.connection.headers(stamped), orjson.dumps(action.request))
        async with opened as response:
            content_type = response.headers.get("content-type", "")
            step = life.head(response.status_code, content_type, session=session, now=anyio.current_time())
            if step is ReadError.ACTION:
                return life.refused(response.status_code, await read_body(response, self.policy.idle_timeout))
            if step is not ReadJSON.ACTION and step is not ReadStream.ACTION:
                return step
            if life.method == "initialize":
                self.connection.session_opened(response.headers)
            if step is ReadJSON.ACTION:
                return life.answered(orjson.loads(await read_body(response, self.policy.idle_timeout)))
            return await self._read_answer(response, pending)

    async def _read_answer(self, response: httpx2.Response, pending: Pending) -> Finish | Fail:
        """Deliver a request's stream until its response; StreamBroken if it ends before that."""
        life = pending.life
        reader = SSEReader(response, self.policy.idle_timeout)
        on_token = pending.metadata.on_resumption_token_update if pending.metadata is not None else None
        while (events := await reader.next_events()) is not None:
            for event in events:
                verdict = life.event(event.id)
                if verdict is EventVerdict.DUPLICATE:
                    self.stats.duplicates_dropped += 1
                    continue
                if verdict is EventVerdict.NEW:
                    resumed = life.resumed()
                    if resumed is not None:
                        self.stats.lost += resumed[1]
                        if self.stats.on_resumed is not None:
                            self.stats.on_resumed(*resumed)
                    if on_token is not None:
                        await on_token(event.id)
                if not event.data:
                    continue  # a priming event: its id is the whole point
                obj = orjson.loads(event.data)
                if is_response(obj):
                    return life.answered(obj)
                if life.listen is not None and not await self._listened(pending, obj):
                    continue
                # Say which request this came with, for a gateway that must route it onward.
                await self._deliver(to_session_message(obj, life.id))
            if reader.retry_ms is not None:
                life.cursor.retry_ms = reader.retry_ms
        raise StreamBroken("the stream ended before the response arrived")

    # --- one-way messages and the standalone stream -----------------------------------------

    async def _post_one_way(self, obj: dict[str, Any], metadata: ClientMessageMetadata | None) -> None:
        """POST a notification or a response, as ``OneWayLifecycle`` says."""
        one_way = OneWayLifecycle(self.policy)
        stamped = metadata.headers if metadata is not None else None
        while True:
            session = self.connection.session_id
            try:
                async with self._open("POST", self.connection.headers(stamped), orjson.dumps(obj)) as response:
                    verdict = one_way.head(response.status_code, session=session)
                    if verdict is Verdict.SESSION_GONE:
                        await self._recover(session)
                        return  # it belonged to the session that ended
                    if verdict is Verdict.UNAVAILABLE:
                        raise StreamBroken(f"the server answered {response.status_code}")
                    if verdict is Verdict.REFUSED:
                        reason = await self._error_text(response)
                        logger.warning("the server refused %s: %s", obj.get("method", "a response"), reason)
                    return
            except (StreamBroken, GiveUp) as exc:
                delay = one_way.broke(anyio.current_time())
                if delay is None:
                    logger.warning("dropping %s after %gs of failures: %s", obj.get("method"), self.policy.budget, exc)
                    return
                await anyio.sleep(delay)

    def _start_standalone(self) -> None:
        if not self._standalone_started and self._task_group is not None:
            self._standalone_started = True
            self._task_group.start_soon(self._standalone)

    async def _standalone(self) -> None:
        """The GET stream, as ``StandaloneLifecycle`` says, for the life of the client."""
        stream = StandaloneLifecycle(self.policy)
        while True:
            last_event_id = stream.opening(self.connection.session_id)
            headers = self.connection.headers(accept=SSE_ONLY, last_event_id=last_event_id)
            try:
                async with self._open("GET", headers) as response:
                    verdict = stream.head(response.status_code)
                    if verdict is Verdict.NO_STREAM:
                        return
                    if verdict is Verdict.SESSION_GONE:
                        await self._recover(stream.session)
                        continue
                    if verdict is not Verdict.OK:
                        raise StreamBroken(f"GET answered {response.status_code}")
                    await self._read_standalone(response, stream.cursor)
            except (StreamBroken, GiveUp) as exc:
                logger.debug("standalone stream: %s", exc)
            delay = stream.broke(anyio.current_time())
            if delay is None:
                logger.warning("standalone stream: gave up after %gs of failures", self.policy.budget)
                return
            await anyio.sleep(delay)

    async def _read_standalone(self, response: httpx2.Response, cursor: Cursor) -> None:
        reader = SSEReader(response, self.policy.idle_timeout)
        while (events := await reader.next_events()) is not None:
            for event in events:
                if cursor.event(event.id) is EventVerdict.DUPLICATE:
                    self.stats.duplicates_dropped += 1
                elif event.data:
                    await self._deliver(to_session_message(orjson.loads(event.data)))
            if reader.retry_ms is not None:
                cursor.retry_ms = reader.retry_ms

    # --- a lost session ----------------------------------------------------------------------

    async def _recover(self, lost: str | None) -> None:
        """Open a new session with the original initialize parameters (once, however many notice)."""
        async with self._recover_lock:
            if self.connection.session_id != lost:
                return
            if self.connection.init_request is None:
                raise GiveUp("the session ended before it was initialized")
            request = self.connection.reopening()
            backoff = Backoff(self.policy)
            while True:
                try:
                    result, headers = await self._own_request(self.connection.headers(), request)
                    break
                except StreamBroken as broken:
                    delay = backoff.next_delay(anyio.current_time())
                    if delay is None:
                        raise GiveUp(f"could not open a new session: {broken.reason}") from None
                    await anyio.sleep(delay)
            self.connection.reopened(headers, result)
            self.stats.reinitializations += 1
            logger.info("session %s was lost; continuing on new session %s", lost, self.connection.session_id)
            await self._post_one_way({"jsonrpc": "2.0", "method": "notifications/initialized"}, None)

    async def _own_request(
        self, headers: dict[str, str], request: dict[str, Any]
    ) -> tuple[dict[str, Any], Mapping[str, str]]:
        """POST a request the session never sees; its result (JSON body or the first response on an
        SSE stream) and the response headers. GiveUp when it is refused or answered with an error."""
        method = request["method"]
        async with self._open("POST", headers, orjson.dumps(request)) as response:
            if response.status_code >= 400:
                raise GiveUp(f"{method} was refused: {await self._error_text(response)}")
            if response.headers.get("content-type", "").startswith("application/json"):
                answer = orjson.loads(await read_body(response, self.policy.idle_timeout))
            else:
                answer = await self._first_response(response)
        result = answer.get("result")
        if not isinstance(result, dict):
            raise GiveUp(f"{method} failed: {answer.get('error')}")
        return result, response.headers

    async def _first_response(self, response: httpx2.Response) -> dict[str, Any]:
        reader = SSEReader(response, self.policy.idle_timeout)
        while (events := await reader.next_events()) is not None:
            for event in events:
                if event.data:
                    obj: dict[str, Any] = orjson.loads(event.data)
                    if is_response(obj):
                        return obj
        raise StreamBroken("the stream ended before its response")

    # --- 2026-07-28 subscriptions, made safe to lose ----------------------------------------

    async def _listened(self, pending: Pending, obj: dict[str, Any]) -> bool:
        """A message on a listen stream: rewrite the subscription id to the caller's, and after a
        re-open, swallow the repeated acknowledgment and look for what changed meanwhile."""
        listen = pending.life.listen
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
        listen = pending.life.listen
        assert listen is not None
        async with pending.catch_up_lock:
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
            request_id = self.connection.internal_id("relist")
            request = relist_request(pending.life.request, method, cursor, request_id)
            headers = self.connection.headers(modern_headers(pending.metadata, method))
            result, _ = await self._own_request(headers, request)
            pages.append(result.get(LIST_METHODS[method]))
            cursor = result.get("nextCursor")
            if not cursor:
                break
        return orjson.dumps(pages, option=orjson.OPT_SORT_KEYS)

    # --- HTTP plumbing -----------------------------------------------------------------------

    def _open(
        self, method: str, headers: dict[str, str], body: bytes | None = None
    ) -> AbstractAsyncContextManager[httpx2.Response]:
        return open_response(self.http, method, self.url, headers, body, response_timeout=self.policy.response_timeout)

    async def _error_text(self, response: httpx2.Response) -> str:
        """The server's reason for a refusal, from its JSON-RPC error body or its status."""
        try:
            body = await read_body(response, self.policy.idle_timeout)
        except StreamBroken:
            return f"HTTP {response.status_code}"
        message: str = error_from_http(None, response.status_code, body)["error"]["message"]
        return message or f"HTTP {response.status_code}"

    async def _deliver(self, message: SessionMessage | Exception) -> None:
        await deliver(self.to_session, message)

    async def _terminate(self) -> None:
        for pending in list(self.pending.values()):
            await self._deliver(error_to_session(pending.id, CONNECTION_CLOSED, "the connection was closed"))
        session = self.connection.session_id
        if self.terminate_on_close and session:
            try:
                with anyio.fail_after(5):
                    await self.http.delete(self.url, headers=self.connection.headers(accept="application/json"))
            except Exception as exc:
                logger.debug("DELETE of session %s failed: %r", session, exc)
