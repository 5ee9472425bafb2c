"""The stateless 2026-07-28 era in front of an upstream that speaks a 2025 version: a stdio server
process or an HTTP server.

The era's rules on the wire (headers, ``Mcp-Param-*``, error codes and statuses, a closed response
as cancellation, the listen stream's acknowledgment and subscription ids) are the SDK's own
stateless entry point's, the same one a hosted SDK server gets (``sdk_compat.serve_stateless``):
``ModernFront`` gives it a low-level SDK ``Server`` whose handlers forward each request to the
upstream, so one implementation of the era serves every upstream. What the front adds:

- an initialized upstream session per principal and set of client capabilities (``UpstreamLink``),
  shared by their requests, opened on first use and closed when idle: a principal's requests
  never reach a session (or a per-session stdio child) opened for another;
- ``server/discover`` from the upstream's ``initialize`` result (``era_translation``);
- each request's progress and (opted-in) logs relayed on its own response stream; a closed
  response cancels the call upstream;
- ``subscriptions/listen`` fed from the upstream's list-changed and resource-updated
  notifications, through one in-process bus per principal; resources a listen names are
  subscribed to upstream while it is open;
- the tool schemas ``Mcp-Param-*`` headers are checked against, cached from the upstream's
  ``tools/list`` and fetched again when it says the list changed.

A question from the upstream during a stateless request (sampling, elicitation, roots) goes back
to the client as the era's ``InputRequiredResult`` when the request is one that may answer so
(``tools/call``, ``prompts/get``, ``resources/read``) and the client declared what the question
needs; the upstream call waits (``upstream/input_required.py``) for the client's retry with the
answers. A question the client did not declare it could answer fails its request with the era's
missing-capability error (-32021); one during any other request, or outside one, is answered
upstream with an error that says why (``link.refuse``).
"""

from __future__ import annotations

import itertools
import logging
import secrets
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager, suppress
from typing import Any, cast

import anyio
import mcp_types as types
from anyio.abc import TaskGroup
from mcp.server.caching import CACHEABLE_METHODS, CacheableMethod, CacheHint
from mcp.server.context import ServerRequestContext
from mcp.server.lowlevel.server import Server
from mcp.server.subscriptions import InMemorySubscriptionBus, ListenHandler, SubscriptionBus
from mcp.shared.exceptions import MCPError
from mcp.shared.subscriptions import ToolsListChanged

from mcp_sse.upstream import era_translation
from mcp_sse.upstream.base import PRINCIPAL_KEY, PortUpstream, UpstreamSession
from mcp_sse.upstream.input_required import (
    ASKING_METHODS,
    PENDING_SECONDS,
    RESUMABLE_METHODS,
    PendingCall,
    input_required_result,
    question_allowed,
)
from mcp_sse.upstream.link import LinkClosed, UpstreamLink, refuse
from mcp_sse.wire import eras
from mcp_sse.wire.jsonrpc import INTERNAL_ERROR, INVALID_PARAMS, MISSING_CLIENT_CAPABILITY

__all__ = ["FORWARDED_METHODS", "STATE_SEPARATOR", "ModernFront", "state_holder"]

logger = logging.getLogger(__name__)

FORWARDED_METHODS = (
    "tools/list",
    "tools/call",
    "prompts/list",
    "prompts/get",
    "resources/list",
    "resources/templates/list",
    "resources/read",
    "completion/complete",
)
"""The requests of the stateless era that a 2025 server answers as they are."""

CLIENT_INFO = {"name": "mcp-sse", "title": "mcp-sse gateway for 2026-07-28 clients", "version": "1"}
"""Who the front's upstream sessions say they are: the clients behind them vary per request."""

STATE_SEPARATOR = "~"
"""Between the node that holds a waiting call and the random part, in a ``requestState`` the front
hands out in a cluster (``state_holder``)."""

_SCHEMA_PAGES = 100  # a tools/list that never ends is not followed further

Key = tuple[str | None, bytes]


class ModernFront:
    """A relaying upstream that also serves the stateless era (``ModernUpstream``)."""

    def __init__(
        self, inner: PortUpstream, *, max_links: int = 32, idle_seconds: float = 300.0, spare_processes: int = 1
    ) -> None:
        self.inner = inner
        self.spare_processes = spare_processes
        self.bus_factory: Callable[[str], SubscriptionBus] | None = None  # a cluster's, across nodes
        self.state_owner: Callable[[], str] | None = None  # a cluster's node: a retry is sent back to it
        self.max_links = max_links
        self.idle_seconds = idle_seconds
        self._links: dict[Key, UpstreamLink] = {}
        self._opening: dict[Key, anyio.Lock] = {}
        self._buses: dict[str | None, SubscriptionBus] = {}
        self._listens: dict[str | None, ListenHandler] = {}
        self._subscribed: dict[tuple[str, str], int] = {}
        self._schemas: dict[str, Any] = {}
        self._pending: dict[str, tuple[PendingCall, UpstreamLink]] = {}  # requestState -> waiting call
        self._spares: dict[str | None, list[UpstreamLink]] = {}  # per principal, processes already started
        self._keep_spares = bool(getattr(inner, "spawns_per_session", False))
        self._numbers = itertools.count(1)
        self._task_group: TaskGroup | None = None
        self.server = self._build_server()

    # --- the Upstream interface: sessions of the handshake eras go straight through ------------

    @asynccontextmanager
    async def lifespan(self) -> AsyncIterator[None]:
        async with self.inner.lifespan(), anyio.create_task_group() as tg:
            self._task_group = tg
            tg.start_soon(self._close_idle_links)
            self._top_up_spares(None)  # ready before the first stateless request without a principal
            try:
                yield
            finally:
                for link in [*self._links.values(), *(spare for spares in self._spares.values() for spare in spares)]:
                    link.close()
                self._links.clear()
                self._spares.clear()
                self._task_group = None
                tg.cancel_scope.cancel()

    async def serve_session(self, session: UpstreamSession) -> None:
        await self.inner.serve_session(session)

    def modern_server(self) -> tuple[Server[Any], Any]:
        if self._task_group is None:
            raise RuntimeError("ModernFront.modern_server called outside its lifespan")
        return self.server, {}

    def end_subscriptions(self) -> None:
        for listen in self._listens.values():
            listen.close()

    # --- the SDK server whose handlers forward ---------------------------------------------------

    def _build_server(self) -> Server[Any]:
        # Results the era lets clients cache say "stale at once, this caller only": the front cannot
        # know how long an upstream's list stays true, nor whether another principal sees the same.
        stale = CacheHint(ttl_ms=0, scope="private")
        hints = {cast(CacheableMethod, method): stale for method in CACHEABLE_METHODS}
        server: Server[Any] = Server("mcp-sse gateway", get_tool_input_schema=self._schemas.get, cache_hints=hints)
        for method in FORWARDED_METHODS:
            server.add_request_handler(method, types.RequestParams, self._forward)
        server.add_request_handler("server/discover", types.RequestParams, self._discover)
        server.add_request_handler("subscriptions/listen", types.SubscriptionsListenRequestParams, self._listen)
        return server

    async def _forward(self, ctx: ServerRequestContext[Any], _params: types.RequestParams) -> dict[str, Any]:
        if ctx.method in RESUMABLE_METHODS:  # the upstream may ask the client something
            state = (ctx.params or {}).get("requestState")
            return await self._forward_resumable(ctx, state, era_translation.client_capabilities(ctx.params))
        link = await self._link_for(ctx)
        params = era_translation.upstream_params(ctx.params)

        async def relay(message: dict[str, Any]) -> None:
            await _relay(ctx, message)

        try:
            answer = await link.call(ctx.method, params, on_message=relay)
        except LinkClosed as exc:
            raise MCPError(INTERNAL_ERROR, f"the upstream server went away: {exc}") from None
        result = _result_of(answer)
        if ctx.method == "tools/list":
            self._learn_schemas(result, complete=False)
        return era_translation.modern_result(result, link.initialize_result.get("serverInfo"))

    async def _forward_resumable(
        self, ctx: ServerRequestContext[Any], state: Any, capabilities: dict[str, Any]
    ) -> dict[str, Any]:
        """A request whose upstream call may ask the client something: started, or carried on by
        a retry that brings the answers."""
        principal = _principal(ctx)
        if state is None:
            link = await self._link_for(ctx)
            pending = PendingCall(ctx.method, principal)
            params = era_translation.upstream_params(ctx.params)
            assert self._task_group is not None
            self._task_group.start_soon(pending.run, _bind(link.call, ctx.method, params))
        else:
            waiting = self._pending.get(state) if isinstance(state, str) else None
            if waiting is None or waiting[0].principal != principal or waiting[0].method != ctx.method:
                raise MCPError(
                    INVALID_PARAMS, "requestState names no call waiting for input (expired, answered, or not yours)"
                )
            del self._pending[state]
            pending, link = waiting
            answers = (ctx.params or {}).get("inputResponses")
            pending.answer(answers if isinstance(answers, Mapping) else {})
        return await self._drive(ctx, pending, link, capabilities)

    async def _drive(
        self, ctx: ServerRequestContext[Any], pending: PendingCall, link: UpstreamLink, capabilities: dict[str, Any]
    ) -> dict[str, Any]:
        """Relay the call's messages on this request's stream until its answer, or until it asks
        the client something (then this request ends with an ``InputRequiredResult``)."""
        server_info = link.initialize_result.get("serverInfo")
        carried_on = False
        try:
            if pending.unanswered:  # the retry left some out: ask them again
                carried_on = True
                return self._suspend(pending, link, pending.unanswered, server_info)
            while True:
                kind, value = await pending.next()
                if kind == "message":
                    await _relay(ctx, value)
                elif kind == "answer":
                    carried_on = True
                    return era_translation.modern_result(_result_of(value), server_info)
                elif question_allowed(pending.question(value), capabilities):
                    carried_on = True
                    return self._suspend(pending, link, [value], server_info)
                else:
                    question = pending.question(value)
                    pending.refuse(value, refuse(question)["error"])
                    needed = ASKING_METHODS.get(str(question.get("method")))
                    if needed is not None:  # the era's answer to a server relying on an undeclared capability
                        raise MCPError(
                            MISSING_CLIENT_CAPABILITY,
                            f"the server needs the client's {needed} capability ({question.get('method')})",
                            {"requiredCapabilities": {needed: {}}},
                        )
        finally:
            if not carried_on:
                pending.cancel()  # the client closed its request: the call ends upstream too

    def _suspend(self, pending: PendingCall, link: UpstreamLink, keys: list[str], server_info: Any) -> dict[str, Any]:
        state = secrets.token_urlsafe(24)
        if self.state_owner is not None:
            state = f"{self.state_owner()}{STATE_SEPARATOR}{state}"  # the node that holds the call
        pending.deadline = anyio.current_time() + PENDING_SECONDS
        self._pending[state] = (pending, link)
        result = input_required_result({key: pending.question(key) for key in keys}, state)
        return era_translation.modern_result(result, server_info)

    async def _discover(self, ctx: ServerRequestContext[Any], _params: types.RequestParams) -> dict[str, Any]:
        link = await self._link_for(ctx)
        return era_translation.discover_result(link.initialize_result)

    async def _listen(
        self, ctx: ServerRequestContext[Any], params: types.SubscriptionsListenRequestParams
    ) -> types.SubscriptionsListenResult:
        principal = _principal(ctx)
        link = await self._link_for(ctx)
        link.pins += 1  # its notifications are what this stream carries: keep it while listening
        subscribed: list[str] = []
        try:
            for uri in params.notifications.resource_subscriptions or ():
                await self._subscribe(link, uri)
                subscribed.append(uri)
            return await self._listen_handler(principal)(ctx, params)
        finally:
            link.pins -= 1
            with anyio.CancelScope(shield=True), anyio.move_on_after(5):
                for uri in subscribed:
                    await self._unsubscribe(link, uri)

    def _listen_handler(self, principal: str | None) -> ListenHandler:
        handler = self._listens.get(principal)
        if handler is None:
            handler = self._listens[principal] = ListenHandler(self._bus(principal))
        return handler

    def _bus(self, principal: str | None) -> SubscriptionBus:
        bus = self._buses.get(principal)
        if bus is None:
            if self.bus_factory is not None:
                bus = self.bus_factory(f"front:{principal or ''}")
            else:
                bus = InMemorySubscriptionBus()
            self._buses[principal] = bus
        return bus

    async def _subscribe(self, link: UpstreamLink, uri: str) -> None:
        key = (link.id, uri)
        self._subscribed[key] = self._subscribed.get(key, 0) + 1
        if self._subscribed[key] == 1 and _can_subscribe(link):
            answer = await link.call("resources/subscribe", {"uri": uri})
            if "error" in answer:
                logger.info("the upstream refused a subscription to %s: %s", uri, answer["error"])

    async def _unsubscribe(self, link: UpstreamLink, uri: str) -> None:
        key = (link.id, uri)
        self._subscribed[key] -= 1
        if self._subscribed[key] == 0:
            del self._subscribed[key]
            if _can_subscribe(link) and not link.closed.is_set():
                with suppress(LinkClosed):
                    await link.call("resources/unsubscribe", {"uri": uri})

    # --- upstream sessions ----------------------------------------------------------------------

    async def _link_for(self, ctx: ServerRequestContext[Any]) -> UpstreamLink:
        principal = _principal(ctx)
        capabilities = era_translation.handshake_capabilities(ctx.params)
        key = (principal, era_translation.capabilities_key(capabilities))
        link = self._links.get(key)
        if link is not None and not link.closed.is_set():
            return link
        async with self._opening.setdefault(key, anyio.Lock()):
            link = self._links.get(key)
            if link is not None and not link.closed.is_set():
                return link
            return await self._open_link(key, principal, capabilities)

    async def _open_link(self, key: Key, principal: str | None, capabilities: dict[str, Any]) -> UpstreamLink:
        if self._task_group is None:
            raise MCPError(INTERNAL_ERROR, "the server is not running")
        self._make_room()
        ready = [spare for spare in self._spares.get(principal, []) if not spare.closed.is_set()]
        if ready:
            link = ready.pop(0)
            self._spares[principal] = ready
        else:
            link = self._new_link(principal)
            await self._task_group.start(link.run)
        link.capabilities = capabilities
        self._top_up_spares(principal)
        try:
            await link.open(eras.LATEST_VERSION)
            if isinstance(link.initialize_result.get("capabilities", {}).get("tools"), Mapping):
                await self._fetch_schemas(link)
        except LinkClosed as exc:
            link.close()
            raise MCPError(INTERNAL_ERROR, f"the upstream server could not be reached: {exc}") from None
        self._links[key] = link
        logger.info("opened upstream session %s for stateless requests", link.id)
        return link

    def _top_up_spares(self, principal: str | None) -> None:
        """Where each upstream session is a process (``serve -- CMD`` per session), keep
        ``spare_processes`` of them started for this principal: a client with a new set of
        capabilities then waits for an ``initialize``, not for a process to start."""
        if not self._keep_spares or self._task_group is None:
            return
        spares = self._spares.setdefault(principal, [])
        while len(spares) < self.spare_processes:
            spare = self._new_link(principal)
            spare.warm_start = True
            spares.append(spare)
            self._task_group.start_soon(spare.run)

    def _new_link(self, principal: str | None) -> UpstreamLink:
        return UpstreamLink(
            self.inner.serve_session,
            name=f"stateless-{next(self._numbers)}",
            principal=principal,
            capabilities={},
            client_info=CLIENT_INFO,
            on_unrelated=lambda message: self._unrelated(principal, message),
        )

    def _make_room(self) -> None:
        """Close the least recently used idle link when there are as many as allowed."""
        if len(self._links) < self.max_links:
            return
        idle = [(link.last_used, key) for key, link in self._links.items() if link.idle]
        if not idle:
            raise MCPError(INTERNAL_ERROR, "too many upstream sessions are busy; try again shortly")
        _, key = min(idle)
        self._links.pop(key).close()

    async def _close_idle_links(self) -> None:
        while True:
            await anyio.sleep(min(30.0, self.idle_seconds / 4))
            now = anyio.current_time()
            for state, (pending, _) in list(self._pending.items()):
                if now > pending.deadline:  # its client never came back with the answers
                    del self._pending[state]
                    pending.cancel()
            for key, link in list(self._links.items()):
                if link.closed.is_set() or (link.idle and now - link.last_used > self.idle_seconds):
                    self._links.pop(key, None)
                    link.close()

    async def _unrelated(self, principal: str | None, message: dict[str, Any]) -> None:
        event = era_translation.server_event(message)
        if event is None:
            logger.debug("dropped an upstream notification no stateless client asked for: %s", message.get("method"))
            return
        if isinstance(event, ToolsListChanged):
            self._schemas.clear()
            if self._task_group is not None:
                self._task_group.start_soon(self._refresh_schemas, principal)
        await self._bus(principal).publish(event)

    # --- tool schemas for the Mcp-Param-* check ---------------------------------------------------

    async def _refresh_schemas(self, principal: str | None) -> None:
        link = next((link for (p, _), link in self._links.items() if p == principal), None)
        if link is not None:
            with suppress(LinkClosed):
                await self._fetch_schemas(link)

    async def _fetch_schemas(self, link: UpstreamLink) -> None:
        cursor: str | None = None
        for _ in range(_SCHEMA_PAGES):
            answer = await link.call("tools/list", {"cursor": cursor} if cursor else None)
            if "result" not in answer:
                return
            self._learn_schemas(answer["result"], complete=cursor is None)
            cursor = answer["result"].get("nextCursor")
            if not isinstance(cursor, str):
                return

    def _learn_schemas(self, result: Mapping[str, Any], *, complete: bool) -> None:
        tools = result.get("tools")
        if not isinstance(tools, list):
            return
        if complete:
            self._schemas.clear()
        for tool in tools:
            if isinstance(tool, Mapping) and isinstance(tool.get("name"), str):
                self._schemas[tool["name"]] = tool.get("inputSchema")


def state_holder(params: Mapping[str, Any] | None) -> str | None:
    """The node named in a stateless retry's ``requestState``, when the front handed it out in a
    cluster: the retry must reach that node, where the upstream call waits."""
    state = (params or {}).get("requestState")
    if isinstance(state, str) and STATE_SEPARATOR in state:
        return state.split(STATE_SEPARATOR, 1)[0]
    return None


def _bind(call: Any, method: str, params: dict[str, Any] | None) -> Any:
    async def bound(**callbacks: Any) -> dict[str, Any]:
        answer: dict[str, Any] = await call(method, params, **callbacks)
        return answer

    return bound


def _principal(ctx: ServerRequestContext[Any]) -> str | None:
    request = ctx.request
    scope = getattr(request, "scope", None)
    principal = scope.get(PRINCIPAL_KEY) if isinstance(scope, Mapping) else None
    return principal if isinstance(principal, str) else None


def _can_subscribe(link: UpstreamLink) -> bool:
    resources = link.initialize_result.get("capabilities", {}).get("resources")
    return isinstance(resources, Mapping) and resources.get("subscribe") is True


def _result_of(answer: Mapping[str, Any]) -> dict[str, Any]:
    """The upstream's result, or its error raised as the same JSON-RPC error."""
    error = answer.get("error")
    if isinstance(error, Mapping):
        code = error.get("code")
        raise MCPError(
            code if isinstance(code, int) and not isinstance(code, bool) else INTERNAL_ERROR,
            str(error.get("message", "the upstream server failed")),
            error.get("data"),
        )
    result = answer.get("result")
    if not isinstance(result, dict):
        raise MCPError(INTERNAL_ERROR, "the upstream server answered without a result")
    return result


async def _relay(ctx: ServerRequestContext[Any], message: Mapping[str, Any]) -> None:
    """A notification the upstream sent about this request, onto this request's response stream:
    progress against the client's own token, a log only when the request asked for that level."""
    method = message.get("method")
    params = message.get("params")
    if not isinstance(params, Mapping):
        return
    if method == "notifications/progress" and isinstance(params.get("progress"), int | float):
        total, note = params.get("total"), params.get("message")
        await ctx.session.report_progress(
            params["progress"],
            total if isinstance(total, int | float) else None,
            note if isinstance(note, str) else None,
        )
    elif method == "notifications/message" and era_translation.log_wanted(ctx.params, params.get("level")):
        notification = types.LoggingMessageNotification(
            params=types.LoggingMessageNotificationParams.model_validate(params)
        )
        await ctx.session.send_notification(notification, related_request_id=ctx.request_id)
    else:
        logger.debug("dropped %s for a stateless request: the era has no place for it", method)
