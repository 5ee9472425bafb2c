"""A cluster: a real Redis, three ``mcp-sse serve --redis`` nodes, and a real nginx in front of them
round robin with no stickiness (a new upstream connection per request). Official-SDK clients run
whole sessions whose requests land on different nodes; a node dies with SIGKILL mid-session and
the clients go on; a node stopped with SIGTERM mid-stream is resumed elsewhere."""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import httpx2
import mcp_types as types
import orjson
import pytest
from mcp import Client, ClientSession
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError
from mcp.shared.subscriptions import ToolsListChanged

from mcp_sse import create_app
from mcp_sse.cluster.node import OWNER_MEMORY
from mcp_sse.wire.sse import SSEDecoder
from tests.cluster_nodes import Node, nodes
from tests.crash import typescript_client
from tests.e2e.test_doctor import doctor, rows
from tests.nginx import STREAMING, nginx_in_front
from tests.rawclient import POST_HEADERS, cut_then_resume, init_request, initialize, messages, session_headers
from tests.redis_server import RedisServer
from tests.servers import ROOT, build_test_server, mcp_sse, run_server

pytestmark = pytest.mark.anyio

APP = ["--app", "tests.servers:build_test_server"]
STDIO = ["--", sys.executable, str(ROOT / "tests" / "stdio_server.py")]


@pytest.fixture
def redis(tmp_path: Path) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path / "redis", persistent=True)  # a restart keeps what was written
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(params=["sdk", "stdio"])
def cluster(request: pytest.FixtureRequest, tmp_path: Path, redis: RedisServer) -> Iterator[tuple[str, list[Node]]]:
    """Three nodes hosting the tests' SDK server, or each running it as a stdio process per session
    (``serve -- CMD``): a session's process runs on its owner, and a new owner starts a new one."""
    with nodes(tmp_path, redis.url, APP if request.param == "sdk" else STDIO) as running:
        with nginx_in_front([node.port for node in running], tmp_path / "nginx", STREAMING) as port:
            yield f"http://127.0.0.1:{port}/mcp", running


def text(result: types.CallToolResult) -> str:
    content = result.content[0]
    assert isinstance(content, types.TextContent)
    return content.text


def served_by(running: list[Node], session_id: str) -> set[int]:
    """The nodes that took a request of the session, forwarding it or serving it."""
    return {
        node.port
        for node in running
        if re.search(rf"(forwarded|served) a request of session {re.escape(session_id)}", node.log.read_text())
    }


async def test_a_session_spans_the_nodes(cluster: tuple[str, list[Node]]) -> None:
    url, running = cluster
    changed = anyio.Event()

    async def on_message(message: Any) -> None:
        if isinstance(message, types.ToolListChangedNotification):
            changed.set()

    async def on_elicit(context: Any, params: types.ElicitRequestParams) -> types.ElicitResult:
        return types.ElicitResult(action="accept", content={"name": "Ada"})

    async with streamable_http_client(url) as (read, write):
        async with ClientSession(read, write, message_handler=on_message, elicitation_callback=on_elicit) as session:
            await session.initialize()
            # The server's question travels on the call's stream, through whichever node forwards it:
            # were any hop to hold the stream back, the call could never finish (no clock needed).
            with anyio.fail_after(20):
                assert text(await session.call_tool("ask_user", {"question": "name?"})) == "accept: Ada"
            for round_ in range(4):
                progress: list[float] = []

                async def on_progress(value: float, total: float | None, message: str | None) -> None:
                    progress.append(value)  # noqa: B023 - each round's own list

                result = await session.call_tool("count", {"to": 10, "delay_ms": 5}, progress_callback=on_progress)
                assert text(result) == "counted to 10"
                assert progress == [float(i) for i in range(1, 11)], round_
            assert {"count", "echo"} <= {tool.name for tool in (await session.list_tools()).tools}
            await anyio.sleep(0.3)  # the GET stream is open, on whichever node nginx chose
            assert text(await session.call_tool("announce", {})) == "announced"
            with anyio.fail_after(10):
                await changed.wait()
            session_id = _session_id(running)
    assert len(served_by(running, session_id)) >= 2, "round robin spreads one session's requests"


def _session_id(running: list[Node]) -> str:
    for node in running:
        if match := re.search(r"session (\S+) opened", node.log.read_text()):
            return match.group(1)
    raise AssertionError("no node opened a session")


async def test_a_stream_cut_on_one_node_resumes_through_another(cluster: tuple[str, list[Node]]) -> None:
    url, _ = cluster
    async with httpx2.AsyncClient(timeout=30) as http:
        session_id = await initialize(http, url)
        with anyio.fail_after(30):
            before, after, answer = await cut_then_resume(http, url, session_id, count_to=30, cut_after=5)
    assert before == [1.0, 2.0, 3.0, 4.0, 5.0]
    assert after == [float(i) for i in range(6, 31)], "the rest, nothing twice, nothing lost"
    assert answer["result"]["content"][0]["text"] == "counted to 30"


async def test_a_node_killed_mid_session(cluster: tuple[str, list[Node]]) -> None:
    """SIGKILL the node that runs the session, during a call: that call fails with an error, the
    session goes on on another node (its state from Redis), and later calls work."""
    url, running = cluster
    async with streamable_http_client(url) as (read, write), ClientSession(read, write) as session:
        await session.initialize()
        assert text(await session.call_tool("echo", {"text": "before"})) == "before"
        owner = _owner_of(running, _session_id(running))
        failed: list[BaseException] = []

        async def doomed() -> None:
            try:
                await session.call_tool("count", {"to": 200, "delay_ms": 50})
            except MCPError as exc:
                failed.append(exc)

        with anyio.fail_after(60):
            async with anyio.create_task_group() as tg:
                tg.start_soon(doomed)
                await anyio.sleep(1.0)
                owner.kill()
        assert failed, "the call in flight on the dead node ends with an error"
        with anyio.fail_after(30):
            assert text(await session.call_tool("echo", {"text": "after"})) == "after"
            counted = await session.call_tool("count", {"to": 5})
        assert text(counted) == "counted to 5"


def _owner_of(running: list[Node], session_id: str) -> Node:
    for node in running:
        if f"session {session_id} opened" in node.log.read_text() or f"session {session_id} brought back" in (
            node.log.read_text()
        ):
            return node
    raise AssertionError("no node runs the session")


async def test_a_node_drained_with_sigterm_mid_stream(cluster: tuple[str, list[Node]]) -> None:
    """SIGTERM the node that runs the session while a call streams: the stream ends with a retry,
    the call finishes there (bounded), and the resume, on another node once the draining one has
    left, brings every remaining event and the answer, nothing twice."""
    url, running = cluster
    call = {
        "jsonrpc": "2.0",
        "id": 2,
        "method": "tools/call",
        "params": {"name": "count", "arguments": {"to": 40, "delay_ms": 50}, "_meta": {"progressToken": "p"}},
    }
    async with httpx2.AsyncClient(timeout=30) as http:
        session = session_headers(await initialize(http, url))
        owner = _owner_of(running, session["mcp-session-id"])
        seen: list[float] = []
        last_id = ""
        after_sigterm = b""
        async with http.stream("POST", url, json=call, headers=session) as stream:
            decoder = SSEDecoder()
            async for chunk in stream.aiter_raw():
                if owner.process.poll() is not None or len(seen) >= 5:
                    after_sigterm += chunk
                for event in decoder.feed(chunk):
                    if event.data:
                        message = orjson.loads(event.data)
                        if message.get("method") == "notifications/progress":
                            seen.append(message["params"]["progress"])
                            last_id = event.id or last_id
                if len(seen) == 5 and owner.process.poll() is None:
                    owner.process.terminate()
        assert b"retry:" in after_sigterm, "the draining node ended the stream with a retry"
        assert len(seen) < 40, "the stream ended before the call did"
        answer: dict[str, Any] = {}
        with anyio.fail_after(40):
            while not answer:
                resume = session | {"accept": "text/event-stream", "last-event-id": last_id}
                async with http.stream("GET", url, headers=resume) as stream:
                    if stream.status_code == 503:
                        await anyio.sleep(float(stream.headers.get("retry-after", "1")))
                        continue
                    assert stream.status_code == 200, await stream.aread()
                    async for event_id, message in messages(stream):
                        if message.get("method") == "notifications/progress":
                            seen.append(message["params"]["progress"])
                            last_id = event_id
                        if message.get("id") == 2:
                            answer = message
                            break
    assert seen == [float(i) for i in range(1, 41)], "every step once, across the drain"
    assert answer["result"]["content"][0]["text"] == "counted to 40"
    assert owner.process.wait(timeout=20) == 143


async def test_redis_away_means_503_and_back_means_business_as_usual(
    cluster: tuple[str, list[Node]], redis: RedisServer
) -> None:
    """Lost while running: open streams end with a retry, a request that needs Redis gets 503 with
    Retry-After and a JSON-RPC error; once it is back, the same session goes on with what it had."""
    url, _ = cluster
    echo = {"jsonrpc": "2.0", "id": 5, "method": "tools/call", "params": {"name": "echo", "arguments": {"text": "x"}}}
    async with httpx2.AsyncClient(timeout=30) as http:
        session = session_headers(await initialize(http, url))
        assert (await http.post(url, json=echo, headers=session)).status_code == 200
        listen = session | {"accept": "text/event-stream"}
        async with http.stream("GET", url, headers=listen) as stream:
            assert stream.status_code == 200
            redis.stop()
            with anyio.fail_after(20):
                tail = b"".join([chunk async for chunk in stream.aiter_raw()])
        assert b"retry:" in tail, "the open stream ended with a retry when Redis went away"
        try:
            await anyio.sleep(OWNER_MEMORY + 0.5)  # the other nodes no longer remember who owns it
            refused = [await http.post(url, json=echo | {"id": n}, headers=session) for n in range(6)]
            opened = await http.post(url, json=init_request(), headers=POST_HEADERS)
        finally:
            redis.start()
        statuses = {answer.status_code for answer in refused}
        assert 503 in statuses and statuses <= {200, 503}, statuses  # the owner itself still answers
        for answer in [*refused, opened]:
            if answer.status_code == 503:
                assert answer.headers["retry-after"] == "1"
                assert answer.json()["error"]["code"] == -32603
                assert "Redis" in answer.json()["error"]["message"]
        assert opened.status_code == 503, "a new session needs Redis to be claimed"
        with anyio.fail_after(20):
            while True:
                again = await http.post(url, json=echo | {"id": 99}, headers=session)
                if again.status_code != 503:
                    break
                await anyio.sleep(0.5)
        assert again.status_code == 200, again.text
        assert "x" in again.text


def test_the_doctor_tells_nodes_that_share_nothing(tmp_path: Path) -> None:
    """Two nodes behind a round-robin balancer, each with its own memory: sessions get lost, and
    the doctor says so with the fix."""
    with nodes(tmp_path, None, APP, count=2) as running:
        with nginx_in_front([node.port for node in running], tmp_path / "nginx", STREAMING) as port:
            done = doctor(f"http://127.0.0.1:{port}/mcp")
    assert rows(done.stdout)["nodes"] == "FAIL", done.stdout
    assert "--redis" in done.stdout
    assert done.returncode != 0


def test_the_doctor_finds_a_cluster_whole(cluster: tuple[str, list[Node]]) -> None:
    url, _ = cluster
    done = doctor(url)
    assert rows(done.stdout)["nodes"] == "OK", done.stdout


@pytest.fixture(params=["sdk", "stdio"])
def modern_nodes(
    request: pytest.FixtureRequest, tmp_path: Path, redis: RedisServer
) -> Iterator[tuple[str, list[Node]]]:
    """Nodes whose server changes its tool list: ``grow`` (an SDK server's ``notify_tools_changed``),
    or ``announce`` (a 2025 stdio server's list-changed notification, behind our front)."""
    if request.param == "sdk":
        serve, tool = ["--app", "tests.e2e.test_era_bridge:build_modern_server"], "grow"
    else:
        serve, tool = STDIO, "announce"
    with nodes(tmp_path, redis.url, serve, count=2) as running:
        yield tool, running


async def test_a_listen_stream_on_one_node_hears_a_change_made_on_another(
    modern_nodes: tuple[str, list[Node]],
) -> None:
    tool, (first, second) = modern_nodes
    async with Client(first.url) as listener, Client(second.url) as changer:
        assert listener.protocol_version == changer.protocol_version == "2026-07-28"
        async with listener.listen(tools_list_changed=True) as subscription:
            await changer.call_tool(tool, {})
            with anyio.fail_after(10):
                assert await anext(aiter(subscription)) == ToolsListChanged()


async def test_a_multi_round_trip_retry_may_land_on_another_node(tmp_path: Path, redis: RedisServer) -> None:
    """The SDK server seals its ``requestState``; round robin sends the retry to the other node,
    which unseals it with the key every node shares."""
    serve = ["--app", "tests.e2e.test_era_bridge:build_modern_server"]

    async def on_elicit(context: Any, params: types.ElicitRequestParams) -> types.ElicitResult:
        return types.ElicitResult(action="accept", content={"name": "Ada"})

    with nodes(tmp_path, redis.url, serve, count=2) as running:
        with nginx_in_front([node.port for node in running], tmp_path / "nginx", STREAMING) as port:
            async with Client(f"http://127.0.0.1:{port}/mcp", elicitation_callback=on_elicit) as client:
                assert client.protocol_version == "2026-07-28"
                for _ in range(3):
                    assert text(await client.call_tool("ask_name", {})) == "hello Ada (asked)"


async def test_workers_on_one_port(redis: RedisServer) -> None:
    """``--workers 2``: two processes on one listening socket, each a node of the cluster; SDK
    clients whose connections land on either run whole sessions."""
    import redis.asyncio as aioredis

    with mcp_sse("serve", *APP, "--workers", "2", "--redis", redis.url, "--port", "0") as url:
        members = aioredis.Redis.from_url(redis.url)
        try:
            assert len(await members.keys("mcp-sse:node:*")) == 2, "both workers joined"
        finally:
            await members.aclose()
        results: list[str] = []

        async def one(index: int) -> None:
            async with streamable_http_client(url) as (read, write), ClientSession(read, write) as session:
                await session.initialize()
                for _ in range(3):
                    progress: list[float] = []

                    async def on_progress(value: float, total: float | None, message: str | None) -> None:
                        progress.append(value)  # noqa: B023 - this round's list

                    result = await session.call_tool("count", {"to": 5}, progress_callback=on_progress)
                    assert progress == [1.0, 2.0, 3.0, 4.0, 5.0]
                results.append(text(result))

        with anyio.fail_after(60):
            async with anyio.create_task_group() as tg:
                for index in range(6):
                    tg.start_soon(one, index)
    assert results == ["counted to 5"] * 6


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mcp_sse", *args], capture_output=True, text=True, timeout=60, cwd=ROOT
    )


def test_workers_without_a_shared_store_are_refused() -> None:
    done = run_cli("serve", *APP, "--workers", "2", "--port", "0")
    assert done.returncode == 2
    assert "--workers 2 needs --redis" in done.stderr


async def test_the_typescript_sdk_client_across_the_nodes(cluster: tuple[str, list[Node]]) -> None:
    """The official TypeScript SDK client (npm @modelcontextprotocol/sdk) through the balancer: its
    session's requests land on every node, the node running it is killed mid-call, and the client
    goes on with the same session; no progress value arrives twice or out of order."""
    url, running = cluster

    async def kill_the_owner(lines: list[dict[str, Any]]) -> None:
        _owner_of(running, lines[0]["session"]).kill()

    lines = await typescript_client(url, 400, 50, kill_the_owner)
    progress = [item["progress"] for item in lines if "progress" in item]
    assert progress == sorted(set(progress)), "nothing twice, nothing out of order"
    outcome = next(item for item in lines if "result" in item or "error" in item)
    assert outcome.get("result") == "counted to 400" or outcome["error"]["code"] == -32003, lines
    last = lines[-1]
    assert last["after"] == "after" and last["session"] == lines[0]["session"], lines


def test_a_cluster_without_its_redis_does_not_start() -> None:
    done = run_cli("serve", *APP, "--redis", "redis://127.0.0.1:1/0", "--port", "0")
    assert done.returncode != 0
    assert "cannot reach Redis at redis://127.0.0.1:1/0" in done.stdout + done.stderr
    assert "Traceback" not in done.stdout + done.stderr


async def test_a_stdio_servers_question_answered_through_another_node(tmp_path: Path, redis: RedisServer) -> None:
    """A 2025 stdio server's elicitation, put to a 2026-07-28 client as ``InputRequiredResult`` by
    the node whose upstream call waits for it: the retry, which round robin sends to the other
    node, reaches the waiting call there."""

    async def on_elicit(context: Any, params: types.ElicitRequestParams) -> types.ElicitResult:
        return types.ElicitResult(action="accept", content={"name": "Ada"})

    with nodes(tmp_path, redis.url, STDIO, count=2) as running:
        with nginx_in_front([node.port for node in running], tmp_path / "nginx", STREAMING) as port:
            async with Client(f"http://127.0.0.1:{port}/mcp", elicitation_callback=on_elicit) as client:
                assert client.protocol_version == "2026-07-28"
                for _ in range(3):
                    with anyio.fail_after(20):
                        assert text(await client.call_tool("ask_user", {"question": "?"})) == "accept: Ada"


async def test_proxy_nodes_in_front_of_one_http_server(tmp_path: Path, redis: RedisServer) -> None:
    """``mcp-sse proxy URL`` as three nodes: a session's upstream HTTP session lives on its owner;
    calls with progress, a question from the upstream, and the owner killed mid-session (the next
    owner opens a fresh upstream session, initialized as the first one was)."""

    async def on_elicit(context: Any, params: types.ElicitRequestParams) -> types.ElicitResult:
        return types.ElicitResult(action="accept", content={"name": "Ada"})

    with run_server(create_app(build_test_server())) as upstream:
        with nodes(tmp_path, redis.url, ["proxy", upstream + "/mcp"]) as running:
            with nginx_in_front([node.port for node in running], tmp_path / "nginx", STREAMING) as port:
                url = f"http://127.0.0.1:{port}/mcp"
                async with streamable_http_client(url) as (read, write):
                    async with ClientSession(read, write, elicitation_callback=on_elicit) as session:
                        await session.initialize()
                        for _ in range(3):
                            progress: list[float] = []

                            async def on_progress(value: float, total: float | None, message: str | None) -> None:
                                progress.append(value)  # noqa: B023 - this round's list

                            result = await session.call_tool("count", {"to": 8}, progress_callback=on_progress)
                            assert text(result) == "counted to 8" and progress == [float(i) for i in range(1, 9)]
                        with anyio.fail_after(20):
                            assert text(await session.call_tool("ask_user", {"question": "?"})) == "accept: Ada"
                        _owner_of(running, _session_id(running)).kill()
                        with anyio.fail_after(30):
                            assert text(await session.call_tool("echo", {"text": "after"})) == "after"
