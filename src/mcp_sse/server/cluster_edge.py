"""The HTTP edge of a cluster node (``--redis``): which requests are served here and which go to
another node, what a node does when it joins, is taken for dead, loses Redis, or leaves.

``McpApp`` asks ``ClusterEdge`` about every request that names a session (``route_session``) and
every stateless retry (``route_stateless``); the decisions are ``cluster/placement.py``'s, the
Redis facts ``cluster/directory.py``'s. docs/architecture.md, "The cluster".
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import orjson

from mcp_sse.cluster.forward import CLIENT_HEADER, HOP_HEADER, OwnerUnreachable
from mcp_sse.cluster.node import ClusterNode
from mcp_sse.cluster.placement import RetryLater, ServeHere
from mcp_sse.config import ServerConfig
from mcp_sse.core.events import EventStore
from mcp_sse.core.registry import OwnershipUnavailable, SessionRegistry
from mcp_sse.errors import TryAgain
from mcp_sse.logs import fields
from mcp_sse.sdk_compat import share_request_state_key, use_subscription_bus
from mcp_sse.server.asgi import ASGIMessage, HeaderList, Receive, Scope, Send, read_body
from mcp_sse.server.intake import cluster_away
from mcp_sse.upstream.base import Upstream
from mcp_sse.upstream.modern_front import ModernFront, state_holder
from mcp_sse.upstream.sdk import SDKUpstream

__all__ = ["HOP_KEY", "ClusterEdge", "replaying"]

logger = logging.getLogger(__name__)

HOP_KEY = "mcp_sse.forwarded_by_a_node"
"""Set in the scope of a request another node forwarded: it is served here, never forwarded again."""


def replaying(body: bytes, receive: Receive) -> Receive:
    """A ``receive`` that gives the body already read, then what the connection says next (the
    client leaving)."""
    delivered = False

    async def replay() -> ASGIMessage:
        nonlocal delivered
        if not delivered:
            delivered = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


class ClusterEdge:
    def __init__(
        self,
        node: ClusterNode,
        config: ServerConfig,
        registry: SessionRegistry,
        store: EventStore,
        upstream: Upstream,
    ) -> None:
        self.node = node
        self.config = config
        self.registry = registry
        self.store = store
        self.upstream = upstream
        self._share_change_events()

    def _share_change_events(self) -> None:
        """Listen streams on every node hear a change made on any (the stateless era's events)."""
        if isinstance(self.upstream, SDKUpstream):
            if not use_subscription_bus(self.upstream.source, self.node.bus("sdk")):
                logger.warning("the SDK server has its own listen handler: its change events stay on one node")
        elif isinstance(self.upstream, ModernFront):
            self.upstream.bus_factory = self.node.bus
            self.upstream.state_owner = lambda: self.node.node  # a retry goes where its call waits

    @asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        """Joined after the store (sessions it takes over load from there), left after the sessions
        stop (so peers take them over only once this node has let them go)."""
        async with self.node.running(self._lost_membership, self._write_out, self._redis_away):
            if isinstance(self.upstream, SDKUpstream):
                # A stateless retry may land on any node: every node unseals what any sealed.
                share_request_state_key(self.upstream.source, await self.node.shared_secret("request-state"))
            yield

    def begin_draining(self) -> None:
        asyncio.get_running_loop().create_task(self.node.start_draining())

    def accept_hop(self, scope: Scope, headers: dict[str, str]) -> None:
        """A request another node of the cluster forwarded: served here, seen as from its client.
        Without the cluster's token the header is a client's, and means nothing."""
        if self.node.is_hop(headers.pop(HOP_HEADER, None)):
            scope[HOP_KEY] = True
            client = headers.pop(CLIENT_HEADER, None)
            if client:
                scope["client"] = (client, 0)

    # --- what the node does when ... ------------------------------------------------------------

    async def _write_out(self) -> None:
        """... it leaves: everything the sessions did (they were kept, calls still in progress
        answered with an error) is in the store before another node may take them."""
        flush = getattr(self.store, "flush", None)
        if flush is not None:
            await flush()

    async def _redis_away(self) -> None:
        """... Redis cannot be reached: what streams now carry could not be kept. Each ends with a
        retry; its client comes back (503 with Retry-After while Redis is away) and resumes from
        what was kept once it is back."""
        ended = self.registry.end_streams(self.config.retry_ms)
        logger.warning("the cluster's Redis cannot be reached: %d stream(s) ended with a retry", ended)

    async def _lost_membership(self) -> None:
        """... the cluster took it for dead: its sessions may run elsewhere now. Every copy here
        ends (the store keeps them); a request for one goes to whoever owns it."""
        for session in self.registry.sessions():
            await self._drop_local(session.id)

    async def _drop_local(self, session_id: str) -> None:
        session = self.registry.get(session_id)
        if session is not None:
            await self.registry.end(session, keep=True)
        forget = getattr(self.store, "forget", None)
        if forget is not None:
            await forget(session_id)

    # --- requests -------------------------------------------------------------------------------

    async def route_session(
        self,
        session_id: str,
        scope: Scope,
        receive: Receive,
        send: Send,
        headers: dict[str, str],
        extra: HeaderList,
        handler: Any,
    ) -> None:
        """A request for a session: served here by its owner, else forwarded to it (docs/deploy.md,
        "A cluster"). Its body is read once, under our limits, whichever it is."""
        body = b""
        if scope["method"] == "POST":
            body = await read_body(receive, headers, self.config.max_body_bytes, self.config.body_timeout)
        hopped = bool(scope.get(HOP_KEY))
        for _ in range(3):
            try:
                where = await self.node.placement(
                    session_id, hopped=hopped, held_here=self.registry.get(session_id) is not None
                )
            except ValueError:
                break  # not a session id: the handler answers 404 as for any unknown session
            except OwnershipUnavailable as exc:
                raise cluster_away(exc) from None
            if isinstance(where, RetryLater):
                raise TryAgain(f"Service Unavailable: {where.reason}; try again", headers={"Retry-After": "1"})
            if isinstance(where, ServeHere):
                if where.revive:
                    await self._drop_local(session_id)  # whatever this node remembers of it is stale
                logger.debug("served a request of session %s", session_id, extra=fields(session_id=session_id))
                break
            if where.drop_local:
                await self._drop_local(session_id)
            try:
                logger.debug(
                    "forwarded a request of session %s to node %s",
                    session_id,
                    where.owner.node,
                    extra=fields(session_id=session_id),
                )
                await self.node.forward(where.owner, scope, body, receive, send)
                return
            except OwnerUnreachable:
                self.node.forget_owner(session_id)
                try:
                    evicted = await self.node.evict(where.owner)
                except OwnershipUnavailable as exc:
                    raise cluster_away(exc) from None
                if not evicted:  # else gone: the next placement claims its sessions
                    raise TryAgain(
                        "Service Unavailable: the session's node is finishing its calls before it stops; "
                        "try again shortly",
                        headers={"Retry-After": "1"},
                    ) from None
        await handler(scope, replaying(body, receive), send, headers, extra)

    async def route_stateless(
        self, scope: Scope, receive: Receive, send: Send, headers: dict[str, str], extra: HeaderList, handler: Any
    ) -> None:
        """A stateless retry that answers a question of an upstream call waiting on another node
        (the front's ``requestState`` names it) goes to that node; anything else is served here."""
        body = await read_body(receive, headers, self.config.max_body_bytes, self.config.body_timeout)
        try:
            parsed = orjson.loads(body)
        except orjson.JSONDecodeError:
            parsed = None
        params = parsed.get("params") if isinstance(parsed, dict) else None
        holder = state_holder(params if isinstance(params, dict) else None)
        if holder is not None and not scope.get(HOP_KEY):
            try:
                owner = await self.node.member(holder)
            except OwnershipUnavailable as exc:
                raise cluster_away(exc) from None
            if owner is not None:
                try:
                    await self.node.forward(owner, scope, body, receive, send)
                    return
                except OwnerUnreachable:
                    pass  # gone, and its waiting call with it: answered here as an unknown state
        await handler(scope, replaying(body, receive), send, headers, extra)

    @property
    def serves_stateless_retries(self) -> bool:
        """Whether stateless requests may be retries the front holds (a stdio or HTTP upstream)."""
        return isinstance(self.upstream, ModernFront)
