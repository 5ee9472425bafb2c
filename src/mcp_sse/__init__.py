"""mcp-sse: the MCP HTTP transport, server and client, every era on one endpoint.

The public entry points are re-exported here so users write ``from mcp_sse import create_app``.
"""

from mcp_sse.config import ServerConfig
from mcp_sse.server.app import create_app

__all__ = ["ServerConfig", "create_app"]
__version__ = "0.1.0"
