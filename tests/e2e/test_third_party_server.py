"""The official MCP "everything" server (npm, TypeScript) as a third-party peer, run exactly as a user
would: over stdio behind the gateway, and on its own HTTP transports (Streamable HTTP and HTTP+SSE)
behind ``mcp-sse proxy`` and under our client, driven by the official Python SDK's clients."""

from __future__ import annotations

import os
import socket
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager

import anyio
import pytest
from mcp import Client, ClientSession
from mcp.client.sse import sse_client
from mcp.client.streamable_http import streamable_http_client

from mcp_sse.client import connect
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
    async with client as (read, write), ClientSession(read, write) as session:
        assert await exercise(session, "through the gateway") == [1.0, 2.0, 3.0, 4.0]
        assert len((await session.list_resources()).resources) > 0
        assert "simple-prompt" in {p.name for p in (await session.list_prompts()).prompts}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextmanager
def everything_over_http(mode: str) -> Iterator[str]:
    """The everything server on its own HTTP transport (``streamableHttp`` or ``sse``), Express on
    Node: a third-party HTTP server, as ``mcp-sse proxy`` and our client meet them."""
    port = free_port()
    env = {**os.environ, "PORT": str(port)}
    proc = subprocess.Popen([str(NODE), str(EVERYTHING), mode], env=env, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stderr is not None
        for line in proc.stderr:
            if str(port) in line:
                break
        else:
            raise AssertionError(f"the everything server ({mode}) did not start")
        yield f"http://127.0.0.1:{port}" + ("/mcp" if mode == "streamableHttp" else "/sse")
    finally:
        proc.terminate()
        proc.wait(timeout=10)


async def exercise(session: ClientSession, message: str) -> list[float]:
    """Initialize, echo ``message``, run a long operation; the progress values it reported."""
    progress: list[float] = []

    async def on_progress(value: float, total: float | None, message: str | None) -> None:
        progress.append(value)

    init = await session.initialize()
    assert init.server_info.name == "mcp-servers/everything"
    tools = {t.name for t in (await session.list_tools()).tools}
    assert {"echo", "trigger-long-running-operation"} <= tools
    echoed = await session.call_tool("echo", {"message": message})
    assert echoed.content[0].text == f"Echo: {message}"  # type: ignore[union-attr]
    with anyio.fail_after(30):
        done = await session.call_tool(
            "trigger-long-running-operation", {"duration": 1, "steps": 4}, progress_callback=on_progress
        )
    assert not done.is_error
    assert "completed" in done.content[0].text  # type: ignore[union-attr]
    return progress


@pytest.mark.parametrize("mode", ["streamableHttp", "sse"])
async def test_our_client_finds_the_everything_servers_http_era(mode: str) -> None:
    """One URL, no hint: connect() detects the era (Streamable HTTP, or its fallback to HTTP+SSE)."""
    with everything_over_http(mode) as url:
        async with connect(url) as (read, write), ClientSession(read, write) as session:
            assert await exercise(session, "over HTTP") == [1.0, 2.0, 3.0, 4.0]


@pytest.mark.parametrize("mode", ["streamableHttp", "sse"])
@pytest.mark.parametrize("transport", ["streamable", "sse"])
async def test_the_proxy_fronts_the_everything_servers_http(mode: str, transport: str) -> None:
    """``mcp-sse proxy`` in front of a third-party HTTP server of either era, reached by the SDK's
    clients over either transport."""
    with everything_over_http(mode) as upstream, mcp_sse("proxy", upstream, "--port", "0") as url:
        client = streamable_http_client(url) if transport == "streamable" else sse_client(url.replace("/mcp", "/sse"))
        async with client as (read, write), ClientSession(read, write) as session:
            assert await exercise(session, "over HTTP") == [1.0, 2.0, 3.0, 4.0]


async def exercise_2026(url: str) -> list[float]:
    """The SDK's ``Client`` in its default mode through our front to the everything server (which
    speaks 2025): it must land on 2026-07-28, list, call, and get the long operation's progress."""
    progress: list[float] = []

    async def on_progress(value: float, total: float | None, message: str | None) -> None:
        progress.append(value)

    async with Client(url) as client:
        assert client.protocol_version == "2026-07-28"
        assert client.server_info is not None and client.server_info.name == "mcp-servers/everything"
        tools = {t.name for t in (await client.list_tools()).tools}
        assert {"echo", "trigger-long-running-operation"} <= tools
        echoed = await client.call_tool("echo", {"message": "modern"})
        assert echoed.content[0].text == "Echo: modern"  # type: ignore[union-attr]
        with anyio.fail_after(30):
            done = await client.call_tool(
                "trigger-long-running-operation", {"duration": 1, "steps": 4}, progress_callback=on_progress
            )
        assert not done.is_error
        assert "simple-prompt" in {p.name for p in (await client.list_prompts()).prompts}
    return progress


async def test_a_2026_client_reaches_the_everything_server_over_stdio(gateway: str) -> None:
    assert await exercise_2026(gateway) == [1.0, 2.0, 3.0, 4.0]


@pytest.mark.parametrize("mode", ["streamableHttp", "sse"])
async def test_the_proxy_bridges_a_2026_client_to_the_everything_servers_http(mode: str) -> None:
    """``mcp-sse proxy``: a 2026-07-28 client in front of a server that speaks only 2025 (either of
    its HTTP transports); the upstream session behind is ours, with its resumable streams."""
    with everything_over_http(mode) as upstream, mcp_sse("proxy", upstream, "--port", "0") as url:
        assert await exercise_2026(url) == [1.0, 2.0, 3.0, 4.0]
