"""W4 resume: a call's stream drops after its first event, the tool sends N more progress
notifications meanwhile, and the client resumes with ``Last-Event-ID``. Replay rate, time to the
first replayed event, server CPU per replayed event, and an exactly-once check, per target.

    .venv/bin/python -m bench.resume [--events 5000] [--repeats 3] [--json out.json]

Targets (bench/targets.py): ``sdk-store`` (the SDK's transport with a minimal in-memory store,
since it ships none), ``mcp-sse`` (our memory store) and ``mcp-sse-sqlite`` (our SQLite store), all
hosting the same MCPServer, each in its own process.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import time
from typing import Any

import anyio
import httpx2
import orjson

from bench.push import HEADERS, INIT, cpu_seconds, target_process
from bench.rawhttp import EventScanner, RawConnection
from bench.report import save_json, spread
from bench.targets import redis_for
from mcp_sse.wire.sse import SSEDecoder

TARGETS = ("sdk-store", "mcp-sse", "mcp-sse-sqlite", "mcp-sse-redis")
PROGRESS = re.compile(rb'"progress":(\d+)')  # the step of each progress notification, in order
SETTLE_SECONDS = 2.0  # default time for the tool to finish sending while nobody listens (not measured)


async def open_session(http: httpx2.AsyncClient, url: str) -> dict[str, str]:
    response = await http.post(url, content=orjson.dumps(INIT), headers=HEADERS)
    headers = {**HEADERS, "mcp-protocol-version": "2025-11-25"}
    if sid := response.headers.get("mcp-session-id"):
        headers["mcp-session-id"] = sid
    await http.post(url, content=b'{"jsonrpc":"2.0","method":"notifications/initialized"}', headers=headers)
    return headers


def progress_of(data: str) -> int | None:
    message = orjson.loads(data)
    if message.get("method") == "notifications/progress":
        return int(message["params"]["progress"])
    return None


async def one_resume(http: httpx2.AsyncClient, url: str, n: int, pid: int, settle: float) -> dict[str, float]:
    headers = await open_session(http, url)
    call = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "tools/call",
        "params": {"name": "push", "arguments": {"n": n + 1}, "_meta": {"progressToken": 1}},
    }
    last_id, first = None, None
    async with http.stream("POST", url, content=orjson.dumps(call), headers=headers) as stream:
        decoder = SSEDecoder()
        async for chunk in stream.aiter_raw():
            for event in decoder.feed(chunk):
                if event.data and (step := progress_of(event.data)) is not None:
                    last_id, first = event.id, step
                    break
            if first is not None:
                break  # the drop: the connection closes with the tool still sending
    assert last_id and first is not None
    await anyio.sleep(settle)
    seen: list[int] = []
    answered = False
    resume_headers = {**headers, "accept": "text/event-stream", "last-event-id": last_id}
    # The resume is read by the lean raw client: with httpx2 and a full SSE decoder the client,
    # not the server, set the replay rate (its spread showed it).
    conn = await RawConnection.open(url)
    scanner = EventScanner()
    cpu, started = cpu_seconds(pid), time.perf_counter()
    first_event_at = None
    async for chunk in conn.stream("GET", resume_headers):
        events = scanner.feed(chunk)
        if not events:
            continue
        if first_event_at is None and PROGRESS.search(events):
            first_event_at = time.perf_counter()
        seen += [int(step) for step in PROGRESS.findall(events)]
        if b'"result"' in events:
            answered = True
            break
    ended, cpu = time.perf_counter(), cpu_seconds(pid) - cpu
    await conn.close()
    expected = list(range(first + 1, n + 2))
    if not answered or seen != expected:
        raise RuntimeError(f"{url}: not exactly once: {len(seen)} of {len(expected)} events, answered={answered}")
    assert first_event_at is not None
    if "mcp-session-id" in headers:
        await http.delete(url, headers=headers)
    return {
        "events_per_s": len(seen) / (ended - started),
        "first_event_ms": (first_event_at - started) * 1000,
        "cpu_us_per_event": cpu / len(seen) * 1e6,
    }


async def measure(n: int, repeats: int, targets: tuple[str, ...], settle: float) -> dict[str, Any]:
    results: dict[str, Any] = {}
    async with httpx2.AsyncClient(timeout=httpx2.Timeout(60)) as http:
        for name in targets:
            with target_process(name) as (url, pid):
                await one_resume(http, url, min(n, 200), pid, settle)  # warm-up
                runs = [await one_resume(http, url, n, pid, settle) for _ in range(repeats)]
            rates = [run["events_per_s"] for run in runs]
            results[name] = {
                "events_per_s": {"median": statistics.median(rates), "min": min(rates), "max": max(rates)},
                "first_event_ms": statistics.median(run["first_event_ms"] for run in runs),
                "server_cpu_us_per_event": statistics.median(run["cpu_us_per_event"] for run in runs),
                "exactly_once": True,  # one_resume raises otherwise
            }
    if "sdk-store" in results:
        base = results["sdk-store"]["events_per_s"]["median"]
        for name in results:
            results[name]["ratio_to_sdk"] = results[name]["events_per_s"]["median"] / base
    results["meta"] = {"events": n, "repeats": repeats, "loadavg": os.getloadavg(), "cpus": os.cpu_count()}
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=5_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--targets", default=",".join(TARGETS))
    parser.add_argument("--settle", type=float, default=SETTLE_SECONDS, help="Seconds the tool gets to finish.")
    parser.add_argument("--json", dest="json_path")
    args = parser.parse_args()
    targets = tuple(args.targets.split(","))
    with redis_for(targets):
        results = anyio.run(measure, args.events, args.repeats, targets, args.settle)
    print(f"W4 resume: {args.events} events missed during a drop, replayed; {args.repeats} runs per target")
    print(f"{'target':<15} {'replayed events/s (median, min-max)':<40} {'first ms':>9} {'CPU us/ev':>10} {'x SDK':>7}")
    for name in targets:
        r = results[name]
        rate = r["events_per_s"]
        ratio = f"{r['ratio_to_sdk']:.2f}" if "ratio_to_sdk" in r else "-"
        cell = spread(rate)
        print(f"{name:<15} {cell:<40} {r['first_event_ms']:>9.1f} {r['server_cpu_us_per_event']:>10.1f} {ratio:>7}")
    save_json(args.json_path, results)


if __name__ == "__main__":
    main()
