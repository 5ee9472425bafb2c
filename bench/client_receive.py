"""Client receive cost: CPU time per received notification, our client transport against the SDK's,
on the same server (ours hosting the demo server, in its own process).

    .venv/bin/python -m bench.client_receive [--notifications 5000] [--repeats 5]

Both clients drive the SDK's ``ClientSession``; only the transport under it differs. CPU time is
this process's (the server runs elsewhere), so it measures what the client spends per event.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager, contextmanager
from typing import Any

import anyio
from mcp import ClientSession
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.message import SessionMessage
from mcp_types import JSONRPCError, JSONRPCNotification, JSONRPCRequest, JSONRPCResponse

from bench.report import save_json
from mcp_sse.client import connect

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
    for name in ("sdk", "mcp-sse", "sdk transport", "mcp-sse transport"):
        cpu = results[name]["cpu_us_per_notification"]
        rate = results[name]["notifications_per_s"]["median"]
        print(f"{name:<20} {cpu['median']:>8.1f}  ({cpu['min']:.1f}-{cpu['max']:.1f}){'':<22} {rate:>14,.0f}")
    print(f"mcp-sse / sdk CPU per notification, with ClientSession: {results['mcp-sse']['cpu_ratio_to_sdk']:.2f}")
    alone = results["mcp-sse transport"]["cpu_ratio_to_sdk"]
    print(f"mcp-sse / sdk CPU per notification, transport alone: {alone:.2f}")
    save_json(args.json_path, results)


if __name__ == "__main__":
    main()
