"""``mcp-sse serve -- CMD``: a stdio server process behind every HTTP era, driven by official-SDK clients."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import mcp_types as types
import pytest
from mcp import ClientSession
from mcp.client.sse import sse_client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError

from tests.e2e.test_server_requests import elicitation, sampling, text
from tests.servers import ROOT, mcp_sse

pytestmark = pytest.mark.anyio

STDIO_SERVER = [sys.executable, str(ROOT / "tests" / "stdio_server.py")]


@pytest.fixture(scope="module", params=["per-session", "shared"])
def gateway(request: pytest.FixtureRequest) -> Iterator[tuple[str, str]]:
    mode = request.param
    flags = ["--shared"] if mode == "shared" else []
    with mcp_sse("serve", "--port", "0", *flags, "--", *STDIO_SERVER) as url:
        yield mode, url.rsplit("/mcp", 1)[0]


def client_for(base: str, transport: str) -> Any:
    return streamable_http_client(base + "/mcp") if transport == "streamable" else sse_client(base + "/sse")


@pytest.mark.parametrize("transport", ["streamable", "sse"])
async def test_twenty_concurrent_clients_each_get_only_their_own(gateway: tuple[str, str], transport: str) -> None:
    mode, base = gateway
    results: dict[int, tuple[list[float], list[Any], str, str]] = {}

    async def one_client(index: int) -> None:
        progress: list[float] = []
        logs: list[Any] = []

        async def on_progress(value: float, total: float | None, message: str | None) -> None:
            progress.append(value)

        async def on_log(params: types.LoggingMessageNotificationParams) -> None:
            logs.append(params.data)

        to = 20 + index
        async with client_for(base, transport) as (read, write):
            async with ClientSession(read, write, logging_callback=on_log) as session:
                await session.initialize()
                counted = text(
                    await session.call_tool("count", {"to": to, "delay_ms": 2}, progress_callback=on_progress)
                )
                shouted = text(await session.call_tool("shout", {"text": f"client-{index}"}))
        results[index] = (progress, logs, counted, shouted)

    with anyio.fail_after(120):
        async with anyio.create_task_group() as tg:
            for index in range(20):
                tg.start_soon(one_client, index)
    assert sorted(results) == list(range(20))
    for index, (progress, logs, counted, shouted) in results.items():
        to = 20 + index
        assert counted == f"counted to {to}", (mode, index)
        assert progress == [float(i) for i in range(1, to + 1)], (mode, index, progress)
        assert shouted == f"CLIENT-{index}"
        assert all(log == f"shouting client-{index}" for log in logs), (mode, index, logs)
        if mode == "per-session":
            assert logs == [f"shouting client-{index}"], (mode, index, logs)


async def test_one_process_per_session_or_one_shared(gateway: tuple[str, str]) -> None:
    mode, base = gateway
    pids = set()
    for _ in range(2):
        async with client_for(base, "streamable") as (read, write):
            async with ClientSession(read, write) as session:
                await session.initialize()
                pids.add(text(await session.call_tool("whoami", {})))
    assert len(pids) == (1 if mode == "shared" else 2)


@pytest.mark.parametrize("transport", ["streamable", "sse"])
async def test_sampling_and_elicitation_round_trips(gateway: tuple[str, str], transport: str) -> None:
    _, base = gateway
    async with client_for(base, transport) as (read, write):
        async with ClientSession(read, write, sampling_callback=sampling, elicitation_callback=elicitation) as session:
            await session.initialize()
            assert text(await session.call_tool("ask_model", {"prompt": "abc"})) == "model said cba"
            assert text(await session.call_tool("ask_user", {"question": "name?"})) == "accept: Ada"


async def test_cancelling_a_call_reaches_the_child(gateway: tuple[str, str], tmp_path: Path) -> None:
    _, base = gateway
    marker = tmp_path / "cancelled"
    async with client_for(base, "streamable") as (read, write):
        async with ClientSession(read, write) as session:
            await session.initialize()
            with anyio.move_on_after(1.0):
                await session.call_tool("sleepy", {"marker": str(marker)})
            with anyio.fail_after(10):
                while not marker.exists():  # noqa: ASYNC110 - the child writes a file
                    await anyio.sleep(0.05)
    assert marker.read_text() == "cancelled"


async def test_a_crashing_child_fails_the_call_and_the_next_session_works(gateway: tuple[str, str]) -> None:
    _, base = gateway
    async with client_for(base, "streamable") as (read, write):
        async with ClientSession(read, write) as session:
            await session.initialize()
            with pytest.raises(MCPError) as failure, anyio.fail_after(20):
                await session.call_tool("crash", {})
            assert "process exited (code 3)" in failure.value.error.message
            # the same session carries on with a fresh, re-initialized process
            assert text(await session.call_tool("echo", {"text": "again"})) == "again"
    async with client_for(base, "streamable") as (read, write):
        async with ClientSession(read, write) as session:
            await session.initialize()
            assert text(await session.call_tool("echo", {"text": "next"})) == "next"


async def test_env_cwd_and_stderr_logged_with_the_session(tmp_path: Path) -> None:
    import re
    import subprocess

    proc = subprocess.Popen(  # noqa: ASYNC220 - started once, read line by line below
        [sys.executable, "-m", "mcp_sse", "serve", "--port", "0", "--log-level", "info", "--env", "GREETING=hej",
         "--cwd", str(tmp_path), "--", *STDIO_SERVER],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=ROOT,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        url = ""
        for line in proc.stdout:
            if match := re.search(r"Streamable HTTP: (\S+)", line):
                url = match.group(1)
                break
        async with streamable_http_client(url) as (read, write), ClientSession(read, write) as session:
            await session.initialize()
            assert text(await session.call_tool("environment", {"name": "GREETING"})) == f"hej in {tmp_path}"
    finally:
        proc.terminate()
        output = proc.communicate(timeout=10)[0]
    assert re.search(r"session \S+ stderr: environment asked for GREETING", output), output
