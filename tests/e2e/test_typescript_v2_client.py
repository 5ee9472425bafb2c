"""The official TypeScript SDK v2 client (``@modelcontextprotocol/client``, which speaks 2026-07-28
and makes sessions opt-in) against every face of the server: an SDK server hosted in process, the
gateway in front of a stdio server, and ``proxy`` bridging it to a server that speaks only the
stateless era. It runs as a user's program would (``tests/conformance/v2_client.mjs``)."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import orjson
import pytest

from tests.crash import NODE
from tests.servers import ROOT, mcp_sse

V2_CLIENT = ROOT / "tests" / "conformance" / "v2_client.mjs"


@pytest.fixture(scope="module")
def hosted() -> Iterator[str]:
    with mcp_sse("serve", "--port", "0", "--event-store", "memory", "--app", "tests.servers:build_test_server") as url:
        yield url


@pytest.fixture(scope="module")
def gateway() -> Iterator[str]:
    command = ("--", sys.executable, "tests/stdio_server.py")
    with mcp_sse("serve", "--port", "0", "--event-store", "memory", *command) as url:
        yield url


@pytest.fixture(scope="module")
def bridge() -> Iterator[str]:
    """``proxy`` in front of a server that answers only 2026-07-28 requests."""
    modern = ("serve", "--port", "0", "--modern-only", "--app", "tests.servers:build_test_server")
    with mcp_sse(*modern) as upstream, mcp_sse("proxy", "--port", "0", "--event-store", "memory", upstream) as url:
        yield url


def run_v2_client(url: str, mode: str, transport: str = "streamable", changer: str = "") -> dict[str, Any]:
    assert NODE.exists(), "run ./run test: it installs the Node peers"
    if transport == "sse":
        url = url.rsplit("/mcp", 1)[0] + "/sse"
    done = subprocess.run(
        [str(NODE), str(V2_CLIENT), url, mode, transport, changer],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    steps: dict[str, Any] = {}
    for line in done.stdout.splitlines():
        steps.update(orjson.loads(line))
    return steps


def assert_the_calls_went_through(steps: dict[str, Any]) -> None:
    assert {"count", "ask_user", "echo"} <= set(steps["tools"])
    assert steps["count"] == "counted to 5"
    assert steps["progress"] == [1, 2, 3, 4, 5], "every progress notification, once, in order"
    assert steps["echo"] == "bye"


def test_the_stateless_era_against_a_hosted_sdk_server(hosted: str) -> None:
    steps = run_v2_client(hosted, "auto")
    assert steps["version"] == "2026-07-28"
    assert_the_calls_went_through(steps)


@pytest.mark.parametrize("mode", ["auto", "legacy"])
def test_both_eras_in_front_of_a_stdio_server(gateway: str, mode: str) -> None:
    """The stdio child speaks 2025-11-25; the gateway speaks the client's era in front of it: its
    elicitation comes to the 2026-07-28 client as the era's multi-round-trip answer."""
    steps = run_v2_client(gateway, mode, changer="announce")
    assert steps["version"] == ("2026-07-28" if mode == "auto" else "2025-11-25")
    assert_the_calls_went_through(steps)
    assert steps["ask_user"] == "accept: Ada"
    if mode == "auto":
        assert steps["listen"] == {"toolsListChanged": True}
        assert steps["changes"] >= 1, "the child's list change reached the listen stream"
        assert steps["closed"] == "local"


def test_http_sse_in_front_of_a_stdio_server(gateway: str) -> None:
    steps = run_v2_client(gateway, "legacy", "sse")
    assert steps["version"] == "2025-11-25"
    assert_the_calls_went_through(steps)
    assert steps["ask_user"] == "accept: Ada"


@pytest.mark.parametrize(("mode", "transport"), [("auto", "streamable"), ("legacy", "streamable"), ("legacy", "sse")])
def test_every_era_through_the_proxy_to_a_stateless_only_server(bridge: str, mode: str, transport: str) -> None:
    steps = run_v2_client(bridge, mode, transport)
    assert steps["version"] == ("2026-07-28" if mode == "auto" else "2025-11-25")
    assert_the_calls_went_through(steps)
