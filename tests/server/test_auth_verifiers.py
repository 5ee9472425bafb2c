"""The bearer-token verifiers and the challenge, with no server: what each accepts and refuses."""

from __future__ import annotations

import time
from pathlib import Path

import anyio
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from mcp_sse.errors import InsufficientScope, Unauthorized
from mcp_sse.server.auth import Authenticator, JWTVerifier, SharedTokenVerifier, TokenFileVerifier, principal_of

pytestmark = pytest.mark.anyio


async def test_a_token_file_maps_tokens_to_principals_and_scopes(tmp_path: Path) -> None:
    path = tmp_path / "tokens"
    path.write_text("# comment\n\nt1 alice read write  # trailing comment\nt2 bob\n")
    verifier = TokenFileVerifier(path)
    alice = await verifier.verify_token("t1")
    assert alice is not None and principal_of(alice) == "alice" and alice.scopes == ["read", "write"]
    bob = await verifier.verify_token("t2")
    assert bob is not None and bob.scopes == []
    assert await verifier.verify_token("t3") is None
    assert await verifier.verify_token("t1 ") is None, "a token is compared whole"


async def test_a_malformed_token_file_is_refused_at_start_and_kept_when_it_breaks_later(tmp_path: Path) -> None:
    path = tmp_path / "tokens"
    path.write_text("lonely-token\n")
    with pytest.raises(ValueError, match=r"tokens:1: expected TOKEN PRINCIPAL"):
        TokenFileVerifier(path)
    path.write_text("t1 alice\n")
    verifier = TokenFileVerifier(path)
    path.write_text("broken\nt1 alice\n")
    assert await verifier.verify_token("t1") is not None, "a broken edit keeps the tokens read before"
    path.unlink()
    assert await verifier.verify_token("t1") is not None, "so does a file gone missing"


async def test_the_challenge_names_the_metadata_the_error_and_the_scopes() -> None:
    authenticator = Authenticator(SharedTokenVerifier("s"), required_scopes=["mcp:tools", "mcp:read"])
    assert authenticator.challenge(None) == 'Bearer realm="mcp", scope="mcp:tools mcp:read"'
    assert authenticator.challenge("https://h/.well-known/oauth-protected-resource/mcp", "invalid_token") == (
        'Bearer realm="mcp", resource_metadata="https://h/.well-known/oauth-protected-resource/mcp", '
        'error="invalid_token", scope="mcp:tools mcp:read"'
    )
    with pytest.raises(Unauthorized):
        await authenticator.authenticate({"authorization": "Bearer nope"}, None)
    with pytest.raises(InsufficientScope) as refused:
        await authenticator.authenticate({"authorization": "Bearer s"}, None)
    assert 'error="insufficient_scope"' in refused.value.headers["WWW-Authenticate"]
    assert refused.value.status == 403


async def test_a_jwt_checked_once_is_remembered_until_it_expires(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    pem = tmp_path / "key.pem"
    pem.write_bytes(
        key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    verifier = JWTVerifier(audience="https://mcp.example.com/mcp", key_file=pem, leeway=0)
    expires = int(time.time()) + 2
    token = jwt.encode({"sub": "alice", "aud": "https://mcp.example.com/mcp", "exp": expires}, key, "ES256")
    decodes: list[str] = []
    real_decode = jwt.decode
    monkeypatch.setattr(jwt, "decode", lambda *args, **kwargs: decodes.append("x") or real_decode(*args, **kwargs))
    first, second = await verifier.verify_token(token), await verifier.verify_token(token)
    assert first is not None and second == first and len(decodes) == 1, "the signature is checked once"
    assert await verifier.verify_token(token[:-3] + "AAA") is None, "a tampered token is checked, and refused"
    await anyio.sleep(expires + 0.1 - time.time())
    assert await verifier.verify_token(token) is None, "past its expiry it is checked again, and refused"
