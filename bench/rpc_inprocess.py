"""W2 without HTTP: the ASGI apps called directly in this process by 16 concurrent callers, the same
``echo`` calls as ``bench.rpc``; CPU per call (``time.process_time``) and the ratio to the SDK.

    .venv/bin/python -m bench.rpc_inprocess [--calls 300] [--sessions 16] [--repeats 3] [--json out.json]

Set beside W2 over HTTP, it tells what HTTP adds to a call at that call rate (the kernel's wake-ups
of a client that sleeps between answers, uvicorn's request handling) from what the transports
themselves cost. Each target runs in a fresh process, on uvloop like the served targets.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import statistics
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from typing import Any

import orjson

from bench.push import HEADERS as LEAN_HEADERS
from bench.push import INIT
from bench.report import save_json

TARGETS = ("sdk", "mcp-sse", "mcp-sse-raw")
# The lean client's headers, as ASGI pairs, with the Host every request carries.
HEADERS = [(b"host", b"127.0.0.1:8000")] + [(name.encode(), value.encode()) for name, value in LEAN_HEADERS.items()]


async def post(app: Any, headers: list[tuple[bytes, bytes]], body: bytes) -> tuple[dict[bytes, bytes], bytes]:
    """One POST through the app; its response headers and whole body."""
    delivered = False

    async def receive() -> dict[str, Any]:
        nonlocal delivered
        if not delivered:
            delivered = True
            return {"type": "http.request", "body": body, "more_body": False}
        await asyncio.Future()  # the client stays: no disconnect
        raise AssertionError

    response_headers: dict[bytes, bytes] = {}
    chunks: list[bytes] = []

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            response_headers.update(message["headers"])
        else:
            chunks.append(message.get("body", b""))

    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST", "scheme": "http",
        "path": "/mcp", "raw_path": b"/mcp", "query_string": b"", "root_path": "", "headers": headers,
        "client": ("127.0.0.1", 50000), "server": ("127.0.0.1", 8000), "state": {},
    }  # fmt: skip
    await app(scope, receive, send)
    return response_headers, b"".join(chunks)


async def caller(app: Any, index: int, calls: int) -> None:
    response_headers, _ = await post(app, HEADERS, orjson.dumps(INIT))
    headers = [*HEADERS, (b"mcp-protocol-version", b"2025-11-25")]
    if sid := response_headers.get(b"mcp-session-id"):
        headers.append((b"mcp-session-id", sid))
    await post(app, headers, b'{"jsonrpc":"2.0","method":"notifications/initialized"}')
    for n in range(1, calls + 1):
        text = f"s{index}-{n}"
        params = {"name": "echo", "arguments": {"text": text}}
        call = {"jsonrpc": "2.0", "id": n, "method": "tools/call", "params": params}
        _, body = await post(app, headers, orjson.dumps(call))
        if f'"text":"{text}"'.encode() not in body:
            raise RuntimeError(f"wrong answer {body[:200]!r}")


@contextlib.asynccontextmanager
async def running(app: Any) -> AsyncIterator[None]:
    """The app's ASGI lifespan, started and stopped around the measurement."""
    inbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    outbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    await inbox.put({"type": "lifespan.startup"})
    scope = {"type": "lifespan", "asgi": {"version": "3.0"}, "state": {}}
    lifespan = asyncio.ensure_future(app(scope, inbox.get, outbox.put))
    started = await outbox.get()
    if started["type"] != "lifespan.startup.complete":
        raise RuntimeError(f"startup failed: {started}")
    try:
        yield
    finally:
        await inbox.put({"type": "lifespan.shutdown"})
        await outbox.get()
        await lifespan


async def measure_target(target: str, calls: int, sessions: int, repeats: int) -> list[float]:
    from bench.targets import app_for

    app = app_for(target)
    per_call: list[float] = []
    async with running(app):
        await asyncio.gather(*(caller(app, i, max(1, calls // 10)) for i in range(sessions)))  # warm-up
        for _ in range(repeats):
            cpu = time.process_time()
            await asyncio.gather(*(caller(app, i, calls) for i in range(sessions)))
            per_call.append((time.process_time() - cpu) / (calls * sessions) * 1e6)
    return per_call


def child(target: str, calls: int, sessions: int, repeats: int) -> None:
    """In the target's own process: print its CPU µs per call of each repeat, as JSON."""
    import logging

    logging.disable(logging.INFO)  # one line per session opened would be measured too
    try:
        import uvloop
    except ImportError:  # where uvloop has no wheel, as the served targets then run
        print(json.dumps(asyncio.run(measure_target(target, calls, sessions, repeats))))
    else:
        print(json.dumps(uvloop.run(measure_target(target, calls, sessions, repeats))))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--calls", type=int, default=300, help="calls per session and repeat")
    parser.add_argument("--sessions", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--targets", default=",".join(TARGETS))
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--json", dest="json_path")
    args = parser.parse_args()
    if args.child:
        child(args.child, args.calls, args.sessions, args.repeats)
        return
    results: dict[str, Any] = {}
    for target in args.targets.split(","):
        command = [sys.executable, "-m", "bench.rpc_inprocess", "--child", target, "--calls", str(args.calls)]
        command += ["--sessions", str(args.sessions), "--repeats", str(args.repeats)]
        done = subprocess.run(command, capture_output=True, text=True, check=True)
        runs = json.loads(done.stdout.strip().splitlines()[-1])
        results[target] = {"cpu_us_per_call": {"median": statistics.median(runs), "min": min(runs), "max": max(runs)}}
    if "sdk" in results:
        base = results["sdk"]["cpu_us_per_call"]["median"]
        for row in results.values():
            row["ratio_to_sdk"] = base / row["cpu_us_per_call"]["median"]
    results["meta"] = {"calls": args.calls, "sessions": args.sessions, "repeats": args.repeats}
    print(f"W2 in process: {args.sessions} sessions x {args.calls} echo calls, no HTTP, {args.repeats} runs per target")
    print(f"{'target':<13} {'CPU us/call (median, min-max)':<32} {'x SDK':>7}")
    for target in args.targets.split(","):
        cpu = results[target]["cpu_us_per_call"]
        ratio = f"{results[target]['ratio_to_sdk']:.2f}" if "ratio_to_sdk" in results[target] else "-"
        print(f"{target:<13} {cpu['median']:>8.1f} ({cpu['min']:.1f}-{cpu['max']:.1f}){'':<12} {ratio:>7}")
    save_json(args.json_path, results)


if __name__ == "__main__":
    main()
