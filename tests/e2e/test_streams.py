"""Stream behaviour on the wire: GET takeover, keepalives, headers, paths, CORS, JSON mode, batches."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import anyio
import httpx2
import orjson
import pytest
from mcp import ClientSession
from mcp.client.streamable_http import streamable_http_client

from mcp_sse import ServerConfig, create_app
from tests.rawclient import POST_HEADERS, call, init_request, initialize, iter_events, session_headers
from tests.servers import build_test_server, run_server

pytestmark = pytest.mark.anyio


def get_headers(session_id: str, **extra: str) -> dict[str, str]:
    return {"accept": "text/event-stream", "mcp-session-id": session_id, "mcp-protocol-version": "2025-11-25", **extra}


async def test_a_second_get_takes_over_the_standalone_stream(mcp_url: str) -> None:
    async with httpx2.AsyncClient(timeout=10) as http:
        session_id = await initialize(http, mcp_url)
        async with http.stream("GET", mcp_url, headers=get_headers(session_id)) as first:
            assert first.status_code == 200
            first_events = iter_events(first)
            priming = await anext(first_events)
            assert priming.data == "" and priming.id.startswith("0-")
            async with http.stream("GET", mcp_url, headers=get_headers(session_id)) as second:
                assert second.status_code == 200, "a second GET replaces the first, it is not refused with 409"
                second_events = iter_events(second)
                await anext(second_events)
                # the first connection is ended by the server
                with anyio.fail_after(5):
                    rest = [e async for e in first_events]
                assert rest == []
                response = await http.post(
                    mcp_url, json=call(1, "announce", {}, False), headers=session_headers(session_id)
                )
                assert response.status_code == 200
                with anyio.fail_after(5):
                    event = await anext(second_events)
                assert orjson.loads(event.data)["method"] == "notifications/tools/list_changed"


async def test_the_first_get_receives_what_was_sent_before_it_connected(mcp_url: str) -> None:
    async with httpx2.AsyncClient(timeout=10) as http:
        session_id = await initialize(http, mcp_url)
        await http.post(mcp_url, json=call(1, "announce", {}, False), headers=session_headers(session_id))
        async with http.stream("GET", mcp_url, headers=get_headers(session_id)) as r:
            events = iter_events(r)
            with anyio.fail_after(5):
                while not (event := await anext(events)).data:
                    pass
        assert orjson.loads(event.data)["method"] == "notifications/tools/list_changed"


async def test_sse_responses_carry_proxy_hygiene_headers_and_keepalives(mcp_url: str) -> None:
    async with httpx2.AsyncClient(timeout=10) as http:
        session_id = await initialize(http, mcp_url)
        async with http.stream("GET", mcp_url, headers=get_headers(session_id)) as r:
            assert r.headers["content-type"] == "text/event-stream"
            assert r.headers["cache-control"] == "no-cache, no-transform"
            assert r.headers["x-accel-buffering"] == "no"
            assert r.headers["mcp-session-id"] == session_id
            raw = b""
            with anyio.fail_after(5):  # the test server sends a keepalive every second
                async for chunk in r.aiter_raw():
                    raw += chunk
                    if b":ping\n\n" in raw:
                        break
        assert raw.startswith(b"id: 0-0\nretry: 50\ndata: \n\n")


async def test_priming_and_retry_only_for_2025_11_25(mcp_url: str) -> None:
    async with httpx2.AsyncClient(timeout=10) as http:
        for version, primed in [("2025-11-25", True), ("2025-06-18", False)]:
            session_id = await initialize(http, mcp_url, version)
            headers = session_headers(session_id, version)
            async with http.stream("POST", mcp_url, json=call(1, "echo", {"text": "x"}, False), headers=headers) as r:
                raw = b"".join([c async for c in r.aiter_raw()])
            assert raw.startswith(b"id: 2-0\nretry: 50\ndata: \n\n") is primed, raw  # stream 1 was initialize
            assert (b"retry:" in raw) is primed


async def test_trailing_slash_is_served_without_redirect(mcp_url: str) -> None:
    async with httpx2.AsyncClient(timeout=10, follow_redirects=False) as http:
        session_id = await initialize(http, mcp_url + "/")
        response = await http.post(
            mcp_url + "/", json={"jsonrpc": "2.0", "id": 1, "method": "ping"}, headers=session_headers(session_id)
        )
        assert response.status_code == 200


async def test_cors_preflight_and_exposed_session_header(mcp_url: str) -> None:
    origin = "http://localhost:5173"
    async with httpx2.AsyncClient(timeout=10) as http:
        pre = await http.options(
            mcp_url,
            headers={
                "origin": origin,
                "access-control-request-method": "POST",
                "access-control-request-headers": "content-type, mcp-session-id, mcp-protocol-version, last-event-id",
            },
        )
        assert pre.status_code == 204
        assert pre.headers["access-control-allow-origin"] == origin
        assert "mcp-session-id" in pre.headers["access-control-allow-headers"].lower()
        assert "POST" in pre.headers["access-control-allow-methods"]
        response = await http.post(mcp_url, json=init_request(), headers={**POST_HEADERS, "origin": origin})
        assert response.headers["access-control-allow-origin"] == origin
        assert "Mcp-Session-Id" in response.headers["access-control-expose-headers"]


@pytest.mark.parametrize("host", ["localhost", "localhost:1234", "127.0.0.1", "127.0.0.1:9", "[::1]", "[::1]:8000"])
async def test_loopback_host_names_are_answered(mcp_url: str, host: str) -> None:
    async with httpx2.AsyncClient(timeout=10) as http:
        response = await http.post(mcp_url, json=init_request(), headers={**POST_HEADERS, "host": host})
        assert response.status_code == 200


async def test_ipv6_loopback_bind_works_with_the_sdk_client() -> None:
    with run_server(create_app(build_test_server()), host="::1") as url:
        async with streamable_http_client(url + "/mcp") as (read, write):
            async with ClientSession(read, write) as session:
                await session.initialize()
                await session.send_ping()


async def test_batch_in_2025_03_26_answers_every_request_then_closes(mcp_url: str) -> None:
    async with httpx2.AsyncClient(timeout=10) as http:
        session_id = await initialize(http, mcp_url, "2025-03-26")
        batch = [{"jsonrpc": "2.0", "id": i, "method": "ping"} for i in (1, 2)]
        batch.append({"jsonrpc": "2.0", "method": "notifications/roots/list_changed"})
        headers = session_headers(session_id, "2025-03-26")
        async with http.stream("POST", mcp_url, json=batch, headers=headers) as r:
            messages = [orjson.loads(e.data) async for e in iter_events(r) if e.data]
        assert sorted(m["id"] for m in messages) == [1, 2]


@pytest.fixture(scope="module")
def json_url() -> Iterator[str]:
    with run_server(create_app(build_test_server(), ServerConfig(json_response=True))) as url:
        yield url + "/mcp"


async def test_json_response_mode_with_the_sdk_client(json_url: str) -> None:
    async with streamable_http_client(json_url) as (read, write):
        async with ClientSession(read, write) as session:
            await session.initialize()
            result = await session.call_tool("count", {"to": 5})
            assert result.content[0].text == "counted to 5"  # type: ignore[union-attr]


async def test_json_response_mode_batch_is_an_array(json_url: str) -> None:
    async with httpx2.AsyncClient(timeout=10) as http:
        response = await http.post(json_url, json=init_request("2025-03-26"), headers=POST_HEADERS)
        assert response.headers["content-type"] == "application/json"
        session_id = response.headers["mcp-session-id"]
        batch = [{"jsonrpc": "2.0", "id": i, "method": "ping"} for i in (1, 2)]
        response = await http.post(json_url, json=batch, headers=session_headers(session_id, "2025-03-26"))
        assert response.status_code == 200
        assert sorted(m["id"] for m in response.json()) == [1, 2]


async def test_json_response_mode_stops_holding_the_session_for_a_client_that_left(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A disconnect is not a cancellation, but nobody can read that answer any more: the session
    is no longer held active on its behalf, so the idle reaper can end it (as for SSE streams)."""
    config = ServerConfig(json_response=True, session_idle_timeout=0.3)
    with run_server(create_app(build_test_server(), config)) as url:
        server_errors = logging.getLogger("uvicorn.error")  # an exception in the app is logged here
        server_errors.addHandler(caplog.handler)
        mcp = url + "/mcp"
        try:
            async with httpx2.AsyncClient(timeout=10) as http:
                response = await http.post(mcp, json=init_request(), headers=POST_HEADERS)
                headers = session_headers(response.headers["mcp-session-id"])
                initialized = {"jsonrpc": "2.0", "method": "notifications/initialized"}
                await http.post(mcp, json=initialized, headers=headers)
                with anyio.move_on_after(0.3):  # the client gives up on a 60 s call and closes its connection
                    await http.post(mcp, json=call(5, "wait", {"seconds": 60}, progress=False), headers=headers)
                ping = {"jsonrpc": "2.0", "id": 6, "method": "ping"}
                for _ in range(40):  # each ping is activity too; the reaper needs 0.3 s without any
                    if (await http.post(mcp, json=ping, headers=headers)).status_code == 404:
                        break
                    await anyio.sleep(0.5)
                else:
                    pytest.fail("the session is still held 20 s after the only client of its call left")
        finally:
            server_errors.removeHandler(caplog.handler)
    assert not [record for record in caplog.records if record.levelno >= logging.ERROR]


async def test_session_limit_gives_503_with_retry_after() -> None:
    with run_server(create_app(build_test_server(), ServerConfig(max_sessions=2))) as url:
        async with httpx2.AsyncClient(timeout=10) as http:
            await initialize(http, url + "/mcp")
            await initialize(http, url + "/mcp")
            response = await http.post(url + "/mcp", json=init_request(), headers=POST_HEADERS)
        assert response.status_code == 503
        assert response.headers["retry-after"] == "5"
        assert response.json()["error"]["message"].startswith("Too many open sessions")


async def test_idle_sessions_are_reaped() -> None:
    with run_server(create_app(build_test_server(), ServerConfig(session_idle_timeout=0.3))) as url:
        async with httpx2.AsyncClient(timeout=10) as http:
            session_id = await initialize(http, url + "/mcp")
            ping = {"jsonrpc": "2.0", "id": 1, "method": "ping"}
            assert (await http.post(url + "/mcp", json=ping, headers=session_headers(session_id))).status_code == 200
            await anyio.sleep(1.0)
            response = await http.post(url + "/mcp", json=ping, headers=session_headers(session_id))
        assert response.status_code == 404


async def test_an_open_stream_keeps_its_session_alive() -> None:
    config = ServerConfig(session_idle_timeout=0.3, keepalive_interval=0.2)
    with run_server(create_app(build_test_server(), config)) as url:
        async with httpx2.AsyncClient(timeout=10) as http:
            session_id = await initialize(http, url + "/mcp")
            async with http.stream("GET", url + "/mcp", headers=get_headers(session_id)) as r:
                assert r.status_code == 200
                await anyio.sleep(1.0)
            ping = {"jsonrpc": "2.0", "id": 1, "method": "ping"}
            response = await http.post(url + "/mcp", json=ping, headers=session_headers(session_id))
        assert response.status_code == 200


async def test_resuming_past_the_replay_window_is_410_gone() -> None:
    with run_server(create_app(build_test_server(), ServerConfig(max_events_per_session=5))) as url:
        mcp = url + "/mcp"
        async with httpx2.AsyncClient(timeout=10) as http:
            session_id = await initialize(http, mcp)
            async with http.stream(
                "POST", mcp, json=call(4, "count", {"to": 20}), headers=session_headers(session_id)
            ) as r:
                priming = await anext(iter_events(r))
            await anyio.sleep(0.5)  # the call finishes while nobody listens; the log keeps the last 5
            response = await http.get(mcp, headers=get_headers(session_id, **{"last-event-id": priming.id}))
        assert response.status_code == 410
        error = response.json()["error"]
        assert "no longer kept" in error["message"]
        assert error["data"]["oldestAvailable"] == "2-17"  # stream 1 was initialize


async def test_legacy_endpoint_event_comes_first_and_is_relative(base_url: str) -> None:
    async with httpx2.AsyncClient(timeout=10) as http:
        async with http.stream("GET", base_url + "/sse", headers={"accept": "text/event-stream"}) as r:
            events = iter_events(r)  # keep a reference: a collected generator closes the stream
            first = await anext(events)
            assert first.event == "endpoint"
            assert first.data.startswith("/messages?session_id=")
            post = await http.post(base_url + first.data, json=init_request("2024-11-05"), headers=POST_HEADERS)
            assert post.status_code == 202
            with anyio.fail_after(5):
                reply = await anext(events)
            assert reply.event == "message"
            assert orjson.loads(reply.data)["result"]["protocolVersion"] == "2024-11-05"


async def test_a_legacy_session_ends_with_its_stream(base_url: str) -> None:
    async with httpx2.AsyncClient(timeout=10) as http:
        async with http.stream("GET", base_url + "/sse", headers={"accept": "text/event-stream"}) as r:
            events = iter_events(r)
            endpoint = (await anext(events)).data
        await anyio.sleep(0.2)
        post = await http.post(base_url + endpoint, json=init_request("2024-11-05"), headers=POST_HEADERS)
    assert post.status_code == 404
    assert post.json()["error"]["code"] == -32600


async def test_session_ids_are_random_visible_ascii(mcp_url: str) -> None:
    import re

    async with httpx2.AsyncClient(timeout=10) as http:
        ids = {await initialize(http, mcp_url) for _ in range(5)}
    assert len(ids) == 5
    for session_id in ids:
        assert re.fullmatch(r"[\x21-\x7e]{32,}", session_id), session_id


async def test_priming_follows_the_negotiated_version_not_the_header(mcp_url: str) -> None:
    """The conformance suite sends ``MCP-Protocol-Version: 2025-03-26`` on a 2025-11-25 session."""
    async with httpx2.AsyncClient(timeout=10) as http:
        session_id = await initialize(http, mcp_url, "2025-11-25")
        headers = session_headers(session_id, "2025-03-26")
        async with http.stream("POST", mcp_url, json=call(1, "echo", {"text": "x"}, False), headers=headers) as r:
            events = [e async for e in iter_events(r)]
        assert events[0].data == "" and events[0].id.endswith("-0"), "a priming event first"
        old_session = await initialize(http, mcp_url, "2025-06-18")
        headers = session_headers(old_session, "2025-11-25")
        async with http.stream("POST", mcp_url, json=call(1, "echo", {"text": "x"}, False), headers=headers) as r:
            events = [e async for e in iter_events(r)]
        assert all(e.data for e in events), "never an empty event for a client that negotiated 2025-06-18"


@pytest.mark.parametrize("json_response", [False, True], ids=["sse", "json"])
async def test_a_session_whose_initialize_failed_does_not_linger(json_response: bool) -> None:
    config = ServerConfig(max_sessions=1, json_response=json_response)
    with run_server(create_app(build_test_server(), config)) as base:
        url = base + "/mcp"
        bad = {"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {"capabilities": "nonsense"}}
        async with httpx2.AsyncClient(timeout=10) as http:
            async with http.stream("POST", url, json=bad, headers=POST_HEADERS) as r:
                body = b"".join([c async for c in r.aiter_raw()])
            assert b'"error"' in body
            # the one slot is free again: a good initialize gets a session, not 503
            good = await http.post(url, json=init_request(), headers=POST_HEADERS)
    assert good.status_code == 200


async def test_a_connected_client_gets_backpressure_not_eviction() -> None:
    """An upstream that produces far more than the replay window, faster than the socket drains,
    waits for the connected client; nothing it has not been sent is evicted."""
    from bench.targets import RawUpstream

    with run_server(create_app(RawUpstream(), ServerConfig(max_events_per_session=200))) as base:
        url = base + "/mcp"
        async with httpx2.AsyncClient(timeout=30) as http:
            session_id = await initialize(http, url)
            request = {
                "jsonrpc": "2.0",
                "id": 2,
                "method": "tools/call",
                "params": {"name": "push", "arguments": {"n": 5000}, "_meta": {"progressToken": 1}},
            }
            async with http.stream("POST", url, json=request, headers=session_headers(session_id)) as r:
                assert r.status_code == 200
                messages = [orjson.loads(e.data) async for e in iter_events(r) if e.data]
    progress = [m["params"]["progress"] for m in messages if m.get("method") == "notifications/progress"]
    assert progress == list(range(1, 5001))
    assert messages[-1]["id"] == 2
