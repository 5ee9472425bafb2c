"""Resumption on the wire: drop a POST's SSE stream mid-call, resume with GET + Last-Event-ID."""

from __future__ import annotations

import httpx2
import orjson
import pytest

from tests.rawclient import call, initialize, iter_events, session_headers

pytestmark = pytest.mark.anyio


def progress_of(data: str) -> float | None:
    message = orjson.loads(data)
    if message.get("method") == "notifications/progress":
        return float(message["params"]["progress"])
    return None


@pytest.mark.parametrize("version", ["2025-11-25", "2025-06-18", "2025-03-26"])
async def test_drop_and_resume_gets_everything_exactly_once(mcp_url: str, version: str) -> None:
    async with httpx2.AsyncClient(timeout=30) as http:
        session_id = await initialize(http, mcp_url, version)
        headers = session_headers(session_id, version)
        seen: list[float] = []
        ids: list[str] = []
        last_id = ""
        async with http.stream(
            "POST", mcp_url, json=call(7, "count", {"to": 200, "delay_ms": 2}), headers=headers
        ) as r:
            assert r.status_code == 200
            assert r.headers["content-type"].startswith("text/event-stream")
            async for event in iter_events(r):
                if event.id:
                    last_id = event.id
                    ids.append(event.id)
                if not event.data:
                    assert version == "2025-11-25", "only 2025-11-25 clients get a priming event"
                    continue
                value = progress_of(event.data)
                assert value is not None, "the response must not arrive before the drop"
                seen.append(value)
                if len(seen) == 40:
                    break  # leaving the block drops the connection mid-stream
        assert last_id
        response_count = 0
        get_headers = {"accept": "text/event-stream", "mcp-session-id": session_id, "mcp-protocol-version": version}
        get_headers["last-event-id"] = last_id
        async with http.stream("GET", mcp_url, headers=get_headers) as r:
            assert r.status_code == 200
            async for event in iter_events(r):
                if event.id:
                    ids.append(event.id)
                if not event.data:
                    continue
                message = orjson.loads(event.data)
                if message.get("id") == 7:
                    assert message["result"]["content"][0]["text"] == "counted to 200"
                    response_count += 1
                else:
                    value = progress_of(event.data)
                    assert value is not None
                    seen.append(value)
            # the stream ends by itself once the response is delivered
        assert response_count == 1
        assert seen == [float(i) for i in range(1, 201)]
        assert len(ids) == len(set(ids)), "event ids are unique"


async def test_resume_from_priming_event_replays_whole_stream(mcp_url: str) -> None:
    async with httpx2.AsyncClient(timeout=30) as http:
        session_id = await initialize(http, mcp_url)
        headers = session_headers(session_id)
        async with http.stream("POST", mcp_url, json=call(3, "count", {"to": 5, "delay_ms": 20}), headers=headers) as r:
            priming = None
            async for event in iter_events(r):
                priming = event
                break
        assert priming is not None and priming.data == "" and priming.id
        get_headers = {"accept": "text/event-stream", "mcp-session-id": session_id, "last-event-id": priming.id}
        async with http.stream("GET", mcp_url, headers=get_headers) as r:
            messages = [orjson.loads(e.data) async for e in iter_events(r) if e.data]
        assert [m["params"]["progress"] for m in messages[:-1]] == [1, 2, 3, 4, 5]
        assert messages[-1]["id"] == 3


async def test_replay_never_crosses_streams(mcp_url: str) -> None:
    """Resuming one POST stream must not replay another POST's events (MCP 2025-11-25, Transports,
    "Resumability and Redelivery": https://modelcontextprotocol.io/specification/2025-11-25/basic/transports#resumability-and-redelivery)."""
    async with httpx2.AsyncClient(timeout=30) as http:
        session_id = await initialize(http, mcp_url)
        headers = session_headers(session_id)
        first_ids: list[str] = []
        async with http.stream("POST", mcp_url, json=call(1, "count", {"to": 3}), headers=headers) as r:
            first_ids = [e.id async for e in iter_events(r)]
        async with http.stream("POST", mcp_url, json=call(2, "count", {"to": 3}), headers=headers) as r:
            [e async for e in iter_events(r)]
        get_headers = {"accept": "text/event-stream", "mcp-session-id": session_id, "last-event-id": first_ids[1]}
        async with http.stream("GET", mcp_url, headers=get_headers) as r:
            replayed = [orjson.loads(e.data) async for e in iter_events(r) if e.data]
        assert [m.get("id") for m in replayed if "result" in m] == [1]
        assert all(m.get("params", {}).get("progressToken", "p1") == "p1" for m in replayed)
