"""The servers the benchmarks compare, each run in its own process:

    python -m bench.targets TARGET   # prints "URL <url>" once listening

- ``sdk``: the official SDK serving an MCPServer with its own Streamable HTTP transport.
- ``mcp-sse``: our server hosting that same MCPServer.
- ``mcp-sse-raw``: our server with a minimal upstream that answers without the SDK (transport cost alone).
- ``bare``: a bare ASGI endpoint that streams the same SSE bytes: the ceiling on this machine.

Every target has a ``push`` tool: ``push(n)`` sends n progress notifications, then answers.
"""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
import orjson
from mcp.server.mcpserver import Context, MCPServer

from mcp_sse import ServerConfig, create_app
from mcp_sse.core.session import Outbound, Session
from mcp_sse.wire.jsonrpc import Kind


def sdk_server() -> MCPServer:
    server = MCPServer("bench")

    @server.tool()
    async def push(n: int, ctx: Context | None = None) -> str:
        assert ctx is not None
        for i in range(1, n + 1):
            await ctx.report_progress(i, n)
        return f"pushed {n}"

    return server


def progress(token: Any, i: int, n: int) -> bytes:
    params = {"progressToken": token, "progress": i, "total": n}
    return orjson.dumps({"jsonrpc": "2.0", "method": "notifications/progress", "params": params})


def result(request_id: Any, text: str) -> bytes:
    return orjson.dumps({"jsonrpc": "2.0", "id": request_id, "result": {"content": [{"type": "text", "text": text}]}})


class RawUpstream:
    """Answers initialize and push(n) directly: what our transport costs with nothing behind it."""

    @asynccontextmanager
    async def lifespan(self) -> AsyncIterator[None]:
        yield

    async def serve_session(self, session: Session) -> None:
        while True:
            try:
                inbound = await session.receive()
            except anyio.EndOfStream:
                return
            message = inbound.message
            if message.id is None:
                continue
            if message.method == "initialize":
                init = {
                    "protocolVersion": "2025-11-25",
                    "capabilities": {"tools": {}},
                    "serverInfo": {"name": "raw", "version": "1"},
                }
                payload = orjson.dumps({"jsonrpc": "2.0", "id": message.id, "result": init})
                await session.emit(Outbound(payload, Kind.RESPONSE, message.id))
            elif message.method == "tools/call":
                params = message.obj["params"]
                n = int(params["arguments"]["n"])
                token = params.get("_meta", {}).get("progressToken")
                for i in range(1, n + 1):
                    await session.emit(Outbound(progress(token, i, n), Kind.NOTIFICATION, None, message.id))
                await session.emit(Outbound(result(message.id, f"pushed {n}"), Kind.RESPONSE, message.id))
            else:
                await session.emit(Outbound(result(message.id, "ok"), Kind.RESPONSE, message.id))


async def bare_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """Streams what a tools/call push(n) answer looks like, with no MCP machinery at all."""
    if scope["type"] != "http":
        return
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    request = orjson.loads(body)
    headers = [(b"content-type", b"text/event-stream"), (b"mcp-session-id", b"bare")]
    if request.get("method") != "tools/call":
        await send({"type": "http.response.start", "status": 200 if "id" in request else 202, "headers": headers})
        answer = result(request.get("id"), "ok") if "id" in request else b""
        await send({"type": "http.response.body", "body": b"data: " + answer + b"\n\n" if answer else b""})
        return
    n = int(request["params"]["arguments"]["n"])
    token = request["params"].get("_meta", {}).get("progressToken")
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    for i in range(1, n + 1):
        await send(
            {"type": "http.response.body", "body": b"data: " + progress(token, i, n) + b"\n\n", "more_body": True}
        )
    await send({"type": "http.response.body", "body": b"data: " + result(request["id"], "done") + b"\n\n"})


def app_for(target: str) -> Any:
    if target == "sdk":
        return sdk_server().streamable_http_app()
    if target == "mcp-sse":
        return create_app(sdk_server(), ServerConfig())
    if target == "mcp-sse-raw":
        return create_app(RawUpstream(), ServerConfig())
    if target == "bare":
        return bare_app
    raise SystemExit(f"unknown target {target!r}")


def main() -> None:
    from mcp_sse.cli.runner import serve, url_for

    target = sys.argv[1]

    def ready(sock: Any) -> None:
        print(f"URL {url_for(sock, '/mcp')}", flush=True)

    serve(app_for(target), "127.0.0.1", 0, on_ready=ready, log_level="error")


if __name__ == "__main__":
    main()
