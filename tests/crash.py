"""A server in its own process that a test can kill with SIGKILL and start again on the same port
and store: the crash tests of docs/durability.md."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from tests.redis_server import free_port
from tests.servers import ROOT


class ServerProcess:
    """``mcp-sse serve`` of the test server (or another ``command``: ``["--", CMD...]`` for a stdio
    server, or with ``subcommand="proxy"`` the upstream URL), restartable on one port."""

    def __init__(
        self, store: str, logdir: Path, *extra: str, command: list[str] | None = None, subcommand: str = "serve"
    ) -> None:
        self.subcommand = subcommand
        self.port = free_port()
        self.store = store
        self.logdir = logdir
        self.extra = list(extra)
        self.command = command or ["--app", "tests/servers.py:build_test_server"]
        self.process: subprocess.Popen[bytes] | None = None
        self.starts = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/mcp"

    def start(self) -> None:
        self.starts += 1
        log = open(self.logdir / f"server-{self.starts}.log", "wb")  # noqa: SIM115 (the process owns it)
        store = ["--event-store", self.store] if self.store else []  # none given: the command's default
        options = ["--port", str(self.port), *store, *self.extra]
        # A command after -- takes the rest of the line, so the options go before it.
        tail = [*options, *self.command] if self.command[0] == "--" else [*self.command, *options]
        args = [self.subcommand, *tail]
        self.process = subprocess.Popen(
            [sys.executable, "-m", "mcp_sse", *args], stdout=log, stderr=subprocess.STDOUT, cwd=ROOT
        )
        log.close()
        # Ready once it says so: the banner comes after the app's startup, and a test that reads it
        # must not kill the process before it is written (the port answers a little earlier).
        banner = self.logdir / f"server-{self.starts}.log"
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the server exited: {self.log()}")
            if b"  Event log:" in banner.read_bytes():
                return
            time.sleep(0.02)
        raise RuntimeError(f"the server did not announce itself within 30 s: {self.log()}")

    def kill(self) -> None:
        """SIGKILL: no shutdown, no flush, as a crash or an OOM kill would do it."""
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGKILL)
        self.process.wait()

    def terminate(self) -> int:
        """SIGTERM: a clean stop, as a deploy does it."""
        assert self.process is not None
        self.process.terminate()
        return self.process.wait(timeout=30)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()

    def log(self) -> str:
        return "".join(path.read_text(errors="replace") for path in sorted(self.logdir.glob("server-*.log")))[-4000:]


NODE = ROOT / "tests" / "conformance" / "node_modules" / ".bin" / "node"
TS_CLIENT = ROOT / "tests" / "conformance" / "crash_client.mjs"


async def typescript_client(
    url: str, steps: int, at_progress: int, then: Callable[[list[dict[str, Any]]], Awaitable[None]]
) -> list[dict[str, Any]]:
    """Run the official TypeScript SDK client (``crash_client.mjs``: one session, ``count`` to
    ``steps``, then ``echo``) and its JSON lines; ``then`` runs once, at the ``at_progress``th progress."""
    import json

    import anyio

    assert NODE.exists(), "run ./run test: it installs the Node peers"
    proc = await anyio.open_process([str(NODE), str(TS_CLIENT), url, str(steps)], stderr=subprocess.STDOUT)
    lines: list[dict[str, Any]] = []
    buffer = b""
    done = False
    assert proc.stdout is not None
    with anyio.fail_after(90):
        async for chunk in proc.stdout:
            buffer += chunk
            *complete, buffer = buffer.split(b"\n")
            for line in complete:
                try:
                    lines.append(json.loads(line))
                except ValueError:
                    continue  # the SDK's own log lines (reconnection notices)
                if not done and "progress" in lines[-1] and sum("progress" in item for item in lines) == at_progress:
                    done = True
                    await then(lines)
        await proc.wait()
    return lines
