"""The official SDK's clients (Streamable HTTP and HTTP+SSE) against our server hosting an SDK server."""

from __future__ import annotations

import httpx2
import pytest
from mcp import ClientSession
from mcp.client.sse import sse_client
from mcp.client.streamable_http import streamable_http_client

from tests.exercise import Recorder, exercise

pytestmark = pytest.mark.anyio


async def test_streamable_http_client_full_exchange(mcp_url: str) -> None:
    recorder = Recorder()
    async with streamable_http_client(mcp_url) as (read, write):
        async with ClientSession(read, write, logging_callback=recorder.on_log) as session:
            await exercise(session, recorder)


async def test_sse_client_full_exchange(base_url: str) -> None:
    recorder = Recorder()
    async with sse_client(base_url + "/sse") as (read, write):
        async with ClientSession(read, write, logging_callback=recorder.on_log) as session:
            await exercise(session, recorder)


async def test_delete_ends_the_session_then_404(mcp_url: str) -> None:
    session_ids: list[str] = []

    async def capture(response: httpx2.Response) -> None:
        if sid := response.headers.get("mcp-session-id"):
            session_ids.append(sid)

    async with httpx2.AsyncClient(event_hooks={"response": [capture]}) as http:
        async with streamable_http_client(mcp_url, http_client=http) as (read, write):
            async with ClientSession(read, write) as session:
                await session.initialize()
                await session.send_ping()
        # leaving the transport sends DELETE (terminate_on_close)
        assert session_ids
        response = await http.post(
            mcp_url,
            json={"jsonrpc": "2.0", "id": 9, "method": "ping"},
            headers={
                "accept": "application/json, text/event-stream",
                "mcp-session-id": session_ids[-1],
                "mcp-protocol-version": "2025-11-25",
            },
        )
    assert response.status_code == 404
    assert response.json()["error"]["code"] == -32600
