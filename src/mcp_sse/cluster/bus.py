"""Change events of the stateless era (``subscriptions/listen``) across every node: a Redis pub/sub
channel per bus, the SDK's ``SubscriptionBus`` protocol on each node.

A tool that changes the tool list on one node publishes once; every node, itself included, hears it
on its one pattern subscription and hands it to its own listen streams. An event travels as the
session-era notification it stands for (``era_translation``), so a reader of Redis sees MCP.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from typing import Any

import anyio
import orjson
import redis.asyncio as aioredis
from mcp.shared.subscriptions import ServerEvent
from redis.exceptions import RedisError

from mcp_sse.upstream.era_translation import handshake_notification, server_event

__all__ = ["ClusterBus", "listen_forever"]

logger = logging.getLogger(__name__)


class ClusterBus:
    """One named bus of the cluster; ``publish`` goes through Redis, listeners are this node's."""

    def __init__(self, channel: str, redis: Callable[[], aioredis.Redis]) -> None:
        self.channel = channel
        self._redis = redis
        self._listeners: dict[object, Callable[[ServerEvent], None]] = {}

    async def publish(self, event: ServerEvent) -> None:
        try:
            await self._redis().publish(self.channel, orjson.dumps(handshake_notification(event)))
        except (RedisError, OSError) as exc:
            logger.warning("a change event could not be published to the cluster: %s", exc)

    def subscribe(self, listener: Callable[[ServerEvent], None]) -> Callable[[], None]:
        token = object()
        self._listeners[token] = listener

        def unsubscribe() -> None:
            self._listeners.pop(token, None)

        return unsubscribe

    def deliver(self, data: bytes) -> None:
        try:
            event = server_event(orjson.loads(data))
        except orjson.JSONDecodeError:
            event = None
        if event is None:
            return
        for listener in list(self._listeners.values()):
            try:
                listener(event)
            except Exception:  # one listen stream's trouble is not the others'
                logger.exception("a listen stream failed to take a change event")


async def listen_forever(redis: Callable[[], aioredis.Redis], pattern: str, buses: dict[str, ClusterBus]) -> None:
    """Hand what is published on the cluster's channels to this node's buses; reconnects."""
    delay = 0.5
    while True:
        pubsub: Any = redis().pubsub()
        try:
            await pubsub.psubscribe(pattern)
            delay = 0.5
            async for message in pubsub.listen():
                if message.get("type") != "pmessage":
                    continue
                channel = message["channel"]
                bus = buses.get(channel.decode() if isinstance(channel, bytes) else str(channel))
                if bus is not None:
                    bus.deliver(message["data"])
        except (RedisError, OSError) as exc:
            logger.warning("cluster events: Redis subscription lost (%s); again in %.1fs", exc, delay)
        finally:
            with contextlib.suppress(RedisError, OSError):
                await pubsub.aclose()
        await anyio.sleep(delay)
        delay = min(delay * 2, 10.0)
