"""The cluster's shared facts in Redis: which nodes are alive (and where), and which node owns each
session. Every change is one atomic script, so two nodes can never both believe they won a claim.

- A node is a key ``<prefix>:node:<id>`` holding its address, with a TTL its heartbeat refreshes
  (``NODE_TTL``; beats come three times as often). A node that stops deletes it; one that dies
  stops refreshing it, and a peer that finds its port closed deletes it at once (``evict``).
- A session's owner is ``<prefix>:<session>:owner`` holding a node id. ``claim`` gives the session
  to the caller unless a live node holds it, and answers who owns it either way.
- A node whose own key expired (a long pause, a partition) may have lost sessions to others: it
  learns so at its next beat (``on_lost``), drops what it runs, and joins again as a new member.
- ``<prefix>:cluster-token`` is a random secret every node reads: a request forwarded between
  nodes carries it, so a client cannot pose as a forwarding node.
"""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
import socket
from collections.abc import Awaitable, Callable
from typing import Any

import anyio
import redis.asyncio as aioredis
from redis.exceptions import RedisError

from mcp_sse.cluster.placement import Owner
from mcp_sse.core.redis_store import RedisUnavailable, session_key
from mcp_sse.core.registry import OwnershipUnavailable

__all__ = ["NODE_TTL", "Directory"]

logger = logging.getLogger(__name__)

NODE_TTL = 6.0
"""Seconds a node counts as alive after its last heartbeat."""

OWNER_TTL = 7 * 86_400.0
"""Seconds an owner record outlives its last claim (a session's own keys expire sooner)."""

# KEYS[1] owner key; ARGV: me, my address, node key prefix, owner ttl (ms)
_CLAIM = """
local owner = redis.call('GET', KEYS[1])
if owner and owner ~= ARGV[1] then
  local address = redis.call('GET', ARGV[3] .. owner)
  if address then
    return {owner, address}
  end
end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[4])
return {ARGV[1], ARGV[2]}
"""

# KEYS[1] a key; ARGV[1] the value it must still hold for it to go
_DELETE_IF = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""


class Directory:
    def __init__(self, url: str, address: str, *, prefix: str = "mcp-sse", node_ttl: float = NODE_TTL) -> None:
        self.url = url
        self.address = address
        self.prefix = prefix
        self.node_ttl_ms = max(300, int(node_ttl * 1000))
        self.node = f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(4)}"
        self.token = ""
        self.beat_at = 0.0  # when this node's membership was last confirmed (anyio clock)
        self._redis: aioredis.Redis | None = None

    @property
    def redis(self) -> aioredis.Redis:
        if self._redis is None:
            raise RuntimeError("the cluster directory is not open")
        return self._redis

    def _node_key(self, node: str) -> str:
        return f"{self.prefix}:node:{node}"

    def _owner_key(self, session_id: str) -> str:
        return f"{session_key(self.prefix, session_id)}:owner"

    async def open(self) -> None:
        client = aioredis.Redis.from_url(self.url, socket_connect_timeout=5.0, health_check_interval=15)
        try:
            await client.set(f"{self.prefix}:cluster-token", secrets.token_urlsafe(32), nx=True)
            token: Any = await client.get(f"{self.prefix}:cluster-token")
            await client.set(self._node_key(self.node), self.address, px=self.node_ttl_ms)
        except (RedisError, OSError) as exc:
            await client.aclose()
            raise RedisUnavailable(f"cannot reach the cluster's Redis: {exc}") from None
        self.token = bytes(token).decode()
        self.beat_at = anyio.current_time()
        self._redis = client
        logger.info("joined the cluster as node %s at %s", self.node, self.address)

    async def close(self) -> None:
        """Leave: the node's sessions go to whichever node next needs them."""
        if self._redis is None:
            return
        with contextlib.suppress(RedisError, OSError):
            await self._redis.eval(_DELETE_IF, 1, self._node_key(self.node), self.address)
        await self._redis.aclose()
        self._redis = None

    async def beat_forever(
        self, on_lost: Callable[[], Awaitable[None]], on_unreachable: Callable[[], Awaitable[None]]
    ) -> None:
        """Refresh this node's key; when it was gone, tell ``on_lost`` and join again anew. When
        Redis cannot be reached, tell ``on_unreachable`` once per outage."""
        away = False
        while True:
            await anyio.sleep(self.node_ttl_ms / 3000)
            key = self._node_key(self.node)
            try:
                alive = await self.redis.set(key, self.address, xx=True, px=self.node_ttl_ms)
            except (RedisError, OSError) as exc:
                logger.warning("cluster heartbeat failed: %s", exc)
                if not away:
                    away = True
                    await on_unreachable()
                continue
            if away:
                away = False
                logger.info("the cluster's Redis is back")
            if alive:
                self.beat_at = anyio.current_time()
            else:
                logger.error("node %s was taken for dead: dropping its sessions and joining again", self.node)
                await on_lost()
                self.node = f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(4)}"
                await self.redis.set(self._node_key(self.node), self.address, px=self.node_ttl_ms)
                self.beat_at = anyio.current_time()

    async def shared_secret(self, name: str) -> bytes:
        """32 random bytes every node of the cluster reads the same (made by the first to ask)."""
        key = f"{self.prefix}:secret:{name}"
        await self.redis.set(key, secrets.token_bytes(32), nx=True)
        value: Any = await self.redis.get(key)
        return bytes(value)

    async def member(self, node: str) -> Owner | None:
        """Where a live member of the cluster is reached; None when it is not one (any more)."""
        try:
            address: Any = await self.redis.get(self._node_key(node))
        except (RedisError, OSError) as exc:
            raise OwnershipUnavailable(f"the cluster's Redis cannot be reached ({exc})") from None
        return Owner(node, bytes(address).decode()) if address is not None else None

    async def mark_draining(self) -> None:
        """This node is stopping: it takes no new requests, and finishes the calls it has before
        its sessions may go elsewhere. Peers that cannot reach it meanwhile say "come back"."""
        await self.redis.set(f"{self._node_key(self.node)}:draining", "1", px=self.node_ttl_ms * 10)

    async def is_draining(self, owner: Owner) -> bool:
        try:
            return bool(await self.redis.exists(f"{self._node_key(owner.node)}:draining"))
        except (RedisError, OSError) as exc:
            raise OwnershipUnavailable(f"the cluster's Redis cannot be reached ({exc})") from None

    @property
    def surely_member(self) -> bool:
        """Whether this node's membership cannot have lapsed: confirmed less than half its TTL ago.
        Then nobody can have claimed what it runs (a claim needs the owner's membership gone,
        short of a peer that found this node's port closed, which the next beat finds out)."""
        return anyio.current_time() - self.beat_at < self.node_ttl_ms / 2000

    async def claim(self, session_id: str) -> Owner:
        """The session's owner: this node if nobody alive holds it (then it is ours now).
        OwnershipUnavailable while Redis cannot be reached; ValueError for what is no session id."""
        key = self._owner_key(session_id)
        try:
            found: Any = await self.redis.eval(
                _CLAIM, 1, key, self.node, self.address, f"{self.prefix}:node:", int(OWNER_TTL * 1000)
            )
        except (RedisError, OSError) as exc:
            raise OwnershipUnavailable(f"the cluster's Redis cannot be reached ({exc})") from None
        node, address = (bytes(part).decode() for part in found)
        return Owner(node, address)

    async def release(self, session_id: str) -> None:
        """The session ended here: nobody owns it any more."""
        with contextlib.suppress(RedisError, OSError, ValueError):
            await self.redis.eval(_DELETE_IF, 1, self._owner_key(session_id), self.node)

    async def evict(self, owner: Owner) -> None:
        """``owner`` refused a connection: its process is gone, and so is its membership (only if
        it is still the member that was at that address)."""
        try:
            await self.redis.eval(_DELETE_IF, 1, self._node_key(owner.node), owner.address)
        except (RedisError, OSError) as exc:
            raise OwnershipUnavailable(f"the cluster's Redis cannot be reached ({exc})") from None
        logger.warning("node %s at %s refused a connection: its sessions are taken over", owner.node, owner.address)
