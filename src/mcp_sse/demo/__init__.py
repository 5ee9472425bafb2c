"""The built-in demo server: what ``mcp-sse demo`` serves."""
