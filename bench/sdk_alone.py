"""The SDK server with no transport at all: the ceiling of every "hosting the SDK server" row.

    .venv/bin/python -m bench.sdk_alone [--notifications 20000] [--seconds 3] [--repeats 3] [--json out.json]

The same ``MCPServer`` the other workloads host (``bench.targets.sdk_server``) runs its
``serve_loop`` in this process, fed ready-made messages and writing into a stream that only
serializes what it is given (what any transport must do at least). What remains is the server's
own CPU per progress notification (W1's tool) and per echo call with 16 sessions (W2): no
transport hosting this server in one process can go below it.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from typing import Any

import anyio
from anyio.streams.memory import MemoryObjectSendStream
from mcp.server.runner import serve_loop
from mcp.shared.message import SessionMessage
from mcp_types import JSONRPCResponse, jsonrpc_message_adapter

from bench.push import INIT
from bench.report import save_json
from bench.targets import sdk_server
from mcp_sse.upstream.sdk import as_lowlevel


def message(obj: dict[str, Any]) -> SessionMessage:
    return SessionMessage(jsonrpc_message_adapter.validate_python(obj, by_name=False))


class NullWrites:
    """The SDK's ``WriteStream`` with nothing behind it: serialize, note an answer, drop."""

    def __init__(self) -> None:
        self.answered = anyio.Event()
        self.notifications = 0

    async def send(self, item: SessionMessage, /) -> None:
        out = item.message
        out.__pydantic_serializer__.to_json(out, by_alias=True, exclude_unset=True)
        if isinstance(out, JSONRPCResponse):
            self.answered.set()
        else:
            self.notifications += 1

    async def aclose(self) -> None:
        pass

    async def __aenter__(self) -> NullWrites:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        pass


async def _session(server: Any, state: Any, tg: Any) -> tuple[MemoryObjectSendStream[SessionMessage], NullWrites]:
    to_server, reads = anyio.create_memory_object_stream[SessionMessage](16)
    writes = NullWrites()
    tg.start_soon(lambda: serve_loop(server, reads, writes, lifespan_state=state, session_id="bench"))
    await to_server.send(message(INIT))
    await writes.answered.wait()
    await to_server.send(message({"jsonrpc": "2.0", "method": "notifications/initialized"}))
    return to_server, writes


async def measure(notifications: int, seconds: float, repeats: int, sessions: int = 16) -> dict[str, Any]:
    server = as_lowlevel(sdk_server())
    push_us: list[float] = []
    call_us: list[float] = []
    async with server.lifespan(server) as state, anyio.create_task_group() as tg:
        to_server, writes = await _session(server, state, tg)
        for run in range(repeats + 1):  # the first run warms up
            writes.answered, writes.notifications = anyio.Event(), 0
            params = {"name": "push", "arguments": {"n": notifications}, "_meta": {"progressToken": 1}}
            cpu = time.process_time()
            await to_server.send(message({"jsonrpc": "2.0", "id": 100 + run, "method": "tools/call", "params": params}))
            await writes.answered.wait()
            if run:
                push_us.append((time.process_time() - cpu) / writes.notifications * 1e6)
        pairs = [await _session(server, state, tg) for _ in range(sessions)]
        for run in range(repeats + 1):
            done = 0
            stop = time.perf_counter() + (seconds if run else min(seconds, 0.5))

            async def caller(
                to_server: MemoryObjectSendStream[SessionMessage], writes: NullWrites, stop: float = stop
            ) -> None:
                nonlocal done
                request_id = 1000
                while time.perf_counter() < stop:
                    request_id += 1
                    writes.answered = anyio.Event()
                    params = {"name": "echo", "arguments": {"text": "x"}}
                    call = {"jsonrpc": "2.0", "id": request_id, "method": "tools/call", "params": params}
                    await to_server.send(message(call))
                    await writes.answered.wait()
                    done += 1

            cpu = time.process_time()
            async with anyio.create_task_group() as callers:
                for pair in pairs:
                    callers.start_soon(caller, *pair)
            if run:
                call_us.append((time.process_time() - cpu) / done * 1e6)
        tg.cancel_scope.cancel()
    return {
        "cpu_us_per_notification": {"median": statistics.median(push_us), "min": min(push_us), "max": max(push_us)},
        "cpu_us_per_call_16_sessions": {"median": statistics.median(call_us), "min": min(call_us), "max": max(call_us)},
        "meta": {"notifications": notifications, "seconds": seconds, "repeats": repeats, "loadavg": os.getloadavg()},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--notifications", type=int, default=20_000)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", dest="json_path")
    args = parser.parse_args()
    results = anyio.run(measure, args.notifications, args.seconds, args.repeats)
    push, call = results["cpu_us_per_notification"], results["cpu_us_per_call_16_sessions"]
    print("The SDK server alone, no transport (the ceiling of the rows hosting it)")
    print(f"  CPU us per progress notification: {push['median']:.1f} ({push['min']:.1f}-{push['max']:.1f})")
    print(f"  CPU us per echo call, 16 sessions: {call['median']:.0f} ({call['min']:.0f}-{call['max']:.0f})")
    save_json(args.json_path, results)


if __name__ == "__main__":
    main()
