"""``mcp-sse connect``, ``call`` and ``tools`` log in with OAuth: a real authorization flow on loopback
(the SDK's authorization server routes, tests/oauth.py), our server in JWT mode, the command as a
user runs it, and a ``BROWSER`` script (tests/browser.py) in place of the user's browser.

First run logs in, the next reuses the stored login with no browser, two processes share one login,
an expired token is refreshed mid-session under an SDK stdio client, a dead refresh says so on
stderr, logout forgets, and API keys go in ``--header`` with ``${ENV}``."""

from __future__ import annotations

import os
import socket
import stat
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import anyio
import pytest
from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client

from mcp_sse import ServerConfig, create_app
from tests.oauth import AuthorizationServer, authorization_server
from tests.servers import ROOT, build_test_server, run_server

pytestmark = pytest.mark.anyio

BROWSER = str(ROOT / "tests" / "browser.py")  # one executable: webbrowser runs BROWSER's entries unsplit


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def deployment(lifetime: int = 3600, **config: object) -> Iterator[tuple[AuthorizationServer, str]]:
    """An authorization server and our JWT resource server that trusts it."""
    port = free_port()
    url = f"http://127.0.0.1:{port}/mcp"
    with authorization_server(lifetime=lifetime) as issuer:
        settings = ServerConfig(
            jwks_url=issuer.jwks_url,
            issuer=issuer.issuer,
            resource_url=url,
            authorization_servers=(issuer.issuer,),
            required_scopes=("mcp:tools",),
            event_store="memory",
            token_leeway=1,
            retry_ms=100,
            **config,  # type: ignore[arg-type]
        )
        with run_server(create_app(build_test_server(), settings), port=port):
            yield issuer, url


class User:
    """One user's machine: a config directory of their own, and a browser whose openings are counted."""

    def __init__(self, home: Path) -> None:
        self.home = home
        self.browser_log = home / "browser.log"
        self.env = {
            **os.environ,
            "XDG_CONFIG_HOME": str(home / "config"),
            "BROWSER": BROWSER,
            "BROWSER_LOG": str(self.browser_log),
            "COLUMNS": "200",
        }

    @property
    def browser_opened(self) -> int:
        return len(self.browser_log.read_text().splitlines()) if self.browser_log.exists() else 0

    def command(self, *args: str) -> list[str]:
        return [sys.executable, "-m", "mcp_sse", *args]

    def run(self, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            self.command(*args), capture_output=True, text=True, timeout=90, cwd=ROOT, env={**self.env, **env}
        )

    def start(self, *args: str) -> subprocess.Popen[str]:
        return subprocess.Popen(
            self.command(*args), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT, env=self.env
        )


@pytest.fixture
def user(tmp_path: Path) -> User:
    return User(tmp_path)


def test_the_first_run_logs_in_and_the_next_reuses_the_login(user: User) -> None:
    with deployment() as (issuer, url):
        first = user.run("tools", url)
        assert first.returncode == 0, first.stderr
        assert "whose_token(" in first.stdout
        assert "log in to" in first.stderr and "logged in" in first.stderr, "the user is told, on stderr"
        second = user.run("call", url, "whose_token")
        assert second.returncode == 0, second.stderr
        assert second.stdout.strip() == "dana mcp:tools"
        assert (user.browser_opened, issuer.authorizations, issuer.registrations) == (1, 1, 1)
        listed = user.run("auth", "list")
        assert url in listed.stdout and "mcp:tools" in listed.stdout and "yes" in listed.stdout, listed.stdout
        stored = list((user.home / "config" / "mcp-sse" / "auth").glob("*.json"))
        assert len(stored) == 1
        assert stat.S_IMODE(stored[0].stat().st_mode) == 0o600, "nobody else reads a token"
        assert stat.S_IMODE(stored[0].parent.stat().st_mode) == 0o700
        forgot = user.run("auth", "logout", url)
        assert forgot.returncode == 0 and not stored[0].exists()
        third = user.run("tools", url)
        assert third.returncode == 0, third.stderr
        assert user.browser_opened == 2, "forgotten: logged in again"
        assert user.run("auth", "logout", "http://nowhere.example/mcp").returncode != 0


def test_two_processes_share_one_login(user: User) -> None:
    with deployment() as (issuer, url):
        both = [user.start("tools", url), user.start("tools", url)]
        outcomes = [process.communicate(timeout=90) for process in both]
    assert [process.returncode for process in both] == [0, 0], outcomes
    assert user.browser_opened == 1, "the second process waited for the first one's login"
    assert issuer.authorizations == 1


async def test_connect_under_an_sdk_stdio_client_refreshes_an_expiring_token_mid_session(user: User) -> None:
    steps: list[float] = []

    async def progress(done: float, total: float | None, message: str | None) -> None:
        steps.append(done)

    with deployment(lifetime=2) as (issuer, url):
        params = StdioServerParameters(command=sys.executable, args=["-m", "mcp_sse", "connect", url], env=user.env)
        async with stdio_client(params) as (read, write), ClientSession(read, write) as session:
            await session.initialize()
            counted = await session.call_tool("count", {"to": 16, "delay_ms": 250}, progress_callback=progress)
            await anyio.sleep(2.5)
            whose = await session.call_tool("whose_token", {})
    assert counted.content[0].text == "counted to 16"  # type: ignore[union-attr]
    assert steps == [float(n) for n in range(1, 17)], "the stream cut at the token's expiry resumed, nothing lost"
    assert whose.content[0].text == "dana mcp:tools"  # type: ignore[union-attr]
    assert issuer.refreshes >= 1 and user.browser_opened == 1, "refreshed, never back to the browser"


def test_a_later_run_refreshes_an_expired_login_without_the_browser(user: User) -> None:
    with deployment(lifetime=5) as (issuer, url):  # long enough for one run, with whole-second expiries
        assert user.run("tools", url).returncode == 0
        anyio.run(anyio.sleep, 5.5)  # the access token expired between the two runs
        again = user.run("call", url, "whose_token")
    assert again.returncode == 0, again.stderr
    assert again.stdout.strip() == "dana mcp:tools"
    assert issuer.refreshes == 1 and user.browser_opened == 1, again.stderr
    assert "log in" not in again.stderr


def test_a_refresh_that_fails_says_so_and_logs_in_again(user: User) -> None:
    with deployment(lifetime=5) as (issuer, url):
        assert user.run("tools", url).returncode == 0
        issuer.refresh_tokens.clear()  # revoked at the authorization server
        anyio.run(anyio.sleep, 5.5)  # and the access token expired
        again = user.run("tools", url)
    assert again.returncode == 0, again.stderr
    assert "no longer works" in again.stderr and f"mcp-sse auth login {url}" in again.stderr, again.stderr
    assert user.browser_opened == 2


def test_scope_asks_for_more_than_the_server_names(user: User) -> None:
    with deployment() as (_, url):
        done = user.run("call", url, "whose_token", "--scope", "mcp:admin")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "dana mcp:tools mcp:admin"


def test_an_api_key_from_the_environment_needs_no_login(user: User, tmp_path: Path) -> None:
    tokens = tmp_path / "tokens"
    tokens.write_text("sk-live-123 robot mcp:tools\n")
    with run_server(create_app(build_test_server(), ServerConfig(token_file=str(tokens)))) as base:
        header = "Authorization: Bearer ${MY_MCP_KEY}"
        done = user.run("call", base + "/mcp", "whose_token", "--header", header, MY_MCP_KEY="sk-live-123")
        unset = user.run("tools", base + "/mcp", "--header", header)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "robot mcp:tools"
    assert user.browser_opened == 0
    assert unset.returncode != 0 and "MY_MCP_KEY is not set" in unset.stderr
