"""The client under test for the conformance suite's client scenarios, as an application uses us:
``mcp_sse.client.connect`` under the SDK's ``ClientSession``, with the SDK's OAuth providers as the
``auth`` of our HTTP client for the ``auth/*`` scenarios.

The suite runs ``session_client.py URL`` with the scenario in ``MCP_CONFORMANCE_SCENARIO`` and, for
the scenarios that hand the client credentials, JSON in ``MCP_CONFORMANCE_CONTEXT``. Exit 0 means the
client did its part; the suite judges what reached its server.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from pathlib import Path
from typing import Any

import anyio
import httpx2
import mcp_types as types
from mcp import Client, ClientSession
from mcp.client.auth import OAuthClientProvider
from mcp.client.auth.extensions.client_credentials import (
    ClientCredentialsOAuthProvider,
    PrivateKeyJWTOAuthProvider,
    SignedJWTParameters,
)
from mcp.shared.auth import OAuthClientInformationFull, OAuthClientMetadata
from pydantic import AnyUrl

from mcp_sse.client import connect

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from tests.oauth import HeadlessBrowser, MemoryTokens

logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(name)s %(levelname)s %(message)s")
log = logging.getLogger("conformance-client")

REDIRECT_URI = "http://localhost:3000/callback"
MODERN_SCENARIOS = {"request-metadata", "http-standard-headers", "http-custom-headers", "http-invalid-tool-headers"}


def context() -> dict[str, Any]:
    raw = os.environ.get("MCP_CONFORMANCE_CONTEXT")
    return json.loads(raw) if raw else {}


async def accept_with_defaults(_context: Any, params: types.ElicitRequestParams) -> types.ElicitResult:
    """Accept an elicitation, filling each field the form gives a default for (SEP-1034)."""
    content: dict[str, Any] = {}
    if isinstance(params, types.ElicitRequestFormParams):
        for name, schema in params.requested_schema.get("properties", {}).items():
            if isinstance(schema, dict) and "default" in schema:
                content[name] = schema["default"]
    return types.ElicitResult(action="accept", content=content)


async def session_run(url: str, tool: str | None = None, **args: Any) -> None:
    """The 2025-era scenarios, through ``ClientSession``: initialize, list the tools, call ``tool``."""
    async with (
        connect(url) as (read, write),
        ClientSession(read, write, elicitation_callback=accept_with_defaults) as session,
    ):
        await session.initialize()
        tools = (await session.list_tools()).tools
        log.info("tools: %s", [t.name for t in tools])
        if tool is not None:
            result = await session.call_tool(tool, args)
            log.info("%s answered: error=%s", tool, result.is_error)


async def client_run(url: str, auth: httpx2.Auth | None = None) -> None:
    """``mcp.Client`` over our transport: it probes for the 2026-07-28 era and speaks it statelessly,
    or falls back to a session. Calls what the scenario's context lists, else every tool kept."""
    async with Client(connect(url, auth=auth), elicitation_callback=accept_with_defaults) as client:
        tools = (await client.list_tools()).tools
        calls = context().get("toolCalls") or [{"name": tool.name, "arguments": {}} for tool in tools]
        for call in calls:
            try:
                result = await client.call_tool(call["name"], call.get("arguments") or {})
                log.info("%s answered: error=%s", call["name"], result.is_error)
            except Exception as exc:  # the scenario judges what the server saw, not this answer
                log.info("%s failed: %r", call["name"], exc)


def oauth_provider(url: str, scenario: str) -> httpx2.Auth:
    facts = context()
    storage = MemoryTokens()
    if scenario == "auth/client-credentials-basic":
        return ClientCredentialsOAuthProvider(url, storage, facts["client_id"], facts["client_secret"])
    if scenario == "auth/client-credentials-jwt":
        jwt = SignedJWTParameters(
            issuer=facts["client_id"],
            subject=facts["client_id"],
            signing_algorithm=facts.get("signing_algorithm", "ES256"),
            signing_key=facts["private_key_pem"],
        )
        return PrivateKeyJWTOAuthProvider(url, storage, facts["client_id"], jwt.create_assertion_provider())
    if facts.get("client_id"):  # pre-registered: no dynamic registration
        storage.client_info = OAuthClientInformationFull(
            client_id=facts["client_id"],
            client_secret=facts.get("client_secret"),
            redirect_uris=[AnyUrl(REDIRECT_URI)],
            token_endpoint_auth_method="client_secret_basic" if facts.get("client_secret") else "none",
        )
    browser = HeadlessBrowser()
    return OAuthClientProvider(
        url,
        OAuthClientMetadata(
            client_name="mcp-sse conformance client",
            redirect_uris=[AnyUrl(REDIRECT_URI)],
            grant_types=["authorization_code", "refresh_token"],
            response_types=["code"],
        ),
        storage,
        redirect_handler=browser.open,
        callback_handler=browser.callback,
        client_metadata_url="https://conformance-test.local/client-metadata.json",
    )


async def main(url: str, scenario: str) -> None:
    if scenario == "tools_call":
        await session_run(url, tool="add_numbers", a=5, b=3)
    elif scenario == "sse-retry":
        await session_run(url, tool="test_reconnection")
    elif scenario == "elicitation-sep1034-client-defaults":
        await session_run(url, tool="test_client_elicitation_defaults")
    elif scenario in MODERN_SCENARIOS:
        await client_run(url)
    elif scenario.startswith("auth/"):
        await client_run(url, auth=oauth_provider(url, scenario))
    else:
        await session_run(url)


if __name__ == "__main__":
    anyio.run(main, sys.argv[-1], os.environ.get("MCP_CONFORMANCE_SCENARIO", "initialize"))
