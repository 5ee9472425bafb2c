"""The transport contract the SDK's ClientSession relies on, and lost sessions in the middle of a call."""

from __future__ import annotations

from typing import Any

import anyio
import mcp_types as types
import pytest
from mcp import ClientSession
from mcp.shared.exceptions import MCPError
from mcp.shared.message import ClientMessageMetadata, SessionMessage
from mcp_types import jsonrpc_message_adapter

from mcp_sse import create_app
from mcp_sse.client import ClientStats, ReconnectPolicy, connect
from tests.e2e.test_client_resilience import free_port
from tests.proxy import TCPProxy
from tests.rawclient import call, init_request
from tests.servers import build_test_server, run_server

pytestmark = pytest.mark.anyio


def message(obj: dict[str, Any], metadata: ClientMessageMetadata | None = None) -> SessionMessage:
    return SessionMessage(jsonrpc_message_adapter.validate_python(obj, by_name=False), metadata=metadata)


async def next_message(read: Any) -> dict[str, Any]:
    with anyio.fail_after(10):
        item = await read.receive()
    assert isinstance(item, SessionMessage), item
    dumped: dict[str, Any] = item.message.model_dump(by_alias=True, mode="json", exclude_none=True)
    return dumped


async def test_per_message_headers_reach_the_server(mcp_url: str) -> None:
    async with connect(mcp_url) as (read, write):
        await write.send(message(init_request()))
        assert "result" in await next_message(read)
        await write.send(message({"jsonrpc": "2.0", "method": "notifications/initialized"}))
        metadata = ClientMessageMetadata(headers={"x-trace": "abc-123"})
        await write.send(message(call(2, "header", {"name": "x-trace"}, False), metadata))
        answer = await next_message(read)
    assert answer["id"] == 2
    assert answer["result"]["content"][0]["text"] == "abc-123"


async def test_resumption_tokens_are_reported_and_honoured(mcp_url: str) -> None:
    tokens: list[str] = []

    async def on_token(token: str) -> None:
        tokens.append(token)

    async with connect(mcp_url) as (read, write):
        async with ClientSession(read, write) as session:
            await session.initialize()
            request = types.CallToolRequest(params=types.CallToolRequestParams(name="count", arguments={"to": 3}))
            progress: list[float] = []

            async def on_progress(value: float, total: float | None, text: str | None) -> None:
                progress.append(value)

            first = await session.send_request(
                request,
                types.CallToolResult,
                metadata=ClientMessageMetadata(on_resumption_token_update=on_token),
                progress_callback=on_progress,
            )
            assert first.content[0].text == "counted to 3"  # type: ignore[union-attr]
            stream = tokens[0].split("-")[0]
            assert tokens == [f"{stream}-{i}" for i in range(5)], "priming, three progress events, the response"
            # A new request that resumes the first one's stream from its priming event: the response
            # comes from the replay, under the new request's id.
            again = await session.send_request(
                request, types.CallToolResult, metadata=ClientMessageMetadata(resumption_token=tokens[0])
            )
            assert again.content[0].text == "counted to 3"  # type: ignore[union-attr]


async def lost_session_mid_call(policy: ReconnectPolicy) -> tuple[types.CallToolResult | MCPError, ClientStats]:
    """Start a 3 s call (longer than the 1 s graceful shutdown), restart the server under it: its sessions die."""
    port = free_port()
    stats = ClientStats()
    server = run_server(create_app(build_test_server()), port=port)
    server.__enter__()
    outcome: types.CallToolResult | MCPError
    try:
        async with connect(f"http://127.0.0.1:{port}/mcp", policy=policy, stats=stats) as (read, write):
            async with ClientSession(read, write) as session:
                await session.initialize()
                async with anyio.create_task_group() as tg:

                    async def restart() -> None:
                        nonlocal server
                        await anyio.sleep(0.5)
                        server.__exit__(None, None, None)
                        server = run_server(create_app(build_test_server()), port=port)
                        server.__enter__()

                    tg.start_soon(restart)
                    try:
                        with anyio.fail_after(30):
                            outcome = await session.call_tool("wait", {"seconds": 3.0})
                    except MCPError as exc:
                        outcome = exc
    finally:
        server.__exit__(None, None, None)
    return outcome, stats


async def test_a_call_lost_with_its_session_is_failed_clearly_when_not_safe() -> None:
    outcome, stats = await lost_session_mid_call(ReconnectPolicy(initial_delay=0.05, max_delay=0.2))
    assert isinstance(outcome, MCPError), outcome
    assert outcome.error.code == -32000
    assert "not marked safe to retry" in outcome.error.message
    assert stats.reinitializations == 1


async def test_a_call_lost_with_its_session_is_sent_again_when_marked_safe() -> None:
    policy = ReconnectPolicy(initial_delay=0.05, max_delay=0.2, retry_tools=frozenset({"wait"}))
    outcome, stats = await lost_session_mid_call(policy)
    assert isinstance(outcome, types.CallToolResult), outcome
    assert outcome.content[0].text == "waited 3.0"  # type: ignore[union-attr]
    assert stats.reinitializations == 1


async def test_legacy_stream_drop_opens_a_new_session(base_url: str) -> None:
    port = int(base_url.rsplit(":", 1)[1])
    proxy = TCPProxy(port)
    stats = ClientStats()
    policy = ReconnectPolicy(initial_delay=0.05, max_delay=0.2)
    async with proxy.running():
        url = f"http://127.0.0.1:{proxy.port}/sse"
        async with connect(url, transport="sse", stats=stats, policy=policy) as (read, write):
            async with ClientSession(read, write) as session:
                await session.initialize()
                assert (await session.call_tool("echo", {"text": "one"})).content[0].text == "one"  # type: ignore[union-attr]
                proxy.cut_all()
                with anyio.fail_after(10):
                    while stats.reinitializations == 0:  # noqa: ASYNC110 - polling a plain counter
                        await anyio.sleep(0.05)
                assert (await session.call_tool("echo", {"text": "two"})).content[0].text == "two"  # type: ignore[union-attr]
    assert stats.reconnects >= 1


@pytest.mark.parametrize("safe", [False, True], ids=["not safe", "safe"])
async def test_legacy_call_in_flight_when_the_stream_drops(base_url: str, safe: bool) -> None:
    port = int(base_url.rsplit(":", 1)[1])
    proxy = TCPProxy(port)
    retry_tools = frozenset({"wait"}) if safe else frozenset()
    policy = ReconnectPolicy(initial_delay=0.05, max_delay=0.2, retry_tools=retry_tools)
    outcome: types.CallToolResult | MCPError
    async with proxy.running():
        url = f"http://127.0.0.1:{proxy.port}/sse"
        async with connect(url, transport="sse", policy=policy) as (read, write):
            async with ClientSession(read, write) as session, anyio.create_task_group() as tg:
                await session.initialize()

                async def cut_soon() -> None:
                    await anyio.sleep(0.3)
                    proxy.cut_all()

                tg.start_soon(cut_soon)
                try:
                    with anyio.fail_after(15):
                        outcome = await session.call_tool("wait", {"seconds": 0.6})
                except MCPError as exc:
                    outcome = exc
    if safe:
        assert isinstance(outcome, types.CallToolResult), outcome
        assert outcome.content[0].text == "waited 0.6"  # type: ignore[union-attr]
    else:
        assert isinstance(outcome, MCPError), outcome
        assert "not marked safe to retry" in outcome.error.message
