"""A plain HTTP client for the tests that must see the wire itself: event ids, statuses, bodies."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx2
import orjson

from mcp_sse.wire.sse import ServerSentEvent, SSEDecoder

POST_HEADERS = {"accept": "application/json, text/event-stream", "content-type": "application/json"}


def init_request(version: str = "2025-11-25", request_id: int = 0) -> dict[str, Any]:
    return {
        "jsonrpc": "2.0",
        "id": request_id,
        "method": "initialize",
        "params": {
            "protocolVersion": version,
            "capabilities": {},
            "clientInfo": {"name": "raw-test-client", "version": "0"},
        },
    }


async def iter_events(response: httpx2.Response) -> AsyncIterator[ServerSentEvent]:
    decoder = SSEDecoder()
    async for chunk in response.aiter_raw():
        for event in decoder.feed(chunk):
            yield event


async def initialize(http: httpx2.AsyncClient, url: str, version: str = "2025-11-25") -> str:
    """Open a session by hand; returns its id after the initialized notification was accepted."""
    async with http.stream("POST", url, json=init_request(version), headers=POST_HEADERS) as response:
        assert response.status_code == 200, response.status_code
        session_id = response.headers["mcp-session-id"]
        async for event in iter_events(response):
            if event.data:
                assert "result" in orjson.loads(event.data)
                break
    accepted = await http.post(
        url,
        json={"jsonrpc": "2.0", "method": "notifications/initialized"},
        headers=session_headers(session_id, version),
    )
    assert accepted.status_code == 202
    return session_id


def session_headers(session_id: str, version: str = "2025-11-25") -> dict[str, str]:
    return {**POST_HEADERS, "mcp-session-id": session_id, "mcp-protocol-version": version}


def call(request_id: int, tool: str, arguments: dict[str, Any], progress: bool = True) -> dict[str, Any]:
    params: dict[str, Any] = {"name": tool, "arguments": arguments}
    if progress:
        params["_meta"] = {"progressToken": f"p{request_id}"}
    return {"jsonrpc": "2.0", "id": request_id, "method": "tools/call", "params": params}


async def messages(response: httpx2.Response) -> AsyncIterator[tuple[str, dict[str, Any]]]:
    """(event id, JSON-RPC message) for each event of a stream that carries one."""
    async for event in iter_events(response):
        if event.data:
            yield event.id, orjson.loads(event.data)


async def cut_then_resume(
    http: httpx2.AsyncClient, url: str, session_id: str, count_to: int, cut_after: int, delay_ms: int = 20
) -> tuple[list[float], list[float], dict[str, Any]]:
    """Call ``count`` on its POST stream, drop the connection after ``cut_after`` progress events,
    resume with ``Last-Event-ID``: the progress before, the progress after, and the answer."""
    headers = session_headers(session_id)
    before: list[float] = []
    last_id = ""
    request = call(2, "count", {"to": count_to, "delay_ms": delay_ms})
    async with http.stream("POST", url, json=request, headers=headers) as stream:
        async for event_id, message in messages(stream):
            if message.get("method") == "notifications/progress":
                before.append(message["params"]["progress"])
                last_id = event_id
            if len(before) == cut_after:
                break  # the client's connection drops here
    after: list[float] = []
    answer: dict[str, Any] = {}
    resume = {**headers, "accept": "text/event-stream", "last-event-id": last_id}
    async with http.stream("GET", url, headers=resume) as stream:
        async for _, message in messages(stream):
            if message.get("method") == "notifications/progress":
                after.append(message["params"]["progress"])
            if message.get("id") == 2:
                answer = message
                break
    return before, after, answer
