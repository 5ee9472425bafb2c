"""Our client (``mcp_sse.client.connect``) against our server, on both transports."""

from __future__ import annotations

import pytest
from mcp import ClientSession

from mcp_sse.client import ClientStats, connect
from tests.exercise import Recorder, exercise

pytestmark = pytest.mark.anyio


@pytest.mark.parametrize("transport", ["auto", "streamable-http", "sse"])
async def test_full_exchange(base_url: str, transport: str) -> None:
    url = base_url + ("/sse" if transport == "sse" else "/mcp")
    recorder = Recorder()
    stats = ClientStats()
    async with connect(url, transport=transport, stats=stats) as (read, write):  # type: ignore[arg-type]
        async with ClientSession(read, write, logging_callback=recorder.on_log) as session:
            await exercise(session, recorder)
    assert stats.reconnects == 0 and stats.duplicates_dropped == 0


async def test_auto_detection_falls_back_to_sse_on_a_legacy_only_url(base_url: str) -> None:
    """``/sse`` answers a POST initialize with 405, which sends an auto client to HTTP+SSE."""
    recorder = Recorder()
    async with connect(base_url + "/sse") as (read, write):
        async with ClientSession(read, write, logging_callback=recorder.on_log) as session:
            await exercise(session, recorder)
