"""The ``mcp-sse`` command as a user runs it: a subprocess on a free port, driven by the SDK client."""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterator

import pytest
from mcp import ClientSession
from mcp.client.streamable_http import streamable_http_client

from tests.servers import ROOT, mcp_sse

pytestmark = pytest.mark.anyio


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


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mcp_sse", *args], capture_output=True, text=True, cwd=ROOT, timeout=120
    )


@pytest.fixture(scope="module")
def served_url() -> Iterator[str]:
    with mcp_sse("serve", "--app", "tests/servers.py:build_test_server", "--port", "0") as url:
        yield url


def test_call_prints_the_result_and_shows_progress_and_logs(served_url: str) -> None:
    done = run_cli("call", served_url, "count", "--arg", "to=30")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "counted to 30"
    assert "30/30" in done.stderr, "the progress bar reached the total"
    logged = run_cli("call", served_url, "shout", "--arg", "text=123")
    assert logged.returncode == 0, logged.stderr
    assert logged.stdout.strip() == "123", "a string argument stays a string even when it looks like a number"
    assert "shouting 123" in logged.stderr


def test_call_json_and_transports(served_url: str) -> None:
    import json

    for transport, url in [("streamable-http", served_url), ("sse", served_url.replace("/mcp", "/sse"))]:
        done = run_cli("call", url, "echo", "--arg", "text=hi", "--json", "--transport", transport)
        assert done.returncode == 0, done.stderr
        assert json.loads(done.stdout)["content"][0]["text"] == "hi"


def test_tools_lists_the_tools(served_url: str) -> None:
    done = run_cli("tools", served_url)
    assert done.returncode == 0, done.stderr
    assert "count(to, delay_ms)" in done.stdout


@pytest.mark.parametrize(
    ("args", "reason"),
    [
        (["call", "{url}", "nope"], "the server has no tool 'nope'"),
        (["call", "{url}", "count", "--arg", "to=many"], "--arg to='many' is not a valid integer"),
        (["call", "{url}", "count", "--arg", "oops"], "is not key=value"),
        (["call", "http://127.0.0.1:9/mcp", "echo", "--retry-budget", "1"], "cannot connect"),
    ],
    ids=["unknown tool", "bad integer", "bad pair", "nothing listening"],
)
def test_failures_are_one_line_and_non_zero(served_url: str, args: list[str], reason: str) -> None:
    done = run_cli(*[a.format(url=served_url) for a in args])
    assert done.returncode != 0
    assert reason in done.stderr, done.stderr
    assert "Traceback" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr


def test_every_config_field_is_an_option_of_every_server_command() -> None:
    import dataclasses

    from mcp_sse.config import ServerConfig, option_name

    for command in ("serve", "proxy", "demo"):
        help_text = run_cli(command, "--help").stdout
        for field in dataclasses.fields(ServerConfig):
            assert option_name(field) in help_text, (command, field.name)


def test_a_bad_option_value_is_a_usage_error() -> None:
    done = run_cli("demo", "--max-sessions", "lots")
    assert done.returncode == 2 and "'lots' is not a int or 'none'" in done.stderr
    done = run_cli("demo", "--path", "mcp")
    assert done.returncode == 2 and "path must start with /" in done.stderr


@pytest.mark.parametrize("mode", ["app", "stdio", "proxy"])
async def test_server_options_apply_in_every_mode(mode: str) -> None:
    import httpx2

    from tests.rawclient import POST_HEADERS, init_request

    stdio = [sys.executable, "tests/stdio_server.py"]
    options = ["--port", "0", "--max-sessions", "1", "--path", "/custom"]
    with mcp_sse("serve", "--app", "tests/servers.py:build_test_server", *options) as upstream:
        args = {
            "app": ["serve", "--app", "tests/servers.py:build_test_server", *options],
            "stdio": ["serve", *options, "--", *stdio],
            "proxy": ["proxy", upstream.replace("/custom", "/custom"), *options],
        }[mode]
        with mcp_sse(*args) as url:
            assert url.endswith("/custom")
            async with httpx2.AsyncClient(timeout=30) as http:
                first = await http.post(url, json=init_request(), headers=POST_HEADERS)
                second = await http.post(url, json=init_request(), headers=POST_HEADERS)
    assert first.status_code == 200
    assert second.status_code == 503, "--max-sessions 1 applies"


def test_the_configuration_reference_is_generated_from_the_config() -> None:
    from mcp_sse.config_reference import render

    assert (ROOT / "docs" / "configuration.md").read_text() == render(), (
        "docs/configuration.md is stale: python -m mcp_sse.config_reference > docs/configuration.md"
    )


async def test_json_logs_carry_the_session_id_as_a_field() -> None:
    import json

    import httpx2

    proc = subprocess.Popen(  # noqa: ASYNC220 - started once, read below
        [sys.executable, "-m", "mcp_sse", "serve", "--app", "tests/servers.py:build_test_server", "--port", "0",
         "--log-level", "info", "--log-format", "json"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT,
    )  # fmt: skip
    session_ids: list[str] = []

    async def capture(response: httpx2.Response) -> None:
        if sid := response.headers.get("mcp-session-id"):
            session_ids.append(sid)

    try:
        assert proc.stdout is not None
        url = next(m.group(1) for line in proc.stdout if (m := re.search(r"Streamable HTTP: (\S+)", line)))
        async with httpx2.AsyncClient(event_hooks={"response": [capture]}) as http:
            async with streamable_http_client(url, http_client=http) as (read, write), ClientSession(read, write) as s:
                await s.initialize()
                await s.call_tool("echo", {"text": "x"})
    finally:
        proc.terminate()
        stderr = proc.communicate(timeout=10)[1]
    entries = [json.loads(line) for line in stderr.splitlines() if line.strip()]
    assert entries, "something was logged"
    assert all({"time", "level", "logger", "message"} <= set(entry) for entry in entries)
    opened = [e for e in entries if e["message"].startswith("session ") and e["message"].find(" opened ") > 0]
    assert opened and opened[0]["session_id"] == session_ids[0]
    assert opened[0]["transport"] == "streamable-http"
