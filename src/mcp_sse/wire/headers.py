"""The HTTP header names MCP's transports use, lower-case as HTTP/1.1 servers and httpx hand them over.

One place for both sides (server and client), so no module writes a header name as a literal.
MCP 2025-11-25, Transports: https://modelcontextprotocol.io/specification/2025-11-25/basic/transports
and MCP 2026-07-28, Streamable HTTP:
https://modelcontextprotocol.io/specification/2026-07-28/basic/transports/streamable-http
"""

from __future__ import annotations

__all__ = [
    "ACCEPT_BOTH",
    "LAST_EVENT_ID",
    "MCP_METHOD",
    "MCP_NAME",
    "MCP_PARAM_PREFIX",
    "PROTOCOL_VERSION",
    "SESSION_ID",
]

SESSION_ID = "mcp-session-id"
PROTOCOL_VERSION = "mcp-protocol-version"
LAST_EVENT_ID = "last-event-id"
MCP_METHOD = "mcp-method"
MCP_NAME = "mcp-name"
MCP_PARAM_PREFIX = "mcp-param-"

ACCEPT_BOTH = "application/json, text/event-stream"
"""The ``Accept`` of a POST: a client MUST list both (MCP 2025-11-25, Transports, "Sending Messages to the Server")."""
