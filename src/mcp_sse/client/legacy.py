"""HTTP+SSE (2024-11-05) client I/O: one GET stream per session, POSTs to the endpoint it names.

That era has no resumption: when the stream drops, the session is gone. The client opens a new
one and re-initializes with the original parameters; what becomes of each request that was in
flight (sent again, or answered with a CONNECTION_CLOSED error rather than left hanging) is its
``RequestLifecycle``'s decision (``session_lost`` then ``session_reopened``), as it is for
Streamable HTTP. MCP 2024-11-05, Transports:
https://modelcontextprotocol.io/specification/2024-11-05/basic/transports#http-with-sse
"""

from __future__ import annotations

import logging
from typing import Any

import anyio
import httpx2
import orjson
from anyio.abc import TaskGroup
from mcp.shared.message import SessionMessage

from mcp_sse.client.decisions import Backoff, RetryRules, resolve_endpoint
from mcp_sse.client.inflight import (
    ClientStats,
    FromSession,
    GiveUp,
    Pending,
    StreamBroken,
    ToSession,
    deliver,
    error_to_session,
    to_session_message,
)
from mcp_sse.client.lifecycle import Fail, Purpose, RequestLifecycle, Verdict, is_response, judge_status
from mcp_sse.client.modern import is_modern_request
from mcp_sse.client.policy import ReconnectPolicy
from mcp_sse.client.responses import SSEReader, open_response
from mcp_sse.wire.jsonrpc import CONNECTION_CLOSED, METHOD_NOT_FOUND, RequestId

__all__ = ["LegacySSEClient"]

logger = logging.getLogger(__name__)


class LegacySSEClient:
    """One client connection over HTTP+SSE."""

    def __init__(
        self, url: str, http: httpx2.AsyncClient, policy: ReconnectPolicy, to_session: ToSession, stats: ClientStats
    ) -> None:
        self.url = url
        self.http = http
        self.policy = policy
        self.rules = RetryRules(policy)
        self.to_session = to_session
        self.stats = stats
        self.endpoint: str | None = None
        self.init_request: dict[str, Any] | None = None
        self.initialized_sent = False
        self.pending: dict[RequestId, Pending] = {}
        self._ready = anyio.Event()
        self._internal: dict[RequestId, anyio.Event] = {}
        self._internal_results: dict[RequestId, dict[str, Any]] = {}
        self._task_group: TaskGroup | None = None
        self._generation = 0
        self._lost: list[Pending] = []

    async def run(self, from_session: FromSession, first: SessionMessage | None = None) -> None:
        async with anyio.create_task_group() as tg:
            self._task_group = tg
            await tg.start(self._keep_stream)
            if first is not None:
                await self._outgoing(first)
            async for message in from_session:
                await self._outgoing(message)
            tg.cancel_scope.cancel()
        for pending in list(self.pending.values()):
            await self._deliver(error_to_session(pending.id, CONNECTION_CLOSED, "the connection was closed"))

    async def _outgoing(self, message: SessionMessage) -> None:
        obj = message.message.model_dump(by_alias=True, mode="json", exclude_unset=True)
        if "method" in obj and "id" in obj and is_modern_request(obj):
            # HTTP+SSE is a 2024-11-05 transport: the stateless era cannot exist on it, whatever a
            # server would answer. Say so at once, and a probing client falls back to initialize.
            await self._deliver(
                error_to_session(
                    obj["id"], METHOD_NOT_FOUND, "the HTTP+SSE transport has no 2026-07-28 (stateless) era"
                )
            )
            return
        if "method" in obj and "id" in obj:
            life = RequestLifecycle(obj, safe=self.rules.is_safe(obj), policy=self.policy, resumable=False)
            pending = Pending(life)
            self.pending[pending.id] = pending
            if pending.method == "initialize":
                self.init_request = obj
        elif obj.get("method") == "notifications/initialized":
            self.initialized_sent = True
        await self._post(obj)

    async def _post(self, obj: dict[str, Any], *, before_ready: bool = False) -> None:
        """POST to the current endpoint; everything but the re-initialize waits until the session is ready."""
        if not before_ready:
            await self._ready.wait()
        assert self.endpoint is not None
        try:
            with anyio.fail_after(self.policy.response_timeout):
                response = await self.http.post(self.endpoint, content=orjson.dumps(obj), headers=_JSON)
        except (TimeoutError, httpx2.TransportError) as exc:
            logger.info("POST to %s failed: %r (the stream's reconnection will settle it)", self.endpoint, exc)
            return
        verdict = judge_status(response.status_code, Purpose.ONE_WAY, has_session=True)  # answers come on the stream
        if verdict is not Verdict.OK and "id" in obj and "method" in obj:
            self.pending.pop(obj["id"], None)
            await self._deliver(
                error_to_session(obj["id"], CONNECTION_CLOSED, f"HTTP {response.status_code}: {response.text[:200]}")
            )

    async def _keep_stream(self, *, task_status: Any = anyio.TASK_STATUS_IGNORED) -> None:
        """Hold the SSE stream; when it drops, open a new session and settle what was in flight."""
        backoff = Backoff(self.policy)
        started = False
        while True:
            try:
                headers = {"accept": "text/event-stream"}
                opened = open_response(
                    self.http, "GET", self.url, headers, response_timeout=self.policy.response_timeout
                )
                async with opened as response:
                    if judge_status(response.status_code, Purpose.STANDALONE, has_session=False) is not Verdict.OK:
                        raise GiveUp(f"GET {self.url} answered {response.status_code}")
                    backoff.reset()
                    if not started:
                        task_status.started()
                        started = True
                    await self._read(response)
                reason = "the SSE stream ended"
            except GiveUp as exc:
                if not started:
                    raise
                reason = str(exc)
            except (httpx2.TransportError, StreamBroken, TimeoutError) as exc:
                reason = f"the SSE stream broke: {exc!r}"
            self._ready = anyio.Event()
            self.endpoint = None
            # What was in flight when the stream dropped; what the session sends from now on waits
            # for the new session instead.
            self._lost = []
            for pending in [p for p in self.pending.values() if p.method != "initialize"]:
                if isinstance(decision := pending.life.session_lost(None), Fail):
                    await self._fail(pending, decision.message)
                else:
                    self._lost.append(pending)
            delay = backoff.next_delay(anyio.current_time())
            if delay is None:
                for pending in list(self.pending.values()):
                    await self._fail(pending, f"gave up reconnecting after {self.policy.budget:g}s: {reason}")
                return
            self.stats.reconnects += 1
            logger.info("%s; opening a new session in %.2fs", reason, delay)
            await anyio.sleep(delay)

    async def _read(self, response: httpx2.Response) -> None:
        reader = SSEReader(response, self.policy.idle_timeout)
        while (events := await reader.next_events()) is not None:
            for event in events:
                if event.event == "endpoint":
                    self.endpoint = resolve_endpoint(self.url, event.data)
                    self._generation += 1
                    assert self._task_group is not None
                    self._task_group.start_soon(self._on_new_session, self._generation)
                elif event.event == "message" and event.data:
                    await self._incoming(orjson.loads(event.data))

    async def _on_new_session(self, generation: int) -> None:
        """A fresh stream: the first one just opens; a later one re-initializes, then settles what was lost."""
        if generation == 1 or self.init_request is None:
            self._ready.set()
            return
        request = dict(self.init_request, id=f"mcp-sse-reinitialize-{generation}")
        done = self._internal[request["id"]] = anyio.Event()
        await self._post(request, before_ready=True)
        with anyio.move_on_after(self.policy.response_timeout):
            await done.wait()
        result = self._internal_results.pop(request["id"], None)
        self._internal.pop(request["id"], None)
        lost, self._lost = self._lost, []
        if result is None or "result" not in result:
            logger.warning("re-initialize on the new HTTP+SSE session failed: %s", result)
            for pending in lost:
                await self._fail(
                    pending,
                    pending.life.reopen_failed(
                        "the HTTP+SSE stream dropped and a new session could not be initialized"
                    ).message,
                )
            return
        if self.initialized_sent:
            await self._post({"jsonrpc": "2.0", "method": "notifications/initialized"}, before_ready=True)
        self.stats.reinitializations += 1
        self._ready.set()
        for pending in lost:
            if pending.id not in self.pending:
                continue  # answered before the drop was noticed
            decision = pending.life.session_reopened()
            if isinstance(decision, Fail):
                await self._fail(pending, decision.message)
            else:
                await self._post(decision.request)

    async def _incoming(self, obj: dict[str, Any]) -> None:
        if is_response(obj):
            request_id = obj.get("id")
            if request_id in self._internal:
                self._internal_results[request_id] = obj
                self._internal[request_id].set()
                return
            pending = self.pending.pop(request_id, None) if request_id is not None else None
            if pending is not None and pending.method == "tools/list" and "result" in obj:
                self.rules.learn_tools(obj["result"])
        await self._deliver(to_session_message(obj))

    async def _fail(self, pending: Pending, reason: str) -> None:
        self.pending.pop(pending.id, None)
        await self._deliver(error_to_session(pending.id, CONNECTION_CLOSED, reason))

    async def _deliver(self, message: SessionMessage | Exception) -> None:
        await deliver(self.to_session, message)


_JSON = {"content-type": "application/json"}
