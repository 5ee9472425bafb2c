"""W1 push: one call whose tool sends N progress notifications; notifications/s received, and the
server's CPU time per notification, for every target in one run, as ratios to the SDK.

    .venv/bin/python -m bench.push [--notifications 10000] [--repeats 3] [--json out.json]

A lean raw client (``bench/rawhttp.py``: httptools, events cut and counted with bytes operations)
reads every target the same way, so the numbers compare servers, not the client. Targets run in
their own processes (see bench/targets.py).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import anyio
import httpx2
import orjson

from bench.rawhttp import EventScanner, RawConnection
from bench.report import save_json, spread
from bench.targets import redis_for

TARGETS = ("sdk", "mcp-sse", "mcp-sse-sqlite", "mcp-sse-redis", "mcp-sse-raw", "bare")
HEADERS = {"accept": "application/json, text/event-stream", "content-type": "application/json"}
INIT = {
    "jsonrpc": "2.0",
    "id": 0,
    "method": "initialize",
    "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "bench", "version": "1"}},
}


@contextmanager
def target_process(name: str) -> Iterator[tuple[str, int]]:
    proc = subprocess.Popen([sys.executable, "-m", "bench.targets", name], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    try:
        for line in proc.stdout:
            if line.startswith("URL "):
                yield line.split()[1], proc.pid
                break
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:  # ending thousands of sessions can take longer; not measured
            proc.kill()
            proc.wait()


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def one_push(http: httpx2.AsyncClient, url: str, n: int, pid: int) -> tuple[float, float]:
    response = await http.post(url, content=orjson.dumps(INIT), headers=HEADERS)
    headers = {**HEADERS, "mcp-protocol-version": "2025-11-25"}
    if sid := response.headers.get("mcp-session-id"):
        headers["mcp-session-id"] = sid
    await http.post(url, content=b'{"jsonrpc":"2.0","method":"notifications/initialized"}', headers=headers)
    call = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "tools/call",
        "params": {"name": "push", "arguments": {"n": n}, "_meta": {"progressToken": 1}},
    }
    received = 0
    conn = await RawConnection.open(url)
    scanner = EventScanner()
    cpu, wall = cpu_seconds(pid), time.perf_counter()
    async for chunk in conn.stream("POST", headers, orjson.dumps(call)):
        received += scanner.feed(chunk).count(b'"notifications/progress"')
    wall, cpu = time.perf_counter() - wall, cpu_seconds(pid) - cpu
    await conn.close()
    if received != n:
        raise RuntimeError(f"{url}: received {received} of {n} notifications")
    if sid:
        await http.delete(url, headers=headers)
    return n / wall, cpu / n * 1e6


async def measure(n: int, repeats: int, targets: tuple[str, ...]) -> dict[str, Any]:
    results: dict[str, Any] = {}
    async with httpx2.AsyncClient(timeout=httpx2.Timeout(60)) as http:
        for name in targets:
            with target_process(name) as (url, pid):
                await one_push(http, url, min(n, 500), pid)  # warm-up
                runs = [await one_push(http, url, n, pid) for _ in range(repeats)]
            rates, cpus = [r[0] for r in runs], [r[1] for r in runs]
            results[name] = {
                "notifications_per_s": {"median": statistics.median(rates), "min": min(rates), "max": max(rates)},
                "server_cpu_us_per_notification": statistics.median(cpus),
            }
    if "sdk" in results:
        base = results["sdk"]["notifications_per_s"]["median"]
        for name in results:
            results[name]["ratio_to_sdk"] = results[name]["notifications_per_s"]["median"] / base
    results["meta"] = {"notifications": n, "repeats": repeats, "loadavg": os.getloadavg(), "cpus": os.cpu_count()}
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--notifications", type=int, default=10_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--targets", default=",".join(TARGETS))
    parser.add_argument("--json", dest="json_path")
    args = parser.parse_args()
    targets = tuple(args.targets.split(","))
    with redis_for(targets):
        results = anyio.run(measure, args.notifications, args.repeats, targets)
    print(f"W1 push: {args.notifications} progress notifications in one call, {args.repeats} runs per target")
    print(f"{'target':<13} {'notifications/s (median, min-max)':<38} {'server CPU us/notif':>20} {'x SDK':>7}")
    for name in targets:
        r = results[name]
        rate = r["notifications_per_s"]
        ratio = f"{r['ratio_to_sdk']:.2f}" if "ratio_to_sdk" in r else "-"
        cell = spread(rate)
        print(f"{name:<13} {cell:<38} {r['server_cpu_us_per_notification']:>20.1f} {ratio:>7}")
    save_json(args.json_path, results)


if __name__ == "__main__":
    main()
