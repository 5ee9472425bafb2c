"""Our server as an OAuth 2.1 resource server, with the official SDK's client and its OAuth provider
as the peer and a real authorization server on loopback (tests/oauth.py): the 401 leads the client
to the metadata, it registers, logs in (PKCE), and its JWT reaches the hosted tool; an expiring
token is refreshed without a second login; a 403 insufficient_scope makes it log in again for the
scope it lacks."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from contextlib import contextmanager

import anyio
import httpx2
import pytest
from mcp import ClientSession
from mcp.client.auth import OAuthClientProvider
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.auth import OAuthClientMetadata
from pydantic import AnyUrl

from mcp_sse import ServerConfig, create_app
from tests.oauth import AuthorizationServer, HeadlessBrowser, MemoryTokens, authorization_server
from tests.servers import build_test_server, run_server

pytestmark = pytest.mark.anyio


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def resource_server(issuer: AuthorizationServer, port: int, scopes: tuple[str, ...]) -> Iterator[str]:
    url = f"http://127.0.0.1:{port}/mcp"
    config = ServerConfig(
        jwks_url=issuer.jwks_url,
        issuer=issuer.issuer,
        resource_url=url,
        authorization_servers=(issuer.issuer,),
        required_scopes=scopes,
        event_store="memory",
        retry_ms=100,
        token_leeway=1,  # the test's tokens live 2 s; a second covers their whole-second expiry
    )
    with run_server(create_app(build_test_server(), config), port=port):
        yield url


def oauth(url: str, storage: MemoryTokens, browser: HeadlessBrowser) -> OAuthClientProvider:
    metadata = OAuthClientMetadata(
        client_name="mcp-sse test client",
        redirect_uris=[AnyUrl("http://127.0.0.1:9/callback")],
        grant_types=["authorization_code", "refresh_token"],
        response_types=["code"],
    )
    return OAuthClientProvider(url, metadata, storage, browser.open, browser.callback)


async def whose_token(url: str, auth: httpx2.Auth) -> str:
    async with httpx2.AsyncClient(auth=auth, timeout=30) as http:
        async with streamable_http_client(url, http_client=http) as (read, write):
            async with ClientSession(read, write) as session:
                await session.initialize()
                result = await session.call_tool("whose_token", {})
    return str(result.content[0].text)  # type: ignore[union-attr]


async def test_the_sdk_oauth_client_logs_in_and_its_token_reaches_the_tool() -> None:
    storage, browser = MemoryTokens(), HeadlessBrowser()
    with authorization_server() as issuer, resource_server(issuer, free_port(), ("mcp:tools",)) as url:
        first = await whose_token(url, oauth(url, storage, browser))
        again = await whose_token(url, oauth(url, storage, browser))
    assert first == again == "dana mcp:tools"
    assert (issuer.registrations, issuer.authorizations, browser.opened) == (1, 1, 1), "one login, then reused"
    assert storage.tokens is not None and storage.tokens.scope == "mcp:tools", "the scope the challenge named"


async def test_an_expiring_token_is_refreshed_mid_stream_without_a_second_login() -> None:
    storage, browser = MemoryTokens(), HeadlessBrowser()
    steps: list[float] = []

    async def progress(done: float, total: float | None, message: str | None) -> None:
        steps.append(done)

    with authorization_server(lifetime=2) as issuer, resource_server(issuer, free_port(), ("mcp:tools",)) as url:
        async with httpx2.AsyncClient(auth=oauth(url, storage, browser), timeout=30) as http:
            async with streamable_http_client(url, http_client=http) as (read, write):
                async with ClientSession(read, write) as session:
                    await session.initialize()
                    result = await session.call_tool("count", {"to": 20, "delay_ms": 250}, progress_callback=progress)
                    await anyio.sleep(2.5)  # the token is past its expiry: the next call refreshes it
                    echoed = await session.call_tool("echo", {"text": "still here"})
    assert result.content[0].text == "counted to 20"  # type: ignore[union-attr]
    assert steps == [float(n) for n in range(1, 21)], "the stream cut at expiry resumed with nothing lost"
    assert echoed.content[0].text == "still here"  # type: ignore[union-attr]
    assert issuer.refreshes >= 1 and browser.opened == 1, "refreshed, never sent back to the browser"


async def test_insufficient_scope_sends_the_client_to_log_in_again_for_it() -> None:
    storage, browser = MemoryTokens(), HeadlessBrowser()
    port = free_port()
    with authorization_server() as issuer:
        with resource_server(issuer, port, ("mcp:tools",)) as url:
            await whose_token(url, oauth(url, storage, browser))
        with resource_server(issuer, port, ("mcp:tools", "mcp:admin")) as url:
            refused = await httpx2.AsyncClient().post(
                url,
                json={"jsonrpc": "2.0", "id": 1, "method": "ping"},
                headers={"authorization": f"Bearer {storage.tokens.access_token if storage.tokens else ''}"},
            )
            stepped_up = await whose_token(url, oauth(url, storage, browser))
    assert refused.status_code == 403
    assert 'error="insufficient_scope"' in refused.headers["www-authenticate"]
    assert 'scope="mcp:tools mcp:admin"' in refused.headers["www-authenticate"]
    assert stepped_up == "dana mcp:tools mcp:admin"
    assert browser.opened == 2, "a new authorization, for the scope it lacked"
