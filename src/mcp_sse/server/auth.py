"""Who is calling: bearer tokens checked on every request, as an OAuth 2.1 resource server.

A verifier turns a bearer token into the official SDK's ``AccessToken`` (its ``TokenVerifier``
protocol: ``verify_token(token) -> AccessToken | None``), so verifiers written for the SDK or
FastMCP plug in unchanged. Three come with mcp-sse:

- ``SharedTokenVerifier``: ``--auth-token``, one secret, one principal;
- ``TokenFileVerifier``: ``--token-file``, one ``TOKEN PRINCIPAL [SCOPE...]`` a line, re-read
  when the file changes;
- ``JWTVerifier``: JWT access tokens signed by an authorization server (``--jwks-url`` or
  ``--jwt-key``), with issuer, audience (by default the server's own resource URL, RFC 8707),
  expiry and not-before checked with a small leeway. PyJWT does the cryptography: the SDK already
  depends on it, so it adds nothing to install.

``Authenticator`` applies one to a request and answers the way MCP's authorization says:
401 with ``WWW-Authenticate: Bearer resource_metadata=..., error=..., scope=...`` when the token is
missing or invalid, 403 ``insufficient_scope`` naming the scopes when it lacks one (MCP 2025-11-25,
Authorization: https://modelcontextprotocol.io/specification/2025-11-25/basic/authorization, and
RFC 6750 §3). The protected resource metadata (RFC 9728) says where to get a token.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import time
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

import anyio.to_thread
import jwt
from mcp.server.auth.provider import AccessToken

from mcp_sse.errors import InsufficientScope, Unauthorized
from mcp_sse.upstream.base import PRINCIPAL_KEY

__all__ = [
    "EXPIRY_KEY",
    "PRINCIPAL_KEY",
    "Authenticator",
    "JWTVerifier",
    "SharedTokenVerifier",
    "TokenFileVerifier",
    "TokenVerifier",
    "caller_of",
    "principal_in",
    "principal_of",
    "protected_resource_metadata",
    "token_expiry",
]

logger = logging.getLogger(__name__)


class TokenVerifier(Protocol):
    """The official SDK's verifier protocol (``mcp.server.auth.provider.TokenVerifier``)."""

    async def verify_token(self, token: str) -> AccessToken | None: ...


EXPIRY_KEY = "mcp_sse.token_expires_at"
"""Where the edge puts when the request's token expires (seconds since the epoch), if it does."""


def token_expiry(scope: Any) -> float | None:
    """When the token a request came with expires; None: it does not, or there is none."""
    expires: float | None = scope.get(EXPIRY_KEY)
    return expires


def principal_in(scope: Any) -> str | None:
    """The authenticated principal of a request (None: the server checks no tokens)."""
    principal: str | None = scope.get(PRINCIPAL_KEY)
    return principal


def caller_of(scope: Any) -> str:
    """Whom a request's limits count against: its principal, else its client address."""
    principal = principal_in(scope)
    if principal is not None:
        return "principal:" + principal
    client = scope.get("client")
    return "address:" + (str(client[0]) if client else "unknown")


def principal_of(token: AccessToken) -> str:
    """Whom a token speaks for: its subject, else the client it was issued to."""
    return token.subject or token.client_id


class SharedTokenVerifier:
    """One shared secret (``--auth-token``), compared in constant time."""

    def __init__(self, secret: str, principal: str = "token-holder") -> None:
        self._secret = secret.encode()
        self.principal = principal

    async def verify_token(self, token: str) -> AccessToken | None:
        if not hmac.compare_digest(token.encode(), self._secret):
            return None
        return AccessToken(token=token, client_id=self.principal, scopes=[], subject=self.principal)


class TokenFileVerifier:
    """Tokens from a file, one ``TOKEN PRINCIPAL [SCOPE...]`` a line (``#`` starts a comment),
    read again whenever the file changes, so tokens are added and revoked without a restart.

    Tokens are looked up by their SHA-256, so how much of a guess matched never shows in the time
    an answer takes."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._stamp: tuple[int, int] | None = None
        self._tokens: dict[bytes, tuple[str, list[str]]] = {}
        self._load()

    def _load(self) -> None:
        stat = self.path.stat()
        stamp = (stat.st_mtime_ns, stat.st_size)
        if stamp == self._stamp:
            return
        tokens: dict[bytes, tuple[str, list[str]]] = {}
        for number, line in enumerate(self.path.read_text().splitlines(), 1):
            words = line.split("#", 1)[0].split()
            if not words:
                continue
            if len(words) < 2:
                raise ValueError(f"{self.path}:{number}: expected TOKEN PRINCIPAL [SCOPE...]")
            tokens[_digest(words[0])] = (words[1], words[2:])
        self._tokens, self._stamp = tokens, stamp

    async def verify_token(self, token: str) -> AccessToken | None:
        try:
            self._load()
        except (OSError, ValueError) as exc:
            logger.error("token file %s cannot be read (%s): keeping the tokens read before", self.path, exc)
        found = self._tokens.get(_digest(token))
        if found is None:
            return None
        principal, scopes = found
        return AccessToken(token=token, client_id=principal, scopes=scopes, subject=principal)


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


CHECKED_TOKENS_KEPT = 10_000
"""JWTs remembered as checked (the least recently used forgotten first)."""


class JWTVerifier:
    """JWT access tokens (RFC 9068): signature by a key of the authorization server's JWKS (fetched
    from ``jwks_url``, cached, fetched again for a key id it does not know) or a PEM public key
    file; ``iss``, ``aud``, ``exp`` and ``nbf`` checked with ``leeway`` seconds."""

    def __init__(
        self,
        *,
        audience: str | Sequence[str],
        issuer: str | None = None,
        jwks_url: str | None = None,
        key_file: str | os.PathLike[str] | None = None,
        leeway: float = 30.0,
        algorithms: Sequence[str] = ("RS256", "ES256", "PS256", "EdDSA", "RS384", "ES384", "RS512"),
        refetch_cooldown: float = 30.0,
    ) -> None:
        if (jwks_url is None) == (key_file is None):
            raise ValueError("give exactly one of jwks_url and key_file")
        self.audience = [audience] if isinstance(audience, str) else list(audience)
        self.issuer = issuer
        self.leeway = leeway
        self.algorithms = list(algorithms)
        # An unknown key id fetches the JWKS again, at most once per ``refetch_cooldown`` (so tokens
        # with made-up key ids cannot make us hammer the authorization server).
        self._jwks = (
            jwt.PyJWKClient(jwks_url, cache_keys=True, lifespan=3600, timeout=10, cooldown_duration=refetch_cooldown)
            if jwks_url
            else None
        )
        self._key: Any = Path(key_file).read_bytes() if key_file is not None else None
        # A client sends the same token on every request of its session: checking its signature
        # each time costs more than the rest of a small request (bench/jwt_verify.py: 5-8k checks
        # a second on this machine). A token checked once is remembered until it expires.
        self._checked: OrderedDict[bytes, AccessToken] = OrderedDict()

    async def verify_token(self, token: str) -> AccessToken | None:
        digest = _digest(token)
        known = self._checked.get(digest)
        if known is not None and known.expires_at is not None and known.expires_at > time.time():
            self._checked.move_to_end(digest)
            return known
        checked = await self._check(token)
        if checked is not None:
            self._checked[digest] = checked
            if len(self._checked) > CHECKED_TOKENS_KEPT:
                self._checked.popitem(last=False)
        return checked

    async def _check(self, token: str) -> AccessToken | None:
        try:
            key = self._key
            if self._jwks is not None:
                # PyJWT fetches over blocking HTTP (cached; again for an unknown key id): off the loop.
                key = (await anyio.to_thread.run_sync(self._jwks.get_signing_key_from_jwt, token)).key
            claims = jwt.decode(
                token,
                key,
                algorithms=self.algorithms,
                audience=self.audience,
                issuer=self.issuer,
                leeway=self.leeway,
                options={"require": ["exp", "aud"] + (["iss"] if self.issuer else [])},
            )
        except jwt.PyJWKClientError as exc:
            logger.warning("JWT rejected: no signing key for it (%s)", exc)
            return None
        except jwt.InvalidTokenError as exc:
            logger.info("JWT rejected: %s", exc)
            return None
        scopes = claims.get("scope") or claims.get("scp") or []
        if isinstance(scopes, str):
            scopes = scopes.split()
        audience = claims["aud"]
        granted = [audience] if isinstance(audience, str) else list(audience)
        resource = next((a for a in granted if a in self.audience), None)
        return AccessToken(
            token=token,
            client_id=str(claims.get("client_id") or claims.get("azp") or claims.get("sub") or ""),
            scopes=[str(scope) for scope in scopes],
            expires_at=int(claims["exp"]),
            resource=resource,
            subject=str(claims["sub"]) if claims.get("sub") is not None else None,
        )


def protected_resource_metadata(
    resource: str, authorization_servers: Sequence[str], scopes_supported: Sequence[str]
) -> dict[str, Any]:
    """RFC 9728 §2: the document at ``/.well-known/oauth-protected-resource``."""
    document: dict[str, Any] = {"resource": resource, "bearer_methods_supported": ["header"]}
    if authorization_servers:
        document["authorization_servers"] = list(authorization_servers)
    if scopes_supported:
        document["scopes_supported"] = list(scopes_supported)
    return document


class Authenticator:
    """Applies a verifier to each request and answers 401 or 403 the way MCP clients expect."""

    def __init__(self, verifier: TokenVerifier, required_scopes: Sequence[str] = (), leeway: float = 30.0) -> None:
        self.verifier = verifier
        self.required_scopes = list(required_scopes)
        # Clock difference allowed past a token's expiry: as the JWT verifier allows it, so that an
        # SDK verifier's token and a JWT expire alike, and a client whose clock says "still valid"
        # is not sent to log in again when a refresh would have done.
        self.leeway = leeway

    def challenge(self, metadata_url: str | None, error: str | None = None) -> str:
        """The ``WWW-Authenticate`` value of a 401 or 403 (RFC 6750 §3; RFC 9728 §5.1 adds where the
        protected resource metadata is, when there is an authorization server to name in it)."""
        parts = ['realm="mcp"']
        if metadata_url:
            parts.append(f'resource_metadata="{metadata_url}"')
        if error:
            parts.append(f'error="{error}"')
        if self.required_scopes:
            parts.append(f'scope="{" ".join(self.required_scopes)}"')
        return "Bearer " + ", ".join(parts)

    async def authenticate(self, headers: dict[str, str], metadata_url: str | None) -> AccessToken:
        """The caller's token; Unauthorized (401) or Forbidden (403, insufficient scope) otherwise."""
        scheme, _, credentials = headers.get("authorization", "").partition(" ")
        credentials = credentials.strip()
        if scheme.lower() != "bearer" or not credentials:
            raise Unauthorized(
                "Unauthorized: this server needs an Authorization: Bearer <token> header",
                headers={"WWW-Authenticate": self.challenge(metadata_url)},
            )
        token = await self.verifier.verify_token(credentials)
        if token is None or (token.expires_at is not None and token.expires_at + self.leeway < time.time()):
            raise Unauthorized(
                "Unauthorized: the bearer token is not valid (unknown, expired, or not issued for this server)",
                headers={"WWW-Authenticate": self.challenge(metadata_url, "invalid_token")},
            )
        missing = [scope for scope in self.required_scopes if scope not in token.scopes]
        if missing:
            raise InsufficientScope(
                f"Forbidden: the token lacks the scope(s) {', '.join(missing)}",
                headers={"WWW-Authenticate": self.challenge(metadata_url, "insufficient_scope")},
                data={"requiredScopes": self.required_scopes},
            )
        return token
