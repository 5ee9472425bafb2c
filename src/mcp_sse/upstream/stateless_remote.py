"""An HTTP server that speaks only the stateless 2026-07-28 era, offered to clients of the session
eras (``mcp-sse proxy`` in front of it): the other half of bridging the eras.

Each downstream session gets the SDK's own ``Client`` in the stateless era, opened by the session's
``initialize`` (which is answered from the upstream's ``server/discover``) and kept for the
session's life. The downstream keeps what its era promises: a session, event ids and resumable
streams (ours, whatever the upstream lacks), change notifications (from one ``subscriptions/listen``
stream the bridge holds open upstream, re-opened when it drops), ``resources/subscribe`` (a listen
filter), ``logging/setLevel`` (applied here: every upstream request opts into every level), and
cancellation by ``notifications/cancelled`` (the upstream request's response is closed, which is
that era's cancellation). An upstream's ``InputRequiredResult`` (its way to ask the client
something) is answered by asking the downstream client, in its era's own words: a sampling,
elicitation or roots request on the stream of the call that needs it (the SDK client drives the
retry with the answers).
"""

from __future__ import annotations

import contextlib
import contextvars
import itertools
import logging
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any, TypeVar

import anyio
import httpx2
import mcp_types as types
import orjson
from anyio.abc import TaskGroup
from mcp import Client
from mcp.client.session import ClientRequestContext
from mcp.client.streamable_http import streamable_http_client
from mcp.client.subscriptions import SubscriptionLost
from mcp.shared.dispatcher import ProgressFnT
from mcp.shared.exceptions import MCPError
from pydantic import BaseModel, ValidationError

from mcp_sse.core.session import Outbound
from mcp_sse.upstream import era_translation
from mcp_sse.upstream.base import UpstreamSession
from mcp_sse.wire import eras
from mcp_sse.wire.jsonrpc import INTERNAL_ERROR, INVALID_PARAMS, METHOD_NOT_FOUND, Kind, RequestId, error_message

__all__ = ["StatelessHTTPUpstream"]

logger = logging.getLogger(__name__)

_current_request: contextvars.ContextVar[RequestId | None] = contextvars.ContextVar("current_request", default=None)
_ResultT = TypeVar("_ResultT", bound=BaseModel)


class StatelessHTTPUpstream:
    """Session-era sessions in front of a stateless-only HTTP server."""

    def __init__(
        self,
        url: str,
        *,
        headers: Mapping[str, str] | None = None,
        principal_header: str | None = None,
        auth: httpx2.Auth | None = None,
    ):
        self.url = url
        self.headers = dict(headers or {})
        self.principal_header = principal_header
        self.auth = auth  # an OAuth login's (``mcp-sse connect``), refreshed as the SDK's provider does

    @asynccontextmanager
    async def lifespan(self) -> AsyncIterator[None]:
        yield

    async def serve_session(self, session: UpstreamSession) -> None:
        headers = dict(self.headers)
        if self.principal_header is not None and session.principal is not None:
            headers[self.principal_header] = session.principal
        timeout = httpx2.Timeout(10.0, read=None, write=30.0, pool=30.0)
        async with httpx2.AsyncClient(headers=headers, timeout=timeout, follow_redirects=False, auth=self.auth) as http:
            await _Bridge(self.url, http, session).run()


class _Bridge:
    """One downstream session and the stateless client that serves it."""

    def __init__(self, url: str, http: httpx2.AsyncClient, session: UpstreamSession) -> None:
        self.url = url
        self.http = http
        self.session = session
        self.client: Client | None = None
        self.calls: dict[RequestId, anyio.CancelScope] = {}
        self.questions: dict[str, tuple[anyio.Event, list[dict[str, Any]]]] = {}
        self.numbers = itertools.count(1)
        self.log_level: str | None = None  # none set: every log the upstream sends goes on
        self.resource_uris: set[str] = set()
        self.listen_changed = anyio.Event()

    async def run(self) -> None:
        async with anyio.create_task_group() as tg:
            try:
                while True:
                    try:
                        inbound = await self.session.receive()
                    except anyio.EndOfStream:
                        break
                    await self._handle(tg, inbound.message.obj)
            finally:
                tg.cancel_scope.cancel()

    async def _handle(self, tg: TaskGroup, message: dict[str, Any]) -> None:
        method = message.get("method")
        msg_id = message.get("id")
        if method is None:
            self._answered(message)
        elif msg_id is None:
            if method == "notifications/cancelled":
                params = message.get("params") or {}
                scope = self.calls.get(params.get("requestId", ""))
                if scope is not None:
                    scope.cancel()  # closing the upstream response is that era's cancellation
        elif method == "initialize":
            await self._initialize(tg, message)
        elif self.client is None:
            await self._reply_error(msg_id, INVALID_PARAMS, "the session is not initialized")
        elif method == "ping":
            await self._reply(msg_id, {})
        elif method == "logging/setLevel":
            level = (message.get("params") or {}).get("level")
            if level not in era_translation.LOG_LEVELS:
                await self._reply_error(msg_id, INVALID_PARAMS, f"unknown log level {level!r}")
            else:
                self.log_level = level
                await self._reply(msg_id, {})
        elif method in ("resources/subscribe", "resources/unsubscribe"):
            uri = (message.get("params") or {}).get("uri")
            if not isinstance(uri, str):
                await self._reply_error(msg_id, INVALID_PARAMS, "params.uri must be a string")
                return
            (self.resource_uris.add if method == "resources/subscribe" else self.resource_uris.discard)(uri)
            self.listen_changed.set()
            await self._reply(msg_id, {})
        else:
            scope = anyio.CancelScope()
            self.calls[msg_id] = scope
            tg.start_soon(self._call, scope, message)

    # --- the handshake, answered from server/discover ---------------------------------------------

    async def _initialize(self, tg: TaskGroup, message: dict[str, Any]) -> None:
        ready = anyio.Event()
        tg.start_soon(self._hold_client, message, ready)
        await ready.wait()  # the session's next messages need the client

    async def _hold_client(self, message: dict[str, Any], ready: anyio.Event) -> None:
        """Open the stateless client, answer the handshake from its discovery, and keep it (and
        its listen stream) for the session's life: this task is cancelled when the session ends."""
        params = message.get("params") or {}
        declared = params.get("capabilities") or {}
        info = params.get("clientInfo")
        client = Client(
            streamable_http_client(self.url, http_client=self.http),
            mode="auto",
            client_info=types.Implementation.model_validate(info) if isinstance(info, Mapping) else None,
            sampling_callback=self._sample if "sampling" in declared else None,
            elicitation_callback=self._elicit if "elicitation" in declared else None,
            list_roots_callback=self._roots if "roots" in declared else None,
            logging_callback=self._log,
            log_level="debug",
            cache=None,
        )
        try:
            async with client, anyio.create_task_group() as tg:
                self.client = client
                capabilities = client.server_capabilities.model_dump(by_alias=True, mode="json", exclude_none=True)
                capabilities["logging"] = {}  # logging/setLevel is answered here
                result: dict[str, Any] = {
                    "protocolVersion": eras.negotiate(params.get("protocolVersion")),
                    "capabilities": capabilities,
                    "serverInfo": _dump(client.server_info) or {"name": "unknown", "version": ""},
                }
                if client.instructions:
                    result["instructions"] = client.instructions
                await self._reply(message["id"], result)
                ready.set()
                if any(
                    isinstance(v, dict) and (v.get("listChanged") or v.get("subscribe")) for v in capabilities.values()
                ):
                    tg.start_soon(self._listen, capabilities)
                await anyio.sleep_forever()
        except Exception as exc:  # the upstream is down, or refuses us
            logger.warning("the stateless upstream %s could not be reached: %s", self.url, exc)
            if not ready.is_set():
                await self._reply_error(
                    message["id"], INTERNAL_ERROR, f"the upstream server could not be reached: {exc}"
                )
        finally:
            self.client = None
            ready.set()

    # --- requests ----------------------------------------------------------------------------------

    async def _call(self, scope: anyio.CancelScope, message: dict[str, Any]) -> None:
        request_id = message["id"]
        _current_request.set(request_id)
        try:
            with scope:
                try:
                    result = await self._dispatch(message["method"], message.get("params") or {}, request_id)
                except MCPError as exc:
                    error = error_message(exc.code, exc.message, request_id)
                    if exc.data is not None:
                        error["error"]["data"] = exc.data
                    await self._send(error, Kind.ERROR, request_id)
                except (ValidationError, TypeError, KeyError) as exc:
                    await self._reply_error(request_id, INVALID_PARAMS, f"invalid params: {exc}")
                except Exception as exc:
                    logger.exception("the stateless upstream failed a %s", message["method"])
                    await self._reply_error(request_id, INTERNAL_ERROR, f"the upstream server failed: {exc}")
                else:
                    await self._reply(request_id, result)
        finally:
            self.calls.pop(request_id, None)

    async def _dispatch(self, method: str, params: Mapping[str, Any], request_id: RequestId) -> dict[str, Any]:
        client = self.client
        assert client is not None
        meta = params.get("_meta")
        token = meta.get("progressToken") if isinstance(meta, Mapping) else None
        cursor = params.get("cursor")
        model: BaseModel
        if method == "tools/call":
            on_progress = self._progress_to(token, request_id) if token is not None else None
            model = await client.call_tool(params["name"], params.get("arguments"), progress_callback=on_progress)
        elif method == "tools/list":
            model = await client.list_tools(cursor=cursor)
        elif method == "prompts/list":
            model = await client.list_prompts(cursor=cursor)
        elif method == "prompts/get":
            model = await client.get_prompt(params["name"], params.get("arguments"))
        elif method == "resources/list":
            model = await client.list_resources(cursor=cursor)
        elif method == "resources/templates/list":
            model = await client.list_resource_templates(cursor=cursor)
        elif method == "resources/read":
            model = await client.read_resource(params["uri"])
        elif method == "completion/complete":
            request = types.CompleteRequestParams.model_validate(params)
            context = request.context.arguments if request.context is not None else None
            model = await client.complete(request.ref, request.argument.model_dump(), context)
        else:
            raise MCPError(METHOD_NOT_FOUND, f"Method not found: {method} (the upstream speaks 2026-07-28)")
        return era_translation.handshake_result(_dump(model) or {})

    def _progress_to(self, token: Any, request_id: RequestId) -> ProgressFnT:
        async def on_progress(progress: float, total: float | None, message: str | None) -> None:
            params: dict[str, Any] = {"progressToken": token, "progress": progress}
            if total is not None:
                params["total"] = total
            if message is not None:
                params["message"] = message
            notification = {"jsonrpc": "2.0", "method": "notifications/progress", "params": params}
            await self._send(notification, Kind.NOTIFICATION, None, related=request_id)

        return on_progress

    async def _log(self, params: types.LoggingMessageNotificationParams) -> None:
        if self.log_level is not None and not era_translation.log_wanted(
            {"_meta": {"io.modelcontextprotocol/logLevel": self.log_level}}, params.level
        ):
            return
        notification = {"jsonrpc": "2.0", "method": "notifications/message", "params": _dump(params)}
        await self._send(notification, Kind.NOTIFICATION, None, related=_current_request.get())

    # --- change notifications, from one listen stream upstream -------------------------------------

    async def _listen(self, capabilities: Mapping[str, Any]) -> None:
        client = self.client
        assert client is not None
        wants = {
            name: bool((capabilities.get(name) or {}).get("listChanged")) for name in ("tools", "prompts", "resources")
        }
        delay = 0.5
        while True:
            self.listen_changed = anyio.Event()
            try:
                async with anyio.create_task_group() as tg:

                    async def restart_on_change(scope: anyio.CancelScope) -> None:
                        await self.listen_changed.wait()
                        scope.cancel()

                    tg.start_soon(restart_on_change, tg.cancel_scope)
                    async with client.listen(
                        tools_list_changed=wants["tools"],
                        prompts_list_changed=wants["prompts"],
                        resources_list_changed=wants["resources"],
                        resource_subscriptions=sorted(self.resource_uris),
                    ) as subscription:
                        delay = 0.5
                        async for event in subscription:
                            notification = era_translation.handshake_notification(event)
                            await self._send(notification, Kind.NOTIFICATION, None)
                    tg.cancel_scope.cancel()
            except (SubscriptionLost, MCPError, httpx2.HTTPError) as exc:
                logger.info("the upstream listen stream ended (%s); listening again in %.1fs", exc, delay)
                await anyio.sleep(delay)
                delay = min(delay * 2, 30.0)

    # --- questions for the downstream client (the upstream's InputRequiredResult) ------------------

    async def _sample(
        self, context: ClientRequestContext, params: types.CreateMessageRequestParams
    ) -> types.CreateMessageResult | types.ErrorData:
        return await self._ask("sampling/createMessage", _dump(params), types.CreateMessageResult)

    async def _elicit(
        self, context: ClientRequestContext, params: types.ElicitRequestParams
    ) -> types.ElicitResult | types.ErrorData:
        return await self._ask("elicitation/create", _dump(params), types.ElicitResult)

    async def _roots(self, context: ClientRequestContext) -> types.ListRootsResult | types.ErrorData:
        return await self._ask("roots/list", None, types.ListRootsResult)

    async def _ask(
        self, method: str, params: dict[str, Any] | None, result: type[_ResultT]
    ) -> _ResultT | types.ErrorData:
        question_id = f"mcp-sse-bridge-{next(self.numbers)}"
        done, answer = self.questions[question_id] = (anyio.Event(), [])
        request: dict[str, Any] = {"jsonrpc": "2.0", "id": question_id, "method": method}
        if params is not None:
            request["params"] = params
        try:
            await self._send(request, Kind.REQUEST, question_id, related=_current_request.get())
            await done.wait()
        finally:
            self.questions.pop(question_id, None)
        error = answer[0].get("error")
        if isinstance(error, Mapping):
            return types.ErrorData.model_validate(error)
        return result.model_validate(answer[0].get("result"))

    def _answered(self, message: dict[str, Any]) -> None:
        waiting = self.questions.get(str(message.get("id")))
        if waiting is not None:
            waiting[1].append(message)
            waiting[0].set()

    # --- sending -----------------------------------------------------------------------------------

    async def _reply(self, request_id: RequestId, result: dict[str, Any]) -> None:
        await self._send({"jsonrpc": "2.0", "id": request_id, "result": result}, Kind.RESPONSE, request_id)

    async def _reply_error(self, request_id: RequestId, code: int, message: str) -> None:
        await self._send(error_message(code, message, request_id), Kind.ERROR, request_id)

    async def _send(
        self, message: dict[str, Any], kind: Kind, message_id: RequestId | None, *, related: RequestId | None = None
    ) -> None:
        with contextlib.suppress(anyio.ClosedResourceError, anyio.BrokenResourceError):
            await self.session.emit(Outbound(orjson.dumps(message), kind, message_id, related))


def _dump(model: BaseModel | None) -> dict[str, Any] | None:
    return None if model is None else model.model_dump(by_alias=True, mode="json", exclude_none=True)
