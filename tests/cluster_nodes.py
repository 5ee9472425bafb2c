"""Several ``mcp-sse serve`` processes sharing one real Redis, as nodes of a cluster, for the tests:
each on a port chosen ahead (so nginx can list them), its output in a file (a pipe nobody reads
would stall it), stopped by its pid; ``kill`` takes one away with SIGKILL."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.redis_server import free_port
from tests.servers import ROOT


class Node:
    def __init__(self, workdir: Path, redis_url: str | None, serve_args: list[str], index: int) -> None:
        self.port = free_port()
        self.log = workdir / f"node-{index}.log"
        shared = ["--redis", redis_url] if redis_url else ["--event-store", "memory"]  # None: nothing shared
        options = [*shared, "--port", str(self.port), "--log-level", "debug"]
        # A command after -- takes the rest of the line, so the options go before it. ``proxy URL``
        # is a command of its own.
        if serve_args[:1] == ["proxy"]:
            args = [*serve_args, *options]
        elif serve_args[:1] == ["--"]:
            args = ["serve", *options, *serve_args]
        else:
            args = ["serve", *serve_args, *options]
        with self.log.open("w") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "mcp_sse", *args], stdout=out, stderr=subprocess.STDOUT, cwd=ROOT
            )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/mcp"

    def wait_ready(self, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"node on {self.port} exited:\n{self.log.read_text()}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                if "Streamable HTTP:" in self.log.read_text():
                    return
            except OSError:
                pass
            time.sleep(0.05)
        raise RuntimeError(f"node on {self.port} did not start:\n{self.log.read_text()}")

    def kill(self) -> None:
        os.kill(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)

    def terminate(self) -> int:
        self.process.terminate()
        return self.process.wait(timeout=20)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


@contextmanager
def nodes(workdir: Path, redis_url: str | None, serve_args: list[str], count: int = 3) -> Iterator[list[Node]]:
    started = [Node(workdir, redis_url, serve_args, index) for index in range(count)]
    try:
        for node in started:
            node.wait_ready()
        yield started
    finally:
        for node in started:
            node.stop()
