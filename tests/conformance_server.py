"""A server with the tool names the MCP conformance suite's server scenarios call, for running that
suite against our transport. Only the transport-relevant behaviours are implemented."""

from __future__ import annotations

import anyio
import mcp_types as types
from mcp.server.mcpserver import Context, MCPServer
from pydantic import BaseModel


class Reply(BaseModel):
    response: str


def build() -> MCPServer:
    server = MCPServer("mcp-sse-conformance")

    @server.tool()
    async def test_simple_text() -> str:
        """Plain text."""
        return "This is a simple text response for testing."

    @server.tool()
    async def test_tool_with_logging(ctx: Context | None = None) -> str:
        """Three log messages while running."""
        assert ctx is not None
        for text in ("Tool execution started", "Tool processing data", "Tool execution completed"):
            await ctx.info(text)
            await anyio.sleep(0.05)
        return "Tool with logging executed successfully"

    @server.tool()
    async def test_tool_with_progress(ctx: Context | None = None) -> str:
        """Progress 0, 50, 100 of 100."""
        assert ctx is not None
        for step in (0, 50, 100):
            await ctx.report_progress(step, 100, f"Completed step {step} of 100")
            await anyio.sleep(0.05)
        return "done"

    @server.tool()
    async def test_sampling(prompt: str, ctx: Context | None = None) -> str:
        """Ask the client's model."""
        assert ctx is not None
        result = await ctx.session.create_message(
            [types.SamplingMessage(role="user", content=types.TextContent(type="text", text=prompt))],
            max_tokens=100,
            related_request_id=ctx.request_id,
        )
        text = result.content.text if isinstance(result.content, types.TextContent) else "No response"
        return f"LLM response: {text}"

    @server.tool()
    async def test_elicitation(message: str, ctx: Context | None = None) -> str:
        """Ask the user."""
        assert ctx is not None
        result = await ctx.elicit(message, Reply)
        content = result.data.model_dump_json() if result.action == "accept" and result.data else "{}"
        return f"User response: action={result.action}, content={content}"

    @server.tool()
    async def test_error_handling() -> str:
        """Always fails."""
        raise RuntimeError("This tool intentionally returns an error for testing")

    @server.tool()
    async def test_reconnection(ctx: Context | None = None) -> str:
        """Close our own SSE connection mid-call (SEP-1699), then finish."""
        assert ctx is not None
        await ctx.info("Before disconnect")
        await ctx.close_sse_stream()
        await anyio.sleep(0.2)
        await ctx.info("After reconnect")
        return "Reconnection test completed"

    async def set_level(ctx: object, params: types.SetLevelRequestParams) -> types.EmptyResult:
        return types.EmptyResult()

    server._lowlevel_server.add_request_handler("logging/setLevel", types.SetLevelRequestParams, set_level)
    return server
