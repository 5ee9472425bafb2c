"""W2 rpc: 1 and 16 sessions each calling an ``echo`` tool back to back for a fixed time; calls/s,
latency p50/p99, and the server's CPU per call, for every target in one run, as ratios to the SDK.

    .venv/bin/python -m bench.rpc [--seconds 5] [--sessions 1,16] [--repeats 3] [--json out.json]

A lean raw client (``bench/rawhttp.py``: one kept-alive connection per session, httptools parsing,
one process, one task per session) drives every target the same way.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import time
from typing import Any

import anyio
import orjson

from bench.push import HEADERS, INIT, cpu_seconds, target_process
from bench.rawhttp import RawConnection
from bench.report import save_json, spread

TARGETS = ("sdk", "mcp-sse", "mcp-sse-raw", "bare")


async def open_session(conn: RawConnection) -> dict[str, str]:
    _, response_headers, _ = await conn.post(HEADERS, orjson.dumps(INIT))
    headers = {**HEADERS, "mcp-protocol-version": "2025-11-25"}
    if sid := response_headers.get("mcp-session-id"):
        headers["mcp-session-id"] = sid
    await conn.post(headers, b'{"jsonrpc":"2.0","method":"notifications/initialized"}')
    return headers


def answer_of(response_headers: dict[str, str], body: bytes) -> dict[str, Any]:
    """The JSON-RPC response in a JSON body or in an SSE body (the first event with data)."""
    if response_headers.get("content-type", "").startswith("application/json"):
        parsed: dict[str, Any] = orjson.loads(body)
        return parsed
    for line in body.split(b"\n"):
        if line.startswith(b"data:") and line[5:].strip():
            message: dict[str, Any] = orjson.loads(line[5:])
            if "result" in message or "error" in message:
                return message
    raise RuntimeError(f"no response in {body[:200]!r}")


async def caller(url: str, index: int, until: float, latencies: list[float], open_on: str | None = None) -> None:
    """Echo calls back to back on one session until ``until``; ``open_on``: open the session on that
    URL instead (a cluster's other node: every call then crosses to its owner)."""
    if open_on is not None:
        opener = await RawConnection.open(open_on)
        headers = await open_session(opener)
        await opener.close()
        conn = await RawConnection.open(url)
    else:
        conn = await RawConnection.open(url)
        headers = await open_session(conn)
    calls = 0
    while time.perf_counter() < until:
        calls += 1
        text = f"s{index}-{calls}"
        call = {
            "jsonrpc": "2.0",
            "id": calls,
            "method": "tools/call",
            "params": {"name": "echo", "arguments": {"text": text}},
        }
        started = time.perf_counter()
        _, response_headers, body = await conn.post(headers, orjson.dumps(call))
        answer = answer_of(response_headers, body)
        latencies.append(time.perf_counter() - started)
        if answer["result"]["content"][0]["text"] != text:
            raise RuntimeError(f"wrong answer {answer}")
    if "mcp-session-id" in headers and headers["mcp-session-id"] != "bare":
        await conn.request("DELETE", headers)
    await conn.close()


async def one_run(url: str, sessions: int, seconds: float, pid: int) -> dict[str, float]:
    latencies: list[float] = []
    cpu, started = cpu_seconds(pid), time.perf_counter()
    until = started + seconds
    async with anyio.create_task_group() as tg:
        for index in range(sessions):
            tg.start_soon(caller, url, index, until, latencies)
    wall, cpu = time.perf_counter() - started, cpu_seconds(pid) - cpu
    ordered = sorted(latencies)
    return {
        "calls_per_s": len(ordered) / wall,
        "p50_ms": ordered[len(ordered) // 2] * 1000,
        "p99_ms": ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1000,
        "cpu_us_per_call": cpu / len(ordered) * 1e6,
    }


async def measure(seconds: float, sessions: list[int], repeats: int, targets: tuple[str, ...]) -> dict[str, Any]:
    """Every target's server runs for the whole measurement and the runs take turns (each repeat
    runs every target once): a slow phase of this shared VM then falls on all targets alike, not
    on whichever ran during it. An idle target process costs nothing to the one measured."""
    runs: dict[str, dict[int, list[dict[str, float]]]] = {name: {count: [] for count in sessions} for name in targets}
    with contextlib.ExitStack() as stack:
        servers = {name: stack.enter_context(target_process(name)) for name in targets}
        for url, pid in servers.values():
            await one_run(url, max(sessions), min(seconds, 1.0), pid)  # warm-up
        for count in sessions:
            for _ in range(repeats):
                for name, (url, pid) in servers.items():
                    runs[name][count].append(await one_run(url, count, seconds, pid))
    results: dict[str, Any] = {}
    for name in targets:
        results[name] = {}
        for count in sessions:
            rates = [run["calls_per_s"] for run in runs[name][count]]
            results[name][str(count)] = {
                "calls_per_s": {"median": statistics.median(rates), "min": min(rates), "max": max(rates)},
                "p50_ms": statistics.median(run["p50_ms"] for run in runs[name][count]),
                "p99_ms": statistics.median(run["p99_ms"] for run in runs[name][count]),
                "server_cpu_us_per_call": statistics.median(run["cpu_us_per_call"] for run in runs[name][count]),
            }
    if "sdk" in results:
        for count in sessions:
            base = results["sdk"][str(count)]["calls_per_s"]["median"]
            for name in targets:
                row = results[name][str(count)]
                row["ratio_to_sdk"] = row["calls_per_s"]["median"] / base
    results["meta"] = {
        "seconds": seconds,
        "sessions": sessions,
        "repeats": repeats,
        "loadavg": os.getloadavg(),
        "cpus": os.cpu_count(),
    }
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--sessions", default="1,16")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--targets", default=",".join(TARGETS))
    parser.add_argument("--json", dest="json_path")
    args = parser.parse_args()
    targets = tuple(args.targets.split(","))
    sessions = [int(part) for part in args.sessions.split(",")]
    results = anyio.run(measure, args.seconds, sessions, args.repeats, targets)
    print(f"W2 rpc: echo calls for {args.seconds:g}s per run, {args.repeats} runs per target and session count")
    columns = f"{'p50 ms':>7} {'p99 ms':>7} {'CPU us/call':>12} {'x SDK':>7}"
    print(f"{'target':<13} {'sessions':>8} {'calls/s (median, min-max)':<32} {columns}")
    for name in targets:
        for count in sessions:
            r = results[name][str(count)]
            rate = r["calls_per_s"]
            ratio = f"{r['ratio_to_sdk']:.2f}" if "ratio_to_sdk" in r else "-"
            cell = spread(rate, width=8)
            print(
                f"{name:<13} {count:>8} {cell:<32} {r['p50_ms']:>7.2f} {r['p99_ms']:>7.2f} "
                f"{r['server_cpu_us_per_call']:>12.1f} {ratio:>7}"
            )
    save_json(args.json_path, results)


if __name__ == "__main__":
    main()
