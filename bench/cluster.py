"""The cluster (``--redis``, ``--workers``) beside the SDK and the single process, in one run:

- W2 rpc with 16 sessions: the SDK, ``mcp-sse`` on its memory store, and a cluster of one and of two
  worker processes on one port (this machine has two cores; the load generator shares them);
- a request forwarded to its session's owner: the same calls sent to the other node of a two-node
  cluster, so each one crosses one hop more (calls/s and latency beside the owner's own);
- Redis round trips per pushed message (``INFO commandstats``, before and after ``push(n)``), for the
  Redis event store alone and in a cluster.

    .venv/bin/python -m bench.cluster [--seconds 5] [--repeats 3] [--notifications 5000] [--json out.json]
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
import redis

from bench.push import target_process
from bench.report import save_json, spread
from bench.rpc import caller, one_run
from bench.targets import redis_for

RPC_TARGETS = ("sdk", "mcp-sse", "cluster-w1", "cluster-w2")


async def forwarded_run(owner_url: str, other_url: str, sessions: int, seconds: float) -> dict[str, float]:
    """Sessions opened on one node, every call sent to the other."""
    latencies: list[float] = []
    started = time.perf_counter()
    async with anyio.create_task_group() as tg:
        for index in range(sessions):
            tg.start_soon(caller, other_url, index, started + seconds, latencies, owner_url)
    wall = time.perf_counter() - started
    ordered = sorted(latencies)
    return {
        "calls_per_s": len(ordered) / wall,
        "p50_ms": ordered[len(ordered) // 2] * 1000,
        "p99_ms": ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1000,
    }


def redis_calls() -> tuple[int, int]:
    """Commands Redis has run, and how many of them ended a pipeline (EXEC: one round trip each)."""
    stats = redis.Redis.from_url(os.environ["BENCH_REDIS_URL"]).info("commandstats")
    return sum(int(entry["calls"]) for entry in stats.values()), int(stats.get("cmdstat_exec", {}).get("calls", 0))


async def round_trips(url: str, n: int) -> dict[str, float]:
    """Redis commands, and write round trips (pipelines), per pushed progress notification (the
    whole call: the push, its answer, the session's bookkeeping)."""
    import httpx2

    from bench.push import HEADERS, INIT

    async with httpx2.AsyncClient(timeout=120) as http:
        response = await http.post(url, content=orjson.dumps(INIT), headers=HEADERS)
        headers = {
            **HEADERS,
            "mcp-protocol-version": "2025-11-25",
            "mcp-session-id": response.headers["mcp-session-id"],
        }
        await http.post(url, content=b'{"jsonrpc":"2.0","method":"notifications/initialized"}', headers=headers)
        await anyio.sleep(0.5)  # the session's own writes are behind us
        before = redis_calls()
        call = {
            "jsonrpc": "2.0",
            "id": 1,
            "method": "tools/call",
            "params": {"name": "push", "arguments": {"n": n}, "_meta": {"progressToken": 1}},
        }
        await http.post(url, content=orjson.dumps(call), headers=headers)
        await anyio.sleep(1.0)  # the batched writer's last batch
        after = redis_calls()
        return {"commands": (after[0] - before[0]) / n, "pipelines": (after[1] - before[1]) / n}


async def measure(seconds: float, repeats: int, notifications: int) -> dict[str, Any]:
    results: dict[str, Any] = {"rpc16": {}, "forwarded16": {}, "redis_commands_per_message": {}}
    with contextlib.ExitStack() as stack:
        servers = {name: stack.enter_context(target_process(name)) for name in RPC_TARGETS}
        for url, pid in servers.values():
            await one_run(url, 16, min(seconds, 1.0), pid)  # warm-up
        runs: dict[str, list[dict[str, float]]] = {name: [] for name in RPC_TARGETS}
        for _ in range(repeats):
            for name, (url, pid) in servers.items():
                runs[name].append(await one_run(url, 16, seconds, pid))
        for name, measured in runs.items():
            rates = [run["calls_per_s"] for run in measured]
            results["rpc16"][name] = {
                "calls_per_s": {"median": statistics.median(rates), "min": min(rates), "max": max(rates)},
                "p50_ms": statistics.median(run["p50_ms"] for run in measured),
            }
    base = results["rpc16"]["sdk"]["calls_per_s"]["median"]
    for row in results["rpc16"].values():
        row["ratio_to_sdk"] = row["calls_per_s"]["median"] / base
    w1 = results["rpc16"]["cluster-w1"]["calls_per_s"]["median"]
    results["workers_2_over_1"] = results["rpc16"]["cluster-w2"]["calls_per_s"]["median"] / w1

    with target_process("cluster-node") as (first, _), target_process("cluster-node") as (second, _):
        direct = [await forwarded_run(first, first, 16, seconds) for _ in range(repeats)]
        hopped = [await forwarded_run(first, second, 16, seconds) for _ in range(repeats)]
    for name, measured in (("owner", direct), ("forwarded", hopped)):
        rates = [run["calls_per_s"] for run in measured]
        results["forwarded16"][name] = {
            "calls_per_s": {"median": statistics.median(rates), "min": min(rates), "max": max(rates)},
            "p50_ms": statistics.median(run["p50_ms"] for run in measured),
        }

    for name in ("mcp-sse-redis", "cluster-w1"):
        with target_process(name) as (url, _):
            results["redis_commands_per_message"][name] = await round_trips(url, notifications)
    results["meta"] = {"seconds": seconds, "repeats": repeats, "loadavg": os.getloadavg(), "cpus": os.cpu_count()}
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--notifications", type=int, default=5000)
    parser.add_argument("--json", dest="json_path")
    args = parser.parse_args()
    with redis_for(("cluster-w1",)):
        results = anyio.run(measure, args.seconds, args.repeats, args.notifications)
    print(f"W2 rpc, 16 sessions, {args.seconds:g}s per run, {args.repeats} runs per target")
    for name, row in results["rpc16"].items():
        rate = spread(row["calls_per_s"], width=8)
        print(f"  {name:<12} {rate:<32} p50 {row['p50_ms']:.2f} ms  x SDK {row['ratio_to_sdk']:.2f}")
    print(f"  two workers / one worker: {results['workers_2_over_1']:.2f}")
    print("A call forwarded to its session's owner (16 sessions)")
    for name, row in results["forwarded16"].items():
        print(f"  {name:<12} {spread(row['calls_per_s'], width=8):<32} p50 {row['p50_ms']:.2f} ms")
    print("Redis per pushed message: commands, and write round trips (pipelines)")
    for name, value in results["redis_commands_per_message"].items():
        print(f"  {name:<14} {value['commands']:.3f} commands, {value['pipelines']:.4f} round trips")
    save_json(args.json_path, results)


if __name__ == "__main__":
    main()
