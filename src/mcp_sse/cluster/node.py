"""This process as a node of a cluster: its membership, its claims, and the forwarding of requests
that belong to another node. The HTTP edge (``server/app.py``) asks it where each request for a
session goes; the session registry tells it which sessions open and end here (``Ownership``)."""

from __future__ import annotations

import hmac
import logging
import socket
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import anyio

from mcp_sse.cluster.bus import ClusterBus, listen_forever
from mcp_sse.cluster.directory import NODE_TTL, Directory
from mcp_sse.cluster.forward import Forwarder
from mcp_sse.cluster.placement import Owner, Placement, ServeHere, place

__all__ = ["OWNER_MEMORY", "ClusterNode"]

OWNER_MEMORY = 2.0
"""Seconds a node remembers which node owns a session it forwards requests for."""

logger = logging.getLogger(__name__)


class ClusterNode:
    def __init__(self, redis_url: str, address: str | None = None, *, node_ttl: float = NODE_TTL) -> None:
        self.redis_url = redis_url
        self.address = address
        self.node_ttl = node_ttl
        self._directory: Directory | None = None
        self._forwarder: Forwarder | None = None
        self._buses: dict[str, ClusterBus] = {}
        self._owners: dict[str, tuple[Owner, float]] = {}

    def bus(self, name: str) -> ClusterBus:
        """The cluster-wide bus ``name`` for change events of the stateless era (made once)."""
        channel = f"mcp-sse:events:{name}"
        if channel not in self._buses:
            self._buses[channel] = ClusterBus(channel, lambda: self.directory.redis)
        return self._buses[channel]

    def listening_at(self, url: str, *, own_port: bool = False) -> None:
        """Where the server listens: what peers are told, when no address was configured.
        ``own_port``: one of several workers on one machine, each reached on a port of its own;
        a configured address then names the host, and this worker's port goes with it."""
        parts = urlsplit(url)
        if self.address is not None and not own_port:
            return
        if self.address is not None:
            configured = urlsplit(self.address)
            host, scheme = configured.hostname or "127.0.0.1", configured.scheme
        else:
            host, scheme = parts.hostname or "127.0.0.1", parts.scheme
        if host in ("0.0.0.0", "::"):
            host = socket.gethostname()
        netloc = f"[{host}]:{parts.port}" if ":" in host else f"{host}:{parts.port}"
        self.address = urlunsplit((scheme, netloc, "", "", ""))

    @property
    def directory(self) -> Directory:
        if self._directory is None:
            raise RuntimeError("the cluster node is not running")
        return self._directory

    @property
    def node(self) -> str:
        return self.directory.node

    @asynccontextmanager
    async def running(
        self,
        on_lost: Callable[[], Awaitable[None]],
        before_leaving: Callable[[], Awaitable[None]],
        on_unreachable: Callable[[], Awaitable[None]],
    ) -> AsyncIterator[None]:
        """Join the cluster for as long as the server runs; leave when it stops (its sessions then
        go to whichever node next needs them, once ``before_leaving`` wrote out what they did).
        ``on_lost``: this node was taken for dead; ``on_unreachable``: Redis went away."""
        if self.address is None:
            raise RuntimeError("a cluster node needs cluster_address (where other nodes reach it)")
        self._directory = Directory(self.redis_url, self.address, node_ttl=self.node_ttl)
        await self._directory.open()
        self._forwarder = Forwarder()
        try:
            async with anyio.create_task_group() as tg:
                tg.start_soon(self._directory.beat_forever, on_lost, on_unreachable)
                tg.start_soon(listen_forever, lambda: self.directory.redis, "mcp-sse:events:*", self._buses)
                try:
                    yield
                finally:
                    with anyio.CancelScope(shield=True):
                        await before_leaving()
                    tg.cancel_scope.cancel()
        finally:
            await self._forwarder.aclose()
            await self._directory.close()
            self._directory = None

    # --- Ownership, for the session registry ------------------------------------------------------

    async def claim_new(self, session_id: str) -> None:
        await self.directory.claim(session_id)

    async def release(self, session_id: str) -> None:
        await self.directory.release(session_id)

    # --- the edge's questions -----------------------------------------------------------------

    def is_hop(self, value: str | None) -> bool:
        """Whether a request came from another node of this cluster (it carries the cluster token)."""
        return value is not None and self._directory is not None and hmac.compare_digest(value, self.directory.token)

    async def placement(self, session_id: str, *, hopped: bool, held_here: bool) -> Placement:
        """Where the request goes. A session this node runs, while its membership surely holds,
        needs no round trip to Redis; an owner found for a forwarded request is remembered for a
        moment (``OWNER_MEMORY``), and forgotten as soon as reaching it fails."""
        if held_here and self.directory.surely_member:
            return ServeHere(revive=False)
        known = self._owners.get(session_id)
        if known is not None and not held_here and anyio.current_time() < known[1]:
            owner = known[0]
        else:
            owner = await self.directory.claim(session_id)
            if owner.node != self.node:
                self._owners[session_id] = (owner, anyio.current_time() + OWNER_MEMORY)
                if len(self._owners) > 10_000:
                    self._owners.clear()  # a bound, not a policy: the next requests ask again
        return place(self.node, owner, hopped=hopped, held_here=held_here)

    async def member(self, node: str) -> Owner | None:
        return None if node == self.node else await self.directory.member(node)

    def forget_owner(self, session_id: str) -> None:
        self._owners.pop(session_id, None)

    async def forward(
        self, owner: Owner, scope: MutableMapping[str, Any], body: bytes, receive: Any, send: Any
    ) -> None:
        assert self._forwarder is not None
        await self._forwarder.forward(owner, self.directory.token, scope, body, receive, send)

    async def evict(self, owner: Owner) -> bool:
        """``owner`` cannot be reached: unless it is draining (then it is finishing its calls, and
        the request should come back shortly: False), it is gone, and its membership with it."""
        if await self.directory.is_draining(owner):
            return False
        await self.directory.evict(owner)
        return True

    async def shared_secret(self, name: str) -> bytes:
        return await self.directory.shared_secret(name)

    async def start_draining(self) -> None:
        if self._directory is not None:
            await self._directory.mark_draining()
