"""Identity on the network: bearer tokens with principals (a token file, JWT access tokens signed by
a key of a JWKS served on loopback), sessions bound to their principal, scopes, and the protected
resource metadata (RFC 9728), with the official SDK's client as the peer."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import httpx2
import jwt
import orjson
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from mcp import ClientSession
from mcp.client.streamable_http import streamable_http_client

from mcp_sse import ServerConfig, create_app
from tests.rawclient import POST_HEADERS, init_request, iter_events
from tests.servers import answer_lifespan, build_test_server, run_server

pytestmark = pytest.mark.anyio

ALICE, BOB, READER = "alice-token-1", "bob-token-2", "reader-token-3"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture(scope="module")
def token_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("tokens") / "tokens"
    path.write_text(
        f"# token principal scopes\n{ALICE} alice mcp:tools mcp:admin\n{BOB} bob mcp:tools\n{READER} reader\n"
    )
    return path


@pytest.fixture(scope="module")
def server(token_file: Path) -> Iterator[str]:
    config = ServerConfig(
        token_file=str(token_file),
        required_scopes=("mcp:tools",),
        authorization_servers=("https://auth.example.com",),
    )
    with run_server(create_app(build_test_server(), config)) as url:
        yield url


async def test_each_principal_reaches_its_tools_and_a_tool_sees_the_callers_token(server: str) -> None:
    for token, who in ((ALICE, "alice mcp:tools mcp:admin"), (BOB, "bob mcp:tools")):
        async with httpx2.AsyncClient(headers=bearer(token), timeout=30) as http:
            async with streamable_http_client(server + "/mcp", http_client=http) as (read, write):
                async with ClientSession(read, write) as session:
                    await session.initialize()
                    result = await session.call_tool("whose_token", {})
        assert result.content[0].text == who  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("headers", "status", "error"),
    [
        ({}, 401, None),
        (bearer("nobody"), 401, "invalid_token"),
        ({"Authorization": f"Basic {ALICE}"}, 401, None),
        (bearer(READER), 403, "insufficient_scope"),
    ],
    ids=["none", "unknown", "basic", "no-scope"],
)
async def test_each_refusal_has_its_status_its_challenge_and_a_json_rpc_error(
    server: str, headers: dict[str, str], status: int, error: str | None
) -> None:
    async with httpx2.AsyncClient(timeout=10) as http:
        response = await http.post(server + "/mcp", json=init_request(), headers={**POST_HEADERS, **headers})
    assert response.status_code == status
    challenge = response.headers["www-authenticate"]
    host = server.removeprefix("http://")
    assert f'resource_metadata="http://{host}/.well-known/oauth-protected-resource/mcp"' in challenge
    assert 'scope="mcp:tools"' in challenge
    assert (f'error="{error}"' in challenge) if error else ("error=" not in challenge)
    body = response.json()
    assert body["jsonrpc"] == "2.0" and body["error"]["message"].startswith(
        "Unauthorized" if status == 401 else "Forbidden"
    )


async def test_the_protected_resource_metadata_says_where_to_get_a_token(server: str) -> None:
    async with httpx2.AsyncClient(timeout=10) as http:
        for path in ("/.well-known/oauth-protected-resource/mcp", "/.well-known/oauth-protected-resource"):
            response = await http.get(server + path)  # no token needed to learn how to get one
            assert response.status_code == 200, path
            assert response.json() == {
                "resource": server + "/mcp",
                "bearer_methods_supported": ["header"],
                "authorization_servers": ["https://auth.example.com"],
                "scopes_supported": ["mcp:tools"],
            }


async def test_a_session_belongs_to_its_principal(server: str) -> None:
    """Bob holding Alice's session id gets exactly what a made-up id gets, on every method."""
    async with httpx2.AsyncClient(timeout=10) as http:
        opened = await http.post(server + "/mcp", json=init_request(), headers={**POST_HEADERS, **bearer(ALICE)})
        session_id = opened.headers["mcp-session-id"]
        alice = {**POST_HEADERS, **bearer(ALICE), "mcp-session-id": session_id, "mcp-protocol-version": "2025-11-25"}
        bob = {**alice, **bearer(BOB)}
        initialized = {"jsonrpc": "2.0", "method": "notifications/initialized"}
        assert (await http.post(server + "/mcp", json=initialized, headers=alice)).status_code == 202
        call = {
            "jsonrpc": "2.0",
            "id": 1,
            "method": "tools/call",
            "params": {"name": "echo", "arguments": {"text": "x"}},
        }
        refusals = [
            await http.post(server + "/mcp", json=call, headers=bob),
            await http.get(server + "/mcp", headers={**bob, "accept": "text/event-stream"}),
            await http.get(server + "/mcp", headers={**bob, "accept": "text/event-stream", "last-event-id": "1-0"}),
            await http.delete(server + "/mcp", headers=bob),
        ]
        for refused in refusals:
            assert refused.status_code == 404, refused.text
            assert refused.json()["error"]["message"].startswith("Session not found")
        answer = await http.post(server + "/mcp", json=call, headers=alice)
        assert answer.status_code == 200 and b'"x"' in answer.content, "Alice's session is untouched"


async def test_the_token_file_is_read_again_when_it_changes(token_file: Path, server: str) -> None:
    original = token_file.read_text()  # noqa: ASYNC240 (a small file, in a test)
    try:
        token_file.write_text(original.replace(f"{BOB} bob mcp:tools\n", "") + "carol-token carol mcp:tools\n")  # noqa: ASYNC240
        async with httpx2.AsyncClient(timeout=10) as http:
            refused = await http.post(server + "/mcp", json=init_request(), headers={**POST_HEADERS, **bearer(BOB)})
            welcome = await http.post(
                server + "/mcp", json=init_request(), headers={**POST_HEADERS, **bearer("carol-token")}
            )
        assert refused.status_code == 401, "revoked without a restart"
        assert welcome.status_code == 200, "added without a restart"
    finally:
        token_file.write_text(original)  # noqa: ASYNC240


# --- JWT access tokens, signed by a key of a JWKS served on loopback -----------------------------


class Issuer:
    """A test authorization server's keys (a fake of the AS only: the tokens, keys and JWKS are real)."""

    def __init__(self) -> None:
        self.keys = {"k1": rsa.generate_private_key(public_exponent=65537, key_size=2048)}
        self.served = ["k1"]

    def rotate(self) -> None:
        self.keys["k2"] = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.served = ["k2"]

    def jwks(self) -> bytes:
        keys = []
        for kid in self.served:
            jwk = orjson.loads(jwt.algorithms.RSAAlgorithm.to_jwk(self.keys[kid].public_key()))
            keys.append({**jwk, "kid": kid, "use": "sig", "alg": "RS256"})
        return orjson.dumps({"keys": keys})

    def token(self, kid: str = "k1", **claims: Any) -> str:
        now = int(time.time())
        body = {
            "iss": "https://as.test",
            "sub": "dana",
            "aud": RESOURCE,
            "exp": now + 300,
            "iat": now,
            "scope": "mcp:tools",
        }
        body.update(claims)
        return jwt.encode(
            {k: v for k, v in body.items() if v is not None}, self.keys[kid], "RS256", headers={"kid": kid}
        )


RESOURCE = "https://mcp.example.com/mcp"


@pytest.fixture(scope="module")
def issuer() -> Issuer:
    return Issuer()


@pytest.fixture(scope="module")
def jwks_url(issuer: Issuer) -> Iterator[str]:
    """The issuer's JWKS on loopback, as an authorization server publishes it at its jwks_uri."""

    async def jwks_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            await answer_lifespan(receive, send)
            return
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/json")]})
        await send({"type": "http.response.body", "body": issuer.jwks()})

    with run_server(jwks_app) as url:
        yield url + "/jwks.json"


@pytest.fixture(scope="module")
def jwt_server(jwks_url: str) -> Iterator[str]:
    config = ServerConfig(
        jwks_url=jwks_url, issuer="https://as.test", resource_url=RESOURCE, required_scopes=("mcp:tools",)
    )
    with run_server(create_app(build_test_server(), config)) as url:
        yield url


async def test_a_jwt_access_token_names_its_principal_to_the_hosted_tool(issuer: Issuer, jwt_server: str) -> None:
    async with httpx2.AsyncClient(headers=bearer(issuer.token()), timeout=30) as http:
        async with streamable_http_client(jwt_server + "/mcp", http_client=http) as (read, write):
            async with ClientSession(read, write) as session:
                await session.initialize()
                result = await session.call_tool("whose_token", {})
    assert result.content[0].text == "dana mcp:tools"  # type: ignore[union-attr]


@pytest.mark.parametrize(
    "claims",
    [
        {"exp": -120},  # times relative to when the test runs, not to when it was collected
        {"nbf": 600},
        {"aud": "https://another.example.com/mcp"},
        {"iss": "https://evil.test"},
        {"aud": None},
        {"exp": None},
    ],
    ids=["expired", "not-yet", "other-audience", "other-issuer", "no-audience", "no-expiry"],
)
async def test_a_jwt_that_is_not_for_us_or_not_now_is_401(
    issuer: Issuer, jwt_server: str, claims: dict[str, Any]
) -> None:
    now = int(time.time())
    claims = {
        name: now + value if name in ("exp", "nbf") and value is not None else value for name, value in claims.items()
    }
    async with httpx2.AsyncClient(timeout=10) as http:
        response = await http.post(
            jwt_server + "/mcp", json=init_request(), headers={**POST_HEADERS, **bearer(issuer.token(**claims))}
        )
    assert response.status_code == 401
    assert 'error="invalid_token"' in response.headers["www-authenticate"]


async def test_a_jwt_signed_by_another_key_is_401(issuer: Issuer, jwt_server: str) -> None:
    stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    forged = jwt.encode(
        {"iss": "https://as.test", "sub": "eve", "aud": RESOURCE, "exp": int(time.time()) + 300, "scope": "mcp:tools"},
        stranger,
        "RS256",
        headers={"kid": "k1"},
    )
    async with httpx2.AsyncClient(timeout=10) as http:
        response = await http.post(jwt_server + "/mcp", json=init_request(), headers={**POST_HEADERS, **bearer(forged)})
    assert response.status_code == 401


async def test_a_rotated_key_is_fetched_when_a_token_names_it(issuer: Issuer, jwks_url: str) -> None:
    """What --jwks-url builds, with no cool-down between two fetches of the JWKS (30 s by default,
    so that made-up key ids cannot make the server hammer the authorization server)."""
    from mcp_sse.server.auth import JWTVerifier

    verifier = JWTVerifier(audience=RESOURCE, issuer="https://as.test", jwks_url=jwks_url, refetch_cooldown=0)
    with run_server(create_app(build_test_server(), token_verifier=verifier)) as url:
        async with httpx2.AsyncClient(timeout=10) as http:
            before = await http.post(
                url + "/mcp", json=init_request(), headers={**POST_HEADERS, **bearer(issuer.token())}
            )
            assert before.status_code == 200, "k1 fetched and cached"
            issuer.rotate()
            try:
                after = await http.post(
                    url + "/mcp", json=init_request(), headers={**POST_HEADERS, **bearer(issuer.token("k2"))}
                )
            finally:
                issuer.served = ["k1", "k2"]
    assert after.status_code == 200, after.text


async def test_the_sdk_client_without_a_token_is_told_401(server: str) -> None:
    with pytest.raises(BaseException) as failure:
        async with streamable_http_client(server + "/mcp") as (read, write):
            async with ClientSession(read, write) as session:
                await session.initialize()
    assert "Unauthorized: this server needs an Authorization: Bearer" in repr(failure.value)


async def test_a_session_kept_across_a_restart_still_belongs_to_its_principal(token_file: Path, tmp_path: Path) -> None:
    config = ServerConfig(token_file=str(token_file), event_store=f"sqlite:{tmp_path / 'events.db'}")
    with run_server(create_app(build_test_server(), config)) as url:
        async with httpx2.AsyncClient(timeout=10) as http:
            opened = await http.post(url + "/mcp", json=init_request(), headers={**POST_HEADERS, **bearer(ALICE)})
            session_id = opened.headers["mcp-session-id"]
        port = int(url.rsplit(":", 1)[1])
    with run_server(create_app(build_test_server(), config), port=port) as url:
        alice = {**POST_HEADERS, **bearer(ALICE), "mcp-session-id": session_id, "mcp-protocol-version": "2025-11-25"}
        ping = {"jsonrpc": "2.0", "id": 1, "method": "ping"}
        async with httpx2.AsyncClient(timeout=10) as http:
            stolen = await http.post(url + "/mcp", json=ping, headers={**alice, **bearer(BOB)})
            kept = await http.post(url + "/mcp", json=ping, headers=alice)
    assert stolen.status_code == 404, "the record names its principal: nobody else brings it back"
    assert kept.status_code == 200, kept.text


async def test_the_metadata_names_the_scheme_the_client_used(token_file: Path) -> None:
    """Behind TLS (the ASGI scope says https) the resource is the https URL clients use: a client
    refuses metadata whose resource differs from the URL it called."""
    config = ServerConfig(
        token_file=str(token_file),
        authorization_servers=("https://auth.example.com",),
        allowed_hosts=("mcp.example.com",),
    )
    app = create_app(build_test_server(), config)
    transport = httpx2.ASGITransport(app=app)
    async with httpx2.AsyncClient(transport=transport, base_url="https://mcp.example.com") as http:
        response = await http.get("/.well-known/oauth-protected-resource/mcp")
        refused = await http.post("/mcp", json=init_request(), headers=POST_HEADERS)
    assert response.json()["resource"] == "https://mcp.example.com/mcp"
    assert (
        'resource_metadata="https://mcp.example.com/.well-known/oauth-protected-resource/mcp"'
        in (refused.headers["www-authenticate"])
    )


class ShortLivedTokens(httpx2.Auth):
    """An OAuth client's side of expiry: a fresh token from the issuer whenever the one it holds is
    about to expire (what the SDK's OAuth provider does with its refresh token)."""

    def __init__(self, issuer: Issuer, lifetime: int) -> None:
        self.issuer = issuer
        self.lifetime = lifetime
        self.token = ""
        self.expires = 0.0
        self.minted = 0

    def auth_flow(self, request: httpx2.Request) -> Iterator[httpx2.Request]:
        if self.expires - time.time() < 0.5:
            self.expires = int(time.time()) + self.lifetime
            self.token = self.issuer.token(exp=self.expires)
            self.minted += 1
        request.headers["Authorization"] = f"Bearer {self.token}"
        yield request


async def test_a_stream_ends_when_its_token_expires_and_resumes_with_a_fresh_one(issuer: Issuer, jwks_url: str) -> None:
    config = ServerConfig(
        jwks_url=jwks_url,
        issuer="https://as.test",
        resource_url=RESOURCE,
        retry_ms=100,
        event_store="memory",
        token_leeway=0,
    )
    auth = ShortLivedTokens(issuer, lifetime=2)
    steps: list[float] = []

    async def progress(done: float, total: float | None, message: str | None) -> None:
        steps.append(done)

    with run_server(create_app(build_test_server(), config)) as url:
        async with httpx2.AsyncClient(auth=auth, timeout=30) as http:
            async with streamable_http_client(url + "/mcp", http_client=http) as (read, write):
                async with ClientSession(read, write) as session:
                    await session.initialize()
                    result = await session.call_tool("count", {"to": 25, "delay_ms": 200}, progress_callback=progress)
            metrics = (await http.get(url + "/metrics")).text
    assert result.content[0].text == "counted to 25"  # type: ignore[union-attr]
    assert steps == [float(n) for n in range(1, 26)], "every progress notification, once, in order"
    resumes = next(line for line in metrics.splitlines() if line.startswith("mcp_sse_resumes_total"))
    assert float(resumes.split()[-1]) >= 1, "the stream was ended at the token's expiry and resumed"
    assert auth.minted >= 3


MODERN_META = {
    "io.modelcontextprotocol/protocolVersion": "2026-07-28",
    "io.modelcontextprotocol/clientInfo": {"name": "raw", "version": "1"},
    "io.modelcontextprotocol/clientCapabilities": {},
}


def modern(method: str, request_id: str, params: dict[str, Any], token: str) -> dict[str, Any]:
    """A stateless-era request and its headers (MCP 2026-07-28)."""
    headers = {
        **POST_HEADERS,
        "mcp-protocol-version": "2026-07-28",
        "mcp-method": method,
        "authorization": f"Bearer {token}",
    }
    if "name" in params:
        headers["mcp-name"] = params["name"]
    body = {"jsonrpc": "2.0", "id": request_id, "method": method, "params": {**params, "_meta": MODERN_META}}
    return {"json": body, "headers": headers}


async def test_a_listen_stream_ends_when_its_token_expires_and_a_call_outlives_its_token(
    issuer: Issuer, jwks_url: str
) -> None:
    """The stateless era's long streams are held to their token as the session eras' are; a call
    that outlasts its token still gets its answer (it ends with it anyway)."""
    config = ServerConfig(jwks_url=jwks_url, issuer="https://as.test", resource_url=RESOURCE, token_leeway=0)
    with run_server(create_app(build_test_server(), config)) as url:
        async with httpx2.AsyncClient(timeout=30) as http:
            listen = modern(
                "subscriptions/listen",
                "sub-1",
                {"notifications": {"toolsListChanged": True}},
                issuer.token(exp=int(time.time()) + 2),
            )
            async with http.stream("POST", url + "/mcp", **listen) as stream:
                assert stream.headers["content-type"].startswith("text/event-stream")
                with anyio.fail_after(20):  # without an end, the stream pings forever
                    received = [orjson.loads(m.data) async for m in iter_events(stream) if m.data]
            # A clean end: a cut chunked body would have raised above.
            assert [m["method"] for m in received] == ["notifications/subscriptions/acknowledged"]

            count = modern(
                "tools/call",
                "c-1",
                {"name": "count", "arguments": {"to": 15, "delay_ms": 200}},
                issuer.token(exp=int(time.time()) + 1),
            )
            answer = await http.post(url + "/mcp", **count)
    assert answer.status_code == 200
    assert answer.json()["result"]["content"][0]["text"] == "counted to 15"
