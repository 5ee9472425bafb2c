"""Server-to-client requests (sampling, elicitation) and SEP-1699 polling, with the SDK client."""

from __future__ import annotations

from typing import Any

import httpx2
import mcp_types as types
import pytest
from mcp import ClientSession
from mcp.client.sse import sse_client
from mcp.client.streamable_http import streamable_http_client

pytestmark = pytest.mark.anyio


async def sampling(context: Any, params: types.CreateMessageRequestParams) -> types.CreateMessageResult:
    prompt = params.messages[0].content
    assert isinstance(prompt, types.TextContent)
    return types.CreateMessageResult(
        role="assistant", content=types.TextContent(type="text", text=prompt.text[::-1]), model="reverser"
    )


async def elicitation(context: Any, params: types.ElicitRequestParams) -> types.ElicitResult:
    return types.ElicitResult(action="accept", content={"name": "Ada"})


def text(result: types.CallToolResult) -> str:
    assert not result.is_error, result
    content = result.content[0]
    assert isinstance(content, types.TextContent)
    return content.text


@pytest.mark.parametrize("transport", ["streamable", "sse"])
async def test_sampling_and_elicitation_round_trips(base_url: str, transport: str) -> None:
    client = streamable_http_client(base_url + "/mcp") if transport == "streamable" else sse_client(base_url + "/sse")
    async with client as (read, write):
        async with ClientSession(read, write, sampling_callback=sampling, elicitation_callback=elicitation) as session:
            await session.initialize()
            assert text(await session.call_tool("ask_model", {"prompt": "abc"})) == "model said cba"
            assert text(await session.call_tool("ask_user", {"question": "name?"})) == "accept: Ada"


async def test_server_closing_the_stream_makes_the_sdk_client_poll_and_finish(mcp_url: str) -> None:
    progress: list[float] = []

    async def on_progress(value: float, total: float | None, message: str | None) -> None:
        progress.append(value)

    resumes: list[str] = []

    async def record(request: httpx2.Request) -> None:
        if request.method == "GET" and "last-event-id" in request.headers:
            resumes.append(request.headers["last-event-id"])

    async with httpx2.AsyncClient(event_hooks={"request": [record]}, timeout=30) as http:
        async with streamable_http_client(mcp_url, http_client=http) as (read, write):
            async with ClientSession(read, write) as session:
                await session.initialize()
                result = await session.call_tool("poll_me", {"steps": 3}, progress_callback=on_progress)
    assert text(result) == "polled"
    assert progress == [1.0, 2.0, 3.0]
    assert len(resumes) >= 3, f"the client should have polled back after each close, resumed {resumes}"
