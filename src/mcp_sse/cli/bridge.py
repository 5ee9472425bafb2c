"""``mcp-sse connect URL``: a remote MCP server for a host that only speaks stdio.

JSON-RPC lines from stdin go through our client transport (detection, reconnection, resumption,
re-initialization); what comes back is written to stdout, one message per line. So a desktop host
gets a connection that survives network drops without knowing there is a network.

A server that speaks only the stateless 2026-07-28 era refuses the host's ``initialize``. Then the
host's session is served by the bridge of the eras that ``proxy`` uses
(``upstream/stateless_remote.py``): the handshake is answered from ``server/discover``, change
notifications come from a listen stream, and the server's questions are asked in the host's era.
"""

from __future__ import annotations

import logging
import sys
from typing import Any, BinaryIO, Literal

import anyio
import httpx2
import orjson
from mcp.shared.message import SessionMessage
from mcp_types import jsonrpc_message_adapter

from mcp_sse.cli.login import LoginOptions, auth_for
from mcp_sse.client.connect import Transport, connect
from mcp_sse.client.policy import ReconnectPolicy
from mcp_sse.core.session import Inbound, Outbound
from mcp_sse.upstream.remote import speaks_only_stateless
from mcp_sse.upstream.stateless_remote import StatelessHTTPUpstream
from mcp_sse.wire.jsonrpc import classify

UpstreamEra = Literal["auto", "sessions", "stateless"]

logger = logging.getLogger(__name__)


async def bridge(
    url: str,
    headers: dict[str, str],
    transport: Transport,
    policy: ReconnectPolicy,
    login: LoginOptions | None = None,
    upstream_era: UpstreamEra = "auto",
) -> None:
    stdin = anyio.wrap_file(sys.stdin.buffer)
    stdout = sys.stdout.buffer
    auth = await auth_for(url, headers, login)  # logins and their messages go to stderr: stdout is the protocol
    if transport != "sse" and await _stateless_only(url, headers, auth, upstream_era):
        logger.info("%s speaks only the stateless era: bridging this session to it", url)
        upstream = StatelessHTTPUpstream(url, headers=headers, auth=auth)
        await upstream.serve_session(StdioSession(stdin, stdout))
        return
    async with connect(url, headers=headers, transport=transport, policy=policy, auth=auth) as (read, write):
        async with anyio.create_task_group() as tg:

            async def to_stdout() -> None:
                async for item in read:
                    if isinstance(item, Exception):
                        logger.warning("from %s: %s", url, item)
                        continue
                    stdout.write(item.message.model_dump_json(by_alias=True, exclude_unset=True).encode() + b"\n")
                    stdout.flush()

            tg.start_soon(to_stdout)
            async with write:
                async for line in stdin:
                    if not line.strip():
                        continue
                    try:
                        message = jsonrpc_message_adapter.validate_json(line, by_name=False)
                    except ValueError as exc:
                        logger.warning("ignoring a stdin line that is not a JSON-RPC message: %s", exc)
                        continue
                    await write.send(SessionMessage(message))
            # stdin closed: the host is done. Let what is in flight finish delivering, then leave.
            tg.cancel_scope.cancel()


async def _stateless_only(url: str, headers: dict[str, str], auth: httpx2.Auth | None, era: UpstreamEra) -> bool:
    """Whether the host's session must be bridged to the stateless era: as told, else asked once."""
    if era != "auto":
        return era == "stateless"
    async with httpx2.AsyncClient(headers=headers, auth=auth, timeout=30, follow_redirects=False) as http:
        return bool(await speaks_only_stateless(url, http))


class StdioSession:
    """The host's side of a bridged session: JSON-RPC lines in on stdin, out on stdout."""

    id = "stdio"
    principal = None

    def __init__(self, stdin: Any, stdout: BinaryIO) -> None:
        self.stdin = stdin  # anyio's wrapped file
        self.stdout = stdout

    async def receive(self) -> Inbound:
        while line := await self.stdin.readline():
            if not line.strip():
                continue
            try:
                return Inbound(classify(orjson.loads(line)), {})
            except ValueError as exc:  # not JSON, or not JSON-RPC (FramingError)
                logger.warning("ignoring a stdin line that is not a JSON-RPC message: %s", exc)
        raise anyio.EndOfStream  # the host closed stdin: it is done

    async def emit(self, out: Outbound) -> None:
        self.stdout.write(out.payload + b"\n")
        self.stdout.flush()
