"""A low-level ``mcp.server.lowlevel.Server`` (handlers, no decorators), exposed as an object."""

from __future__ import annotations

from typing import Any

import mcp_types as types
from mcp.server.lowlevel.server import Server


async def list_tools(ctx: Any, params: types.PaginatedRequestParams | None) -> types.ListToolsResult:
    schema = {"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]}
    return types.ListToolsResult(tools=[types.Tool(name="progress", input_schema=schema)])


async def call_tool(ctx: Any, params: types.CallToolRequestParams) -> types.CallToolResult:
    n = int((params.arguments or {})["n"])
    for i in range(1, n + 1):
        await ctx.session.report_progress(i, n)
    return types.CallToolResult(content=[types.TextContent(type="text", text=f"sent {n}")])


server = Server("lowlevel test server", on_list_tools=list_tools, on_call_tool=call_tool)
