"""``/metrics``: scraped in Prometheus format while the test opens sessions, resumes, and misbehaves."""

from __future__ import annotations

import anyio
import httpx2
import pytest
from prometheus_client.parser import text_string_to_metric_families

from mcp_sse import ServerConfig, create_app
from tests.rawclient import POST_HEADERS, call, init_request, initialize, iter_events, session_headers
from tests.servers import build_test_server, run_server

pytestmark = pytest.mark.anyio


async def scrape(http: httpx2.AsyncClient, base: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    response = await http.get(base + "/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    samples = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def value(samples: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


async def test_counters_follow_what_happens() -> None:
    with run_server(create_app(build_test_server(), ServerConfig(max_events_per_session=8))) as base:
        url = base + "/mcp"
        async with httpx2.AsyncClient(timeout=20) as http:
            before = await scrape(http, base)
            assert value(before, "mcp_sse_sessions_open", transport="streamable-http") == 0

            session_id = await initialize(http, url)
            headers = session_headers(session_id)
            # a resume: read the priming event and two progress events, drop, resume from the second
            async with http.stream("POST", url, json=call(3, "count", {"to": 5, "delay_ms": 30}), headers=headers) as r:
                events = iter_events(r)
                ids = [(await anext(events)).id for _ in range(3)]
            await anyio.sleep(0.3)  # the call goes on meanwhile: what it sends now waits in the log
            get = {"accept": "text/event-stream", "mcp-session-id": session_id, "last-event-id": ids[-1]}
            async with http.stream("GET", url, headers=get) as r:
                [e async for e in iter_events(r)]
            # a refusal, and a resume from before what the log keeps
            await http.post(
                url,
                json=init_request(),
                headers={**POST_HEADERS, "mcp-session-id": "nope", "origin": "http://evil.example"},
            )
            await http.post(
                url, json={"jsonrpc": "2.0", "id": 1, "method": "ping"}, headers={**headers, "mcp-session-id": "gone"}
            )
            async with http.stream("POST", url, json=call(4, "count", {"to": 20}), headers=headers) as r:
                [e async for e in iter_events(r)]
            miss = await http.get(url, headers={**get, "last-event-id": ids[0]})
            assert miss.status_code == 410

            during = await scrape(http, base)
            await http.delete(url, headers=headers)
            after = await scrape(http, base)

    assert value(during, "mcp_sse_sessions_open", transport="streamable-http") == 1
    assert value(during, "mcp_sse_sessions_total", transport="streamable-http") == 1
    assert value(during, "mcp_sse_resumes_total") == 2, "the successful resume and the refused one"
    assert value(during, "mcp_sse_replay_misses_total") == 1
    assert value(during, "mcp_sse_events_sent_total", kind="replayed") >= 1
    assert value(during, "mcp_sse_events_sent_total", kind="live") >= 20
    assert value(during, "mcp_sse_events_appended_total") >= 27
    assert value(during, "mcp_sse_store_append_seconds_count") == value(during, "mcp_sse_events_appended_total")
    assert value(during, "mcp_sse_rejects_total", status="403", reason="Forbidden") == 1
    assert value(during, "mcp_sse_rejects_total", status="404", reason="SessionNotFound") == 1
    assert value(during, "mcp_sse_rejects_total", status="410", reason="ReplayUnavailable") == 1
    assert value(during, "mcp_sse_streams_open") == 0
    assert value(after, "mcp_sse_sessions_open", transport="streamable-http") == 0
