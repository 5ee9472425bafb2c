"""The official MCP conformance suite (npm ``@modelcontextprotocol/conformance``), run as it is.

Server scenarios: the suite's TypeScript-SDK client against ``mcp-sse serve`` hosting a server with
the tools, resources and prompts the suite calls. Client scenarios: the suite's test servers against our
``mcp-sse`` client command, and against ``session_client.py``, our ``connect()`` under the SDK's
``ClientSession`` and ``mcp.Client`` as an application uses it, with the SDK's OAuth providers for the
``auth/*`` scenarios. Two releases run: 0.1.16, and the 0.2.0 pre-release (``conformance-next``) for
the 2026-07-28 scenarios (stateless requests, header rules, per-request ``_meta``, issuer checks).
``./run test`` installs both and the Node 22 they need (``tests/conformance/package.json``).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.cluster_nodes import nodes
from tests.nginx import STREAMING, nginx_in_front
from tests.redis_server import redis_server
from tests.servers import ROOT, mcp_sse

HERE = ROOT / "tests" / "conformance"
NODE = HERE / "node_modules" / ".bin" / "node"
SUITE = HERE / "node_modules" / "@modelcontextprotocol" / "conformance" / "dist" / "index.js"
NEXT = HERE / "node_modules" / "conformance-next" / "dist" / "index.js"
SESSION_CLIENT = f"{sys.executable} {HERE / 'session_client.py'}"

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

# The pre-release's scenarios for what 0.1.16 does not check: the stateless era and session lifecycle.
NEXT_SERVER_SCENARIOS = [
    "server-session-lifecycle",
    "server-stateless",
    "http-header-validation",
    "http-custom-header-server-validation",
    "caching",
    "sep-2164-resource-not-found",
]
# SHOULDs about the hosted SDK server's own content, not the transport: it names itself only in
# server/discover, and the conformance server changes no list while a listen stream is open.
SERVER_CONTENT_WARNINGS = {
    "sep-2575-server-identifies-in-result-meta",
    "sep-2575-server-sends-prompts-list-changed-on-subscription",
    "sep-2575-server-sends-tools-list-changed-on-subscription",
}
WARNING_LINE = re.compile(r"\[([\w-]+)\s*\]\W*(?:\[\d+m)?WARNING")
AUTH_SCENARIOS = [
    "auth/metadata-default",
    "auth/metadata-var1",
    "auth/metadata-var2",
    "auth/metadata-var3",
    "auth/basic-cimd",
    "auth/scope-from-www-authenticate",
    "auth/scope-from-scopes-supported",
    "auth/scope-omitted-when-undefined",
    "auth/scope-step-up",
    "auth/scope-retry-limit",
    "auth/token-endpoint-auth-basic",
    "auth/token-endpoint-auth-post",
    "auth/token-endpoint-auth-none",
    "auth/pre-registration",
    "auth/2025-03-26-oauth-metadata-backcompat",
    "auth/2025-03-26-oauth-endpoint-fallback",
    "auth/resource-mismatch",
    "auth/offline-access-scope",
    "auth/offline-access-not-supported",
    "auth/authorization-server-migration",
    "auth/iss-supported",
    "auth/iss-not-advertised",
    "auth/iss-supported-missing",
    "auth/iss-wrong-issuer",
    "auth/iss-unexpected",
    "auth/iss-normalized",
    "auth/metadata-issuer-mismatch",
    "auth/client-credentials-jwt",
    "auth/client-credentials-basic",
]
SESSION_CLIENT_SCENARIOS = [
    "initialize",
    "tools_call",
    "sse-retry",
    "elicitation-sep1034-client-defaults",
    "request-metadata",
    "http-standard-headers",
    "http-custom-headers",
    "http-invalid-tool-headers",
    *AUTH_SCENARIOS,
]


def run_suite(*args: str, suite: Path = SUITE) -> subprocess.CompletedProcess[str]:
    assert NODE.exists() and suite.exists(), "the conformance suite is not installed: run ./run test"
    env = {**os.environ, "MCP_SSE_PYTHON": sys.executable, "NO_COLOR": "1"}
    return subprocess.run(
        [str(NODE), str(suite), *args], capture_output=True, text=True, timeout=120, cwd=HERE, env=env
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


@pytest.mark.parametrize("scenario", AUTH_SCENARIOS)
def test_command_line_oauth_scenario(scenario: str) -> None:
    """The OAuth scenarios with ``mcp-sse tools`` and ``call`` as the client (client.sh), a BROWSER
    script in place of the user's browser."""
    done = run_suite("client", "--command", str(HERE / "client.sh"), "--scenario", scenario, suite=NEXT)
    passed, total, failed = verdict(done)
    assert done.returncode == 0 and failed == 0 and passed == total, done.stdout + done.stderr


@pytest.mark.parametrize("scenario", NEXT_SERVER_SCENARIOS)
def test_next_server_scenario(conformance_url: str, scenario: str) -> None:
    done = run_suite("server", "--url", conformance_url, "--scenario", scenario, suite=NEXT)
    passed, total, failed = verdict(done)
    assert failed == 0 and passed == total, done.stdout + done.stderr
    warned = set(WARNING_LINE.findall(done.stdout + done.stderr))
    assert warned <= SERVER_CONTENT_WARNINGS, done.stdout + done.stderr


@pytest.fixture(scope="module")
def conformance_gateway_url() -> Iterator[str]:
    """The same conformance server as a stdio process speaking 2025, behind ``serve --``: the
    stateless era is then ours (``upstream/modern_front.py``), not the SDK server's."""
    command = [sys.executable, str(ROOT / "tests" / "stdio_app.py"), "tests.conformance_server:build"]
    # The suite declares three sets of client capabilities, and allows 600 ms for a first frame:
    # enough processes are started ahead that none of them waits for one to start.
    with mcp_sse("serve", "--port", "0", "--spare-processes", "3", "--", *command) as url:
        yield url.replace("127.0.0.1", "localhost")


@pytest.mark.parametrize("scenario", NEXT_SERVER_SCENARIOS)
def test_next_server_scenario_through_the_gateway(conformance_gateway_url: str, scenario: str) -> None:
    done = run_suite("server", "--url", conformance_gateway_url, "--scenario", scenario, suite=NEXT)
    passed, total, failed = verdict(done)
    assert failed == 0 and passed == total, done.stdout + done.stderr
    warned = set(WARNING_LINE.findall(done.stdout + done.stderr))
    assert warned <= SERVER_CONTENT_WARNINGS, done.stdout + done.stderr


@pytest.mark.parametrize("scenario", SESSION_CLIENT_SCENARIOS)
def test_session_client_scenario(scenario: str) -> None:
    done = run_suite("client", "--command", SESSION_CLIENT, "--scenario", scenario, suite=NEXT)
    passed, total, failed = verdict(done)
    assert done.returncode == 0 and failed == 0 and passed == total, done.stdout + done.stderr


@pytest.fixture(scope="module")
def conformance_cluster_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The conformance server on three nodes of one Redis, behind nginx round robin: a scenario's
    requests land on every node, and the suite must not notice."""
    workdir = tmp_path_factory.mktemp("cluster")
    with redis_server(workdir / "redis") as redis:
        with nodes(workdir, redis.url, ["--app", "tests/conformance_server.py:build"]) as running:
            with nginx_in_front([node.port for node in running], workdir / "nginx", STREAMING) as port:
                yield f"http://localhost:{port}/mcp"


@pytest.mark.parametrize(
    ("suite", "scenario"),
    [*((SUITE, s) for s in SERVER_SCENARIOS), *((NEXT, s) for s in NEXT_SERVER_SCENARIOS)],
    ids=[*SERVER_SCENARIOS, *(f"next-{s}" for s in NEXT_SERVER_SCENARIOS)],
)
def test_server_scenario_across_a_cluster(conformance_cluster_url: str, suite: Path, scenario: str) -> None:
    done = run_suite("server", "--url", conformance_cluster_url, "--scenario", scenario, suite=suite)
    passed, total, failed = verdict(done)
    assert failed == 0 and passed == total, done.stdout + done.stderr
    if suite == SUITE:
        assert "WARNING" not in done.stdout, done.stdout
    else:
        warned = set(WARNING_LINE.findall(done.stdout + done.stderr))
        assert warned <= SERVER_CONTENT_WARNINGS, done.stdout + done.stderr
