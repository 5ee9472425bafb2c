"""``mcp-sse serve`` keeps its sessions in a SQLite file of its own by default: a restart of the
command, as a user or a deploy does it, keeps the official SDK client's session."""

from __future__ import annotations

import os
import re
from pathlib import Path

import anyio
import pytest
from mcp import ClientSession
from mcp.client.streamable_http import streamable_http_client

from tests.crash import ServerProcess

pytestmark = pytest.mark.anyio


async def test_serve_keeps_sessions_in_its_state_directory_across_a_restart(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    server = ServerProcess("", tmp_path, "--log-level", "info")
    server.start()
    try:
        async with streamable_http_client(server.url) as (read, write):
            async with ClientSession(read, write) as session:
                await session.initialize()
                assert (await session.call_tool("echo", {"text": "one"})).content[0].text == "one"  # type: ignore[union-attr]
                await anyio.to_thread.run_sync(server.terminate)
                await anyio.to_thread.run_sync(server.start)
                with anyio.fail_after(30):
                    assert (await session.call_tool("echo", {"text": "two"})).content[0].text == "two"  # type: ignore[union-attr]
    finally:
        server.stop()
    log = server.log()
    printed = re.findall(r"Event log:\s+sqlite:(\S+)", log)
    assert len(printed) == 2 and printed[0] == printed[1], log
    path = Path(printed[0])
    assert path.parent == tmp_path / "state" / "mcp-sse" and path.name.endswith(".db")
    assert oct(os.stat(path.parent).st_mode & 0o777) == "0o700"
    assert "brought back" in log


def test_two_servers_get_two_files_and_memory_opts_out(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from mcp_sse.cli.state_files import default_event_store

    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path))
    one = default_event_store("tests/servers.py:build_test_server", "127.0.0.1", 8000)
    assert one == default_event_store("tests/servers.py:build_test_server", "127.0.0.1", 8000), "stable"
    assert one != default_event_store("tests/servers.py:build_test_server", "127.0.0.1", 8001)
    assert one != default_event_store("python other_server.py", "127.0.0.1", 8000)
