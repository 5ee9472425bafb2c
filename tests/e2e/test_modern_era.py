"""The stateless 2026-07-28 era, served by the SDK's own modern path behind our edge, next to the
2025 eras on the same endpoint; and a clean fallback where the upstream has no modern path."""

from __future__ import annotations

import sys
from collections.abc import Iterator

import httpx2
import pytest
from mcp import Client

from mcp_sse import ServerConfig, create_app
from mcp_sse.upstream.stdio import StdioUpstream, stdio_command
from tests.servers import ROOT, SessionsOnly, build_test_server, run_server

pytestmark = pytest.mark.anyio


@pytest.fixture(scope="module")
def stdio_url() -> Iterator[str]:
    upstream = StdioUpstream(stdio_command([sys.executable, str(ROOT / "tests" / "stdio_server.py")]))
    with run_server(create_app(SessionsOnly(upstream))) as url:
        yield url + "/mcp"


async def test_mcp_client_default_mode_speaks_2026_with_an_sdk_upstream(mcp_url: str) -> None:
    progress: list[float] = []

    async def on_progress(value: float, total: float | None, message: str | None) -> None:
        progress.append(value)

    async with Client(mcp_url) as client:
        assert client.protocol_version == "2026-07-28"
        result = await client.call_tool("count", {"to": 20}, progress_callback=on_progress)
        assert result.content[0].text == "counted to 20"  # type: ignore[union-attr]
    assert progress == [float(i) for i in range(1, 21)]


async def test_the_same_endpoint_still_serves_the_handshake_era(mcp_url: str) -> None:
    async with Client(mcp_url, mode="legacy") as client:
        assert client.protocol_version == "2025-11-25"
        assert (await client.call_tool("echo", {"text": "hi"})).content[0].text == "hi"  # type: ignore[union-attr]


async def test_without_a_modern_path_the_2026_probe_falls_back_cleanly(stdio_url: str) -> None:
    async with Client(stdio_url) as client:
        assert client.protocol_version == "2025-11-25"
        assert (await client.call_tool("echo", {"text": "hi"})).content[0].text == "hi"  # type: ignore[union-attr]
    async with httpx2.AsyncClient() as http:
        response = await http.post(
            stdio_url,
            json={"jsonrpc": "2.0", "id": 1, "method": "server/discover", "params": {}},
            headers={"accept": "application/json, text/event-stream", "mcp-protocol-version": "2026-07-28"},
        )
    assert response.status_code == 400
    assert response.json()["error"]["code"] == -32022
    assert "2025-11-25" in response.json()["error"]["data"]["supported"]


async def test_modern_requests_get_our_body_limit_and_origin_checks() -> None:
    with run_server(create_app(build_test_server(), ServerConfig(max_body_bytes=1024))) as base:
        headers = {"accept": "application/json, text/event-stream", "content-type": "application/json"}
        headers["mcp-protocol-version"] = "2026-07-28"
        async with httpx2.AsyncClient() as http:
            big = await http.post(base + "/mcp", content=b"[" + b" " * 4096 + b"]", headers=headers)
            foreign = await http.post(
                base + "/mcp", content=b"{}", headers={**headers, "origin": "http://evil.example"}
            )
    assert big.status_code == 413 and big.json()["error"]["code"] == -32600
    assert foreign.status_code == 403


async def test_a_session_request_with_a_bad_version_gets_the_session_era_answer(mcp_url: str) -> None:
    """Mcp-Session-Id marks 2025-era traffic: a bad version there is 400/-32022, naming every version we serve."""
    from tests.rawclient import initialize, session_headers

    async with httpx2.AsyncClient() as http:
        session_id = await initialize(http, mcp_url)
        response = await http.post(
            mcp_url,
            json={"jsonrpc": "2.0", "id": 5, "method": "ping"},
            headers=session_headers(session_id, "2099-01-01"),
        )
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == -32022 and response.json()["id"] == 5
    assert error["data"]["supported"][-2:] == ["2025-11-25", "2026-07-28"]


@pytest.fixture(scope="module")
def modern_only_url() -> Iterator[str]:
    with run_server(create_app(build_test_server(), ServerConfig(modern_only=True))) as url:
        yield url


async def test_modern_only_serves_2026_and_refuses_the_session_era(modern_only_url: str) -> None:
    async with Client(modern_only_url + "/mcp") as client:
        assert client.protocol_version == "2026-07-28"
        assert (await client.call_tool("echo", {"text": "hi"})).content[0].text == "hi"  # type: ignore[union-attr]
    async with httpx2.AsyncClient() as http:
        headers = {"accept": "text/event-stream", "mcp-session-id": "whatever", "last-event-id": "1-1"}
        get = await http.get(modern_only_url + "/mcp", headers=headers)
        delete = await http.delete(modern_only_url + "/mcp", headers={"mcp-session-id": "whatever"})
        sse = await http.get(modern_only_url + "/sse", headers={"accept": "text/event-stream"})
        from tests.rawclient import POST_HEADERS, init_request

        init = await http.post(modern_only_url + "/mcp", json=init_request(), headers=POST_HEADERS)
    assert get.status_code == 405 and get.headers["allow"] == "POST"
    assert delete.status_code == 405
    assert sse.status_code == 405
    assert init.status_code == 400, init.text
    assert "mcp-session-id" not in init.headers
    assert "2026-07-28" in init.text, "an initialize is told which versions are served"


def test_modern_only_needs_an_upstream_that_serves_it() -> None:
    upstream = StdioUpstream(stdio_command([sys.executable, str(ROOT / "tests" / "stdio_server.py")]))
    with pytest.raises(ValueError, match="modern_only"):
        create_app(SessionsOnly(upstream), ServerConfig(modern_only=True))
    create_app(upstream, ServerConfig(modern_only=True))  # a stdio server gets our front
