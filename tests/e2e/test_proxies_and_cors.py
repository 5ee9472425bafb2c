"""Behind proxies and in browsers: forwarding headers believed only from ``--trusted-proxy`` peers
(for the Host check, the resource URL, the limits and the logs), and CORS answered for MCP."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

import httpx2
import pytest
from mcp import ClientSession
from mcp.client.streamable_http import streamable_http_client

from mcp_sse import ServerConfig, create_app
from tests.rawclient import POST_HEADERS, init_request
from tests.servers import build_test_server, run_server

pytestmark = pytest.mark.anyio

PUBLIC = "mcp.example.com"
FROM_PROXY = {"x-forwarded-for": "203.0.113.9", "x-forwarded-host": PUBLIC, "x-forwarded-proto": "https"}


@contextmanager
def serve(**options: object) -> Iterator[str]:
    config = ServerConfig(allowed_hosts=(PUBLIC,), **options)  # type: ignore[arg-type]
    with run_server(create_app(build_test_server(), config)) as url:
        yield url


@pytest.mark.parametrize(
    ("trusted", "forwarded", "status"),
    [
        # From a trusted proxy, the Host the client used is the one checked.
        (("127.0.0.1",), {"x-forwarded-host": PUBLIC}, 200),
        (("127.0.0.0/8",), {"x-forwarded-host": "evil.example"}, 421),
        (("127.0.0.1",), {"forwarded": 'for=203.0.113.9;host="evil.example"'}, 421),
        # From anyone else the headers mean nothing: the connection's own Host is checked.
        ((), {"x-forwarded-host": "evil.example"}, 200),
        (("10.0.0.0/8",), {"forwarded": "host=evil.example"}, 200),
    ],
)
async def test_the_host_checked_is_the_one_a_trusted_proxy_reports(
    trusted: tuple[str, ...], forwarded: dict[str, str], status: int
) -> None:
    with serve(trusted_proxies=trusted) as url, httpx2.Client(timeout=10) as http:
        answer = http.post(url + "/mcp", json=init_request(), headers={**POST_HEADERS, **forwarded})
    assert answer.status_code == status, answer.text
    if status == 421:
        error = answer.json()["error"]
        assert "evil.example" in error["message"] and "--allowed-host" in error["message"]


async def test_the_resource_url_is_the_one_the_client_used_behind_a_trusted_proxy() -> None:
    options = {"authorization_servers": ("https://auth.example.com",), "auth_token": "secret"}
    with serve(trusted_proxies=("127.0.0.1",), **options) as url, httpx2.Client(timeout=10) as http:
        metadata = http.get(url + "/.well-known/oauth-protected-resource/mcp", headers=FROM_PROXY).json()
        challenge = http.post(url + "/mcp", json=init_request(), headers={**POST_HEADERS, **FROM_PROXY})
    assert metadata["resource"] == f"https://{PUBLIC}/mcp"
    assert challenge.status_code == 401
    assert (
        f'resource_metadata="https://{PUBLIC}/.well-known/oauth-protected-resource/mcp"'
        in (challenge.headers["www-authenticate"])
    )
    with serve(**options) as url, httpx2.Client(timeout=10) as http:
        untrusted = http.get(url + "/.well-known/oauth-protected-resource/mcp", headers=FROM_PROXY).json()
    assert untrusted["resource"] == url + "/mcp", "a peer we do not trust does not choose our resource URL"


async def test_limits_count_the_client_behind_the_proxy_not_the_proxy() -> None:
    def burst(http: httpx2.Client, url: str, client: str) -> list[int]:
        headers = {**POST_HEADERS, "x-forwarded-for": client}
        return [http.post(url + "/mcp", json=init_request(), headers=headers).status_code for _ in range(3)]

    with serve(trusted_proxies=("127.0.0.1",), requests_per_second_per_caller=1) as url:
        with httpx2.Client(timeout=10) as http:
            first, second = burst(http, url, "203.0.113.1"), burst(http, url, "203.0.113.2")
    assert first[:2] == [200, 200] and first[2] == 429
    assert second[:2] == [200, 200], "another client behind the same proxy has a bucket of its own"
    with serve(requests_per_second_per_caller=1) as url, httpx2.Client(timeout=10) as http:
        first, second = burst(http, url, "203.0.113.1"), burst(http, url, "203.0.113.2")
    assert 429 in first and second == [429] * 3, "an untrusted peer cannot buy buckets by naming clients"


async def test_the_log_names_the_client_behind_the_proxy(caplog: pytest.LogCaptureFixture) -> None:
    with serve(trusted_proxies=("127.0.0.1",)) as url, httpx2.Client(timeout=10) as http:
        with caplog.at_level(logging.INFO, logger="mcp_sse.server.app"):
            refused = http.post(url + "/mcp", content=b"{", headers={**POST_HEADERS, **FROM_PROXY})
    assert refused.status_code == 400
    assert any("from 203.0.113.9 -> 400" in r.getMessage() for r in caplog.records), caplog.text
    assert any(getattr(r, "client", None) == "203.0.113.9" for r in caplog.records)


async def test_the_sdk_client_works_through_a_trusted_proxy_s_headers() -> None:
    with serve(trusted_proxies=("127.0.0.1",)) as url:
        async with httpx2.AsyncClient(headers=FROM_PROXY, timeout=10) as http:
            async with streamable_http_client(url + "/mcp", http_client=http) as (read, write):
                async with ClientSession(read, write) as session:
                    await session.initialize()
                    result = await session.call_tool("echo", {"text": "through"})
    assert result.content[0].text == "through"  # type: ignore[union-attr]


APP = "https://app.example"


async def test_a_preflight_allows_what_mcp_sends_and_nothing_else() -> None:
    asked = "authorization, content-type, mcp-method, mcp-name, mcp-param-region, x-not-mcp, last-event-id"
    with serve(allowed_origins=(APP,), auth_token="secret") as url, httpx2.Client(timeout=10) as http:
        preflight = http.options(
            url + "/mcp",
            headers={"origin": APP, "access-control-request-method": "POST", "access-control-request-headers": asked},
        )
        answer = http.post(
            url + "/mcp",
            json=init_request(),
            headers={**POST_HEADERS, "origin": APP, "authorization": "Bearer secret"},
        )
        refused = http.post(url + "/mcp", json=init_request(), headers={**POST_HEADERS, "origin": APP})
    assert preflight.status_code == 204
    assert preflight.headers["access-control-allow-origin"] == APP
    allowed = {h.strip().lower() for h in preflight.headers["access-control-allow-headers"].split(",")}
    needed = {"authorization", "content-type", "accept", "mcp-session-id", "mcp-protocol-version", "last-event-id"}
    assert needed | {"mcp-method", "mcp-name", "mcp-param-region"} <= allowed
    assert "x-not-mcp" not in allowed
    assert {"GET", "POST", "DELETE"} <= {
        m.strip() for m in preflight.headers["access-control-allow-methods"].split(",")
    }
    for response in (answer, refused):
        exposed = {h.strip().lower() for h in response.headers["access-control-expose-headers"].split(",")}
        assert {"mcp-session-id", "mcp-protocol-version", "www-authenticate"} <= exposed
        assert response.headers["access-control-allow-origin"] == APP
    assert answer.status_code == 200 and refused.status_code == 401


async def test_an_origin_not_allowed_gets_403_and_no_cors_headers() -> None:
    with serve(allowed_origins=(APP,)) as url, httpx2.Client(timeout=10) as http:
        preflight = http.options(
            url + "/mcp", headers={"origin": "https://evil.example", "access-control-request-method": "POST"}
        )
    assert preflight.status_code == 403
    assert "access-control-allow-origin" not in preflight.headers
    assert "evil.example" in preflight.json()["error"]["message"]
