"""Every header and error rule of the stateless 2026-07-28 era, one row each, checked on the wire at
our endpoint: the HTTP status and the JSON-RPC error code (MCP 2026-07-28, Streamable HTTP:
https://modelcontextprotocol.io/specification/2026-07-28/basic/transports/streamable-http). Each row
names its item of docs/spec-coverage.md (items 80-85, "Stateless Streamable HTTP")."""

from __future__ import annotations

import base64
import socket
import sys
from collections.abc import Iterator
from typing import Annotated, Any
from urllib.parse import urlsplit

import httpx2
import orjson
import pytest
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.server import require_client_extension
from pydantic import Field

from mcp_sse import ServerConfig, create_app
from mcp_sse.upstream.stdio import StdioUpstream, stdio_command
from tests.servers import ROOT, run_server

V = "2026-07-28"
META = {
    "io.modelcontextprotocol/protocolVersion": V,
    "io.modelcontextprotocol/clientInfo": {"name": "table", "version": "1"},
    "io.modelcontextprotocol/clientCapabilities": {},
}


def b64(text: str) -> str:
    return "=?base64?" + base64.b64encode(text.encode()).decode() + "?="


def build_server() -> MCPServer:
    server = MCPServer("header rules")

    @server.tool()
    async def weather(
        region: Annotated[str, Field(json_schema_extra={"x-mcp-header": "Region"})],
        days: Annotated[int, Field(json_schema_extra={"x-mcp-header": "Days"})] = 1,
    ) -> str:
        return f"{region} for {days} days"

    @server.tool(name="météo")
    async def meteo() -> str:
        return "sunny"

    @server.tool()
    async def widgets(ctx: Context) -> str:
        require_client_extension(ctx.request_context, "com.example/widgets")
        return "widgets"

    @server.prompt()
    def greet() -> str:
        return "hello"

    return server


@pytest.fixture(scope="module", params=["hosted", "stdio"])
def url(request: pytest.FixtureRequest) -> Iterator[str]:
    """The same server hosted in process (the SDK's own stateless path) and as a stdio process
    that speaks 2025 behind the gateway (our front, ``upstream/modern_front.py``): one table."""
    if request.param == "hosted":
        app = create_app(build_server(), ServerConfig())
    else:
        command = [sys.executable, str(ROOT / "tests" / "stdio_app.py"), f"{__name__}:build_server"]
        app = create_app(StdioUpstream(stdio_command(command)), ServerConfig())
    with run_server(app) as base:
        yield base + "/mcp"


def body(method: str, params: dict[str, Any] | None = None, meta: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": 1, "method": method, "params": {**(params or {}), "_meta": meta or META}}


def call(name: str, arguments: dict[str, Any] | None = None) -> dict[str, Any]:
    return body("tools/call", {"name": name, "arguments": arguments or {}})


OK = (200, None)
# (what the row checks, docs/spec-coverage.md item, body, headers beyond Accept/Content-Type, expected (status, code))
ROWS: list[tuple[str, int, dict[str, Any], dict[str, str], tuple[int, int | None]]] = [
    ("a well-formed request", 80, body("tools/list"), {"Mcp-Method": "tools/list"}, OK),
    (
        "version header differs from _meta",
        80,
        body("tools/list", meta={**META, "io.modelcontextprotocol/protocolVersion": "2025-11-25"}),
        {"Mcp-Method": "tools/list"},
        (400, -32020),
    ),
    (
        "unsupported version",
        80,
        body("tools/list", meta={**META, "io.modelcontextprotocol/protocolVersion": "2099-01-01"}),
        {"MCP-Protocol-Version": "2099-01-01", "Mcp-Method": "tools/list"},
        (400, -32022),
    ),
    ("Mcp-Method missing", 81, body("tools/list"), {}, (400, -32020)),
    ("Mcp-Method differs from the body", 81, body("tools/list"), {"Mcp-Method": "prompts/list"}, (400, -32020)),
    ("Mcp-Method is case-sensitive", 81, body("tools/list"), {"Mcp-Method": "Tools/List"}, (400, -32020)),
    (
        "Mcp-Name on tools/call",
        81,
        call("weather", {"region": "eu"}),
        {"Mcp-Method": "tools/call", "Mcp-Name": "weather", "Mcp-Param-Region": "eu"},
        OK,
    ),
    ("Mcp-Name missing on tools/call", 81, call("météo"), {"Mcp-Method": "tools/call"}, (400, -32020)),
    (
        "Mcp-Name differs on tools/call",
        81,
        call("weather", {"region": "eu"}),
        {"Mcp-Method": "tools/call", "Mcp-Name": "other", "Mcp-Param-Region": "eu"},
        (400, -32020),
    ),
    (
        "Mcp-Name missing on prompts/get",
        81,
        body("prompts/get", {"name": "greet"}),
        {"Mcp-Method": "prompts/get"},
        (400, -32020),
    ),
    (
        "Mcp-Name on prompts/get",
        81,
        body("prompts/get", {"name": "greet"}),
        {"Mcp-Method": "prompts/get", "Mcp-Name": "greet"},
        OK,
    ),
    (
        "Mcp-Name missing on resources/read",
        81,
        body("resources/read", {"uri": "file:///x"}),
        {"Mcp-Method": "resources/read"},
        (400, -32020),
    ),
    (
        "a non-ASCII name in the base64 sentinel",
        82,
        call("météo"),
        {"Mcp-Method": "tools/call", "Mcp-Name": b64("météo")},
        OK,
    ),
    (
        "the sentinel decoded before comparing: another name",
        82,
        call("météo"),
        {"Mcp-Method": "tools/call", "Mcp-Name": b64("meteo")},
        (400, -32020),
    ),
    ("a broken sentinel", 82, call("météo"), {"Mcp-Method": "tools/call", "Mcp-Name": "=?base64?!!!?="}, (400, -32020)),
    (
        "Mcp-Param-* mirrors annotated arguments",
        83,
        call("weather", {"region": "eu", "days": 3}),
        {"Mcp-Method": "tools/call", "Mcp-Name": "weather", "Mcp-Param-Region": "eu", "Mcp-Param-Days": "3"},
        OK,
    ),
    (
        "Mcp-Param-* integers compared as numbers",
        83,
        call("weather", {"region": "eu", "days": 3}),
        {"Mcp-Method": "tools/call", "Mcp-Name": "weather", "Mcp-Param-Region": "eu", "Mcp-Param-Days": "03"},
        OK,
    ),
    (
        "Mcp-Param-* missing for a present argument",
        83,
        call("weather", {"region": "eu", "days": 3}),
        {"Mcp-Method": "tools/call", "Mcp-Name": "weather", "Mcp-Param-Region": "eu"},
        (400, -32020),
    ),
    (
        "Mcp-Param-* differs from the argument",
        83,
        call("weather", {"region": "eu"}),
        {"Mcp-Method": "tools/call", "Mcp-Name": "weather", "Mcp-Param-Region": "us"},
        (400, -32020),
    ),
    ("an unknown method", 84, body("foo/bar"), {"Mcp-Method": "foo/bar"}, (404, -32601)),
    ("a removed method: ping", 84, body("ping"), {"Mcp-Method": "ping"}, (404, -32601)),
    (
        "a removed method: initialize",
        84,
        body("initialize", {"protocolVersion": V, "capabilities": {}, "clientInfo": {"name": "x", "version": "1"}}),
        {"Mcp-Method": "initialize"},
        (404, -32601),
    ),
    (
        "a required _meta field missing",
        84,
        body("tools/list", meta={"io.modelcontextprotocol/protocolVersion": V}),
        {"Mcp-Method": "tools/list"},
        (400, -32602),
    ),
    (
        "a required client capability missing",
        84,
        call("widgets"),
        {"Mcp-Method": "tools/call", "Mcp-Name": "widgets"},
        (400, -32021),
    ),
]


@pytest.mark.parametrize(("rule", "item", "payload", "headers", "expected"), ROWS, ids=[row[0] for row in ROWS])
def test_header_rule(
    url: str, rule: str, item: int, payload: dict[str, Any], headers: dict[str, str], expected: tuple[int, int | None]
) -> None:
    sent = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}
    sent["MCP-Protocol-Version"] = V
    sent.update(headers)
    response = httpx2.post(url, json=payload, headers=sent)
    status, code = expected
    assert response.status_code == status, f"docs/spec-coverage.md item {item}: {response.text}"
    answer = response.json()
    if code is None:
        assert "result" in answer, answer
        return
    assert answer["error"]["code"] == code, f"docs/spec-coverage.md item {item}: {answer}"
    assert answer["error"]["message"], "every rejection says what was wrong"
    assert "mcp-session-id" not in response.headers, "the stateless era never creates a session"
    if code == -32022:
        # What the client may retry with: the versions server/discover names, nothing else.
        assert answer["error"]["data"]["supported"] == discovered_versions(url)
        assert answer["error"]["data"]["requested"] == "2099-01-01"


def discovered_versions(url: str) -> list[str]:
    sent = {"Accept": "application/json, text/event-stream", "MCP-Protocol-Version": V, "Mcp-Method": "server/discover"}
    answer = httpx2.post(url, json=body("server/discover"), headers=sent).json()
    versions: list[str] = answer["result"]["supportedVersions"]
    return versions


def raw_post(url: str, payload: dict[str, Any], header_lines: list[str]) -> tuple[int, dict[str, Any]]:
    """A POST written by hand: httpx2 refuses header values with edge whitespace, other clients send them."""
    parts = urlsplit(url)
    data = orjson.dumps(payload)
    head = [
        f"POST {parts.path} HTTP/1.1",
        f"Host: {parts.netloc}",
        "Accept: application/json, text/event-stream",
        "Content-Type: application/json",
        f"Content-Length: {len(data)}",
        "Connection: close",
        *header_lines,
    ]
    with socket.create_connection((parts.hostname, parts.port), timeout=10) as sock:
        sock.sendall("\r\n".join(head).encode() + b"\r\n\r\n" + data)
        raw = b""
        while chunk := sock.recv(65536):
            raw += chunk
    status_line, _, rest = raw.partition(b"\r\n")
    answer = orjson.loads(rest.partition(b"\r\n\r\n")[2])
    return int(status_line.split()[1]), answer


def test_whitespace_around_a_header_value_is_not_part_of_it(url: str) -> None:
    """RFC 9110 section 5.5: a field value excludes the optional whitespace around it, so a client
    that pads ``Mcp-Name`` or ``Mcp-Method`` is not answered with a header mismatch."""
    headers = [
        f"MCP-Protocol-Version: {V} ",
        "Mcp-Method:  tools/call\t",
        "Mcp-Name:   weather  ",
        "Mcp-Param-Region: eu ",
    ]
    status, answer = raw_post(url, call("weather", {"region": "eu"}), headers)
    assert (status, answer.get("result", {}).get("content", [{}])[0].get("text")) == (200, "eu for 1 days"), answer
    # Whitespace inside the value is still part of it.
    status, answer = raw_post(
        url,
        call("weather", {"region": "eu"}),
        [f"MCP-Protocol-Version: {V}", "Mcp-Method: tools/call", "Mcp-Name: wea ther"],
    )
    assert (status, answer["error"]["code"]) == (400, -32020), answer
