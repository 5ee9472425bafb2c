#!/usr/bin/env bash
# The client under test for the conformance suite's client scenarios: our `mcp-sse` command.
# The suite appends the server URL and names the scenario in MCP_CONFORMANCE_SCENARIO; the auth
# scenarios hand their client credentials in MCP_CONFORMANCE_CONTEXT (JSON).
set -euo pipefail
url="${*: -1}"
py="${MCP_SSE_PYTHON:-python3}"
cli=("$py" -m mcp_sse)
here="$(cd "$(dirname "$0")" && pwd)"

context() {  # one field of the scenario's context, empty when absent
    "$py" -c 'import json, os, sys; print(json.loads(os.environ.get("MCP_CONFORMANCE_CONTEXT") or "{}").get(sys.argv[1]) or "")' "$1"
}

case "${MCP_CONFORMANCE_SCENARIO:-}" in
    initialize) exec "${cli[@]}" tools "$url" ;;
    tools_call) exec "${cli[@]}" call "$url" add_numbers --arg a=2 --arg b=3 ;;
    sse-retry) exec "${cli[@]}" call "$url" test_reconnection ;;
    auth/*)
        # A user's fresh machine: no login kept yet, and a browser (tests/browser.py) that follows
        # the authorization server's redirect back to our loopback callback.
        XDG_CONFIG_HOME="$(mktemp -d)"
        export XDG_CONFIG_HOME BROWSER="$here/../browser.py"
        trap 'rm -rf "$XDG_CONFIG_HOME"' EXIT
        options=(--client-metadata-url https://conformance-test.local/client-metadata.json)
        client_id="$(context client_id)"
        case "$MCP_CONFORMANCE_SCENARIO" in
            auth/client-credentials-*)
                options=(--grant client_credentials --client-id "$client_id")
                key="$(context private_key_pem)"
                if [ -n "$key" ]; then
                    printf '%s\n' "$key" > "$XDG_CONFIG_HOME/client-key.pem"
                    algorithm="$(context signing_algorithm)"
                    options+=(--client-key "$XDG_CONFIG_HOME/client-key.pem" --client-key-algorithm "${algorithm:-ES256}")
                else
                    options+=(--client-secret "$(context client_secret)")
                fi
                ;;
            *)
                if [ -n "$client_id" ]; then  # pre-registered: no dynamic registration
                    options+=(--client-id "$client_id")
                    secret="$(context client_secret)"
                    if [ -n "$secret" ]; then options+=(--client-secret "$secret"); fi
                fi
                ;;
        esac
        # List the tools, then call each in its own process: every one after the first reuses the
        # stored login (and a call that needs more scope steps up).
        names="$("${cli[@]}" tools "$url" --json "${options[@]}" | "$py" -c 'import json, sys; print("\n".join(t["name"] for t in json.load(sys.stdin)["tools"]))')"
        for name in $names; do
            "${cli[@]}" call "$url" "$name" "${options[@]}" || true  # the suite judges what its server saw
        done
        ;;
    *) echo "no client behaviour for scenario ${MCP_CONFORMANCE_SCENARIO:-?}" >&2; exit 3 ;;
esac
