"""Sans-I/O protocol core: SSE codec, JSON-RPC framing, era rules. No asyncio, no HTTP framework."""
