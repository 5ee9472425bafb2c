"""The ``mcp-sse`` command."""
