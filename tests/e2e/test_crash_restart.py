"""Sessions that survive a crash: the server in its own process on a durable store (SQLite, then a
real redis-server), SIGKILL in the middle of a tool call that sends 2,000 progress notifications,
the same command started again on the same port and store.

The official SDK client gets no help from us: its interrupted call ends with the restart error,
no progress value arrives twice or out of order, and the next calls on the same ``ClientSession``
(the same session id) work. Then the same with our ``connect()``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import httpx2
import pytest
from mcp import ClientSession
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError

from mcp_sse.client import ClientStats, ReconnectPolicy, connect
from mcp_sse.core.session_record import INTERRUPTED
from tests.crash import ServerProcess, typescript_client
from tests.rawclient import POST_HEADERS, init_request
from tests.rawclient import session_headers as raw_session_headers
from tests.redis_server import RedisServer

pytestmark = pytest.mark.anyio

STEPS = 2000
KILL_AFTER = 300


def server_process(request: pytest.FixtureRequest, tmp_path: Path, *extra: str) -> Iterator[ServerProcess]:
    if request.param == "redis":
        redis: RedisServer = request.getfixturevalue("redis")
        store = redis.url.rsplit("/", 1)[0] + "/1"  # a database of its own
    else:
        store = f"sqlite:{tmp_path / 'events.db'}"
    # The SDK client tries twice, ``retry`` apart, before it gives a request up: leave it time for a
    # Python process to start.
    process = ServerProcess(store, tmp_path, "--retry-ms", "2500", "--log-level", "info", *extra)
    process.start()
    try:
        yield process
    finally:
        process.stop()


@pytest.fixture(params=["sqlite", "redis"])
def server(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ServerProcess]:
    yield from server_process(request, tmp_path)


@pytest.fixture(params=["sqlite", "redis"])
def impatient_server(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ServerProcess]:
    """One that does not wait for calls in progress when it stops (``--shutdown-grace 0``)."""
    yield from server_process(request, tmp_path, "--shutdown-grace", "0")


async def call_until_killed(
    session: ClientSession, server: ServerProcess, *, clean: bool = False
) -> tuple[Any, list[float]]:
    """``count`` to 2,000; SIGKILL (``clean``: SIGTERM, as a deploy stops a server) after the 300th
    progress notification, and start again at once."""
    progress: list[float] = []
    restarted = anyio.Event()

    async def crash_and_restart() -> None:
        if clean:
            assert await anyio.to_thread.run_sync(server.terminate) in (0, 128 + 15), server.log()
        else:
            server.kill()
        await anyio.to_thread.run_sync(server.start)
        restarted.set()

    async with anyio.create_task_group() as tg:

        async def on_progress(value: float, total: float | None, message: str | None) -> None:
            progress.append(value)
            if len(progress) == KILL_AFTER:
                tg.start_soon(crash_and_restart)

        outcome: Any
        try:
            with anyio.fail_after(60):
                outcome = await session.call_tool("count", {"to": STEPS, "delay_ms": 3}, progress_callback=on_progress)
        except MCPError as error:
            outcome = error
    assert restarted.is_set()
    return outcome, progress


def assert_interrupted_or_done(outcome: Any, progress: list[float], log: str) -> None:
    assert progress == sorted(set(progress)), "no progress value twice, none out of order"
    assert progress[:KILL_AFTER] == [float(i) for i in range(1, KILL_AFTER + 1)]
    if isinstance(outcome, MCPError):
        assert outcome.error.code == INTERRUPTED, (outcome, log)
        assert "server restarted" in outcome.error.message
    else:
        assert outcome.content[0].text == f"counted to {STEPS}", log


async def sdk_session_through_a_crash(server: ServerProcess) -> None:
    """The official SDK client's session across SIGKILL and a restart: the call in progress ends
    with the restart error (or its result), and the next call on the same session works."""
    async with streamable_http_client(server.url) as (read, write):
        async with ClientSession(read, write) as session:
            await session.initialize()
            outcome, progress = await call_until_killed(session, server)
            assert_interrupted_or_done(outcome, progress, server.log())
            with anyio.fail_after(30):
                after = await session.call_tool("echo", {"text": "after"})
            assert after.content[0].text == "after", server.log()  # type: ignore[union-attr]


async def test_the_sdk_client_comes_through_a_crash_on_the_same_session(server: ServerProcess) -> None:
    async with streamable_http_client(server.url) as (read, write):
        async with ClientSession(read, write) as session:
            await session.initialize()
            assert (await session.call_tool("echo", {"text": "before"})).content[0].text == "before"  # type: ignore[union-attr]
            outcome, progress = await call_until_killed(session, server)
            assert_interrupted_or_done(outcome, progress, server.log())
            with anyio.fail_after(30):
                after = await session.call_tool("echo", {"text": "after"})
            assert not after.is_error and after.content[0].text == "after"  # type: ignore[union-attr]
            again = await session.call_tool("count", {"to": 5}, progress_callback=None)
            assert again.content[0].text == "counted to 5"  # type: ignore[union-attr]
    assert "brought back (epoch 1, 1 interrupted requests)" in server.log(), "the same session came back"
    assert server.log().count("opened (streamable-http") == 1, "and no new one was opened"


async def test_a_clean_restart_lets_the_call_in_progress_finish(server: ServerProcess) -> None:
    """SIGTERM, as a deploy sends it: the stream ends with a retry, the call finishes within the
    shutdown grace, and the SDK client, resuming from the restarted process, gets every step and the
    answer, on the same session."""
    async with streamable_http_client(server.url) as (read, write):
        async with ClientSession(read, write) as session:
            await session.initialize()
            progress: list[float] = []
            restarted = anyio.Event()

            async def stop_and_start() -> None:
                await anyio.to_thread.run_sync(server.terminate)
                await anyio.to_thread.run_sync(server.start)
                restarted.set()

            async with anyio.create_task_group() as tg:

                async def on_progress(value: float, total: float | None, message: str | None) -> None:
                    progress.append(value)
                    if len(progress) == 100:
                        tg.start_soon(stop_and_start)

                with anyio.fail_after(60):
                    result = await session.call_tool("count", {"to": 400, "delay_ms": 5}, progress_callback=on_progress)
            assert restarted.is_set()
            assert result.content[0].text == "counted to 400", server.log()  # type: ignore[union-attr]
            assert progress == [float(i) for i in range(1, 401)]
            after = await session.call_tool("echo", {"text": "after"})
            assert after.content[0].text == "after"  # type: ignore[union-attr]


async def test_a_clean_restart_keeps_the_session_and_answers_the_call_in_progress(
    impatient_server: ServerProcess,
) -> None:
    """SIGTERM with no grace: the session is kept, not ended; its call in progress is answered with
    the restart error, and the SDK client's next call works on the same session."""
    server = impatient_server
    async with streamable_http_client(server.url) as (read, write):
        async with ClientSession(read, write) as session:
            await session.initialize()
            with anyio.fail_after(60):
                outcome, progress = await call_until_killed(session, server, clean=True)
            assert isinstance(outcome, MCPError), outcome
            assert outcome.error.code == INTERRUPTED and "restarting" in outcome.error.message, server.log()
            assert progress == sorted(set(progress))
            after = await session.call_tool("echo", {"text": "after"})
            assert after.content[0].text == "after"  # type: ignore[union-attr]
    assert "kept for the next process" in server.log()
    assert "brought back (epoch 1, 0 interrupted requests)" in server.log()


async def test_our_client_comes_through_a_crash_without_reinitializing(server: ServerProcess) -> None:
    stats = ClientStats()
    policy = ReconnectPolicy(initial_delay=0.1, max_delay=0.5, budget=30)
    async with connect(server.url, policy=policy, stats=stats) as (read, write):
        async with ClientSession(read, write) as session:
            await session.initialize()
            outcome, progress = await call_until_killed(session, server)
            assert_interrupted_or_done(outcome, progress, server.log())
            after = await session.call_tool("echo", {"text": "after"})
            assert after.content[0].text == "after"  # type: ignore[union-attr]
    assert stats.reinitializations == 0, "the session itself survived: nothing to re-open"


async def test_ids_a_client_saw_but_the_crash_did_not_keep_are_never_reused(tmp_path: Path) -> None:
    """The store's writer is held back (another connection holds SQLite's write lock) while the
    client reads 250 more events from memory; then SIGKILL. Those events never reached the file,
    and the next process numbers its events from the last one that did. A resume from the last id
    the client saw gets the loss notice, then the events after the last surviving one (the
    interrupted call's error), never silence and never a stranger's event under a familiar id."""
    import sqlite3
    from contextlib import closing

    import httpx2
    import orjson

    from tests.rawclient import call, initialize, iter_events, session_headers

    db = tmp_path / "events.db"
    server = ServerProcess(f"sqlite:{db}", tmp_path)
    server.start()
    try:
        async with httpx2.AsyncClient(timeout=30) as http:
            session_id = await initialize(http, server.url)
            headers = session_headers(session_id)
            seen: list[str] = []
            with closing(sqlite3.connect(db, isolation_level=None, timeout=30)) as holder:
                async with http.stream(
                    "POST", server.url, json=call(7, "count", {"to": STEPS, "delay_ms": 3}), headers=headers
                ) as r:
                    async for event in iter_events(r):
                        if event.data:
                            seen.append(event.id)
                        if len(seen) == 50:
                            await anyio.sleep(0.5)  # the first 50 reach the file
                            holder.execute("BEGIN EXCLUSIVE")  # and nothing after them will
                        if len(seen) == 300:
                            break
                server.kill()
                holder.execute("ROLLBACK")
            await anyio.to_thread.run_sync(server.start)
            last = seen[-1]
            stream = last.split("-")[0]
            get_headers = {**headers, "accept": "text/event-stream", "last-event-id": last}
            received: list[tuple[str, dict[str, Any]]] = []
            with anyio.fail_after(20):
                async with http.stream("GET", server.url, headers=get_headers) as r:
                    assert r.status_code == 200
                    async for event in iter_events(r):
                        if event.data:
                            received.append((event.id, orjson.loads(event.data)))
            notice_id, notice = received[0]
            assert notice["method"] == "notifications/message" and notice["params"]["level"] == "warning"
            lost_after = notice["params"]["data"]["lostAfter"]
            kept = int(lost_after.split("-")[1])
            assert 50 <= kept < 300, "what survived is what was committed before the writer was held"
            assert notice_id == "", "the notice carries no id of its own: the cursor stays where it was"
            error_id, error = received[1]
            assert error_id == f"1.{stream}-{kept + 1}", "the new epoch names itself in the id"
            assert error["id"] == 7 and error["error"]["code"] == INTERRUPTED
            assert len(received) == 2, "no progress event again, none from another stream"
            live: list[bytes] = []
            async with http.stream(
                "POST", server.url, json=call(8, "echo", {"text": "live"}, False), headers=headers
            ) as r:
                live.extend([event.data.encode() async for event in iter_events(r) if event.data])
            assert any(b'"live"' in data for data in live), "the session goes on, live"
    finally:
        server.stop()


async def test_the_typescript_sdk_client_comes_through_a_crash_on_the_same_session(server: ServerProcess) -> None:
    """The official TypeScript SDK client (npm @modelcontextprotocol/sdk), as hosts built on it run it."""

    async def crash(_: list[dict[str, Any]]) -> None:
        server.kill()
        await anyio.to_thread.run_sync(server.start)

    lines = await typescript_client(server.url, STEPS, KILL_AFTER, crash)
    progress = [float(item["progress"]) for item in lines if "progress" in item]
    assert progress == sorted(set(progress)) and len(progress) >= KILL_AFTER, "none twice, none out of order"
    outcome = next(item for item in lines if "result" in item or "error" in item)
    if "error" in outcome:
        assert outcome["error"]["code"] == INTERRUPTED, (outcome, server.log())
    else:
        assert outcome["result"] == f"counted to {STEPS}"
    first_session = lines[0]["session"]
    assert lines[-1] == {"after": "after", "session": first_session}, (lines[-3:], server.log())


@pytest.mark.parametrize("shared", [False, True], ids=["process-per-session", "shared"])
async def test_a_stdio_server_behind_serve_comes_back_with_a_fresh_child(tmp_path: Path, shared: bool) -> None:
    """``serve -- CMD``: after the crash a fresh child process gets the stored initialize and
    initialized, and the SDK client's session goes on."""
    import sys

    from tests.servers import ROOT

    command = ["--", sys.executable, str(ROOT / "tests" / "stdio_server.py")]
    extra = ["--retry-ms", "2500", "--log-level", "info", *(["--shared"] if shared else [])]
    server = ServerProcess(f"sqlite:{tmp_path / 'events.db'}", tmp_path, *extra, command=command)
    server.start()
    try:
        await sdk_session_through_a_crash(server)
    finally:
        server.stop()
    assert "brought back (epoch 1, 1 interrupted requests)" in server.log()


async def test_mcp_sse_call_from_the_command_line_comes_through_a_restart(tmp_path: Path) -> None:
    """A person runs ``mcp-sse call`` against ``mcp-sse serve``, and the server is killed and started
    again under the running call: the call says clearly how it ended, and the next one works."""
    import subprocess
    import sys

    from tests.servers import ROOT

    server = ServerProcess(f"sqlite:{tmp_path / 'events.db'}", tmp_path, "--retry-ms", "500")
    server.start()
    try:
        args = [
            sys.executable,
            "-m",
            "mcp_sse",
            "call",
            server.url,
            "count",
            "--arg",
            f"to={STEPS}",
            "--arg",
            "delay_ms=3",
        ]
        call = await anyio.open_process(args, cwd=ROOT, stderr=subprocess.STDOUT)
        await anyio.sleep(2.0)  # a third of the way
        server.kill()
        await anyio.to_thread.run_sync(server.start)
        assert call.stdout is not None
        output = b""
        with anyio.fail_after(60):
            async for chunk in call.stdout:
                output += chunk
            await call.wait()
        said = output.decode(errors="replace")
        assert "Traceback" not in said
        if call.returncode:
            assert "interrupted" in said and "server restarted" in said, said
        else:
            assert f"counted to {STEPS}" in said, said
        nxt = await anyio.run_process(
            [sys.executable, "-m", "mcp_sse", "call", server.url, "echo", "--arg", "text=next"], cwd=ROOT, check=False
        )
        assert nxt.returncode == 0 and b"next" in nxt.stdout, nxt.stderr
    finally:
        server.stop()


async def test_a_proxy_comes_back_with_a_fresh_upstream_session(tmp_path: Path) -> None:
    """``mcp-sse proxy`` in front of an HTTP MCP server that keeps running: after the proxy's crash,
    the SDK client's session goes on through a fresh upstream session."""
    from mcp_sse import ServerConfig, create_app
    from tests.servers import build_test_server, run_server

    with run_server(create_app(build_test_server(), ServerConfig(retry_ms=200))) as upstream:
        extra = ["--retry-ms", "2500", "--log-level", "info"]
        proxy = ServerProcess(
            f"sqlite:{tmp_path / 'events.db'}", tmp_path, *extra, command=[upstream + "/mcp"], subcommand="proxy"
        )
        proxy.start()
        try:
            await sdk_session_through_a_crash(proxy)
        finally:
            proxy.stop()
    assert "brought back (epoch 1, 1 interrupted requests)" in proxy.log()


async def test_a_stopping_server_ends_its_streams_with_a_retry(server: ServerProcess) -> None:
    """SIGTERM: open streams end at once, each with a ``retry`` telling its client when to come
    back and resume, instead of being cut when the grace period runs out."""
    async with httpx2.AsyncClient(timeout=30) as http:
        opened = await http.post(server.url, json=init_request(), headers=POST_HEADERS)
        stream_headers = {**raw_session_headers(opened.headers["mcp-session-id"]), "accept": "text/event-stream"}
        received = b""
        async with http.stream("GET", server.url, headers=stream_headers) as stream:
            chunks = stream.aiter_bytes()
            while b"data:" not in received:  # the priming event: the stream is open
                received += await chunks.__anext__()
            async with anyio.create_task_group() as tg:
                tg.start_soon(anyio.to_thread.run_sync, server.terminate)
                with anyio.fail_after(30):
                    async for chunk in chunks:
                        received += chunk
    assert re.search(rb"\n\nretry: \d+\n\n$", received), received[-200:]  # after the priming event, on its own
