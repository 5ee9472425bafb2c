"""What our client survives: connections cut at random byte offsets, a server restart that loses
the session, a long silent tool, and a server that stops answering."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from typing import Any

import anyio
import httpx2
import orjson
import pytest
from mcp import ClientSession
from mcp.shared.exceptions import MCPError

from mcp_sse import ServerConfig, create_app
from mcp_sse.client import ClientStats, ReconnectPolicy, connect
from tests.proxy import TCPProxy
from tests.servers import answer_lifespan, build_test_server, run_server

pytestmark = pytest.mark.anyio

CHAOS_SEED = int(os.environ.get("MCP_SSE_CHAOS_SEED", "20261124"))


@pytest.fixture(scope="module")
def fast_retry_server() -> Iterator[str]:
    """Our server with a short ``retry`` so that tens of reconnections take seconds, not minutes."""
    with run_server(create_app(build_test_server(), ServerConfig(retry_ms=20, keepalive_interval=1.0))) as url:
        yield url


def no_keepalive_client() -> httpx2.AsyncClient:
    """One TCP connection per request, so each cut lands inside exactly one HTTP exchange."""
    limits = httpx2.Limits(max_keepalive_connections=0)
    return httpx2.AsyncClient(limits=limits, timeout=httpx2.Timeout(10, read=None))


async def test_chaos_cuts_lose_nothing_and_duplicate_nothing(fast_retry_server: str) -> None:
    port = int(fast_retry_server.rsplit(":", 1)[1])
    proxy = TCPProxy(port, seed=CHAOS_SEED, cuts_wanted=25)
    progress: list[float] = []

    async def on_progress(value: float, total: float | None, message: str | None) -> None:
        progress.append(value)

    stats = ClientStats()
    async with proxy.running(), no_keepalive_client() as http:
        url = f"http://127.0.0.1:{proxy.port}/mcp"
        async with connect(url, http_client=http, stats=stats, transport="streamable-http") as (read, write):
            async with ClientSession(read, write) as session:
                await session.initialize()
                with anyio.fail_after(120):
                    result = await session.call_tool("count", {"to": 10_000}, progress_callback=on_progress)
    assert proxy.cuts >= 20, f"seed {CHAOS_SEED}: only {proxy.cuts} cuts happened"
    assert not result.is_error, f"seed {CHAOS_SEED}: {result}"
    assert result.content[0].text == "counted to 10000"  # type: ignore[union-attr]
    assert len(progress) == 10_000, f"seed {CHAOS_SEED}: {len(progress)} notifications"
    assert progress == [float(i) for i in range(1, 10_001)], f"seed {CHAOS_SEED}: out of order or duplicated"
    assert stats.resumes >= 1


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_a_server_restart_is_invisible_to_the_caller() -> None:
    port = free_port()
    stats = ClientStats()
    url = f"http://127.0.0.1:{port}/mcp"
    policy = ReconnectPolicy(initial_delay=0.05, max_delay=0.5, budget=20)
    server = run_server(create_app(build_test_server()), port=port)
    server.__enter__()
    try:
        async with connect(url, policy=policy, stats=stats) as (read, write):
            async with ClientSession(read, write) as session:
                await session.initialize()
                assert (await session.call_tool("echo", {"text": "before"})).content[0].text == "before"  # type: ignore[union-attr]
                server.__exit__(None, None, None)  # the in-memory sessions die with it
                server = run_server(create_app(build_test_server()), port=port)
                server.__enter__()
                result = await session.call_tool("echo", {"text": "after"})
                assert not result.is_error
                assert result.content[0].text == "after"  # type: ignore[union-attr]
    finally:
        server.__exit__(None, None, None)
    assert stats.reinitializations == 1


async def test_a_tool_silent_for_60_seconds_completes_on_keepalives() -> None:
    """Default settings on both sides: 15 s keepalives from the server, 60 s idle timeout in the client."""
    with run_server(create_app(build_test_server())) as base:
        async with connect(base + "/mcp") as (read, write):
            async with ClientSession(read, write) as session:
                await session.initialize()
                with anyio.fail_after(90):
                    result = await session.call_tool("wait", {"seconds": 61})
    assert result.content[0].text == "waited 61.0"  # type: ignore[union-attr]


async def test_a_server_that_stops_answering_is_detected_with_a_clear_error(fast_retry_server: str) -> None:
    port = int(fast_retry_server.rsplit(":", 1)[1])
    proxy = TCPProxy(port)
    policy = ReconnectPolicy(idle_timeout=1.0, response_timeout=1.0, budget=2.0, initial_delay=0.1, max_delay=0.2)
    progress: list[float] = []
    went_dark = anyio.Event()

    async def on_progress(value: float, total: float | None, message: str | None) -> None:
        progress.append(value)
        if len(progress) == 3:
            proxy.mode = "blackhole"  # mid-call: the server keeps its connections but says nothing more
            went_dark.set()

    async with proxy.running():
        url = f"http://127.0.0.1:{proxy.port}/mcp"
        async with connect(url, policy=policy) as (read, write):
            async with ClientSession(read, write) as session:
                await session.initialize()
                with pytest.raises(MCPError) as failure, anyio.fail_after(15):
                    await session.call_tool("count", {"to": 100, "delay_ms": 50}, progress_callback=on_progress)
                assert went_dark.is_set()
    message = str(failure.value)
    assert "no data from the server for 1s (idle timeout" in message, message
    assert "gave up after 2s" in message, message
    assert progress == [1.0, 2.0, 3.0]


async def test_a_session_slow_to_read_is_not_taken_for_a_silent_server(fast_retry_server: str) -> None:
    """The idle timeout counts the server's silence, not the time the transport waits for a full
    buffer to drain: a reader that pauses for several idle windows loses nothing and costs no reconnect."""
    from mcp.shared.message import SessionMessage
    from mcp_types import JSONRPCNotification, JSONRPCRequest, JSONRPCResponse

    policy = ReconnectPolicy(idle_timeout=0.3, response_timeout=5.0, budget=2.0)
    stats = ClientStats()
    init = {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}
    async with connect(fast_retry_server + "/mcp", policy=policy, stats=stats, transport="streamable-http") as (
        read,
        write,
    ):
        await write.send(SessionMessage(JSONRPCRequest(jsonrpc="2.0", id=0, method="initialize", params=init)))
        with anyio.fail_after(10):
            assert isinstance((await read.receive()).message, JSONRPCResponse)  # type: ignore[union-attr]
        await write.send(SessionMessage(JSONRPCNotification(jsonrpc="2.0", method="notifications/initialized")))
        call = {"name": "count", "arguments": {"to": 200, "delay_ms": 0}, "_meta": {"progressToken": 1}}
        await write.send(SessionMessage(JSONRPCRequest(jsonrpc="2.0", id=1, method="tools/call", params=call)))
        await anyio.sleep(1.5)  # five idle windows with the transport's buffer full
        steps = []
        with anyio.fail_after(10):
            while True:
                message = (await read.receive()).message  # type: ignore[union-attr]
                if isinstance(message, JSONRPCResponse):
                    break
                steps.append(message.params["progress"])  # type: ignore[union-attr]
    assert steps == [float(i) for i in range(1, 201)]
    assert stats.reconnects == 0 and stats.resumes == 0


class StallsOnReinitialize:
    """A raw ASGI server (no SDK: it must misbehave on purpose). The first session works; then every
    request is 404 (the session was lost), and the re-initialize that follows gets its response
    headers and then nothing, ever: the stall that once held the client's recovery lock forever."""

    def __init__(self) -> None:
        self.initializes = 0

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:  # type: ignore[type-arg]
        if scope["type"] == "lifespan":
            await answer_lifespan(receive, send)
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        if scope["method"] != "POST":
            await send({"type": "http.response.start", "status": 405, "headers": []})
            await send({"type": "http.response.body", "body": b""})
            return
        request = orjson.loads(body)
        if request.get("method") == "initialize":
            self.initializes += 1
            if self.initializes > 1:
                headers = [(b"content-type", b"text/event-stream"), (b"mcp-session-id", b"second")]
                await send({"type": "http.response.start", "status": 200, "headers": headers})
                await send({"type": "http.response.body", "body": b"", "more_body": True})
                await anyio.sleep_forever()
            result = {"protocolVersion": "2025-11-25", "capabilities": {}, "serverInfo": {"name": "s", "version": "1"}}
            answer = orjson.dumps({"jsonrpc": "2.0", "id": request["id"], "result": result})
            headers = [(b"content-type", b"application/json"), (b"mcp-session-id", b"first")]
            await send({"type": "http.response.start", "status": 200, "headers": headers})
            await send({"type": "http.response.body", "body": answer})
            return
        status = 202 if "id" not in request else 404
        await send({"type": "http.response.start", "status": status, "headers": []})
        await send({"type": "http.response.body", "body": b""})


async def test_a_reinitialize_that_stalls_after_its_headers_fails_within_the_idle_timeout() -> None:
    policy = ReconnectPolicy(idle_timeout=1.0, response_timeout=1.0, budget=2.0, initial_delay=0.1, max_delay=0.2)
    with run_server(StallsOnReinitialize()) as base:
        async with connect(base + "/mcp", policy=policy, transport="streamable-http") as (read, write):
            async with ClientSession(read, write) as session:
                await session.initialize()
                with pytest.raises(MCPError) as failure, anyio.fail_after(15):
                    await session.call_tool("echo", {"text": "x"})
    message = str(failure.value)
    assert "idle timeout" in message, message
