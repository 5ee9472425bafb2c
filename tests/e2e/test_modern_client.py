"""Our client in the stateless 2026-07-28 era, under the official SDK's ``Client`` (which probes with
``server/discover`` and stamps each request's headers), against our server and the SDK's own:
list, call with progress, cancel by closing the stream, a safe resend under a new id after a cut,
and a ``subscriptions/listen`` stream cut three times while the tool list changes in the gaps."""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import anyio
import httpx2
import orjson
import pytest
from mcp import Client, types
from mcp.client.subscriptions import ToolsListChanged
from mcp.server.mcpserver import Context, MCPServer
from mcp.shared.exceptions import MCPError

from mcp_sse import ServerConfig, create_app
from mcp_sse.client import ClientStats, ReconnectPolicy, connect
from mcp_sse.client.decisions import ERA_CACHE
from mcp_sse.upstream.stdio import StdioUpstream, stdio_command
from mcp_sse.wire.sse import SSEDecoder
from tests.proxy import TCPProxy
from tests.servers import ROOT, SessionsOnly, build_test_server, mcp_sse_process, run_server

pytestmark = pytest.mark.anyio
FAST = ReconnectPolicy(initial_delay=0.05, max_delay=0.2, budget=20.0)


@dataclass
class Seen:
    """What the server's tools saw, for the tests to check from outside."""

    cancelled: int = 0
    runs: dict[str, int] = field(default_factory=dict)
    grown: int = 0


def build_server(seen: Seen) -> MCPServer:
    server = MCPServer("modern-era tests")

    @server.tool()
    async def count(to: int, ctx: Context) -> str:
        for step in range(1, to + 1):
            await ctx.report_progress(step, to)
        return f"counted to {to}"

    @server.tool()
    async def block(ctx: Context) -> str:
        try:
            await anyio.sleep_forever()
        except anyio.get_cancelled_exc_class():
            seen.cancelled += 1
            raise
        return "never"

    async def slow(name: str, ctx: Context) -> str:
        seen.runs[name] = seen.runs.get(name, 0) + 1
        for step in range(1, 41):
            await ctx.report_progress(step, 40)
            await anyio.sleep(0.02)
        return f"{name} done"

    @server.tool(annotations=types.ToolAnnotations(read_only_hint=True))
    async def read_slowly(ctx: Context) -> str:
        return await slow("read_slowly", ctx)

    @server.tool()
    async def write_slowly(ctx: Context) -> str:
        return await slow("write_slowly", ctx)

    @server.tool()
    async def grow(ctx: Context) -> str:
        seen.grown += 1
        name = f"grown_{seen.grown}"

        def added() -> str:
            return name

        ctx.mcp_server.add_tool(added, name=name)
        await ctx.notify_tools_changed()
        return name

    return server


@pytest.fixture(scope="module", params=["ours", "sdk"])
def served(request: pytest.FixtureRequest) -> Iterator[tuple[str, Seen]]:
    """The same server behind our transport, and behind the SDK's own."""
    seen = Seen()
    server = build_server(seen)
    app = create_app(server, ServerConfig()) if request.param == "ours" else server.streamable_http_app()
    with run_server(app) as url:
        yield url + "/mcp", seen


@asynccontextmanager
async def proxied(url: str) -> AsyncIterator[tuple[str, TCPProxy]]:
    port = int(url.rsplit(":", 1)[1].split("/", 1)[0])
    async with TCPProxy(port).running() as proxy:
        yield f"http://127.0.0.1:{proxy.port}/mcp", proxy


async def test_list_call_with_progress_and_the_version(served: tuple[str, Seen]) -> None:
    url, _ = served
    progress: list[float] = []

    async def on_progress(value: float, total: float | None, message: str | None) -> None:
        progress.append(value)

    async with Client(connect(url, policy=FAST)) as client:
        assert client.protocol_version == "2026-07-28"
        names = {tool.name for tool in (await client.list_tools()).tools}
        assert {"count", "block", "read_slowly", "write_slowly", "grow"} <= names
        result = await client.call_tool("count", {"to": 7}, progress_callback=on_progress)
    assert result.content[0].text == "counted to 7"  # type: ignore[union-attr]
    assert progress == [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0]


async def test_cancelling_closes_the_stream_and_the_server_stops_the_work(served: tuple[str, Seen]) -> None:
    url, seen = served
    before = seen.cancelled
    async with Client(connect(url, policy=FAST)) as client:
        with anyio.move_on_after(0.5):
            await client.call_tool("block", {})
        with anyio.fail_after(10):
            while seen.cancelled == before:  # noqa: ASYNC110 (the server runs in another thread's loop)
                await anyio.sleep(0.02)
        # The client is still good for the next call.
        assert (await client.call_tool("count", {"to": 1})).content[0].text == "counted to 1"  # type: ignore[union-attr]
    assert seen.cancelled == before + 1


async def cut_mid_call(client: Client, proxy: TCPProxy, tool: str) -> types.CallToolResult:
    """Call ``tool`` and cut every connection once its first progress arrives."""
    started = anyio.Event()

    async def on_progress(value: float, total: float | None, message: str | None) -> None:
        if not started.is_set():
            started.set()
            proxy.cut_all()

    return await client.call_tool(tool, {}, progress_callback=on_progress)


async def test_a_cut_safe_request_is_sent_again_under_a_new_id(served: tuple[str, Seen]) -> None:
    url, seen = served
    async with proxied(url) as (via, proxy), Client(connect(via, policy=FAST)) as client:
        await client.list_tools()  # learns read_slowly is read-only, so safe to resend
        before = seen.runs.get("read_slowly", 0)
        result = await cut_mid_call(client, proxy, "read_slowly")
    assert result.content[0].text == "read_slowly done"  # type: ignore[union-attr]
    assert proxy.cuts >= 1
    assert seen.runs["read_slowly"] == before + 2, "no resumption in this era: the whole request ran again"


async def test_a_cut_unsafe_request_fails_clearly_and_is_not_repeated(served: tuple[str, Seen]) -> None:
    url, seen = served
    async with proxied(url) as (via, proxy), Client(connect(via, policy=FAST)) as client:
        await client.list_tools()
        before = seen.runs.get("write_slowly", 0)
        with pytest.raises(MCPError, match="not marked safe to retry"):
            await cut_mid_call(client, proxy, "write_slowly")
    assert seen.runs["write_slowly"] == before + 1


async def test_a_listen_stream_cut_three_times_misses_no_change(served: tuple[str, Seen]) -> None:
    url, seen = served
    events: list[object] = []
    stats = ClientStats()
    async with proxied(url) as (via, proxy), Client(connect(via, policy=FAST, stats=stats)) as client:
        async with Client(connect(url, policy=FAST)) as direct, client.listen(tools_list_changed=True) as sub:
            iterator = aiter(sub)
            for _ in range(3):
                # The stream goes down; the tool list changes while nobody can be told; then back.
                proxy.mode = "blackhole"
                proxy.cut_all()
                await direct.call_tool("grow", {})
                proxy.mode = "pass"
                proxy.cut_all()  # the re-open attempt stuck in the black hole
                with anyio.fail_after(20):
                    events.append(await anext(iterator))
            listed = {tool.name for tool in (await client.list_tools()).tools}
            truth = {tool.name for tool in (await direct.list_tools()).tools}
    assert events == [ToolsListChanged()] * 3, "one change event for each change made while cut"
    assert stats.listen_reopens == 3
    assert listed == truth
    assert {f"grown_{seen.grown}", f"grown_{seen.grown - 2}"} <= listed


@pytest.fixture(scope="module")
def legacy_urls() -> Iterator[dict[str, str]]:
    """Servers of the older eras only: our server over an upstream with no 2026-07-28 path, and the
    SDK's HTTP+SSE app."""
    upstream = StdioUpstream(stdio_command([sys.executable, str(ROOT / "tests" / "stdio_server.py")]))
    with run_server(create_app(SessionsOnly(upstream))) as ours, run_server(build_test_server().sse_app()) as sse:
        yield {"streamable": ours + "/mcp", "sse": sse + "/sse"}


@pytest.mark.parametrize("kind", ["streamable", "sse"])
async def test_the_modern_probe_falls_back_to_the_older_eras(legacy_urls: dict[str, str], kind: str) -> None:
    for _ in range(2):  # the second time, from the per-origin cache
        async with Client(connect(legacy_urls[kind], policy=FAST)) as client:
            assert client.protocol_version == "2025-11-25"
            assert (await client.call_tool("echo", {"text": "hi"})).content[0].text == "hi"  # type: ignore[union-attr]


@pytest.fixture(scope="module")
def ours() -> Iterator[tuple[str, Seen]]:
    seen = Seen()
    with run_server(create_app(build_server(seen), ServerConfig())) as url:
        yield url + "/mcp", seen


async def test_the_sdks_own_client_transport_against_our_server(ours: tuple[str, Seen]) -> None:
    url, seen = ours
    before = seen.cancelled
    async with Client(url) as client, Client(url) as other:
        assert client.protocol_version == "2026-07-28"
        with anyio.move_on_after(0.5):
            await client.call_tool("block", {})
        with anyio.fail_after(10):
            while seen.cancelled == before:  # noqa: ASYNC110 (the server runs in another thread's loop)
                await anyio.sleep(0.02)
        async with client.listen(tools_list_changed=True) as sub:
            await other.call_tool("grow", {})
            with anyio.fail_after(10):
                assert await anext(aiter(sub)) == ToolsListChanged()


async def test_a_listen_stream_on_the_wire(ours: tuple[str, Seen]) -> None:
    """Acknowledged first, the subscription id on every message, and never a notification that
    belongs to another request (MCP 2026-07-28, Subscriptions:
    https://modelcontextprotocol.io/specification/2026-07-28/basic/patterns/subscriptions)."""
    url, _ = ours
    meta = {
        "io.modelcontextprotocol/protocolVersion": "2026-07-28",
        "io.modelcontextprotocol/clientInfo": {"name": "wire", "version": "1"},
        "io.modelcontextprotocol/clientCapabilities": {},
    }
    headers = {"accept": "application/json, text/event-stream", "mcp-protocol-version": "2026-07-28"}
    listen = {
        "jsonrpc": "2.0",
        "id": "sub-1",
        "method": "subscriptions/listen",
        "params": {"notifications": {"toolsListChanged": True}, "_meta": meta},
    }
    async with httpx2.AsyncClient(timeout=10) as http:
        async with http.stream(
            "POST", url, json=listen, headers={**headers, "mcp-method": "subscriptions/listen"}
        ) as stream:
            assert stream.headers["content-type"].startswith("text/event-stream")
            messages = aiter(sse_messages(stream))
            ack = await anext(messages)
            assert ack["method"] == "notifications/subscriptions/acknowledged"
            assert ack["params"]["_meta"]["io.modelcontextprotocol/subscriptionId"] == "sub-1"
            for method, name, arguments in (("tools/call", "count", {"to": 3}), ("tools/call", "grow", {})):
                call = {
                    "jsonrpc": "2.0",
                    "id": name,
                    "method": method,
                    "params": {"name": name, "arguments": arguments, "_meta": {**meta, "progressToken": name}},
                }
                answer = await http.post(url, json=call, headers={**headers, "mcp-method": method, "mcp-name": name})
                assert answer.status_code == 200
            with anyio.fail_after(10):
                changed = await anext(messages)
            assert changed["method"] == "notifications/tools/list_changed", "no progress of another request here"
            assert changed["params"]["_meta"]["io.modelcontextprotocol/subscriptionId"] == "sub-1"


async def sse_messages(response: httpx2.Response) -> AsyncIterator[dict[str, Any]]:
    decoder = SSEDecoder()
    async for chunk in response.aiter_raw():
        for event in decoder.feed(chunk):
            if event.data:
                yield orjson.loads(event.data)


@pytest.fixture
def cli_server() -> Iterator[tuple[str, subprocess.Popen[str]]]:
    with mcp_sse_process("serve", "--app", "tests.servers:build_test_server", "--port", "0") as running:
        yield running


async def test_a_shutdown_ends_listen_streams_with_their_completion_result(
    cli_server: tuple[str, subprocess.Popen[str]],
) -> None:
    """A server going down on purpose says so: the stream ends with its result, not a drop."""
    url, proc = cli_server
    async with Client(url) as client, client.listen(tools_list_changed=True) as sub:
        proc.terminate()
        with anyio.fail_after(10):
            events = [event async for event in sub]  # an abrupt end raises SubscriptionLost
    assert events == []
    assert await anyio.to_thread.run_sync(proc.wait, 10) == 143


def refused_probes(url: str) -> float:
    metrics = httpx2.get(url.rsplit("/mcp", 1)[0] + "/metrics").text
    match = re.search(r'mcp_sse_rejects_total\{reason="UnsupportedProtocolVersion",status="400"\} (\S+)', metrics)
    return float(match.group(1)) if match else 0.0


async def test_the_probe_result_is_remembered_per_origin(legacy_urls: dict[str, str]) -> None:
    url = legacy_urls["streamable"]
    ERA_CACHE.forget(url)
    before = refused_probes(url)
    for _ in range(3):
        async with Client(connect(url, policy=FAST)) as client:
            assert client.protocol_version == "2025-11-25"
    assert refused_probes(url) == before + 1, "only the first connection probed the origin"
    assert ERA_CACHE.stateless(url) is False


@pytest.fixture(scope="module")
def modern_only_url() -> Iterator[str]:
    with run_server(create_app(build_test_server(), ServerConfig(modern_only=True))) as url:
        yield url + "/mcp"


async def test_a_wrong_memory_is_probed_again(modern_only_url: str) -> None:
    # Remembered as a session-era origin, but it now serves only the stateless era: the initialize
    # fails, the memory is dropped, and the SDK's corrective probe goes out and succeeds.
    ERA_CACHE.remember_stateless(modern_only_url, False)
    async with Client(connect(modern_only_url, policy=FAST)) as client:
        assert client.protocol_version == "2026-07-28"
        assert (await client.call_tool("echo", {"text": "hi"})).content[0].text == "hi"  # type: ignore[union-attr]
    assert ERA_CACHE.stateless(modern_only_url) is True
