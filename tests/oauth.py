"""OAuth for the tests, both sides. An OAuth 2.1 authorization server on loopback: the official SDK's own authorization
server routes (``mcp.server.auth.routes.create_auth_routes``: RFC 8414 metadata, dynamic client
registration, authorize with PKCE, token, refresh), behind an in-memory provider that approves every
authorization at once (no login page: the user is ``user``) and issues JWT access tokens (RFC 9068)
signed by a key generated here, published as a JWKS at ``/jwks.json``.

Real tokens, real keys, real protocol: what our JWT resource server and the SDK's OAuth client see
is what a production authorization server gives them. Only the human is missing, played on the
client side by ``HeadlessBrowser``, which follows the authorization redirect as a browser would.
"""

from __future__ import annotations

import secrets
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx2
import jwt
import orjson
from cryptography.hazmat.primitives.asymmetric import ec
from mcp.client.auth import TokenStorage
from mcp.server.auth.provider import (
    AccessToken,
    AuthorizationCode,
    AuthorizationParams,
    IdentityAssertionParams,
    RefreshToken,
    TokenError,
    construct_redirect_uri,
)
from mcp.server.auth.routes import create_auth_routes
from mcp.server.auth.settings import ClientRegistrationOptions
from mcp.shared.auth import AuthorizationCodeResult, OAuthClientInformationFull, OAuthToken
from pydantic import AnyHttpUrl
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tests.servers import run_server

__all__ = ["AuthorizationServer", "HeadlessBrowser", "MemoryTokens", "authorization_server"]


class AuthorizationServer:
    """The provider: clients, codes and refresh tokens in memory; counts what happened."""

    def __init__(
        self, issuer: str, *, user: str = "dana", lifetime: int = 3600, scopes: str = "mcp:tools mcp:admin"
    ) -> None:
        self.issuer = issuer
        self.scopes = scopes  # what every registered client may ask for (a step-up included)
        self.user = user
        self.lifetime = lifetime  # seconds an access token lives; tests shorten it to see refreshes
        self.key = ec.generate_private_key(ec.SECP256R1())
        self.clients: dict[str, OAuthClientInformationFull] = {}
        self.codes: dict[str, AuthorizationCode] = {}
        self.refresh_tokens: dict[str, RefreshToken] = {}
        self.authorizations = 0  # times a browser came to the authorize endpoint
        self.refreshes = 0
        self.registrations = 0

    # --- OAuthAuthorizationServerProvider ---------------------------------------------------------

    async def get_client(self, client_id: str) -> OAuthClientInformationFull | None:
        return self.clients.get(client_id)

    async def register_client(self, client_info: OAuthClientInformationFull) -> None:
        assert client_info.client_id is not None
        self.registrations += 1
        self.clients[client_info.client_id] = client_info.model_copy(update={"scope": self.scopes})

    async def authorize(self, client: OAuthClientInformationFull, params: AuthorizationParams) -> str:
        self.authorizations += 1
        code = secrets.token_urlsafe(24)
        assert client.client_id is not None
        self.codes[code] = AuthorizationCode(
            code=code,
            scopes=params.scopes or [],
            expires_at=time.time() + 300,
            client_id=client.client_id,
            code_challenge=params.code_challenge,
            redirect_uri=params.redirect_uri,
            redirect_uri_provided_explicitly=params.redirect_uri_provided_explicitly,
            resource=params.resource,
            subject=self.user,
        )
        return construct_redirect_uri(str(params.redirect_uri), code=code, state=params.state, iss=self.issuer)

    async def load_authorization_code(
        self, client: OAuthClientInformationFull, authorization_code: str
    ) -> AuthorizationCode | None:
        code = self.codes.get(authorization_code)
        return code if code is not None and code.client_id == client.client_id else None

    async def exchange_authorization_code(
        self, client: OAuthClientInformationFull, authorization_code: AuthorizationCode
    ) -> OAuthToken:
        del self.codes[authorization_code.code]
        return self._issue(authorization_code.client_id, authorization_code.scopes, authorization_code.resource)

    async def load_refresh_token(self, client: OAuthClientInformationFull, refresh_token: str) -> RefreshToken | None:
        found = self.refresh_tokens.get(refresh_token)
        return found if found is not None and found.client_id == client.client_id else None

    async def exchange_refresh_token(
        self, client: OAuthClientInformationFull, refresh_token: RefreshToken, scopes: list[str]
    ) -> OAuthToken:
        self.refreshes += 1
        del self.refresh_tokens[refresh_token.token]  # rotated, as OAuth 2.1 asks of public clients
        return self._issue(refresh_token.client_id, scopes or refresh_token.scopes, refresh_token.resource)

    async def load_access_token(self, token: str) -> AccessToken | None:
        return None  # the resource server checks the JWT itself

    async def revoke_token(self, token: AccessToken | RefreshToken) -> None:
        if isinstance(token, RefreshToken):
            self.refresh_tokens.pop(token.token, None)

    async def exchange_identity_assertion(
        self, client: OAuthClientInformationFull, params: IdentityAssertionParams
    ) -> OAuthToken:
        raise TokenError("unsupported_grant_type", "identity assertions are not supported here")

    # --- tokens and keys --------------------------------------------------------------------------

    def _issue(self, client_id: str, scopes: list[str], resource: str | None) -> OAuthToken:
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": self.issuer,
            "sub": self.user,
            "exp": now + self.lifetime,
            "iat": now,
            "scope": " ".join(scopes),
            "client_id": client_id,
        }
        if resource is not None:
            claims["aud"] = resource
        access = jwt.encode(claims, self.key, "ES256", headers={"kid": "as-1", "typ": "at+jwt"})
        refresh = secrets.token_urlsafe(24)
        self.refresh_tokens[refresh] = RefreshToken(
            token=refresh, client_id=client_id, scopes=scopes, resource=resource, subject=self.user
        )
        return OAuthToken(
            access_token=access,
            token_type="Bearer",
            expires_in=self.lifetime,
            scope=" ".join(scopes) or None,
            refresh_token=refresh,
        )

    def jwks(self) -> bytes:
        jwk = orjson.loads(jwt.algorithms.ECAlgorithm.to_jwk(self.key.public_key()))
        return orjson.dumps({"keys": [{**jwk, "kid": "as-1", "use": "sig", "alg": "ES256"}]})

    @property
    def jwks_url(self) -> str:
        return self.issuer.rstrip("/") + "/jwks.json"


@contextmanager
def authorization_server(**options: Any) -> Iterator[AuthorizationServer]:
    """An authorization server on a free loopback port for the life of the ``with``."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    # The issuer as the SDK's metadata route spells it (pydantic's URL adds the root path's slash):
    # clients compare the two exactly (RFC 8414 §3.3).
    server = AuthorizationServer(f"http://127.0.0.1:{port}/", **options)

    async def jwks(request: Request) -> Response:
        return Response(server.jwks(), media_type="application/json")

    routes = create_auth_routes(
        server,
        AnyHttpUrl(server.issuer),
        client_registration_options=ClientRegistrationOptions(enabled=True),
    )
    app = Starlette(routes=[*routes, Route("/jwks.json", jwks)])
    with run_server(app, port=port):
        yield server


class MemoryTokens(TokenStorage):
    """The SDK client's token storage, kept for the life of the process."""

    def __init__(self) -> None:
        self.tokens: OAuthToken | None = None
        self.client_info: OAuthClientInformationFull | None = None

    async def get_tokens(self) -> OAuthToken | None:
        return self.tokens

    async def set_tokens(self, tokens: OAuthToken) -> None:
        self.tokens = tokens

    async def get_client_info(self) -> OAuthClientInformationFull | None:
        return self.client_info

    async def set_client_info(self, client_info: OAuthClientInformationFull) -> None:
        self.client_info = client_info


class HeadlessBrowser:
    """Plays the user's browser: opens the authorization URL and reads the code from the redirect."""

    def __init__(self) -> None:
        self.result: AuthorizationCodeResult | None = None
        self.opened = 0

    async def open(self, authorization_url: str) -> None:
        self.opened += 1
        async with httpx2.AsyncClient() as http:
            response = await http.get(authorization_url, follow_redirects=False)
        location = response.headers.get("location")
        if not response.is_redirect or not location:
            raise RuntimeError(f"the authorization server answered {response.status_code}, not a redirect")
        query = parse_qs(urlsplit(location).query)
        if "code" not in query:
            raise RuntimeError(f"no code in the redirect to {location}")
        self.result = AuthorizationCodeResult(
            code=query["code"][0], state=(query.get("state") or [None])[0], iss=(query.get("iss") or [None])[0]
        )

    async def callback(self) -> AuthorizationCodeResult:
        if self.result is None:
            raise RuntimeError("the callback came before the redirect")
        result, self.result = self.result, None
        return result
