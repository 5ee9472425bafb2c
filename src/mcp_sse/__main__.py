"""``python -m mcp_sse`` runs the ``mcp-sse`` command."""

from mcp_sse.cli.main import main

main()
