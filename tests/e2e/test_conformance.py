"""The official MCP conformance suite (npm ``@modelcontextprotocol/conformance``), run as it is.

Server scenarios: the suite's TypeScript-SDK client against ``mcp-sse serve`` hosting a server with
the tools, resources and prompts the suite calls. Client scenarios: the suite's test servers against our
``mcp-sse`` client command. ``./run test`` installs the suite and the Node 22 it needs
(``tests/conformance/package.json``).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator

import pytest

from tests.servers import ROOT, mcp_sse

HERE = ROOT / "tests" / "conformance"
NODE = HERE / "node_modules" / ".bin" / "node"
SUITE = HERE / "node_modules" / "@modelcontextprotocol" / "conformance" / "dist" / "index.js"

SERVER_SCENARIOS = [
    "server-initialize",
    "ping",
    "completion-complete",
    "tools-list",
    "tools-call-simple-text",
    "tools-call-image",
    "tools-call-audio",
    "tools-call-embedded-resource",
    "tools-call-mixed-content",
    "tools-call-with-logging",
    "tools-call-with-progress",
    "tools-call-sampling",
    "tools-call-elicitation",
    "tools-call-error",
    "json-schema-2020-12",
    "elicitation-sep1034-defaults",
    "elicitation-sep1330-enums",
    "logging-set-level",
    "resources-list",
    "resources-read-text",
    "resources-read-binary",
    "resources-templates-read",
    "resources-subscribe",
    "resources-unsubscribe",
    "prompts-list",
    "prompts-get-simple",
    "prompts-get-with-args",
    "prompts-get-embedded-resource",
    "prompts-get-with-image",
    "server-sse-polling",
    "server-sse-multiple-streams",
    "dns-rebinding-protection",
]
CLIENT_SCENARIOS = ["initialize", "tools_call", "sse-retry"]


def run_suite(*args: str) -> subprocess.CompletedProcess[str]:
    assert NODE.exists() and SUITE.exists(), "the conformance suite is not installed: run ./run test"
    env = {**os.environ, "MCP_SSE_PYTHON": sys.executable, "NO_COLOR": "1"}
    return subprocess.run(
        [str(NODE), str(SUITE), *args], capture_output=True, text=True, timeout=120, cwd=HERE, env=env
    )


def verdict(done: subprocess.CompletedProcess[str]) -> tuple[int, int, int]:
    match = re.search(r"Passed: (\d+)/(\d+), (\d+) failed", done.stdout + done.stderr)
    assert match, done.stdout + done.stderr
    return int(match.group(1)), int(match.group(2)), int(match.group(3))


@pytest.fixture(scope="module")
def conformance_url() -> Iterator[str]:
    with mcp_sse("serve", "--app", "tests/conformance_server.py:build", "--port", "0") as url:
        yield url.replace("127.0.0.1", "localhost")  # the suite's DNS-rebinding check wants a local name


@pytest.mark.parametrize("scenario", SERVER_SCENARIOS)
def test_server_scenario(conformance_url: str, scenario: str) -> None:
    done = run_suite("server", "--url", conformance_url, "--scenario", scenario)
    passed, total, failed = verdict(done)
    assert failed == 0 and passed == total, done.stdout
    assert "WARNING" not in done.stdout, done.stdout


@pytest.mark.parametrize("scenario", CLIENT_SCENARIOS)
def test_client_scenario(scenario: str) -> None:
    done = run_suite("client", "--command", str(HERE / "client.sh"), "--scenario", scenario)
    passed, total, failed = verdict(done)
    assert failed == 0 and passed == total, done.stdout + done.stderr
