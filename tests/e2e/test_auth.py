"""The optional bearer token (``auth_token``): 401 with ``WWW-Authenticate`` and a JSON-RPC error
without it; the SDK's clients and ours through with it, on both transports; CORS preflights and
``/healthz`` open: what keeps other local processes and other hosts out (MCP Security Best Practices,
"Local MCP Server Compromise": https://modelcontextprotocol.io/docs/tutorials/security/security_best_practices#local-mcp-server-compromise)."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator

import httpx2
import pytest
from mcp import ClientSession
from mcp.client.sse import sse_client
from mcp.client.streamable_http import streamable_http_client

from mcp_sse import ServerConfig, create_app
from mcp_sse.client import connect
from tests.rawclient import POST_HEADERS, init_request
from tests.servers import ROOT, build_test_server, mcp_sse, run_server

pytestmark = pytest.mark.anyio

TOKEN = "s3cret-Token_1"
WITH_TOKEN = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture(scope="module")
def base_url() -> Iterator[str]:
    with run_server(create_app(build_test_server(), ServerConfig(auth_token=TOKEN))) as url:
        yield url


@pytest.mark.parametrize(
    ("credentials", "challenge"),
    [
        ({}, 'Bearer realm="mcp"'),
        ({"authorization": "Bearer not-it"}, 'Bearer realm="mcp", error="invalid_token"'),
        ({"authorization": f"Bearer {TOKEN}x"}, 'Bearer realm="mcp", error="invalid_token"'),
        ({"authorization": f"Basic {TOKEN}"}, 'Bearer realm="mcp"'),
        ({"authorization": "Bearer"}, 'Bearer realm="mcp"'),
    ],
    ids=["none", "wrong", "longer", "other-scheme", "empty"],
)
async def test_a_request_without_the_token_gets_401_and_says_why(
    base_url: str, credentials: dict[str, str], challenge: str
) -> None:
    async with httpx2.AsyncClient(timeout=10) as http:
        response = await http.post(base_url + "/mcp", json=init_request(), headers={**POST_HEADERS, **credentials})
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == challenge
    error = response.json()["error"]
    assert error["message"].startswith("Unauthorized"), error


@pytest.mark.parametrize(
    ("method", "path"),
    [("GET", "/mcp"), ("DELETE", "/mcp"), ("GET", "/sse"), ("POST", "/messages?session_id=x"), ("GET", "/metrics")],
)
async def test_every_endpoint_but_health_needs_the_token(base_url: str, method: str, path: str) -> None:
    async with httpx2.AsyncClient(timeout=10) as http:
        response = await http.request(method, base_url + path)
    assert response.status_code == 401, response.text


async def test_the_token_is_never_taken_from_the_url(base_url: str) -> None:
    async with httpx2.AsyncClient(timeout=10) as http:
        response = await http.post(base_url + f"/mcp?access_token={TOKEN}", json=init_request(), headers=POST_HEADERS)
    assert response.status_code == 401


async def test_preflights_and_health_checks_need_no_token(base_url: str) -> None:
    async with httpx2.AsyncClient(timeout=10) as http:
        preflight = await http.options(
            base_url + "/mcp",
            headers={"origin": "http://localhost:3000", "access-control-request-method": "POST"},
        )
        health = await http.get(base_url + "/healthz")
        refused = await http.post(
            base_url + "/mcp", json=init_request(), headers={**POST_HEADERS, "origin": "http://localhost:3000"}
        )
    assert preflight.status_code == 204
    assert health.status_code == 200
    assert refused.status_code == 401
    assert "WWW-Authenticate" in refused.headers["access-control-expose-headers"], "a browser client may read it"


async def test_the_sdk_clients_get_through_with_the_token_on_both_transports(base_url: str) -> None:
    async with httpx2.AsyncClient(headers=WITH_TOKEN, timeout=httpx2.Timeout(10, read=60)) as http:
        async with streamable_http_client(base_url + "/mcp", http_client=http) as (read, write, *_):
            async with ClientSession(read, write) as session:
                await session.initialize()
                result = await session.call_tool("count", {"to": 5})
                assert result.content[0].text == "counted to 5"  # type: ignore[union-attr]
    async with sse_client(base_url + "/sse", headers=WITH_TOKEN) as (read, write):
        async with ClientSession(read, write) as session:
            await session.initialize()
            result = await session.call_tool("echo", {"text": "hi"})
            assert result.content[0].text == "hi"  # type: ignore[union-attr]


@pytest.mark.parametrize("transport", ["streamable-http", "sse"])
async def test_our_client_gets_through_with_the_token(base_url: str, transport: str) -> None:
    url = base_url + ("/sse" if transport == "sse" else "/mcp")
    async with connect(url, headers=WITH_TOKEN, transport=transport) as (read, write):  # type: ignore[arg-type]
        async with ClientSession(read, write) as session:
            await session.initialize()
            result = await session.call_tool("count", {"to": 5})
            assert result.content[0].text == "counted to 5"  # type: ignore[union-attr]


def test_the_command_line_takes_the_token_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MCP_SSE_AUTH_TOKEN", TOKEN)
    with mcp_sse("serve", "--app", "tests/servers.py:build_test_server", "--port", "0") as url:
        monkeypatch.delenv("MCP_SSE_AUTH_TOKEN")

        def call(*extra: str) -> subprocess.CompletedProcess[str]:
            command = [sys.executable, "-m", "mcp_sse", "call", url, "echo", "--arg", "text=hi", *extra]
            return subprocess.run(command, capture_output=True, text=True, cwd=ROOT, timeout=120)

        allowed = call("--bearer", TOKEN)
        refused = call()
    assert allowed.returncode == 0, allowed.stderr
    assert allowed.stdout.strip() == "hi"
    assert refused.returncode != 0
    assert "401" in refused.stderr or "Unauthorized" in refused.stderr, refused.stderr


def test_a_token_no_header_could_carry_is_refused_and_the_token_never_shows() -> None:
    for bad in ("", "two words", "tab\there", "caf\u00e9"):
        with pytest.raises(ValueError, match="auth_token"):
            ServerConfig(auth_token=bad)
    assert TOKEN not in repr(ServerConfig(auth_token=TOKEN))


def test_serving_beyond_loopback_without_a_token_is_warned_about() -> None:
    command = [sys.executable, "-m", "mcp_sse", "serve", "--app", "tests/servers.py:build_test_server"]
    proc = subprocess.Popen(
        [*command, "--host", "0.0.0.0", "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        cwd=ROOT,
    )
    assert proc.stdout is not None
    seen = []
    try:
        for line in proc.stdout:
            seen.append(line)
            if "Streamable HTTP:" in line:
                break
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    assert any("without --auth-token" in line for line in seen), seen
