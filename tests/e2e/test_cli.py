"""The ``mcp-sse`` command as a user runs it: a subprocess on a free port, driven by the SDK client."""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from mcp import ClientSession
from mcp.client.streamable_http import streamable_http_client

pytestmark = pytest.mark.anyio
ROOT = Path(__file__).resolve().parents[2]


@contextmanager
def mcp_sse(*args: str) -> Iterator[str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "mcp_sse", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        cwd=ROOT,
    )
    try:
        assert proc.stdout is not None
        lines = []
        for line in proc.stdout:
            lines.append(line)
            if match := re.search(r"Streamable HTTP: (http://\S+)", line):
                yield match.group(1)
                break
        else:
            raise AssertionError("no URL printed:\n" + "".join(lines))
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@pytest.mark.parametrize(
    "args",
    [
        ["serve", "--app", "tests/servers.py:build_test_server", "--port", "0"],
        ["serve", "--app", "tests.servers:build_test_server", "--port", "0"],
        ["demo", "--port", "0"],
    ],
    ids=["file", "module", "demo"],
)
async def test_command_prints_its_url_and_serves(args: list[str]) -> None:
    progress: list[float] = []

    async def on_progress(value: float, total: float | None, message: str | None) -> None:
        progress.append(value)

    with mcp_sse(*args) as url:
        assert url.startswith("http://127.0.0.1:") and url.endswith("/mcp")
        async with streamable_http_client(url) as (read, write):
            async with ClientSession(read, write) as session:
                await session.initialize()
                tools = {t.name for t in (await session.list_tools()).tools}
                assert "count" in tools
                result = await session.call_tool("count", {"to": 20, "delay_ms": 0}, progress_callback=on_progress)
    assert not result.is_error
    assert progress == [float(i) for i in range(1, 21)]


def test_a_bad_app_spec_is_a_one_line_error() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "mcp_sse", "serve", "--app", "tests/servers.py:nope"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
    )
    assert proc.returncode != 0
    assert "has no attribute 'nope'" in proc.stderr
    assert "Traceback" not in proc.stderr


async def test_serve_a_lowlevel_server_object() -> None:
    progress: list[float] = []

    async def on_progress(value: float, total: float | None, message: str | None) -> None:
        progress.append(value)

    with mcp_sse("serve", "--app", "tests/lowlevel_server.py:server", "--port", "0") as url:
        async with streamable_http_client(url) as (read, write):
            async with ClientSession(read, write) as session:
                await session.initialize()
                assert [t.name for t in (await session.list_tools()).tools] == ["progress"]
                result = await session.call_tool("progress", {"n": 50}, progress_callback=on_progress)
    assert result.content[0].text == "sent 50"  # type: ignore[union-attr]
    assert progress == [float(i) for i in range(1, 51)]
