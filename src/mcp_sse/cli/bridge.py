"""``mcp-sse connect URL``: a remote MCP server for a host that only speaks stdio.

JSON-RPC lines from stdin go through our client transport (detection, reconnection, resumption,
re-initialization); what comes back is written to stdout, one message per line. So a desktop host
gets a connection that survives network drops without knowing there is a network.
"""

from __future__ import annotations

import logging
import sys

import anyio
from mcp.shared.message import SessionMessage
from mcp_types import jsonrpc_message_adapter

from mcp_sse.cli.login import LoginOptions, auth_for
from mcp_sse.client.connect import Transport, connect
from mcp_sse.client.policy import ReconnectPolicy

logger = logging.getLogger(__name__)


async def bridge(
    url: str, headers: dict[str, str], transport: Transport, policy: ReconnectPolicy, login: LoginOptions | None = None
) -> None:
    stdin = anyio.wrap_file(sys.stdin.buffer)
    stdout = sys.stdout.buffer
    auth = await auth_for(url, headers, login)  # logins and their messages go to stderr: stdout is the protocol
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
