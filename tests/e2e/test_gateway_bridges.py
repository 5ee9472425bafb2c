"""``mcp-sse connect`` (stdio host -> remote server) and ``mcp-sse proxy`` (our front for an HTTP server)."""

from __future__ import annotations

import sys
from collections.abc import Iterator

import anyio
import httpx2
import orjson
import pytest
from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client

from mcp_sse import ServerConfig, create_app
from mcp_sse.upstream.remote import HTTPUpstream
from tests.e2e.test_server_requests import text
from tests.proxy import TCPProxy
from tests.rawclient import call, initialize, iter_events, session_headers
from tests.servers import ROOT, build_test_server, run_server

pytestmark = pytest.mark.anyio


@pytest.fixture(scope="module")
def our_server() -> Iterator[str]:
    with run_server(create_app(build_test_server(), ServerConfig(retry_ms=50))) as url:
        yield url + "/mcp"


@pytest.fixture(scope="module")
def sdk_server() -> Iterator[str]:
    with run_server(build_test_server().streamable_http_app()) as url:
        yield url + "/mcp"


def port_of(url: str) -> int:
    return int(url.rsplit(":", 1)[1].split("/")[0])


async def drive_through_connect(upstream: str, tool: str, arguments: dict[str, int]) -> tuple[str, list[float], int]:
    """A stdio host (the SDK's stdio client) -> ``mcp-sse connect`` -> a TCP proxy we cut -> the server."""
    proxy = TCPProxy(port_of(upstream))
    progress: list[float] = []
    cut = anyio.Event()

    async def on_progress(value: float, total: float | None, message: str | None) -> None:
        progress.append(value)
        if len(progress) == 15 and not cut.is_set():
            proxy.cut_all()
            cut.set()

    async with proxy.running():
        url = f"http://127.0.0.1:{proxy.port}/mcp"
        params = StdioServerParameters(command=sys.executable, args=["-m", "mcp_sse", "connect", url], cwd=str(ROOT))
        async with stdio_client(params) as (read, write), ClientSession(read, write) as session:
            await session.initialize()
            await session.list_tools()
            with anyio.fail_after(60):
                result = await session.call_tool(tool, arguments, progress_callback=on_progress)
    assert cut.is_set()
    return text(result), progress, proxy.cuts


async def test_connect_survives_a_drop_mid_call_against_our_server(our_server: str) -> None:
    result, progress, cuts = await drive_through_connect(our_server, "count", {"to": 60, "delay_ms": 10})
    assert cuts >= 1
    assert result == "counted to 60"
    assert progress == [float(i) for i in range(1, 61)], "resumed: every notification exactly once"


async def test_connect_survives_a_drop_mid_call_against_the_sdk_server(sdk_server: str) -> None:
    """The SDK's server sends no event ids, so nothing can resume; a read-only call is sent again."""
    result, progress, cuts = await drive_through_connect(sdk_server, "lookup", {"n": 40, "delay_ms": 10})
    assert cuts >= 1
    assert result == "looked up 40"
    assert progress[-1] == 40.0


@pytest.fixture(scope="module")
def proxied(sdk_server: str) -> Iterator[str]:
    with run_server(create_app(HTTPUpstream(sdk_server), ServerConfig(retry_ms=50))) as url:
        yield url + "/mcp"


async def read_progress_then_drop(http: httpx2.AsyncClient, url: str, headers: dict[str, str]) -> tuple[list[str], str]:
    ids: list[str] = []
    last = ""
    request = call(5, "count", {"to": 80, "delay_ms": 10})
    async with http.stream("POST", url, json=request, headers=headers) as response:
        async for event in iter_events(response):
            ids.append(event.id)
            last = event.id
            if event.data and orjson.loads(event.data).get("params", {}).get("progress") == 20:
                break
    return ids, last


async def test_the_sdk_server_alone_offers_no_resumption(sdk_server: str) -> None:
    async with httpx2.AsyncClient(timeout=30) as http:
        session_id = await initialize(http, sdk_server)
        ids, _ = await read_progress_then_drop(http, sdk_server, session_headers(session_id))
    assert set(ids) == {""}, "no event ids: a dropped stream cannot be resumed"


async def test_proxy_gives_the_sdk_server_resumable_streams(proxied: str) -> None:
    async with httpx2.AsyncClient(timeout=30) as http:
        session_id = await initialize(http, proxied)
        headers = session_headers(session_id)
        _ids, last = await read_progress_then_drop(http, proxied, headers)
        assert last, "the proxy puts an id on every event"
        get = {"accept": "text/event-stream", "mcp-session-id": session_id, "last-event-id": last}
        messages = []
        async with http.stream("GET", proxied, headers=get) as response:
            assert response.status_code == 200
            messages = [orjson.loads(e.data) async for e in iter_events(response) if e.data]
    progress = [m["params"]["progress"] for m in messages if m.get("method") == "notifications/progress"]
    assert progress == list(range(21, 81)), "every notification after the drop, once"
    assert messages[-1]["id"] == 5 and messages[-1]["result"]["content"][0]["text"] == "counted to 80"


async def test_proxy_keeps_one_upstream_session_per_downstream_session(proxied: str, sdk_server: str) -> None:
    """Many calls through one downstream session reuse one upstream session (no session per call)."""
    opened: list[str] = []

    async def watch(response: httpx2.Response) -> None:
        if response.request.method == "POST" and (sid := response.headers.get("mcp-session-id")):
            opened.append(sid)

    from mcp_sse.client import connect

    async with httpx2.AsyncClient(event_hooks={"response": [watch]}) as http:
        async with connect(proxied, http_client=http) as (read, write), ClientSession(read, write) as session:
            await session.initialize()
            for i in range(5):
                assert text(await session.call_tool("echo", {"text": str(i)})) == str(i)
    assert len(set(opened)) == 1, "the downstream side saw one session"
