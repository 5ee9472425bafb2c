"""One request carried to the node that owns its session, its answer streamed back as it comes.

The owning node checks everything again (Host, Origin, the token, the session's principal) as
if the client had come to it: the forwarding node adds only the cluster's token (``HOP_HEADER``,
so the owner serves it itself, never forwarding it on) and the client's address
(``CLIENT_HEADER``, for the owner's logs and per-caller limits). A client that leaves closes the
forwarded response too, which the owner sees as its client leaving.
"""

from __future__ import annotations

import logging
from collections.abc import MutableMapping
from typing import Any

import anyio
import httpx2

from mcp_sse.cluster.placement import Owner

__all__ = ["CLIENT_HEADER", "HOP_HEADER", "Forwarder", "OwnerUnreachable"]

logger = logging.getLogger(__name__)

HOP_HEADER = "x-mcp-sse-hop"
CLIENT_HEADER = "x-mcp-sse-client"
_HOP_BY_HOP = frozenset(
    {
        b"connection",
        b"keep-alive",
        b"transfer-encoding",
        b"te",
        b"trailer",
        b"upgrade",
        b"proxy-connection",
        b"content-length",
        HOP_HEADER.encode(),
        CLIENT_HEADER.encode(),
    }
)

Scope = MutableMapping[str, Any]
Receive = Any
Send = Any


class OwnerUnreachable(Exception):
    """The owner refused the connection: its process is gone."""


class Forwarder:
    def __init__(self) -> None:
        timeout = httpx2.Timeout(10.0, connect=2.0, read=None, write=30.0, pool=10.0)
        limits = httpx2.Limits(max_connections=None, max_keepalive_connections=64)
        self.http = httpx2.AsyncClient(timeout=timeout, limits=limits, follow_redirects=False)

    async def aclose(self) -> None:
        await self.http.aclose()

    async def forward(self, owner: Owner, token: str, scope: Scope, body: bytes, receive: Receive, send: Send) -> None:
        """Send the request to ``owner`` and its answer back; OwnerUnreachable before anything was
        sent back when the owner's process is gone."""
        path = scope.get("raw_path") or scope["path"].encode()
        query = scope.get("query_string") or b""
        url = owner.address.rstrip("/") + path.decode("latin-1") + (f"?{query.decode('latin-1')}" if query else "")
        headers = [(k, v) for k, v in scope["headers"] if k.lower() not in _HOP_BY_HOP]
        headers.append((HOP_HEADER.encode(), token.encode()))
        client = scope.get("client")
        if client:
            headers.append((CLIENT_HEADER.encode(), str(client[0]).encode()))
        request = self.http.build_request(scope["method"], url, headers=headers, content=body)
        try:
            response = await self.http.send(request, stream=True)
        except httpx2.ConnectError as exc:
            raise OwnerUnreachable(str(exc)) from None
        async with anyio.create_task_group() as tg:

            async def watch_client() -> None:
                while (await receive())["type"] != "http.disconnect":
                    pass
                tg.cancel_scope.cancel()  # the client left: so does the forwarded request

            tg.start_soon(watch_client)
            try:
                out = [(k.lower(), v) for k, v in response.headers.raw if k.lower() not in _HOP_BY_HOP]
                await send({"type": "http.response.start", "status": response.status_code, "headers": out})
                async for chunk in response.aiter_raw():
                    await send({"type": "http.response.body", "body": chunk, "more_body": True})
                await send({"type": "http.response.body", "body": b"", "more_body": False})
            except (httpx2.HTTPError, OSError) as exc:
                logger.info("a forwarded response from %s broke off: %s", owner.node, exc)
            finally:
                await response.aclose()
                tg.cancel_scope.cancel()
