"""W3 idle: N sessions each holding a GET stream; server memory per held stream, time to open
them, and echo latency on another session while they are held (against the same with none held).

    .venv/bin/python -m bench.idle [--streams 1000,5000,10000] [--echoes 300] [--json out.json]

Each session is one kept-alive connection (``bench/rawhttp.py``): initialize, initialized, then the
GET that stays open. Memory is the server process's resident set before and after, divided by N.
"""

from __future__ import annotations

import argparse
import os
import time
from typing import Any

import anyio
import orjson

from bench.push import target_process
from bench.rawhttp import RawConnection
from bench.report import save_json
from bench.rpc import answer_of, open_session

TARGETS = ("sdk", "mcp-sse", "mcp-sse-raw", "bare")
OPENERS = 50  # sessions opened concurrently


def rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS")


async def hold_stream(url: str) -> RawConnection:
    conn = await RawConnection.open(url)
    headers = await open_session(conn)
    status, response_headers = await conn.open_stream({**headers, "accept": "text/event-stream"})
    if status != 200 or not response_headers.get("content-type", "").startswith("text/event-stream"):
        raise RuntimeError(f"GET stream answered {status} {response_headers}")
    return conn


async def open_streams(url: str, count: int, held: list[RawConnection]) -> None:
    for _ in range(count):
        held.append(await hold_stream(url))


async def echo_latencies(url: str, count: int) -> list[float]:
    conn = await RawConnection.open(url)
    headers = await open_session(conn)
    latencies = []
    for i in range(count):
        call = {
            "jsonrpc": "2.0",
            "id": i,
            "method": "tools/call",
            "params": {"name": "echo", "arguments": {"text": "x"}},
        }
        started = time.perf_counter()
        _, response_headers, body = await conn.post(headers, orjson.dumps(call))
        latencies.append(time.perf_counter() - started)
        answer_of(response_headers, body)
    await conn.close()
    return sorted(latencies)


def percentile(ordered: list[float], fraction: float) -> float:
    return ordered[min(len(ordered) - 1, int(len(ordered) * fraction))] * 1000


async def one_count(url: str, pid: int, count: int, echoes: int) -> dict[str, Any]:
    """In a fresh server process: memory freed by an earlier round would hide this one's cost."""
    await echo_latencies(url, 50)  # warm-up
    baseline = await echo_latencies(url, echoes)
    before = rss_kib(pid)
    held: list[RawConnection] = []
    started = time.perf_counter()

    async with anyio.create_task_group() as tg:
        for index in range(OPENERS):
            tg.start_soon(open_streams, url, count // OPENERS + (1 if index < count % OPENERS else 0), held)
    opened = time.perf_counter() - started
    await anyio.sleep(1.0)  # let the server settle (keepalive timers armed, garbage collected)
    after = rss_kib(pid)
    latencies = await echo_latencies(url, echoes)
    for conn in held:
        await conn.close()
    return {
        "kib_per_stream": (after - before) / count,
        "open_ms_per_stream": opened / count * 1000,
        "baseline_echo_ms": {"p50": percentile(baseline, 0.5), "p99": percentile(baseline, 0.99)},
        "echo_ms": {"p50": percentile(latencies, 0.5), "p99": percentile(latencies, 0.99)},
    }


async def measure(counts: list[int], echoes: int, targets: tuple[str, ...]) -> dict[str, Any]:
    results: dict[str, Any] = {}
    for name in targets:
        results[name] = {}
        for count in counts:
            with target_process(name) as (url, pid):
                results[name][str(count)] = await one_count(url, pid, count, echoes)
    results["meta"] = {"streams": counts, "echoes": echoes, "loadavg": os.getloadavg(), "cpus": os.cpu_count()}
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--streams", default="1000,5000,10000")
    parser.add_argument("--echoes", type=int, default=300)
    parser.add_argument("--targets", default=",".join(TARGETS))
    parser.add_argument("--json", dest="json_path")
    args = parser.parse_args()
    counts = [int(part) for part in args.streams.split(",")]
    targets = tuple(args.targets.split(","))
    results = anyio.run(measure, counts, args.echoes, targets)
    print(f"W3 idle: sessions holding a GET stream; echo latency on one more session ({args.echoes} calls)")
    print(
        f"{'target':<12} {'streams':>8} {'KiB/stream':>11} {'open ms/stream':>15} {'echo p50/p99 ms (none held)':>28}"
    )
    for name in targets:
        for count in counts:
            row = results[name][str(count)]
            echo, base = row["echo_ms"], row["baseline_echo_ms"]
            latency = f"{echo['p50']:.2f}/{echo['p99']:.2f} ({base['p50']:.2f}/{base['p99']:.2f})"
            print(
                f"{name:<12} {count:>8} {row['kib_per_stream']:>11.1f} {row['open_ms_per_stream']:>15.2f} {latency:>28}"
            )
    save_json(args.json_path, results)


if __name__ == "__main__":
    main()
