"""The stateless 2026-07-28 era in front of a stdio server that speaks 2025 (``mcp-sse serve -- CMD``,
per session and ``--shared``), with the official SDK's ``Client`` as the peer: discover, list, a call
with its progress and opted-in logs on its own stream, cancellation by closing the response, a
listen stream fed by the child's list-changed notification, a question the child cannot put to a
stateless client, and principals kept apart."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import httpx2
import mcp_types as types
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError
from mcp.shared.subscriptions import ToolsListChanged

from mcp_sse import ServerConfig, create_app
from mcp_sse.upstream.stdio import PRINCIPAL_ENV, StdioUpstream, stdio_command
from tests.servers import ROOT, mcp_sse, mcp_sse_process, run_server

pytestmark = pytest.mark.anyio

STDIO_SERVER = [sys.executable, str(ROOT / "tests" / "stdio_server.py")]


@pytest.fixture(scope="module", params=["per-session", "shared"])
def gateway(request: pytest.FixtureRequest) -> Iterator[str]:
    flags = ["--shared"] if request.param == "shared" else []
    with mcp_sse("serve", "--port", "0", *flags, "--", *STDIO_SERVER) as url:
        yield url


def text(result: types.CallToolResult) -> str:
    content = result.content[0]
    assert isinstance(content, types.TextContent)
    return content.text


async def test_the_sdk_client_speaks_2026_through_the_gateway(gateway: str) -> None:
    progress: list[float] = []
    logs: list[Any] = []

    async def on_progress(value: float, total: float | None, message: str | None) -> None:
        progress.append(value)

    async def on_log(params: types.LoggingMessageNotificationParams) -> None:
        logs.append(params.data)

    async with Client(gateway, log_level="info", logging_callback=on_log) as client:
        assert client.protocol_version == "2026-07-28"
        assert client.server_info is not None and client.server_info.name == "mcp-sse tests", "the upstream's name"
        names = {tool.name for tool in (await client.list_tools()).tools}
        assert {"count", "shout", "sleepy"} <= names
        counted = await client.call_tool("count", {"to": 25, "delay_ms": 2}, progress_callback=on_progress)
        assert text(counted) == "counted to 25"
        assert text(await client.call_tool("shout", {"text": "hi"})) == "HI"
    assert progress == [float(i) for i in range(1, 26)]
    assert logs == ["shouting hi"]


async def test_no_logs_without_the_opt_in(gateway: str) -> None:
    logs: list[Any] = []

    async def on_log(params: types.LoggingMessageNotificationParams) -> None:
        logs.append(params.data)

    async with Client(gateway, logging_callback=on_log) as client:
        assert text(await client.call_tool("shout", {"text": "quiet"})) == "QUIET"
    assert logs == []


async def test_concurrent_clients_get_only_their_own_progress(gateway: str) -> None:
    seen: dict[int, list[float]] = {}

    async def one(index: int) -> None:
        mine: list[float] = []

        async def on_progress(value: float, total: float | None, message: str | None) -> None:
            mine.append(value)

        async with Client(gateway) as client:
            assert client.protocol_version == "2026-07-28"
            result = await client.call_tool("count", {"to": 10 + index, "delay_ms": 1}, progress_callback=on_progress)
            assert text(result) == f"counted to {10 + index}"
        seen[index] = mine

    with anyio.fail_after(60):
        async with anyio.create_task_group() as tg:
            for index in range(8):
                tg.start_soon(one, index)
    for index, values in seen.items():
        assert values == [float(i) for i in range(1, 11 + index)], index


async def test_closing_the_response_cancels_the_call_in_the_child(gateway: str, tmp_path: Path) -> None:
    marker = tmp_path / "cancelled"
    async with Client(gateway) as client:
        assert client.protocol_version == "2026-07-28"
        with anyio.move_on_after(1.5):
            await client.call_tool("sleepy", {"marker": str(marker), "seconds": 30})
        with anyio.fail_after(10):
            while not marker.exists():  # noqa: ASYNC110 - the child writes it from another process
                await anyio.sleep(0.05)
        assert text(await client.call_tool("echo", {"text": "still here"})) == "still here"
    assert marker.read_text() == "cancelled"


async def test_a_listen_stream_hears_a_change_made_by_another_request(gateway: str) -> None:
    async with Client(gateway) as client, Client(gateway) as other:
        assert client.protocol_version == other.protocol_version == "2026-07-28"
        async with client.listen(tools_list_changed=True) as subscription:
            assert text(await other.call_tool("announce", {})) == "announced"
            with anyio.fail_after(10):
                assert await anext(aiter(subscription)) == ToolsListChanged()


async def test_a_question_for_a_client_that_cannot_answer_it_fails_clearly(gateway: str) -> None:
    """The child asks for elicitation; this client declared none: the era's missing-capability
    error (a server must not rely on what the client did not declare), nothing hangs, and the
    gateway goes on serving."""
    async with Client(gateway) as client:
        assert client.protocol_version == "2026-07-28"
        with anyio.fail_after(20), pytest.raises(MCPError) as refused:
            await client.call_tool("ask_user", {"question": "name?"})
        assert refused.value.code == -32021
        assert refused.value.data == {"requiredCapabilities": {"elicitation": {}}}
        assert text(await client.call_tool("echo", {"text": "after"})) == "after"


async def test_the_wire_answer_of_discover(gateway: str) -> None:
    meta = {
        "io.modelcontextprotocol/protocolVersion": "2026-07-28",
        "io.modelcontextprotocol/clientInfo": {"name": "wire", "version": "1"},
        "io.modelcontextprotocol/clientCapabilities": {},
    }
    headers = {
        "accept": "application/json, text/event-stream",
        "mcp-protocol-version": "2026-07-28",
        "mcp-method": "server/discover",
    }
    body = {"jsonrpc": "2.0", "id": 1, "method": "server/discover", "params": {"_meta": meta}}
    async with httpx2.AsyncClient(timeout=30) as http:
        response = await http.post(gateway, json=body, headers=headers)
    assert response.status_code == 200, response.text
    result = response.json()["result"]
    assert result["supportedVersions"] == ["2026-07-28"]
    assert "tools" in result["capabilities"]
    assert result["_meta"]["io.modelcontextprotocol/serverInfo"]["name"] == "mcp-sse tests"
    assert "mcp-session-id" not in response.headers


ALICE, BOB = "alice-secret-token", "bob-secret-token"


async def test_each_principal_gets_a_child_of_its_own(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(PRINCIPAL_ENV, "mallory")
    tokens = tmp_path / "tokens"
    tokens.write_text(f"{ALICE} alice\n{BOB} bob\n")
    config = ServerConfig(token_file=str(tokens), event_store="memory")
    with run_server(create_app(StdioUpstream(stdio_command(STDIO_SERVER)), config)) as base:
        answers = {}
        for name, token in (("alice", ALICE), ("bob", BOB)):
            async with httpx2.AsyncClient(headers={"Authorization": f"Bearer {token}"}, timeout=30) as http:
                async with Client(streamable_http_client(base + "/mcp", http_client=http)) as client:
                    assert client.protocol_version == "2026-07-28"
                    who = text(await client.call_tool("environment", {"name": PRINCIPAL_ENV}))
                    pid = text(await client.call_tool("whoami", {}))
            answers[name] = (who, pid)
    assert answers["alice"][0].startswith("alice in ") and answers["bob"][0].startswith("bob in ")
    assert answers["alice"][1] != answers["bob"][1]


async def test_the_childs_questions_reach_a_client_that_can_answer_them(gateway: str) -> None:
    """Elicitation and sampling from a 2025 child, put to a 2026-07-28 client as the era's
    ``InputRequiredResult``; the SDK client answers from its callbacks and retries, and the child's
    call, which waited, completes."""
    asked: list[str] = []

    async def on_elicit(context: Any, params: types.ElicitRequestParams) -> types.ElicitResult:
        asked.append(params.message)
        return types.ElicitResult(action="accept", content={"name": "Ada"})

    async def on_sample(context: Any, params: types.CreateMessageRequestParams) -> types.CreateMessageResult:
        asked.append("sampled")
        return types.CreateMessageResult(
            role="assistant", content=types.TextContent(type="text", text="42"), model="test"
        )

    async with Client(gateway, elicitation_callback=on_elicit, sampling_callback=on_sample) as client:
        assert client.protocol_version == "2026-07-28"
        with anyio.fail_after(20):
            assert text(await client.call_tool("ask_user", {"question": "name?"})) == "accept: Ada"
            assert text(await client.call_tool("ask_model", {"prompt": "six times seven"})) == "model said 42"
            assert text(await client.call_tool("echo", {"text": "plain"})) == "plain"
    assert asked == ["name?", "sampled"]


async def test_a_request_state_that_names_nothing_is_refused(gateway: str) -> None:
    meta = {
        "io.modelcontextprotocol/protocolVersion": "2026-07-28",
        "io.modelcontextprotocol/clientCapabilities": {"elicitation": {}},
    }
    headers = {
        "accept": "application/json, text/event-stream",
        "mcp-protocol-version": "2026-07-28",
        "mcp-method": "tools/call",
        "mcp-name": "ask_user",
    }
    params = {"name": "ask_user", "arguments": {"question": "x"}, "requestState": "forged", "inputResponses": {}}
    body = {"jsonrpc": "2.0", "id": 3, "method": "tools/call", "params": {**params, "_meta": meta}}
    async with httpx2.AsyncClient(timeout=30) as http:
        response = await http.post(gateway, json=body, headers=headers)
    assert response.status_code == 400, response.text
    assert response.json()["error"]["code"] == -32602
    assert "requestState" in response.json()["error"]["message"]


@pytest.fixture
def cli_gateway() -> Iterator[tuple[str, subprocess.Popen[str]]]:
    with mcp_sse_process("serve", "--port", "0", "--", *STDIO_SERVER) as running:
        yield running


async def test_a_shutdown_ends_listen_streams_with_their_completion_result(
    cli_gateway: tuple[str, subprocess.Popen[str]],
) -> None:
    """The gateway going down on purpose says so on every listen stream: a completion result,
    not a drop (which a client would take as a reason to listen again)."""
    url, proc = cli_gateway
    async with Client(url) as client, client.listen(tools_list_changed=True) as subscription:
        assert client.protocol_version == "2026-07-28"
        proc.terminate()
        with anyio.fail_after(10):
            events = [event async for event in subscription]  # an abrupt end raises SubscriptionLost
    assert events == []
    assert await anyio.to_thread.run_sync(proc.wait, 10) == 143


async def test_the_child_sees_each_clients_own_capabilities(gateway: str, request: pytest.FixtureRequest) -> None:
    """Clients that declare different capabilities reach upstream sessions that declare exactly
    theirs: per session, different processes (the next one started ahead, so the second client
    does not wait for a process to start); shared, one process."""

    async def on_elicit(context: Any, params: types.ElicitRequestParams) -> types.ElicitResult:
        return types.ElicitResult(action="accept", content={"name": "Grace"})

    async with Client(gateway) as plain, Client(gateway, elicitation_callback=on_elicit) as asking:
        plain_pid = text(await plain.call_tool("whoami", {}))
        asking_pid = text(await asking.call_tool("whoami", {}))
        assert text(await asking.call_tool("ask_user", {"question": "?"})) == "accept: Grace"
        assert text(await plain.call_tool("whoami", {})) == plain_pid, "the same upstream session again"
    if request.node.callspec.params["gateway"] == "shared":
        assert plain_pid == asking_pid
    else:
        assert plain_pid != asking_pid
