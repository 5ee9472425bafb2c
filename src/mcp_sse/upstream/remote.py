"""An upstream HTTP MCP server, reached with our own client transport: what ``mcp-sse proxy`` fronts.

Each downstream session gets its own upstream session, opened by its initialize and kept for its
life, so the proxy adds what the upstream lacks (resumable streams, both transports for old clients,
Host/Origin checks) without a new backend session per call (what makes other proxies slow, and
lose whatever state the upstream keeps per session).

The client's own credentials never go upstream (MCP forbids token passthrough: the upstream gets
the headers configured for it). With ``principal_header`` set, each upstream session carries the
authenticated principal of its downstream session in that header, for an upstream that trusts us.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Literal

import anyio
import httpx2
from mcp.shared.message import ServerMessageMetadata, SessionMessage
from mcp_types import JSONRPCError, JSONRPCNotification, JSONRPCRequest, JSONRPCResponse

from mcp_sse.client.connect import Transport, connect
from mcp_sse.client.modern import names_stateless_era
from mcp_sse.client.policy import ReconnectPolicy
from mcp_sse.core.session import Outbound
from mcp_sse.upstream.base import UpstreamSession
from mcp_sse.upstream.stateless_remote import StatelessHTTPUpstream
from mcp_sse.wire import eras
from mcp_sse.wire.headers import SESSION_ID
from mcp_sse.wire.jsonrpc import Kind
from mcp_sse.wire.sdk_models import to_sdk_message

__all__ = ["HTTPUpstream", "UpstreamEra"]

logger = logging.getLogger(__name__)

UpstreamEra = Literal["auto", "sessions", "stateless"]
"""What the upstream speaks: ``auto`` asks it once (``speaks_only_stateless``)."""


class HTTPUpstream:
    def __init__(
        self,
        url: str,
        *,
        headers: dict[str, str] | None = None,
        transport: Transport = "auto",
        policy: ReconnectPolicy | None = None,
        principal_header: str | None = None,
        era: UpstreamEra = "auto",
    ) -> None:
        self.url = url
        self.headers = headers
        self.principal_header = principal_header
        self.transport = transport
        self.policy = policy
        self.era: UpstreamEra = era
        self._era_known = anyio.Lock()
        self._stateless = StatelessHTTPUpstream(url, headers=headers, principal_header=principal_header)

    @asynccontextmanager
    async def lifespan(self) -> AsyncIterator[None]:
        yield

    async def serve_session(self, session: UpstreamSession) -> None:
        if await self._upstream_era() == "stateless":
            await self._stateless.serve_session(session)  # bridged: the upstream has no sessions
            return
        timeout = httpx2.Timeout(10.0, read=None, write=30.0, pool=30.0)
        headers = dict(self.headers or {})
        if self.principal_header is not None and session.principal is not None:
            headers[self.principal_header] = session.principal
        async with httpx2.AsyncClient(headers=headers, timeout=timeout, follow_redirects=False) as http:
            async with connect(self.url, http_client=http, transport=self.transport, policy=self.policy) as (
                read,
                write,
            ):
                async with anyio.create_task_group() as tg:
                    tg.start_soon(self._pump_back, session, read)
                    while True:
                        try:
                            inbound = await session.receive()
                        except anyio.EndOfStream:
                            break
                        message = to_sdk_message(inbound.message.obj)
                        await write.send(SessionMessage(message))
                    tg.cancel_scope.cancel()

    @staticmethod
    async def _pump_back(
        session: UpstreamSession, read: anyio.abc.ObjectReceiveStream[SessionMessage | Exception]
    ) -> None:
        async for item in read:
            if isinstance(item, Exception):
                continue
            message = item.message
            related = item.metadata.related_request_id if isinstance(item.metadata, ServerMessageMetadata) else None
            payload = message.model_dump_json(by_alias=True, exclude_unset=True).encode()
            if isinstance(message, JSONRPCResponse):
                await session.emit(Outbound(payload, Kind.RESPONSE, message.id))
            elif isinstance(message, JSONRPCError):
                await session.emit(Outbound(payload, Kind.ERROR, message.id))
            elif isinstance(message, JSONRPCRequest):
                await session.emit(Outbound(payload, Kind.REQUEST, message.id, related))
            else:
                assert isinstance(message, JSONRPCNotification)
                await session.emit(Outbound(payload, Kind.NOTIFICATION, None, related))

    async def _upstream_era(self) -> UpstreamEra:
        async with self._era_known:
            if self.era == "auto" and self.transport != "sse":
                async with httpx2.AsyncClient(headers=self.headers, timeout=10.0, follow_redirects=False) as http:
                    answer = await speaks_only_stateless(self.url, http)
                if answer is not None:
                    self.era = "stateless" if answer else "sessions"
                    logger.info("the upstream %s speaks %s", self.url, "only 2026-07-28" if answer else "sessions")
        return self.era


async def speaks_only_stateless(url: str, http: httpx2.AsyncClient) -> bool | None:
    """Whether the server at ``url`` refuses the handshake as a server of the stateless era only
    does (MCP 2026-07-28, Versioning: it names its versions in the error); None when it cannot be
    told (the server is unreachable). A session the probe opens is ended at once."""
    initialize = {
        "jsonrpc": "2.0",
        "id": "mcp-sse-probe",
        "method": "initialize",
        "params": {
            "protocolVersion": eras.LATEST_VERSION,
            "capabilities": {},
            "clientInfo": {"name": "mcp-sse", "version": "probe"},
        },
    }
    headers = {"accept": "application/json, text/event-stream", "content-type": "application/json"}
    try:
        async with http.stream("POST", url, json=initialize, headers=headers) as response:
            body = await response.aread() if 400 <= response.status_code < 500 else b""
            session = response.headers.get(SESSION_ID)
        if session is not None:
            await http.delete(url, headers={SESSION_ID: session, "mcp-protocol-version": eras.LATEST_VERSION})
    except httpx2.HTTPError:
        return None
    return 400 <= response.status_code < 500 and names_stateless_era(body)
