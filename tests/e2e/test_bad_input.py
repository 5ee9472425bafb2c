"""Every rejection: the right HTTP status and a JSON-RPC error body, while a well-behaved client
beside it streams without losing a message."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import anyio
import httpx2
import mcp_types as types
import pytest
from mcp import ClientSession
from mcp.client.streamable_http import streamable_http_client

from mcp_sse import ServerConfig, create_app
from tests.rawclient import POST_HEADERS, call, initialize, session_headers
from tests.servers import build_test_server, run_server

pytestmark = pytest.mark.anyio

PING = {"jsonrpc": "2.0", "id": 1, "method": "ping"}


@dataclass
class Bad:
    name: str
    method: str
    status: int
    code: int | None
    body: bytes | None = None
    json: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    session: str = "valid"  # "valid", "none", "unknown"
    version: str = "2025-11-25"
    path: str = "/mcp"
    header_check: tuple[str, str] | None = None


BAD_REQUESTS = [
    Bad("invalid JSON", "POST", 400, -32700, body=b'{"jsonrpc": "2.0", "id": 1,'),
    Bad("not JSON-RPC", "POST", 400, -32600, json={"hello": "world"}),
    Bad("wrong jsonrpc version", "POST", 400, -32600, json={"jsonrpc": "1.0", "id": 1, "method": "ping"}),
    Bad("boolean id", "POST", 400, -32600, json={"jsonrpc": "2.0", "id": True, "method": "ping"}),
    Bad("empty batch", "POST", 400, -32600, json=[], version="2025-03-26"),
    Bad("wrong content type", "POST", 415, -32600, body=b"ping", headers={"content-type": "text/plain"}),
    Bad("POST accept json only", "POST", 406, -32600, json=PING, headers={"accept": "application/json"}),
    Bad("GET accept json only", "GET", 406, -32600, headers={"accept": "application/json"}),
    Bad("batch outside 2025-03-26", "POST", 400, -32600, json=[PING], version="2025-06-18"),
    Bad("unsupported protocol version", "POST", 400, -32022, json=PING, version="1999-01-01"),
    Bad("missing session id", "POST", 400, -32600, json=PING, session="none"),
    Bad("unknown session id", "POST", 404, -32600, json=PING, session="unknown"),
    Bad("GET without session", "GET", 400, -32600, session="none", headers={"accept": "text/event-stream"}),
    Bad("DELETE unknown session", "DELETE", 404, -32600, session="unknown"),
    Bad("body over the limit", "POST", 413, -32600, body=b"[" + b" " * (64 * 1024) + b"]"),
    Bad("PUT on the endpoint", "PUT", 405, -32600, json=PING, header_check=("allow", "GET, POST, DELETE, OPTIONS")),
    Bad("PATCH on the SSE endpoint", "PATCH", 405, -32600, path="/sse", header_check=("allow", "GET, OPTIONS")),
    Bad("unknown path", "POST", 404, -32601, json=PING, path="/nope"),
    Bad("bad Last-Event-ID", "GET", 400, -32600, headers={"accept": "text/event-stream", "last-event-id": "zz"}),
    Bad("an id too long to be one", "POST", 400, -32600, json={"jsonrpc": "2.0", "id": "x" * 2000, "method": "ping"}),
    Bad("headers too large", "POST", 431, -32600, json=PING, headers={"x-padding": "a" * 40_000}),
    Bad("a Host that is not a host name", "POST", 400, -32600, json=PING, headers={"host": "[x]:80 y"}),
    Bad("an Origin that is not a URL", "POST", 403, -32600, json=PING, headers={"origin": "http://["}),
    Bad("Last-Event-ID of a stream never opened", "GET", 400, -32600, headers={"last-event-id": "99-1"}),
    Bad("foreign Host", "POST", 421, -32600, json=PING, headers={"host": "evil.example:8000"}),
    Bad("foreign Origin", "POST", 403, -32600, json=PING, headers={"origin": "http://evil.example"}),
    Bad("opaque Origin", "POST", 403, -32600, json=PING, headers={"origin": "null"}),
    Bad(
        "foreign Origin on the SSE endpoint", "GET", 403, -32600, path="/sse", headers={"origin": "http://evil.example"}
    ),
    Bad("legacy POST without session_id", "POST", 400, -32600, json=PING, path="/messages", session="none"),
    Bad("legacy POST unknown session_id", "POST", 404, -32600, json=PING, path="/messages?session_id=nope"),
    Bad("duplicate in-flight id", "POST", 400, -32600, json=call(77, "wait", {"seconds": 2}, False)),
]


@pytest.fixture(scope="module")
def small_body_url() -> Iterator[str]:
    config = ServerConfig(max_body_bytes=32 * 1024, keepalive_interval=1.0)
    with run_server(create_app(build_test_server(), config)) as url:
        yield url


async def send_bad(http: httpx2.AsyncClient, base: str, bad: Bad, session_id: str) -> httpx2.Response:
    headers = dict(POST_HEADERS)
    if bad.method in ("GET", "DELETE"):
        headers = {"accept": "text/event-stream"}
    headers["mcp-protocol-version"] = bad.version
    if bad.session == "valid":
        headers["mcp-session-id"] = session_id
    elif bad.session == "unknown":
        headers["mcp-session-id"] = "no-such-session"
    headers.update(bad.headers)
    if bad.name == "duplicate in-flight id":
        # The same id is first put in flight by a call that takes a while.
        async with anyio.create_task_group() as tg:
            tg.start_soon(lambda: http.post(base + bad.path, json=bad.json, headers=headers))
            await anyio.sleep(0.3)
            response = await http.post(base + bad.path, json=bad.json, headers=headers)
            tg.cancel_scope.cancel()
        return response
    content = bad.body if bad.body is not None else (None if bad.json is None else httpx2_json(bad.json))
    return await http.request(bad.method, base + bad.path, content=content, headers=headers)


def httpx2_json(value: Any) -> bytes:
    import orjson

    return orjson.dumps(value)


def check(response: httpx2.Response, bad: Bad) -> None:
    assert response.status_code == bad.status, (bad.name, response.status_code, response.text)
    assert response.headers["content-type"].startswith("application/json"), bad.name
    body = response.json()
    assert body["jsonrpc"] == "2.0"
    assert body["error"]["code"] == bad.code, (bad.name, body)
    assert body["error"]["message"], bad.name
    if bad.header_check:
        name, value = bad.header_check
        assert response.headers[name] == value


@pytest.mark.parametrize("bad", BAD_REQUESTS, ids=[b.name for b in BAD_REQUESTS])
async def test_each_rejection_is_a_status_and_a_jsonrpc_error(small_body_url: str, bad: Bad) -> None:
    async with httpx2.AsyncClient(timeout=10) as http:
        version = "2025-03-26" if bad.version == "2025-03-26" else "2025-11-25"
        session_id = await initialize(http, small_body_url + "/mcp", version)  # the era is the negotiated one
        response = await send_bad(http, small_body_url, bad, session_id)
        check(response, bad)
        # The session that saw the bad request still works.
        if bad.session == "valid" and bad.status != 421:
            ok = await http.post(small_body_url + "/mcp", json=PING, headers=session_headers(session_id, version))
            assert ok.status_code == 200


async def test_a_running_stream_loses_nothing_while_bad_requests_arrive(small_body_url: str) -> None:
    progress: list[float] = []

    async def on_progress(value: float, total: float | None, message: str | None) -> None:
        progress.append(value)

    async def good_client(done: anyio.Event) -> types.CallToolResult:
        async with streamable_http_client(small_body_url + "/mcp") as (read, write):
            async with ClientSession(read, write) as session:
                await session.initialize()
                result = await session.call_tool("count", {"to": 300, "delay_ms": 2}, progress_callback=on_progress)
        done.set()
        return result

    results: list[types.CallToolResult] = []
    done = anyio.Event()
    async with httpx2.AsyncClient(timeout=10) as http, anyio.create_task_group() as tg:

        async def run_good() -> None:
            results.append(await good_client(done))

        tg.start_soon(run_good)
        session_id = await initialize(http, small_body_url + "/mcp")
        for bad in BAD_REQUESTS:
            check(await send_bad(http, small_body_url, bad, session_id), bad)
    assert results and not results[0].is_error
    assert progress == [float(i) for i in range(1, 301)]
