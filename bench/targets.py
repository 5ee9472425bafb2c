"""The servers the benchmarks compare, each run in its own process:

    python -m bench.targets TARGET   # prints "URL <url>" once listening

- ``sdk``: the official SDK serving an MCPServer with its own Streamable HTTP transport.
- ``mcp-sse``: our server hosting that same MCPServer.
- ``mcp-sse-raw``: our server with a minimal upstream that answers without the SDK (transport cost alone).
- ``bare``: a bare ASGI endpoint that streams the same SSE bytes: the ceiling on this machine.
- ``sdk-store``: ``sdk`` with an event store, so it can resume (the SDK ships none: ``ListStore``
  below is the smallest correct one written to its ``EventStore`` interface).
- ``mcp-sse-sqlite``: ``mcp-sse`` with its event log and sessions in a SQLite file.
- ``mcp-sse-redis``: ``mcp-sse`` with its event log and sessions in Redis (``BENCH_REDIS_URL``;
  ``redis_for`` starts a private redis-server for a run that has none).
- ``cluster-w1``, ``cluster-w2``: ``mcp-sse`` as a cluster on that Redis (``--redis``) with one or two
  worker processes on one port; ``cluster-node``: one node of such a cluster (start several).

Every target has a ``push`` tool: ``push(n)`` sends n progress notifications, then answers, and an
``echo`` tool: ``echo(text)`` answers ``text``.
"""

from __future__ import annotations

import os
import sys
import tempfile
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

import anyio
import orjson
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.streamable_http import EventCallback, EventMessage, EventStore
from mcp_types import JSONRPCMessage

from mcp_sse import ServerConfig, create_app
from mcp_sse.core.session import Inbound, Outbound, Session
from mcp_sse.wire.jsonrpc import Kind


def sdk_server() -> MCPServer:
    server = MCPServer("bench")

    @server.tool()
    async def push(n: int, ctx: Context | None = None) -> str:
        assert ctx is not None
        for i in range(1, n + 1):
            await ctx.report_progress(i, n)
        return f"pushed {n}"

    @server.tool()
    async def echo(text: str) -> str:
        return text

    return server


class ListStore(EventStore):
    """A minimal in-memory store for the SDK's ``EventStore`` interface: ids are ``<stream>/<index>``,
    replay is a list slice. Not the SDK's code (it ships no store); as lean as such a store gets."""

    def __init__(self) -> None:
        self.streams: dict[str, list[JSONRPCMessage | None]] = {}

    async def store_event(self, stream_id: str, message: JSONRPCMessage | None) -> str:
        events = self.streams.setdefault(stream_id, [])
        events.append(message)
        return f"{stream_id}/{len(events) - 1}"

    async def replay_events_after(self, last_event_id: str, send_callback: EventCallback) -> str | None:
        stream_id, _, index = last_event_id.rpartition("/")
        events = self.streams.get(stream_id)
        if events is None or not index.isdigit():
            return None
        for position in range(int(index) + 1, len(events)):
            message = events[position]
            if message is not None:
                await send_callback(EventMessage(message, f"{stream_id}/{position}"))
        return stream_id


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
                # The message is handled in its own frame, so nothing of it (its request scope
                # included) stays referenced while this task waits: the idle bench counts that.
                await self._answer(session, await session.receive())
            except anyio.EndOfStream:
                return

    @staticmethod
    async def _answer(session: Session, inbound: Inbound) -> None:
        message = inbound.message
        if message.id is None:
            return
        if message.method == "initialize":
            init = {
                "protocolVersion": "2025-11-25",
                "capabilities": {"tools": {}},
                "serverInfo": {"name": "raw", "version": "1"},
            }
            answer = {"jsonrpc": "2.0", "id": message.id, "result": init}
            await session.emit(Outbound(orjson.dumps(answer), Kind.RESPONSE, message.id))
        elif message.method == "tools/call" and message.obj["params"]["name"] == "echo":
            text = message.obj["params"]["arguments"]["text"]
            await session.emit(Outbound(result(message.id, text), Kind.RESPONSE, message.id))
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
    """Streams what a tools/call push(n) answer looks like, with no MCP machinery at all; a GET is
    held open until the client leaves (the idle bench's floor: what uvicorn costs per connection)."""
    if scope["type"] != "http":
        return
    if scope["method"] == "GET":
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/event-stream")]})
        await send({"type": "http.response.body", "body": b": held\n\n", "more_body": True})
        while (await receive())["type"] != "http.disconnect":
            pass
        return
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    request = orjson.loads(body)
    headers = [(b"content-type", b"text/event-stream"), (b"mcp-session-id", b"bare")]
    if request.get("method") == "tools/call" and request["params"]["name"] == "echo":
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        answer = result(request["id"], request["params"]["arguments"]["text"])
        await send({"type": "http.response.body", "body": b"data: " + answer + b"\n\n"})
        return
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


MAX_SESSIONS = 20_000  # room for the idle bench's 10,000 held streams and its echo session


def app_for(target: str) -> Any:
    if target == "sdk":
        return sdk_server().streamable_http_app(max_sessions=MAX_SESSIONS)
    if target == "mcp-sse":
        return create_app(sdk_server(), ServerConfig(max_sessions=MAX_SESSIONS))
    if target == "mcp-sse-raw":
        return create_app(RawUpstream(), ServerConfig(max_sessions=MAX_SESSIONS))
    if target == "bare":
        return bare_app
    if target == "sdk-store":
        return sdk_server().streamable_http_app(event_store=ListStore())
    if target == "mcp-sse-sqlite":
        path = Path(tempfile.mkdtemp(prefix="mcp-sse-bench-")) / "events.db"
        return create_app(sdk_server(), ServerConfig(event_store=f"sqlite:{path}", max_sessions=MAX_SESSIONS))
    if target == "mcp-sse-redis" or target.startswith("cluster-"):
        url = os.environ.get("BENCH_REDIS_URL")
        if not url:
            raise SystemExit(f"{target} needs BENCH_REDIS_URL (bench.targets.redis_for starts one)")
        if target == "mcp-sse-redis":
            return create_app(sdk_server(), ServerConfig(event_store=url, max_sessions=MAX_SESSIONS))
        return create_app(sdk_server(), ServerConfig(redis=url, max_sessions=MAX_SESSIONS))
    raise SystemExit(f"unknown target {target!r}")


@contextmanager
def redis_for(targets: tuple[str, ...]) -> Iterator[None]:
    """A private redis-server (Debian's package) for a run with the ``mcp-sse-redis`` target, unless
    ``BENCH_REDIS_URL`` names one; the target processes find it in their environment."""
    if not any(t == "mcp-sse-redis" or t.startswith("cluster-") for t in targets) or os.environ.get("BENCH_REDIS_URL"):
        yield
        return
    from tests.redis_server import redis_server

    with tempfile.TemporaryDirectory(prefix="mcp-sse-bench-redis-") as scratch, redis_server(Path(scratch)) as redis:
        os.environ["BENCH_REDIS_URL"] = redis.url
        try:
            yield
        finally:
            del os.environ["BENCH_REDIS_URL"]


def trace_memory_on_signal(out: str) -> None:
    """``BENCH_TRACEMALLOC=FILE``: the first SIGUSR1 takes a baseline, the next writes to FILE what
    was allocated since, by line (how the idle bench's per-stream memory was broken down)."""
    import signal
    import tracemalloc

    frames = int(os.environ.get("BENCH_TRACEMALLOC_FRAMES", "1"))
    tracemalloc.start(frames)
    baseline: list[tracemalloc.Snapshot] = []

    def on_signal(signum: int, frame: Any) -> None:
        snapshot = tracemalloc.take_snapshot()
        if not baseline:
            baseline.append(snapshot)
            return
        stats = snapshot.compare_to(baseline.pop(), "traceback" if frames > 1 else "lineno")
        with open(out, "w") as report:
            for stat in stats[:60]:
                report.write(f"{stat}\n")
                if frames > 1:
                    report.writelines(f"    {line}\n" for line in stat.traceback.format())

    signal.signal(signal.SIGUSR1, on_signal)


def main() -> None:
    from mcp_sse.cli.runner import is_worker, serve, serve_workers, url_for

    target = sys.argv[1]
    if out := os.environ.get("BENCH_TRACEMALLOC"):
        trace_memory_on_signal(out)

    def ready(sock: Any) -> None:
        print(f"URL {url_for(sock, '/mcp')}", flush=True)

    from mcp_sse.logs import configure

    if target == "cluster-w2" and not is_worker():
        command = [sys.executable, "-m", "bench.targets", target]  # each worker runs this module again
        serve_workers(2, "127.0.0.1", 0, on_ready=ready, command=command)
        return
    app = app_for(target)
    configure("warning", "text")  # as the command line does, after MCPServer() set up its own
    serve(app, "127.0.0.1", 0, on_ready=ready, log_level="error")


if __name__ == "__main__":
    main()
