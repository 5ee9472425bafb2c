"""``connect(url)``: the ``(read, write)`` streams ``mcp.ClientSession`` takes, over whichever HTTP era
the server speaks, with reconnection, resumption and re-initialization that finish the job.

A drop-in for ``mcp.client.streamable_http.streamable_http_client``: change one line.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Literal

import anyio
import httpx2
from mcp.shared.message import SessionMessage

from mcp_sse.client.decisions import ERA_CACHE
from mcp_sse.client.inflight import ClientStats, FallBack, FromSession, ToSession
from mcp_sse.client.legacy import LegacySSEClient
from mcp_sse.client.policy import ReconnectPolicy
from mcp_sse.client.read_stream import ReadyFirstReceiveStream
from mcp_sse.client.streamable import StreamableHTTPClient

__all__ = ["SessionWriteStream", "Transport", "connect"]

logger = logging.getLogger(__name__)

Transport = Literal["auto", "streamable-http", "sse"]

BUFFER = 64


@asynccontextmanager
async def connect(
    url: str,
    *,
    headers: dict[str, str] | None = None,
    auth: httpx2.Auth | None = None,
    http_client: httpx2.AsyncClient | None = None,
    policy: ReconnectPolicy | None = None,
    transport: Transport = "auto",
    terminate_on_close: bool = True,
    stats: ClientStats | None = None,
) -> AsyncIterator[tuple[ReadyFirstReceiveStream[SessionMessage | Exception], SessionWriteStream]]:
    """Yield ``(read_stream, write_stream)`` for ``mcp.ClientSession``.

    ``transport="auto"`` POSTs the initialize first and falls back to HTTP+SSE on the status codes
    the spec names (401 and 403 never downgrade); the answer is remembered per origin. ``sse`` or
    ``streamable-http`` skip the probe. A caller-built ``http_client`` keeps its own settings
    (headers, auth, timeouts, proxies); ``policy`` decides waits, budgets and what may be resent.
    The read stream is anyio's memory stream with fewer loop turns (``client/read_stream.py``).
    """
    policy = policy or ReconnectPolicy()
    stats = stats if stats is not None else ClientStats()
    to_session, read_stream = anyio.create_memory_object_stream[SessionMessage | Exception](BUFFER)
    write_stream, from_session = anyio.create_memory_object_stream[SessionMessage](BUFFER)
    async with AsyncExitStack() as stack:
        if http_client is None:
            timeout = httpx2.Timeout(policy.connect_timeout, read=None, write=30.0, pool=30.0)
            http_client = await stack.enter_async_context(
                httpx2.AsyncClient(headers=headers, auth=auth, timeout=timeout, follow_redirects=False)
            )
        async with anyio.create_task_group() as tg, to_session, read_stream, write_stream, from_session:
            tg.start_soon(
                _drive, url, http_client, policy, transport, terminate_on_close, stats, to_session, from_session
            )
            try:
                yield ReadyFirstReceiveStream(read_stream), write_stream
            finally:
                tg.cancel_scope.cancel()


SessionWriteStream = anyio.streams.memory.MemoryObjectSendStream[SessionMessage]


async def _drive(
    url: str,
    http: httpx2.AsyncClient,
    policy: ReconnectPolicy,
    transport: Transport,
    terminate_on_close: bool,
    stats: ClientStats,
    to_session: ToSession,
    from_session: FromSession,
) -> None:
    era = transport if transport != "auto" else ERA_CACHE.get(url) or "streamable-http"
    if era == "sse":
        await LegacySSEClient(url, http, policy, to_session, stats).run(from_session)
        return
    client = StreamableHTTPClient(
        url,
        http,
        policy,
        to_session,
        allow_fallback=transport == "auto",
        terminate_on_close=terminate_on_close,
        stats=stats,
    )
    fallback: FallBack | None = None
    try:
        await client.run(from_session)
    except* FallBack as group:
        first = group.exceptions[0]
        assert isinstance(first, FallBack)
        fallback = first
    if fallback is None:
        if transport == "auto":
            ERA_CACHE.remember(url, "streamable-http")
        return
    logger.info("%s: %s; trying HTTP+SSE", url, fallback)
    ERA_CACHE.remember(url, "sse")
    await LegacySSEClient(url, http, policy, to_session, stats).run(from_session, fallback.first)
