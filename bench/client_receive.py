"""Client receive cost: CPU time per received notification, our client transport against the SDK's,
on the same server (ours hosting the demo server, in its own process).

    .venv/bin/python -m bench.client_receive [--notifications 5000] [--repeats 5]

Both clients drive the SDK's ``ClientSession``; only the transport under it differs. CPU time is
this process's (the server runs elsewhere), so it measures what the client spends per event. Each
transport is also read directly (what a transport owns), and ``ClientSession`` runs once over a
transport that costs nothing: the floor of every "under ``ClientSession``" row.
"""

from __future__ import annotations

import argparse
import functools
import os
import re
import statistics
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager, contextmanager
from typing import Any

import anyio
from mcp import ClientSession
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.message import SessionMessage
from mcp_types import JSONRPCError, JSONRPCNotification, JSONRPCRequest, JSONRPCResponse

from bench.report import save_json
from mcp_sse.client import connect
from mcp_sse.client.read_stream import ReadyFirstReceiveStream

ClientFactory = Callable[[str], AbstractAsyncContextManager[Any]]


@contextmanager
def demo_server() -> Any:
    proc = subprocess.Popen([sys.executable, "-m", "mcp_sse", "demo", "--port", "0"], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    try:
        for line in proc.stdout:
            if match := re.search(r"Streamable HTTP: (\S+)", line):
                yield match.group(1)
                break
    finally:
        proc.terminate()
        proc.wait(timeout=10)


async def one_run(factory: ClientFactory, url: str, notifications: int) -> tuple[float, float]:
    received = 0

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        nonlocal received
        received += 1

    async with factory(url) as streams:
        read, write = streams[0], streams[1]
        async with ClientSession(read, write) as session:
            await session.initialize()
            await session.call_tool("count", {"to": 50, "delay_ms": 0}, progress_callback=on_progress)  # warm-up
            received = 0
            cpu, wall = time.process_time(), time.perf_counter()
            await session.call_tool("count", {"to": notifications, "delay_ms": 0}, progress_callback=on_progress)
            cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    if received != notifications:
        raise RuntimeError(f"received {received} of {notifications} notifications")
    return cpu / notifications * 1e6, notifications / wall


async def one_run_transport(factory: ClientFactory, url: str, notifications: int) -> tuple[float, float]:
    """The transport alone: messages written to and read from its streams directly, no ClientSession.

    What each transport spends per received notification (HTTP, SSE parsing, building the SDK's
    ``SessionMessage``), without the session layer both share.
    """

    def request(request_id: int, method: str, params: dict[str, Any]) -> SessionMessage:
        return SessionMessage(JSONRPCRequest(jsonrpc="2.0", id=request_id, method=method, params=params))

    async def answer_to(read: Any, request_id: int) -> int:
        seen = 0
        while True:
            item = await read.receive()
            if isinstance(item, Exception):
                raise item
            message = item.message
            if isinstance(message, JSONRPCNotification) and message.method == "notifications/progress":
                seen += 1
            elif isinstance(message, JSONRPCResponse | JSONRPCError) and message.id == request_id:
                return seen

    init = {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "bench", "version": "1"}}
    async with factory(url) as streams:
        read, write = streams[0], streams[1]
        await write.send(request(0, "initialize", init))
        await answer_to(read, 0)
        await write.send(SessionMessage(JSONRPCNotification(jsonrpc="2.0", method="notifications/initialized")))
        call = {"name": "count", "arguments": {"to": 50, "delay_ms": 0}, "_meta": {"progressToken": 1}}
        await write.send(request(1, "tools/call", call))
        await answer_to(read, 1)  # warm-up
        call = {"name": "count", "arguments": {"to": notifications, "delay_ms": 0}, "_meta": {"progressToken": 2}}
        cpu, wall = time.process_time(), time.perf_counter()
        await write.send(request(2, "tools/call", call))
        received = await answer_to(read, 2)
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    if received != notifications:
        raise RuntimeError(f"received {received} of {notifications} notifications")
    return cpu / notifications * 1e6, notifications / wall


@asynccontextmanager
async def null_transport(url: str, notifications: int) -> AsyncIterator[tuple[Any, Any]]:
    """A transport that costs nothing: no HTTP, no SSE, no parsing, the notifications built before
    they are asked for. Under ``ClientSession`` what remains is the session's own cost per
    notification, the floor of every transport's "under ``ClientSession``" row."""
    to_session, read = anyio.create_memory_object_stream[SessionMessage | Exception](notifications + 16)
    write, from_session = anyio.create_memory_object_stream[SessionMessage](16)
    ready: list[SessionMessage] = []

    def progress_for(token: Any, n: int) -> list[SessionMessage]:
        return [
            SessionMessage(
                JSONRPCNotification(
                    jsonrpc="2.0",
                    method="notifications/progress",
                    params={"progressToken": token, "progress": i, "total": n, "message": f"step {i}"},
                )
            )
            for i in range(1, n + 1)
        ]

    def answer(request_id: Any, result: dict[str, Any]) -> SessionMessage:
        return SessionMessage(JSONRPCResponse(jsonrpc="2.0", id=request_id, result=result))

    async def serve() -> None:
        async for item in from_session:
            message = item.message
            if not isinstance(message, JSONRPCRequest):
                continue
            if message.method == "initialize":
                info = {"name": "null", "version": "1"}
                init = {"protocolVersion": "2025-11-25", "capabilities": {"tools": {}}, "serverInfo": info}
                to_session.send_nowait(answer(message.id, init))
            elif message.method == "tools/call":
                assert message.params is not None
                n = int(message.params["arguments"]["to"])
                events = ready if len(ready) == n else progress_for(message.id, n)
                for event in events:
                    assert isinstance(event.message, JSONRPCNotification) and event.message.params is not None
                    event.message.params["progressToken"] = message.id  # built before the call knew it
                    to_session.send_nowait(event)
                to_session.send_nowait(answer(message.id, {"content": []}))
                # The next call's notifications, built now: the measured call spends nothing on it.
                ready[:] = progress_for(None, notifications)
            else:
                to_session.send_nowait(answer(message.id, {"tools": []} if message.method == "tools/list" else {}))

    async with anyio.create_task_group() as tg, to_session, from_session:
        tg.start_soon(serve)
        try:
            yield ReadyFirstReceiveStream(read), write
        finally:
            tg.cancel_scope.cancel()


def sdk_client(url: str) -> AbstractAsyncContextManager[Any]:
    return streamable_http_client(url)


def our_client(url: str) -> AbstractAsyncContextManager[Any]:
    return connect(url, transport="streamable-http")


CLIENTS: dict[str, ClientFactory] = {"sdk": sdk_client, "mcp-sse": our_client}


async def measure(notifications: int, repeats: int) -> dict[str, Any]:
    results: dict[str, Any] = {}
    with demo_server() as url:
        samples: dict[str, list[tuple[float, float]]] = {}
        for _ in range(repeats):
            for name, factory in CLIENTS.items():  # interleaved, so drift hits both alike
                samples.setdefault(name, []).append(await one_run(factory, url, notifications))
                transport_alone = await one_run_transport(factory, url, notifications)
                samples.setdefault(f"{name} transport", []).append(transport_alone)
            null = functools.partial(null_transport, notifications=notifications)
            samples.setdefault("ClientSession alone", []).append(await one_run(null, url, notifications))
    for name, runs in samples.items():
        cpu = [r[0] for r in runs]
        rate = [r[1] for r in runs]
        results[name] = {
            "cpu_us_per_notification": {"median": statistics.median(cpu), "min": min(cpu), "max": max(cpu)},
            "notifications_per_s": {"median": statistics.median(rate), "min": min(rate), "max": max(rate)},
        }
    for ours, theirs in (("mcp-sse", "sdk"), ("mcp-sse transport", "sdk transport")):
        base = results[theirs]["cpu_us_per_notification"]["median"]
        results[ours]["cpu_ratio_to_sdk"] = results[ours]["cpu_us_per_notification"]["median"] / base
    # No transport under ClientSession can cost less than the session itself: its share of the
    # SDK client's cost is the lowest ratio any transport can reach in that row.
    floor = results["ClientSession alone"]["cpu_us_per_notification"]["median"]
    results["ClientSession alone"]["cpu_ratio_to_sdk"] = floor / results["sdk"]["cpu_us_per_notification"]["median"]
    results["meta"] = {"notifications": notifications, "repeats": repeats, "loadavg": os.getloadavg()}
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--notifications", type=int, default=5000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--json", dest="json_path", default=None, help="Also write the results here.")
    args = parser.parse_args()
    results = anyio.run(measure, args.notifications, args.repeats)
    print(f"client receive cost, {args.notifications} progress notifications, {args.repeats} runs each")
    print(f"{'client':<20} {'CPU us/notification (median, min-max)':<40} {'notifications/s (median)':>24}")
    for name in ("sdk", "mcp-sse", "ClientSession alone", "sdk transport", "mcp-sse transport"):
        cpu = results[name]["cpu_us_per_notification"]
        rate = results[name]["notifications_per_s"]["median"]
        print(f"{name:<20} {cpu['median']:>8.1f}  ({cpu['min']:.1f}-{cpu['max']:.1f}){'':<22} {rate:>14,.0f}")
    print(f"mcp-sse / sdk CPU per notification, with ClientSession: {results['mcp-sse']['cpu_ratio_to_sdk']:.2f}")
    floor = results["ClientSession alone"]["cpu_ratio_to_sdk"]
    print(f"ClientSession alone / sdk: {floor:.2f} (the lowest ratio any transport can reach under ClientSession)")
    alone = results["mcp-sse transport"]["cpu_ratio_to_sdk"]
    print(f"mcp-sse / sdk CPU per notification, transport alone: {alone:.2f}")
    save_json(args.json_path, results)


if __name__ == "__main__":
    main()
