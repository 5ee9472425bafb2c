"""A small official-SDK server whose tools stream progress and logs, to watch the transport work.

The fuller docs-and-code search demo grows from here; this one already shows the point of the
product: a long call streams its progress, and a dropped connection resumes with nothing lost.
"""

from __future__ import annotations

import anyio
from mcp.server.mcpserver import Context, MCPServer


def build_demo_server() -> MCPServer:
    server = MCPServer("mcp-sse demo", instructions="Tools that stream progress over resumable SSE.")

    @server.tool()
    async def count(to: int = 100, delay_ms: int = 10, ctx: Context | None = None) -> str:
        """Count to ``to``, reporting progress at every step (delay_ms between steps)."""
        assert ctx is not None
        for step in range(1, to + 1):
            await ctx.report_progress(step, to, f"step {step} of {to}")
            if delay_ms:
                await anyio.sleep(delay_ms / 1000)
        return f"counted to {to}"

    @server.tool()
    async def echo(text: str) -> str:
        """Return ``text`` unchanged."""
        return text

    @server.tool()
    async def shout(text: str, ctx: Context | None = None) -> str:
        """Log ``text`` at info level, then return it in capitals."""
        assert ctx is not None
        await ctx.info(f"shouting {text!r}")
        return text.upper()

    return server
