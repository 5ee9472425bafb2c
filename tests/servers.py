"""The official-SDK server the tests host, and a helper that runs any ASGI app on real uvicorn."""

from __future__ import annotations

import re
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import AbstractAsyncContextManager, contextmanager
from pathlib import Path
from typing import Any

import anyio
import mcp_types as types
import uvicorn
from mcp.server.mcpserver import Context, MCPServer
from pydantic import BaseModel

from mcp_sse.core.session import Session
from mcp_sse.upstream.base import Upstream


class Answer(BaseModel):
    name: str


def build_test_server() -> MCPServer:
    server = MCPServer("mcp-sse tests")

    @server.tool()
    async def count(to: int = 10, delay_ms: int = 0, ctx: Context | None = None) -> str:
        """Report progress ``to`` times, then answer."""
        assert ctx is not None
        for step in range(1, to + 1):
            await ctx.report_progress(step, to, f"step {step}")
            if delay_ms:
                await anyio.sleep(delay_ms / 1000)
        return f"counted to {to}"

    @server.tool()
    async def shout(text: str, ctx: Context | None = None) -> str:
        """Log, then answer."""
        assert ctx is not None
        await ctx.info(f"shouting {text}")
        return text.upper()

    @server.tool()
    async def echo(text: str) -> str:
        return text

    @server.tool()
    async def wait(seconds: float) -> str:
        await anyio.sleep(seconds)
        return f"waited {seconds}"

    @server.tool()
    async def ask_model(prompt: str, ctx: Context | None = None) -> str:
        """A server-to-client request (sampling) on the stream of this call."""
        assert ctx is not None
        result = await ctx.session.create_message(
            [types.SamplingMessage(role="user", content=types.TextContent(type="text", text=prompt))],
            max_tokens=10,
            related_request_id=ctx.request_id,
        )
        assert isinstance(result.content, types.TextContent)
        return f"model said {result.content.text}"

    @server.tool()
    async def ask_user(question: str, ctx: Context | None = None) -> str:
        """Elicitation round trip."""
        assert ctx is not None
        answer = await ctx.elicit(question, Answer)
        return f"{answer.action}: {answer.data.name if answer.data else None}"

    @server.tool(annotations=types.ToolAnnotations(read_only_hint=True))
    async def lookup(n: int = 50, delay_ms: int = 10, ctx: Context | None = None) -> str:
        """Like count, but annotated read-only: a client may safely send it again."""
        assert ctx is not None
        for step in range(1, n + 1):
            await ctx.report_progress(step, n)
            await anyio.sleep(delay_ms / 1000)
        return f"looked up {n}"

    @server.tool()
    async def header(name: str, ctx: Context | None = None) -> str:
        """The value of an HTTP header of the request that carried this call."""
        assert ctx is not None
        headers = ctx.request_context.request.headers  # type: ignore[union-attr]
        return str(headers.get(name, "<absent>"))

    @server.tool()
    async def whose_token() -> str:
        """Who the caller's access token says it is, as a tool under the SDK's own transport reads it."""
        from mcp.server.auth.middleware.auth_context import get_access_token

        token = get_access_token()
        return "none" if token is None else f"{token.subject} {' '.join(token.scopes)}".strip()

    @server.tool()
    async def announce(ctx: Context | None = None) -> str:
        """A notification related to no request: it belongs on the standalone GET stream."""
        assert ctx is not None
        await ctx.session.send_tool_list_changed()
        return "announced"

    @server.tool()
    async def poll_me(steps: int = 3, ctx: Context | None = None) -> str:
        """Closes its own SSE connection (SEP-1699) between progress steps; the client must poll back."""
        assert ctx is not None
        for step in range(1, steps + 1):
            await ctx.report_progress(step, steps)
            await ctx.close_sse_stream()
            await anyio.sleep(0.2)
        return "polled"

    return server


class SessionsOnly:
    """An upstream of a user's own that serves sessions and nothing else: no 2026-07-28 path (the
    stdio and HTTP upstreams get ours, ``upstream/modern_front.py``, which this does not)."""

    def __init__(self, inner: Upstream) -> None:
        self.inner = inner

    def lifespan(self) -> AbstractAsyncContextManager[None]:
        return self.inner.lifespan()

    async def serve_session(self, session: Session) -> None:
        await self.inner.serve_session(session)


async def answer_lifespan(receive: Any, send: Any) -> None:
    """The lifespan protocol for a raw ASGI test app that needs no startup or shutdown of its own."""
    while (await receive())["type"] != "lifespan.shutdown":
        await send({"type": "lifespan.startup.complete"})
    await send({"type": "lifespan.shutdown.complete"})


@contextmanager
def run_server(app: Any, host: str = "127.0.0.1", port: int = 0) -> Iterator[str]:
    """Serve ``app`` on ``port`` (a free one by default) in a background thread; yields ``http://host:port``."""
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # as uvicorn's own sockets have
    sock.bind((host, port))
    port = sock.getsockname()[1]
    # proxy_headers off, as `mcp-sse serve` runs uvicorn: forwarding headers are the app's to judge.
    config = uvicorn.Config(
        app, lifespan="on", log_level="warning", timeout_graceful_shutdown=1, ws="none", proxy_headers=False
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("test server did not start")
        time.sleep(0.01)
    shown = f"[{host}]" if ":" in host else host
    try:
        yield f"http://{shown}:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


ROOT = Path(__file__).resolve().parents[1]


@contextmanager
def mcp_sse_process(*args: str) -> Iterator[tuple[str, subprocess.Popen[str]]]:
    """``python -m mcp_sse ARGS`` until it prints its Streamable HTTP URL: the URL and the process
    (a test may signal it); stopped on the way out if it still runs."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "mcp_sse", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        cwd=ROOT,
    )
    try:
        assert proc.stdout is not None
        lines = []
        for line in proc.stdout:
            lines.append(line)
            if match := re.search(r"Streamable HTTP: (http://\S+)", line):
                yield match.group(1), proc
                break
        else:
            raise AssertionError("no URL printed:\n" + "".join(lines))
    finally:
        if proc.poll() is None:
            proc.terminate()
        proc.wait(timeout=10)


@contextmanager
def mcp_sse(*args: str) -> Iterator[str]:
    with mcp_sse_process(*args) as (url, _):
        yield url
