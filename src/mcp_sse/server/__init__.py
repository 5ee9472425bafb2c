"""The ASGI edge: security, routing, and writing SSE. I/O lives here; protocol decisions do not."""

from mcp_sse.server.app import McpApp, create_app

__all__ = ["McpApp", "create_app"]
