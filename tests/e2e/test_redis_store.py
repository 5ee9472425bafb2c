"""The Redis event store behind a real server: clients of both SDK directions resume through it.

A real redis-server (Debian's package), our server on uvicorn with ``event_store="redis://…"``,
and the server cutting every stream after 40 events on purpose (``drop_every``): the official SDK
client and ours each resume with ``Last-Event-ID`` from what Redis and the store's tail hold, and
every progress notification arrives once, in order.
"""

from __future__ import annotations

from collections.abc import Iterator

import anyio
import pytest
from mcp import ClientSession
from mcp.client.streamable_http import streamable_http_client

from mcp_sse import ServerConfig, create_app
from mcp_sse.client import ClientStats, connect
from mcp_sse.core.redis_store import RedisEventStore
from tests.redis_server import RedisServer
from tests.servers import build_test_server, run_server

pytestmark = pytest.mark.anyio

STEPS = 400


@pytest.fixture
def redis_backed(redis: RedisServer) -> Iterator[str]:
    config = ServerConfig(keepalive_interval=1.0, retry_ms=20, drop_every=40, event_store=redis.url)
    app = create_app(build_test_server(), config)
    assert isinstance(app.store, RedisEventStore)
    with run_server(app) as url:
        yield url + "/mcp"


async def count_with_progress(session: ClientSession) -> tuple[str, list[float]]:
    progress: list[float] = []

    async def on_progress(value: float, total: float | None, message: str | None) -> None:
        progress.append(value)

    await session.initialize()
    with anyio.fail_after(60):
        result = await session.call_tool("count", {"to": STEPS}, progress_callback=on_progress)
    return result.content[0].text, progress  # type: ignore[union-attr]


async def test_the_sdk_client_resumes_every_cut_stream_through_redis(redis_backed: str) -> None:
    async with streamable_http_client(redis_backed) as (read, write):
        async with ClientSession(read, write) as session:
            text, progress = await count_with_progress(session)
    assert text == f"counted to {STEPS}"
    assert progress == [float(i) for i in range(1, STEPS + 1)], "every event once, in order"


async def test_our_client_resumes_every_cut_stream_through_redis(redis_backed: str) -> None:
    stats = ClientStats()
    async with connect(redis_backed, stats=stats) as (read, write):
        async with ClientSession(read, write) as session:
            text, progress = await count_with_progress(session)
    assert text == f"counted to {STEPS}"
    assert progress == [float(i) for i in range(1, STEPS + 1)], "every event once, in order"
    assert stats.resumes >= STEPS // 40 - 1 and stats.lost == 0


def test_serve_refuses_to_start_without_its_redis() -> None:
    import subprocess
    import sys

    from tests.redis_server import free_port
    from tests.servers import ROOT

    url = f"redis://127.0.0.1:{free_port()}/0"
    args = ["serve", "--app", "tests/servers.py:build_test_server", "--port", "0", "--event-store", url]
    done = subprocess.run(
        [sys.executable, "-m", "mcp_sse", *args], capture_output=True, text=True, cwd=ROOT, timeout=60
    )
    assert done.returncode != 0
    assert f"cannot reach Redis at {url}" in done.stdout + done.stderr, done.stdout + done.stderr
    assert "Traceback" not in done.stdout + done.stderr
