"""Every use of the official SDK's private API, in one place that the ``mcp>=2.3,<2.4`` pin in
pyproject.toml protects: when a minor release moves one of these, this module is what changes.

What is here: the SDK's stateless (2026-07-28) HTTP entry point; the bus an SDK server's change
events travel on and the key its ``requestState`` is sealed with (a cluster shares both); the
low-level ``Server`` behind an ``MCPServer``; how the caller's access token reaches handlers (where
the SDK's bearer middleware puts it); the request context the SDK hands to handlers (a Starlette
``Request``, what the SDK's own HTTP transports give its tools as ``ctx.request_context.request``);
and the one step of the SDK's OAuth client where scopes the user asked for can join those a
server challenged for. No other module imports a private ``mcp`` module (a test walks the sources
to keep it so).
"""

from __future__ import annotations

from collections.abc import Mapping, MutableMapping
from typing import Any

from mcp.client.auth import OAuthClientProvider
from mcp.server._streamable_http_modern import handle_modern_request
from mcp.server.auth.middleware.auth_context import auth_context_var
from mcp.server.auth.middleware.bearer_auth import AuthenticatedUser
from mcp.server.auth.provider import AccessToken
from mcp.server.lowlevel.server import Server
from mcp.server.mcpserver import MCPServer
from mcp.server.request_state import RequestStateBoundary, RequestStateSecurity
from mcp.server.subscriptions import ListenHandler, SubscriptionBus
from starlette.authentication import AuthCredentials
from starlette.requests import Request

__all__ = [
    "bind_access_token",
    "lowlevel_server",
    "request_context",
    "serve_stateless",
    "share_request_state_key",
    "use_subscription_bus",
    "with_extra_scopes",
]


def lowlevel_server(server: MCPServer[Any]) -> Server[Any]:
    """The low-level ``Server`` behind an ``MCPServer`` (the SDK's own Client reaches it the same way)."""
    return server._lowlevel_server  # pyright: ignore[reportPrivateUsage]


def use_subscription_bus(server: Server[Any] | MCPServer[Any], bus: SubscriptionBus) -> bool:
    """Have an SDK server's change events (``ctx.notify_*``) and its ``subscriptions/listen``
    streams go through ``bus`` (a cluster's, so a change on one node reaches listeners on all).
    The SDK takes its bus once, at construction; False when the server's listen handler is not
    the SDK's own (nothing to rewire)."""
    if isinstance(server, MCPServer):
        server._subscriptions = bus  # pyright: ignore[reportPrivateUsage]
    low = server if isinstance(server, Server) else lowlevel_server(server)
    entry = low.get_request_handler("subscriptions/listen")
    if entry is None or not isinstance(entry.handler, ListenHandler):
        return False
    entry.handler._bus = bus  # pyright: ignore[reportPrivateUsage]
    return True


def share_request_state_key(server: Server[Any] | MCPServer[Any], key: bytes) -> bool:
    """Seal an SDK server's multi-round-trip ``requestState`` with ``key`` (one every node of a
    cluster holds), so a retry may land on any node. ``MCPServer`` seals with a key of its own
    process unless told otherwise; its TTL, principal binding and audience are kept. False when
    the server has no such boundary."""
    low = server if isinstance(server, Server) else lowlevel_server(server)
    for index, middleware in enumerate(low.middleware):
        if isinstance(middleware, RequestStateBoundary):
            old = middleware._security  # pyright: ignore[reportPrivateUsage]
            shared = RequestStateSecurity(
                keys=[key], ttl=old.ttl, bind_principal=old.bind_principal, audience=old.audience
            )
            audience = middleware._audience  # pyright: ignore[reportPrivateUsage]
            low.middleware[index] = RequestStateBoundary(shared, default_audience=audience)
            return True
    return False


def bind_access_token(scope: MutableMapping[str, Any], token: AccessToken) -> None:
    """Make the caller's token what an SDK handler sees, as under the SDK's own transport: the
    request's ``user`` (``ctx.request.user.access_token``) and ``get_access_token()`` (the SDK's
    context variable, which a session's task inherits from the request that opens it)."""
    user = AuthenticatedUser(token)
    scope["user"] = user
    scope["auth"] = AuthCredentials(token.scopes)
    auth_context_var.set(user)


def request_context(scope: Mapping[str, Any]) -> Request | None:
    """What the SDK gives a handler as the HTTP request a message arrived in; None when it did not
    arrive over HTTP."""
    return Request(dict(scope)) if scope.get("type") == "http" else None


async def serve_stateless(
    server: Server[Any], lifespan_state: Any, scope: Any, receive: Any, send: Any, *, json_response: bool
) -> None:
    """Answer one stateless 2026-07-28 HTTP request with the SDK's own entry point for that era.

    The caller has already checked Host/Origin and the body size (no transport security settings
    here); the SDK validates the era's headers and ``_meta``, and treats a closed response stream as
    cancellation.
    """
    await handle_modern_request(server, None, json_response, lifespan_state, scope, receive, send)


def with_extra_scopes(provider: type[OAuthClientProvider], scope: str | None) -> type[OAuthClientProvider]:
    """``provider`` asking also for ``scope`` (``--scope``) whenever it authorizes. The SDK picks
    the scopes a server challenges for (or its metadata lists) and overwrites its client metadata's
    own with them just before it builds the authorization URL (``_perform_authorization_code_grant``),
    so the user's scopes are joined in there."""
    if not scope:
        return provider
    extra = scope.split()

    class ScopedProvider(provider):  # type: ignore[valid-type,misc]
        async def _perform_authorization_code_grant(self) -> tuple[str, str]:
            metadata = self.context.client_metadata
            chosen = (metadata.scope or "").split()
            metadata.scope = " ".join([*chosen, *(s for s in extra if s not in chosen)])
            grant: tuple[str, str] = await super()._perform_authorization_code_grant()
            return grant

    return ScopedProvider
