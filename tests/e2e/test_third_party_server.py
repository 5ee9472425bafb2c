"""A third-party stdio server behind the gateway: the official MCP "everything" server (npm,
TypeScript), exactly as a user would run it, driven by the official Python SDK's clients."""

from __future__ import annotations

from collections.abc import Iterator

import anyio
import pytest
from mcp import ClientSession
from mcp.client.sse import sse_client
from mcp.client.streamable_http import streamable_http_client

from tests.e2e.test_conformance import HERE, NODE
from tests.servers import mcp_sse

pytestmark = pytest.mark.anyio

EVERYTHING = HERE / "node_modules" / "@modelcontextprotocol" / "server-everything" / "dist" / "index.js"


@pytest.fixture(scope="module", params=["per-session", "shared"])
def gateway(request: pytest.FixtureRequest) -> Iterator[str]:
    assert EVERYTHING.exists(), "the everything server is not installed: run ./run test"
    flags = ["--shared"] if request.param == "shared" else []
    with mcp_sse("serve", "--port", "0", *flags, "--", str(NODE), str(EVERYTHING), "stdio") as url:
        yield url


@pytest.mark.parametrize("transport", ["streamable", "sse"])
async def test_everything_server_behind_the_gateway(gateway: str, transport: str) -> None:
    client = (
        streamable_http_client(gateway) if transport == "streamable" else sse_client(gateway.replace("/mcp", "/sse"))
    )
    progress: list[float] = []

    async def on_progress(value: float, total: float | None, message: str | None) -> None:
        progress.append(value)

    async with client as (read, write), ClientSession(read, write) as session:
        init = await session.initialize()
        assert init.server_info.name == "mcp-servers/everything"
        tools = {t.name for t in (await session.list_tools()).tools}
        assert {"echo", "trigger-long-running-operation"} <= tools
        echoed = await session.call_tool("echo", {"message": "through the gateway"})
        assert echoed.content[0].text == "Echo: through the gateway"  # type: ignore[union-attr]
        with anyio.fail_after(30):
            done = await session.call_tool(
                "trigger-long-running-operation", {"duration": 1, "steps": 4}, progress_callback=on_progress
            )
        assert "completed" in done.content[0].text  # type: ignore[union-attr]
        assert progress == [1.0, 2.0, 3.0, 4.0]
        assert len((await session.list_resources()).resources) > 0
        assert "simple-prompt" in {p.name for p in (await session.list_prompts()).prompts}
