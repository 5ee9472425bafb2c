"""``mcp-sse proxy`` bridging the eras: clients of the session eras (the SDK's Streamable HTTP client,
its legacy-mode ``Client``, its HTTP+SSE client) in front of a server that speaks only 2026-07-28
(ours with ``--modern-only``, hosting an SDK server). The session side keeps what its era promises:
progress, logs after ``logging/setLevel``, list-changed notifications on the GET stream, a stream
resumed with ``Last-Event-ID``, and the upstream's questions (``InputRequiredResult``) asked in the
session era's own words."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from typing import Any

import anyio
import httpx2
import mcp_types as types
import pytest
from mcp import Client, ClientSession, StdioServerParameters
from mcp.client.sse import sse_client
from mcp.client.stdio import stdio_client
from mcp.client.streamable_http import streamable_http_client
from mcp.server.mcpserver import Context, MCPServer

from tests.rawclient import cut_then_resume, initialize
from tests.servers import ROOT, build_test_server, mcp_sse, run_server

pytestmark = pytest.mark.anyio


def build_modern_server() -> MCPServer:
    """The tests' SDK server, plus what only the stateless era has: a tool that asks its question
    with an ``InputRequiredResult`` and reads the answer from the retry, and one that changes the
    tool list through the listen bus."""
    server = build_test_server()

    @server.tool()
    async def ask_name(ctx: Context) -> Any:
        answers = ctx.input_responses
        if not answers:
            question = types.ElicitRequest(
                params=types.ElicitRequestFormParams(
                    message="What is your name?",
                    requested_schema={"type": "object", "properties": {"name": {"type": "string"}}},
                )
            )
            return types.InputRequiredResult(input_requests={"name": question}, request_state="asked")
        answer = answers["name"]
        assert isinstance(answer, types.ElicitResult) and answer.content is not None
        return f"hello {answer.content['name']} ({ctx.request_state})"

    @server.tool()
    async def grow(ctx: Context) -> str:
        ctx.mcp_server.add_tool(lambda: "grown", name="grown")
        await ctx.notify_tools_changed()
        return "grew"

    return server


@pytest.fixture(scope="module")
def modern_only() -> Iterator[str]:
    app = "tests.e2e.test_era_bridge:build_modern_server"
    with mcp_sse("serve", "--app", app, "--modern-only", "--port", "0") as upstream:
        yield upstream


@pytest.fixture(scope="module")
def bridge(modern_only: str) -> Iterator[str]:
    with mcp_sse("proxy", modern_only, "--port", "0") as url:
        yield url


def text(result: types.CallToolResult) -> str:
    content = result.content[0]
    assert isinstance(content, types.TextContent)
    return content.text


def client_for(url: str, transport: str) -> Any:
    return streamable_http_client(url) if transport == "streamable" else sse_client(url.replace("/mcp", "/sse"))


@pytest.mark.parametrize("transport", ["streamable", "sse"])
async def test_a_session_client_in_front_of_a_stateless_only_server(bridge: str, transport: str) -> None:
    progress: list[float] = []
    logs: list[Any] = []

    async def on_progress(value: float, total: float | None, message: str | None) -> None:
        progress.append(value)

    async def on_log(params: types.LoggingMessageNotificationParams) -> None:
        logs.append(params.data)

    async with client_for(bridge, transport) as (read, write), ClientSession(read, write, logging_callback=on_log) as s:
        init = await s.initialize()
        assert init.protocol_version == "2025-11-25"
        assert init.server_info.name == "mcp-sse tests", "the upstream's identity, from server/discover"
        assert init.capabilities.tools is not None
        assert {"count", "shout"} <= {tool.name for tool in (await s.list_tools()).tools}
        counted = await s.call_tool("count", {"to": 12, "delay_ms": 2}, progress_callback=on_progress)
        assert text(counted) == "counted to 12"
        await s.set_logging_level("info")
        assert text(await s.call_tool("shout", {"text": "hey"})) == "HEY"
        assert "greet" not in {p.name for p in (await s.list_prompts()).prompts}  # answered, even if empty
    assert progress == [float(i) for i in range(1, 13)]
    assert logs == ["shouting hey"]


async def test_the_sdks_legacy_mode_client(bridge: str) -> None:
    async with Client(bridge, mode="legacy") as client:
        assert client.protocol_version == "2025-11-25"
        assert text(await client.call_tool("echo", {"text": "old"})) == "old"


async def test_an_upstream_question_is_asked_in_the_session_era(bridge: str) -> None:
    asked: list[str] = []

    async def on_elicit(context: Any, params: types.ElicitRequestParams) -> types.ElicitResult:
        asked.append(params.message)
        return types.ElicitResult(action="accept", content={"name": "Ada"})

    async with streamable_http_client(bridge) as (read, write):
        async with ClientSession(read, write, elicitation_callback=on_elicit) as session:
            await session.initialize()
            with anyio.fail_after(20):
                answer = text(await session.call_tool("ask_name", {}))
    assert asked == ["What is your name?"]
    assert answer == "hello Ada (asked)"


async def test_a_list_change_reaches_the_get_stream(bridge: str) -> None:
    changed = anyio.Event()

    async def on_message(message: Any) -> None:
        if isinstance(message, types.ToolListChangedNotification):
            changed.set()

    async with streamable_http_client(bridge) as (read, write):
        async with ClientSession(read, write, message_handler=on_message) as session:
            await session.initialize()
            await anyio.sleep(0.5)  # the bridge's listen stream upstream is open
            async with Client(bridge, mode="legacy") as other:
                assert text(await other.call_tool("grow", {})) == "grew"
            with anyio.fail_after(10):
                await changed.wait()


async def test_a_cut_stream_resumes_on_the_session_side(bridge: str) -> None:
    """The upstream has no resumption at all; the session side still has it, from our log."""
    async with httpx2.AsyncClient(timeout=30) as http:
        session_id = await initialize(http, bridge)
        with anyio.fail_after(30):
            before, after, answer = await cut_then_resume(http, bridge, session_id, count_to=30, cut_after=5)
    assert before == [1.0, 2.0, 3.0, 4.0, 5.0]
    assert after == [float(i) for i in range(6, 31)], "the rest, nothing twice, nothing lost"
    assert answer["result"]["content"][0]["text"] == "counted to 30"
    assert "resultType" not in answer["result"], "the stateless era's fields stay on its side"


async def modern_count(url: str, to: int) -> list[float]:
    progress: list[float] = []

    async def on_progress(value: float, total: float | None, message: str | None) -> None:
        progress.append(value)

    async with Client(url) as client:
        assert client.protocol_version == "2026-07-28"
        assert "count" in {tool.name for tool in (await client.list_tools()).tools}
        with anyio.fail_after(30):
            result = await client.call_tool("count", {"to": to, "delay_ms": 5}, progress_callback=on_progress)
        assert text(result) == f"counted to {to}"
    return progress


async def test_a_2026_client_in_front_of_the_sdks_own_session_server() -> None:
    """The other direction: the SDK's stateless client through the proxy to the SDK's own
    Streamable HTTP app, reached in the session era (the proxy prefers sessions: they resume)."""
    with run_server(build_test_server().streamable_http_app()) as upstream:
        with mcp_sse("proxy", upstream + "/mcp", "--port", "0") as url:
            assert await modern_count(url, 20) == [float(i) for i in range(1, 21)]


async def test_a_2026_client_gets_everything_when_the_2025_side_resumes() -> None:
    """The upstream cuts its streams every five events; the proxy's session upstream resumes each
    one, so the stateless client, which could not resume itself, sees every step once."""
    app = "tests.servers:build_test_server"
    with mcp_sse("serve", "--app", app, "--drop-every", "5", "--port", "0") as upstream:
        with mcp_sse("proxy", upstream, "--port", "0") as url:
            assert await modern_count(url, 30) == [float(i) for i in range(1, 31)]


async def test_a_stdio_host_through_connect_to_a_stateless_only_server(modern_only: str) -> None:
    """``mcp-sse connect`` brings a 2026-07-28-only server to a host that speaks a session era over
    stdio (the SDK's stdio client here): the handshake, progress, the server's question asked as
    an elicitation, and a list change as the session era's notification."""
    progress: list[float] = []
    asked: list[str] = []
    changed = anyio.Event()

    async def on_progress(value: float, total: float | None, message: str | None) -> None:
        progress.append(value)

    async def on_elicit(context: Any, params: types.ElicitRequestParams) -> types.ElicitResult:
        asked.append(params.message)
        return types.ElicitResult(action="accept", content={"name": "Ada"})

    async def on_message(message: Any) -> None:
        if isinstance(message, types.ToolListChangedNotification):
            changed.set()

    command = StdioServerParameters(command=sys.executable, args=["-m", "mcp_sse", "connect", modern_only], cwd=ROOT)
    async with stdio_client(command) as (read, write):
        async with ClientSession(read, write, elicitation_callback=on_elicit, message_handler=on_message) as session:
            init = await session.initialize()
            assert init.protocol_version == "2025-11-25"
            assert init.server_info.name == "mcp-sse tests", "the upstream's identity, from server/discover"
            with anyio.fail_after(30):
                counted = await session.call_tool("count", {"to": 6, "delay_ms": 2}, progress_callback=on_progress)
                answer = await session.call_tool("ask_name", {})
                while not changed.is_set():  # the first grow may come before the bridge listens
                    assert text(await session.call_tool("grow", {})) == "grew"
                    with anyio.move_on_after(0.5):
                        await changed.wait()
    assert text(counted) == "counted to 6"
    assert progress == [float(i) for i in range(1, 7)]
    assert asked == ["What is your name?"]
    assert text(answer) == "hello Ada (asked)"
