"""What checking a JWT access token costs, per library: the measurement behind the choice of PyJWT
for ``--jwks-url``/``--jwt-key`` (server/auth.py), which every request of a JWT-protected server
pays. Signature, ``exp``, ``aud`` and ``iss`` checked, as the server checks them.

    .venv/bin/python -m bench.jwt_verify [--tokens 2000] [--repeats 5] [--json out.json]

PyJWT is measured always (a dependency of the official SDK, so of ours); joserfc and Authlib when
they are installed (``pip install joserfc authlib``: they are not dependencies of mcp-sse).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, rsa

AUDIENCE = "https://mcp.example.com/mcp"
ISSUER = "https://as.example.com"


def tokens(key: Any, algorithm: str, count: int) -> list[str]:
    now = int(time.time())
    claims = {"iss": ISSUER, "aud": AUDIENCE, "sub": "alice", "exp": now + 3600, "iat": now, "scope": "mcp"}
    return [jwt.encode({**claims, "jti": str(i)}, key, algorithm) for i in range(count)]


def pyjwt(public: Any, algorithm: str) -> Callable[[str], Any]:
    def verify(token: str) -> Any:
        return jwt.decode(token, public, algorithms=[algorithm], audience=AUDIENCE, issuer=ISSUER)

    return verify


def joserfc_verifier(public: Any, algorithm: str) -> Callable[[str], Any] | None:
    try:
        from joserfc import jwt as jose_jwt
        from joserfc.jwk import ECKey, RSAKey
    except ImportError:
        return None
    key = (RSAKey if algorithm.startswith("RS") else ECKey).import_key(public)
    registry = jose_jwt.JWTClaimsRegistry(
        iss={"essential": True, "value": ISSUER}, aud={"essential": True, "value": AUDIENCE}
    )

    def verify(token: str) -> Any:
        decoded = jose_jwt.decode(token, key, algorithms=[algorithm])
        registry.validate(decoded.claims)
        return decoded.claims

    return verify


def authlib_verifier(public: Any, algorithm: str) -> Callable[[str], Any] | None:
    try:
        from authlib.jose import JsonWebToken
    except ImportError:
        return None
    decoder = JsonWebToken([algorithm])
    options = {"iss": {"essential": True, "value": ISSUER}, "aud": {"essential": True, "value": AUDIENCE}}

    def verify(token: str) -> Any:
        claims = decoder.decode(token, public, claims_options=options)
        claims.validate()
        return claims

    return verify


def measure(verify: Callable[[str], Any], batch: list[str], repeats: int) -> float:
    """Tokens verified per second, the median of ``repeats`` runs."""
    rates = []
    for _ in range(repeats):
        started = time.perf_counter()
        for token in batch:
            verify(token)
        rates.append(len(batch) / (time.perf_counter() - started))
    return statistics.median(rates)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tokens", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    keys = {
        "RS256": rsa.generate_private_key(public_exponent=65537, key_size=2048),
        "ES256": ec.generate_private_key(ec.SECP256R1()),
    }
    results: dict[str, dict[str, float]] = {}
    for algorithm, private in keys.items():
        batch = tokens(private, algorithm, args.tokens)
        public = private.public_key()
        candidates = {
            "pyjwt": pyjwt(public, algorithm),
            "joserfc": joserfc_verifier(public, algorithm),
            "authlib": authlib_verifier(public, algorithm),
        }
        results[algorithm] = {
            name: measure(verify, batch, args.repeats) for name, verify in candidates.items() if verify is not None
        }
    print(f"{'algorithm':<10} {'library':<10} {'tokens/s':>10} {'vs PyJWT':>9}")
    for algorithm, rates in results.items():
        for name, rate in rates.items():
            print(f"{algorithm:<10} {name:<10} {rate:>10.0f} {rate / rates['pyjwt']:>8.2f}x")
    if args.json:
        with open(args.json, "w") as out:
            json.dump(results, out, indent=2)


if __name__ == "__main__":
    main()
