"""The ASGI application: lifespan, security in front of routing, and one error path for every refusal.

``create_app(upstream)`` is the whole server transport: ``/mcp`` (Streamable HTTP, with and without
a trailing slash, never a redirect), ``/sse`` and ``/messages`` (HTTP+SSE), ``/healthz``, ``/metrics``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Awaitable
from contextlib import AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager
from typing import Any, cast
from urllib.parse import parse_qs, urlsplit

import orjson
from mcp.server.lowlevel.server import Server
from mcp.server.mcpserver import MCPServer

from mcp_sse.cluster.forward import HOP_HEADER
from mcp_sse.cluster.node import ClusterNode
from mcp_sse.config import REDIS_SCHEMES, ServerConfig
from mcp_sse.core.events import EventStore
from mcp_sse.core.limits import CallerLimits
from mcp_sse.core.memory_store import MemoryEventStore
from mcp_sse.core.redis_store import RedisEventStore, RedisStoreInUse, RedisUnavailable
from mcp_sse.core.registry import SessionRegistry
from mcp_sse.core.sqlite_store import EventStoreInUse, SQLiteEventStore
from mcp_sse.errors import HeadersTooLarge, MethodNotAllowed, NotFound, Rejection, ServerNotReady
from mcp_sse.logs import fields
from mcp_sse.sdk_compat import bind_access_token
from mcp_sse.server.asgi import (
    JSON_CONTENT_TYPE,
    ASGIMessage,
    ClientGone,
    HeaderList,
    Receive,
    Scope,
    Send,
    header_map,
    send_error,
)
from mcp_sse.server.asgi import send_response as send_plain
from mcp_sse.server.auth import (
    EXPIRY_KEY,
    PRINCIPAL_KEY,
    Authenticator,
    JWTVerifier,
    SharedTokenVerifier,
    TokenFileVerifier,
    TokenVerifier,
    caller_of,
    principal_of,
    protected_resource_metadata,
)
from mcp_sse.server.cluster_edge import ClusterEdge
from mcp_sse.server.dashboard import Dashboard
from mcp_sse.server.forwarded import TrustedProxies
from mcp_sse.server.intake import too_many_for_caller
from mcp_sse.server.legacy_sse import LegacySSE
from mcp_sse.server.metrics import CONTENT_TYPE as METRICS_CONTENT_TYPE
from mcp_sse.server.metrics import Metrics
from mcp_sse.server.security import RequestGuard
from mcp_sse.server.streamable import Streamable
from mcp_sse.upstream.base import ModernUpstream, Upstream
from mcp_sse.upstream.modern_front import ModernFront
from mcp_sse.upstream.remote import HTTPUpstream
from mcp_sse.upstream.sdk import SDKUpstream
from mcp_sse.upstream.stdio import SharedStdioUpstream, StdioUpstream
from mcp_sse.wire import eras, jsonrpc
from mcp_sse.wire.headers import PROTOCOL_VERSION, SESSION_ID

__all__ = ["McpApp", "create_app", "event_store_from"]

logger = logging.getLogger(__name__)

MCP_METHODS = "GET, POST, DELETE, OPTIONS"
WELL_KNOWN_PRM = "/.well-known/oauth-protected-resource"


class McpApp:
    """An ASGI app serving one upstream over every HTTP era we support."""

    def __init__(
        self,
        upstream: Upstream,
        config: ServerConfig | None = None,
        store: EventStore | None = None,
        token_verifier: TokenVerifier | None = None,
    ) -> None:
        self.config = config or ServerConfig()
        self.authenticator = authenticator_from(self.config, token_verifier)
        self.upstream = upstream
        self.store: EventStore = store if store is not None else event_store_from(self.config)
        node = ClusterNode(self.config.redis, self.config.cluster_address) if self.config.redis else None
        self.metrics = Metrics(lambda: float(self.registry.inbound_depth()))
        self.registry = SessionRegistry(
            self.store,
            upstream,
            max_sessions=self.config.max_sessions,
            idle_timeout=self.config.session_idle_timeout,
            json_response=self.config.json_response,
            observer=self.metrics,
            # Half the replay window: a client being fed never has its unsent events evicted.
            backlog_limit=max(1, self.config.max_events_per_session // 2),
            slow_consumer_timeout=self.config.slow_consumer_timeout,
            limits=CallerLimits(
                requests_per_second=self.config.requests_per_second_per_caller,
                sessions=self.config.sessions_per_caller,
                streams=self.config.streams_per_caller,
            ),
            ownership=node,
        )
        self.cluster = ClusterEdge(node, self.config, self.registry, self.store, upstream) if node else None
        self.guard = RequestGuard(self.config)
        self.proxies = TrustedProxies(self.config.trusted_proxies)
        modern = cast(ModernUpstream, upstream) if hasattr(upstream, "modern_server") else None
        if self.config.modern_only and modern is None:
            raise ValueError(
                "modern_only needs an upstream that serves the 2026-07-28 era "
                "(an SDK server, a stdio process, an HTTP server, or one wrapped in ModernFront)"
            )
        self.streamable = Streamable(self.config, self.registry, modern)
        self.legacy = LegacySSE(self.config, self.registry)
        self.dashboard = Dashboard(self.config, self.registry, self.metrics) if self.config.dashboard else None
        self._running = False
        base = self.config.path.rstrip("/") or "/"
        self._mcp_paths = {base, base + "/"} if base != "/" else {"/"}
        self._sse_paths = {self.config.sse_path.rstrip("/"), self.config.sse_path.rstrip("/") + "/"}
        self._message_paths = {self.config.messages_path.rstrip("/"), self.config.messages_path.rstrip("/") + "/"}
        # RFC 9728 §3.1: at the root, and with the resource's path inserted after the well-known part.
        self._metadata_paths = {WELL_KNOWN_PRM, WELL_KNOWN_PRM + base.rstrip("/")} if base != "/" else {WELL_KNOWN_PRM}

    @asynccontextmanager
    async def run(self) -> AsyncIterator[None]:
        """Run the upstream's lifespan and the sessions; use it when mounting inside another app."""
        async with AsyncExitStack() as stack:
            if isinstance(self.store, AbstractAsyncContextManager):
                # A store with a lifecycle (SQLite: its file and writer) outlives the sessions, whose
                # ending still writes to it.
                await stack.enter_async_context(self.store)
            await stack.enter_async_context(self.upstream.lifespan())
            if self.cluster is not None:
                await stack.enter_async_context(self.cluster.running())
            await stack.enter_async_context(self.registry.running())
            self._running = True
            try:
                yield
            finally:
                self._running = False

    def listening_at(self, url: str, *, own_port: bool = False) -> None:
        """Where the server listens (the command line tells it once the socket is bound); a worker
        of several is reached by its peers on a port of its own (``own_port``)."""
        if self.cluster is not None:
            self.cluster.node.listening_at(url, own_port=own_port)

    def begin_shutdown(self) -> None:
        """The server stops taking work: end the stateless era's listen streams with their completion
        result, and the session era's streams with a ``retry`` (their clients resume, here after a
        restart or on another node), now rather than when the graceful-shutdown timeout cuts them."""
        end = getattr(self.upstream, "end_subscriptions", None)
        if end is not None:
            end()
        if self.cluster is not None:
            self.cluster.begin_draining()
        ended = self.registry.end_streams(self.config.retry_ms)
        if ended:
            logger.info(
                "shutting down: %d stream(s) ended with retry: %d ms, to be resumed", ended, self.config.retry_ms
            )
        if self.dashboard is not None:
            self.dashboard.stop()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http":
            await self._http(scope, receive, send)
        elif kind == "lifespan":
            await self._lifespan(receive, send)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        message = await receive()
        assert message["type"] == "lifespan.startup"
        try:
            async with self.run():
                await send({"type": "lifespan.startup.complete"})
                message = await receive()
                assert message["type"] == "lifespan.shutdown"
                unfinished = await self.registry.settle(self.config.shutdown_grace)
                if unfinished:
                    logger.info("shutting down with calls of %d session(s) still in progress", unfinished)
        except CANNOT_START as exc:  # the operator's to fix, and the message says how: no traceback
            logger.error("mcp-sse cannot start: %s", exc)
            await send({"type": "lifespan.startup.failed", "message": str(exc)})
            return
        except BaseException as exc:
            logger.exception("mcp-sse lifespan failed")
            await send({"type": "lifespan.startup.failed", "message": str(exc)})
            raise
        await send({"type": "lifespan.shutdown.complete"})

    def _resource_url(self, scope: Scope, headers: dict[str, str]) -> str:
        """The URL clients use for the MCP endpoint: configured, else from the request's Host."""
        if self.config.resource_url:
            return self.config.resource_url
        return f"{scope.get('scheme', 'http')}://{headers.get('host', 'localhost')}{self.config.path}"

    def _metadata_url(self, scope: Scope, headers: dict[str, str]) -> str:
        parts = urlsplit(self._resource_url(scope, headers))
        return f"{parts.scheme}://{parts.netloc}{WELL_KNOWN_PRM}{parts.path.rstrip('/')}"

    async def _authenticate(self, scope: Scope, headers: dict[str, str]) -> None:
        """Every request but a CORS preflight, ``/healthz`` and the metadata must carry a valid
        bearer token when the server checks them; its principal rides along in the scope."""
        if self.authenticator is None or scope["method"] == "OPTIONS":
            return
        path = scope["path"]
        if path == "/healthz" or path.startswith(WELL_KNOWN_PRM):
            return
        metadata = self._metadata_url(scope, headers) if self.config.authorization_servers else None
        token = await self.authenticator.authenticate(headers, metadata)
        bind_access_token(scope, token)
        scope[PRINCIPAL_KEY] = principal_of(token)
        if token.expires_at is not None:
            scope[EXPIRY_KEY] = token.expires_at + self.authenticator.leeway

    def _limit_rate(self, scope: Scope) -> None:
        """429 for a caller over its request rate (``--requests-per-second-per-caller``)."""
        if scope["method"] == "OPTIONS" or scope["path"] == "/healthz":
            return
        refused = self.registry.limits.request(caller_of(scope), time.monotonic())
        if refused is not None:
            raise too_many_for_caller(refused)

    def _serve_metadata(self, scope: Scope, send: Send, headers: dict[str, str], extra: HeaderList) -> Awaitable[None]:
        """RFC 9728 protected resource metadata: where to get a token for this server."""
        document = protected_resource_metadata(
            self._resource_url(scope, headers),
            self.config.authorization_servers,
            self.config.required_scopes,
        )
        return send_plain(send, 200, orjson.dumps(document), extra, JSON_CONTENT_TYPE)

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        tracking_send = _TrackingSend(send)
        headers = header_map(scope)
        extra: HeaderList = []
        if self.proxies:
            self._apply_forwarding(scope, headers)
        if self.cluster is not None and HOP_HEADER in headers:
            self.cluster.accept_hop(scope, headers)
        try:
            if sum(len(name) + len(value) for name, value in scope["headers"]) > self.config.max_header_bytes:
                # httptools sets no bound of its own; h11's is 16 KiB, nginx's 32 KiB by default.
                limit = self.config.max_header_bytes
                raise HeadersTooLarge(f"Request Header Fields Too Large: more than {limit} bytes")
            self.guard.check(scope, headers)
            extra = self.guard.cors_headers(headers)
            await self._authenticate(scope, headers)
            self._limit_rate(scope)
            await self._route(scope, receive, tracking_send, headers, extra)
        except Rejection as error:
            if tracking_send.started:
                raise
            reason = type(error).__name__
            client = scope.get("client")
            address = str(client[0]) if client else "unknown"
            logger.info(
                "%s %s from %s -> %d: %s",
                scope["method"],
                scope["path"],
                address,
                error.status,
                error.message,
                extra=fields(status=error.status, reason=reason, session_id=headers.get(SESSION_ID), client=address),
            )
            self.metrics.rejected(error.status, reason)
            await send_error(send, error, extra)
        except ClientGone:
            return
        except Exception:
            logger.exception("%s %s failed", scope["method"], scope["path"])
            if not tracking_send.started:
                body = jsonrpc.error_body(jsonrpc.INTERNAL_ERROR, "Internal error: the server failed this request")
                await send_plain(send, 500, body, extra, JSON_CONTENT_TYPE)

    def _apply_forwarding(self, scope: Scope, headers: dict[str, str]) -> None:
        """Behind a trusted proxy, the request is seen as its client made it: the client's address
        (logs, limits), the Host it used (the Host check, the resource URL) and its scheme."""
        peer = scope.get("client")
        view = self.proxies.resolve(peer[0] if peer else None, headers)
        if view is None:
            return
        if view.client is not None:
            scope["client"] = (view.client, 0)
        if view.host is not None:
            headers["host"] = view.host
        if view.scheme is not None:
            scope["scheme"] = view.scheme

    def _route(
        self, scope: Scope, receive: Receive, send: Send, headers: dict[str, str], extra: HeaderList
    ) -> Awaitable[None]:
        path = scope["path"]
        root = scope.get("root_path", "")
        if root and path.startswith(root):
            path = path[len(root) :] or "/"
        method = scope["method"]
        if path in self._metadata_paths and self.config.authorization_servers:
            if method == "OPTIONS":
                return self._preflight(send, headers, "GET, OPTIONS")
            return self._serve_metadata(scope, send, headers, extra)
        if self.config.modern_only and path in self._mcp_paths | self._sse_paths | self._message_paths:
            return self._route_modern_only(scope, receive, send, headers, extra, path, method)
        if path in self._mcp_paths:
            handler: Any = {
                "POST": self.streamable.post,
                "GET": self.streamable.get,
                "DELETE": self.streamable.delete,
            }.get(method)
            if method == "OPTIONS":
                return self._preflight(send, headers, MCP_METHODS)
            if handler is None:
                raise MethodNotAllowed(f"Method Not Allowed: {method} {path}", headers={"Allow": MCP_METHODS})
        elif path in self._sse_paths:
            if method == "OPTIONS":
                return self._preflight(send, headers, "GET, OPTIONS")
            if method != "GET":
                raise MethodNotAllowed(f"Method Not Allowed: {method} {path}", headers={"Allow": "GET, OPTIONS"})
            handler = self.legacy.stream
        elif path in self._message_paths:
            if method == "OPTIONS":
                return self._preflight(send, headers, "POST, OPTIONS")
            if method != "POST":
                raise MethodNotAllowed(f"Method Not Allowed: {method} {path}", headers={"Allow": "POST, OPTIONS"})
            handler = self.legacy.post
        elif self.dashboard is not None and self.dashboard.handles(path) and method == "GET":
            return self.dashboard.serve(scope, receive, send, path, extra)
        elif path == "/healthz" and method == "GET":
            return send_plain(send, 200, b'{"status":"ok"}', extra, JSON_CONTENT_TYPE)
        elif path == "/metrics" and method == "GET":
            return send_plain(send, 200, self.metrics.render(), extra, METRICS_CONTENT_TYPE)
        else:
            raise NotFound(f"Not Found: {path}; the MCP endpoint is {self.config.path}")
        if not self._running:
            raise ServerNotReady("Server not ready: the app's lifespan has not started (run it with lifespan on)")
        if self.cluster is not None:
            session_id = headers.get(SESSION_ID) if path in self._mcp_paths else _query_session(scope, path, self)
            if session_id:
                return self.cluster.route_session(session_id, scope, receive, send, headers, extra, handler)
            if (
                method == "POST"
                and self.cluster.serves_stateless_retries
                and eras.is_modern(headers.get(PROTOCOL_VERSION, ""))
            ):
                return self.cluster.route_stateless(scope, receive, send, headers, extra, handler)
        # Returned, not awaited: the caller awaits it, and a held stream keeps one frame less.
        return cast("Awaitable[None]", handler(scope, receive, send, headers, extra))

    def _route_modern_only(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        headers: dict[str, str],
        extra: HeaderList,
        path: str,
        method: str,
    ) -> Awaitable[None]:
        """A stateless-only server (MCP 2026-07-28, Versioning: https://modelcontextprotocol.io/specification/2026-07-28/basic/versioning):
        every POST is a 2026-07-28 request, session headers mean nothing, and the session era's GET,
        DELETE and HTTP+SSE answer 405."""
        if method == "OPTIONS":
            return self._preflight(send, headers, "POST, OPTIONS")
        if method != "POST" or path not in self._mcp_paths:
            raise MethodNotAllowed(
                f"Method Not Allowed: {method} {path}; this server speaks only the stateless 2026-07-28 era",
                headers={"Allow": "POST"},
            )
        if not self._running:
            raise ServerNotReady("Server not ready: the app's lifespan has not started (run it with lifespan on)")
        return self.streamable.post_stateless(scope, receive, send, headers)

    async def _preflight(self, send: Send, headers: dict[str, str], allow: str) -> None:
        out = self.guard.cors_headers(headers, preflight=True)
        out.append((b"allow", allow.encode()))
        await send_plain(send, 204, b"", out)


class _TrackingSend:
    """The ASGI ``send``, noting whether the response has started (an error can still be sent
    before, not after). A slotted object rather than a closure: it lives as long as the stream."""

    __slots__ = ("send", "started")

    def __init__(self, send: Send) -> None:
        self.send = send
        self.started = False

    def __call__(self, message: ASGIMessage) -> Awaitable[None]:
        if message["type"] == "http.response.start":
            self.started = True
        return self.send(message)


def _query_session(scope: Scope, path: str, app: McpApp) -> str | None:
    """The session a 2024-11-05 POST names (``/messages?session_id=``)."""
    if path not in app._message_paths:
        return None
    values = parse_qs(scope.get("query_string", b"").decode("latin-1")).get("session_id")
    return values[0] if values else None


CANNOT_START = (RedisUnavailable, RedisStoreInUse, EventStoreInUse, FileNotFoundError, PermissionError)
"""What stops the app from starting that its operator fixes (a store that cannot be reached or opened)."""


def event_store_from(config: ServerConfig) -> EventStore:
    """The event store ``config.event_store`` names, bounded by the config's replay window."""
    kind, _, path = config.event_store.partition(":")
    if kind in REDIS_SCHEMES:
        return RedisEventStore(
            config.event_store,
            config.max_events_per_session,
            config.max_event_bytes_per_session,
            max_age_seconds=config.event_store_max_age,
            shared=config.redis is not None,  # a cluster: each node writes the sessions it owns
        )
    if kind == "sqlite":
        return SQLiteEventStore(
            path,
            config.max_events_per_session,
            config.max_event_bytes_per_session,
            max_age_seconds=config.event_store_max_age,
        )
    return MemoryEventStore(config.max_events_per_session, config.max_event_bytes_per_session)


def authenticator_from(config: ServerConfig, verifier: TokenVerifier | None = None) -> Authenticator | None:
    """The bearer-token check the config names (or the given verifier), None when there is none."""
    if verifier is None:
        if config.auth_token is not None:
            verifier = SharedTokenVerifier(config.auth_token)
        elif config.token_file is not None:
            verifier = TokenFileVerifier(config.token_file)
        elif config.jwks_url is not None or config.jwt_key is not None:
            audiences = config.audiences or ((config.resource_url,) if config.resource_url else ())
            if not audiences:
                raise ValueError("JWT access tokens need --resource-url (their audience) or --audience")
            verifier = JWTVerifier(
                audience=audiences,
                issuer=config.issuer,
                jwks_url=config.jwks_url,
                key_file=config.jwt_key,
                leeway=config.token_leeway,
            )
    return Authenticator(verifier, config.required_scopes, config.token_leeway) if verifier is not None else None


def create_app(
    server: Upstream | Server[Any] | MCPServer[Any],
    config: ServerConfig | None = None,
    *,
    store: EventStore | None = None,
    token_verifier: TokenVerifier | None = None,
) -> McpApp:
    """The ASGI app for an official-SDK server (``Server`` or ``MCPServer``) or any ``Upstream``.

    ``token_verifier``: any verifier of the official SDK's ``TokenVerifier`` protocol
    (``verify_token(token) -> AccessToken | None``); every request must then carry a token it accepts.
    """
    upstream: Upstream = SDKUpstream(server) if isinstance(server, Server | MCPServer) else server
    if isinstance(upstream, StdioUpstream | SharedStdioUpstream | HTTPUpstream):
        # The stateless era in front of a server that speaks 2025.
        upstream = ModernFront(upstream, spare_processes=(config or ServerConfig()).spare_processes)
    return McpApp(upstream, config, store, token_verifier)
