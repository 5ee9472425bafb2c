"""Limits per caller (its principal, else its client address): request rate, sessions and GET
streams at once; 429 with Retry-After and a JSON-RPC error beyond them, other callers unaffected."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import anyio
import httpx2
import pytest

from mcp_sse import ServerConfig, create_app
from tests.rawclient import POST_HEADERS, init_request
from tests.servers import build_test_server, run_server

pytestmark = pytest.mark.anyio

ALICE, BOB = "alice-token", "bob-token"


def bearer(token: str) -> dict[str, str]:
    return {**POST_HEADERS, "Authorization": f"Bearer {token}"}


@pytest.fixture
def tokens(tmp_path: Path) -> str:
    path = tmp_path / "tokens"
    path.write_text(f"{ALICE} alice\n{BOB} bob\n")
    return str(path)


def serve(**limits: object) -> Iterator[str]:
    return run_server(create_app(build_test_server(), ServerConfig(**limits)))  # type: ignore[arg-type]


def assert_too_many(response: httpx2.Response, reason: str) -> None:
    assert response.status_code == 429, response.text
    assert int(response.headers["retry-after"]) >= 1
    error = response.json()["error"]
    assert error["message"].startswith("Too Many Requests") and reason in error["message"], error


async def test_a_caller_over_its_rate_gets_429_and_others_do_not(tokens: str) -> None:
    with serve(token_file=tokens, requests_per_second_per_caller=2) as url:
        async with httpx2.AsyncClient(timeout=10) as http:
            answers = [await http.post(url + "/mcp", json=init_request(), headers=bearer(ALICE)) for _ in range(8)]
            bob = await http.post(url + "/mcp", json=init_request(), headers=bearer(BOB))
    statuses = [a.status_code for a in answers]
    assert statuses[:4] == [200] * 4, "a burst of twice the rate goes through"
    assert 429 in statuses[4:]
    assert_too_many(answers[statuses.index(429)], "more than 2 requests per second")
    assert bob.status_code == 200, "another principal has a bucket of its own"


async def test_sessions_per_caller_are_counted_and_given_back(tokens: str) -> None:
    with serve(token_file=tokens, sessions_per_caller=2) as url:
        async with httpx2.AsyncClient(timeout=10) as http:
            opened = [await http.post(url + "/mcp", json=init_request(), headers=bearer(ALICE)) for _ in range(2)]
            assert [o.status_code for o in opened] == [200, 200]
            assert_too_many(await http.post(url + "/mcp", json=init_request(), headers=bearer(ALICE)), "2 sessions")
            assert (await http.post(url + "/mcp", json=init_request(), headers=bearer(BOB))).status_code == 200
            ended = await http.delete(
                url + "/mcp", headers={**bearer(ALICE), "mcp-session-id": opened[0].headers["mcp-session-id"]}
            )
            assert ended.status_code == 204
            again = await http.post(url + "/mcp", json=init_request(), headers=bearer(ALICE))
            assert again.status_code == 200, "an ended session gives its place back"


async def test_get_streams_per_caller_and_the_address_when_there_is_no_principal() -> None:
    with serve(streams_per_caller=1) as url:
        async with httpx2.AsyncClient(timeout=10) as http:
            sessions = []
            for _ in range(2):
                opened = await http.post(url + "/mcp", json=init_request(), headers=POST_HEADERS)
                sessions.append(opened.headers["mcp-session-id"])
            get = {"accept": "text/event-stream", "mcp-protocol-version": "2025-11-25"}
            async with http.stream("GET", url + "/mcp", headers={**get, "mcp-session-id": sessions[0]}) as held:
                assert held.status_code == 200
                second = await http.get(url + "/mcp", headers={**get, "mcp-session-id": sessions[1]})
                assert_too_many(second, "more than 1 open streams")
            await anyio.sleep(0.2)  # the held stream's end reaches the server
            async with http.stream("GET", url + "/mcp", headers={**get, "mcp-session-id": sessions[1]}) as later:
                assert later.status_code == 200, "a closed stream gives its place back"
