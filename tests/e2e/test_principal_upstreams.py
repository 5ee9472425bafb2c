"""The authenticated principal handed to stdio and HTTP upstreams (``MCP_SSE_PRINCIPAL`` for a
per-session child, ``proxy --principal-header`` upstream), and the client's own token never
passed through, with the official SDK client as the peer."""

from __future__ import annotations

import sys
from pathlib import Path

import httpx2
import pytest
from mcp import ClientSession
from mcp.client.streamable_http import streamable_http_client

from mcp_sse import ServerConfig, create_app
from mcp_sse.upstream.remote import HTTPUpstream
from mcp_sse.upstream.stdio import PRINCIPAL_ENV, SharedStdioUpstream, StdioUpstream, stdio_command
from tests.servers import ROOT, build_test_server, run_server

pytestmark = pytest.mark.anyio

ALICE, BOB = "alice-secret-token", "bob-secret-token"
STDIO_SERVER = [sys.executable, str(ROOT / "tests" / "stdio_server.py")]


@pytest.fixture
def tokens(tmp_path: Path) -> ServerConfig:
    path = tmp_path / "tokens"
    path.write_text(f"{ALICE} alice\n{BOB} bob\n")
    return ServerConfig(token_file=str(path), event_store="memory")


async def call(url: str, token: str, tool: str, arguments: dict[str, str]) -> str:
    async with httpx2.AsyncClient(headers={"Authorization": f"Bearer {token}"}, timeout=30) as http:
        async with streamable_http_client(url + "/mcp", http_client=http) as (read, write):
            async with ClientSession(read, write) as session:
                await session.initialize()
                result = await session.call_tool(tool, arguments)
    return str(result.content[0].text)  # type: ignore[union-attr]


async def test_a_per_session_stdio_child_is_told_its_principal(
    tokens: ServerConfig, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(PRINCIPAL_ENV, "mallory")  # ours: never inherited by a child
    with run_server(create_app(StdioUpstream(stdio_command(STDIO_SERVER)), tokens)) as url:
        alice = await call(url, ALICE, "environment", {"name": PRINCIPAL_ENV})
        bob = await call(url, BOB, "environment", {"name": PRINCIPAL_ENV})
    assert alice.startswith("alice in ") and bob.startswith("bob in ")


async def test_a_shared_stdio_child_is_told_nobody(tokens: ServerConfig, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(PRINCIPAL_ENV, "mallory")
    with run_server(create_app(SharedStdioUpstream(stdio_command(STDIO_SERVER)), tokens)) as url:
        answer = await call(url, ALICE, "environment", {"name": PRINCIPAL_ENV})
    assert answer.startswith("None in "), "one child serves every principal: it names none"


async def test_a_proxy_names_the_principal_upstream_and_never_passes_the_token(tokens: ServerConfig) -> None:
    with run_server(create_app(build_test_server())) as upstream:
        front = HTTPUpstream(upstream + "/mcp", principal_header="X-MCP-Principal")
        with run_server(create_app(front, tokens)) as url:
            principal = await call(url, ALICE, "header", {"name": "x-mcp-principal"})
            authorization = await call(url, ALICE, "header", {"name": "authorization"})
            bob = await call(url, BOB, "header", {"name": "x-mcp-principal"})
        plain = HTTPUpstream(upstream + "/mcp")
        with run_server(create_app(plain, tokens)) as url:
            unnamed = await call(url, ALICE, "header", {"name": "x-mcp-principal"})
    assert (principal, bob) == ("alice", "bob")
    assert ALICE not in authorization, "the client's token is not passed through to the upstream"
    assert unnamed == "<absent>", "the principal goes upstream only when asked for"
