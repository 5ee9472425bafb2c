#!/usr/bin/env bash
# The client under test for the conformance suite's client scenarios: our `mcp-sse` command.
# The suite appends the server URL and names the scenario in MCP_CONFORMANCE_SCENARIO.
set -euo pipefail
url="${*: -1}"
cli=("${MCP_SSE_PYTHON:-python3}" -m mcp_sse)
case "${MCP_CONFORMANCE_SCENARIO:-}" in
    initialize) exec "${cli[@]}" tools "$url" ;;
    tools_call) exec "${cli[@]}" call "$url" add_numbers --arg a=2 --arg b=3 ;;
    sse-retry) exec "${cli[@]}" call "$url" test_reconnection ;;
    *) echo "no client behaviour for scenario ${MCP_CONFORMANCE_SCENARIO:-?}" >&2; exit 3 ;;
esac
