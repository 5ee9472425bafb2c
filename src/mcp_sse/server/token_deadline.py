"""A stateless-era stream that ends when the token that opened it expires.

A ``subscriptions/listen`` response lasts as long as the client holds it, so a token checked once
at its start would otherwise go on authorising it for days. The session eras end their streams at
the token's expiry in the SSE writer (``server/sse_writer.py``); this is the same rule for the
2026-07-28 era, whose streams the SDK's own entry point writes. At the deadline the SDK is told
the client went away (its handler is cancelled, as for a closed stream) and the response is
finished cleanly. The client re-listens, with a fresh token or to a 401 that says to get one
(MCP 2026-07-28, Subscriptions:
https://modelcontextprotocol.io/specification/2026-07-28/basic/patterns/subscriptions).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable

import anyio

from mcp_sse.server.asgi import ASGIMessage, Receive, Send

__all__ = ["serve_until"]

logger = logging.getLogger(__name__)

_DISCONNECT: ASGIMessage = {"type": "http.disconnect"}


async def serve_until(
    expires_at: float, respond: Callable[[Receive, Send], Awaitable[None]], receive: Receive, send: Send
) -> None:
    """Run ``respond`` (an ASGI response) until ``expires_at`` (wall clock), then end it."""
    expired = anyio.Event()
    started = finished = False

    async def receive_until_expiry() -> ASGIMessage:
        if expired.is_set():
            return _DISCONNECT
        message: ASGIMessage = _DISCONNECT
        async with anyio.create_task_group() as race:

            async def stop_at_expiry() -> None:
                await expired.wait()
                race.cancel_scope.cancel()

            race.start_soon(stop_at_expiry)
            message = await receive()
            race.cancel_scope.cancel()
        return message

    async def send_tracked(message: ASGIMessage) -> None:
        nonlocal started, finished
        if message["type"] == "http.response.start":
            started = True
        elif message["type"] == "http.response.body" and not message.get("more_body", False):
            finished = True
        await send(message)

    async def expire() -> None:
        await anyio.sleep(max(0.0, expires_at - time.time()))
        logger.info("a stateless-era stream's token expired; ending the stream")
        expired.set()

    async with anyio.create_task_group() as tg:
        tg.start_soon(expire)
        await respond(receive_until_expiry, send_tracked)
        tg.cancel_scope.cancel()
    if started and not finished:
        # The SDK stops writing when its client goes away; this client is still there.
        await send({"type": "http.response.body", "body": b"", "more_body": False})
