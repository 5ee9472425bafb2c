"""``mcp-sse doctor``: green on our server, names the buffering behind a buffering nginx, and reports
what the official SDK's server lacks."""

from __future__ import annotations

import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from mcp_sse import ServerConfig, create_app
from tests.nginx import BUFFERING, STREAMING, nginx_in_front
from tests.servers import ROOT, answer_lifespan, build_test_server, run_server


def doctor(url: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mcp_sse", "doctor", url, "--stream-wait", "3", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
        env={"COLUMNS": "200", "PATH": "/usr/bin:/bin"},
    )


def rows(output: str) -> dict[str, str]:
    """check name -> status, from the printed table."""
    found = {}
    for line in output.splitlines():
        cells = [c.strip() for c in line.strip("│┃ ").split("│")]
        if len(cells) >= 2 and cells[1] in ("OK", "INFO", "WARN", "FAIL"):
            found[cells[0]] = cells[1]
    return found


@pytest.fixture(scope="module")
def ours() -> Iterator[str]:
    with run_server(create_app(build_test_server())) as url:
        yield url


def test_our_server_is_all_green(ours: str) -> None:
    done = doctor(ours + "/mcp", "--idle-seconds", "2")
    assert done.returncode == 0, done.stdout + done.stderr
    found = rows(done.stdout)
    for check in (
        "streamable-http",
        "redirects",
        "priming",
        "resume",
        "buffering",
        "second-get",
        "origin",
        "host",
        "cors",
        "idle",
    ):
        assert found.get(check) == "OK", (check, done.stdout)
    assert "WARN" not in found.values() and "FAIL" not in found.values()


def test_a_buffering_nginx_is_named(ours: str, tmp_path: Path) -> None:
    port = int(ours.rsplit(":", 1)[1])
    with nginx_in_front(port, tmp_path, BUFFERING) as front:
        done = doctor(f"http://127.0.0.1:{front}/mcp")
    assert done.returncode == 1, done.stdout
    found = rows(done.stdout)
    assert found.get("buffering") == "FAIL", done.stdout
    assert "proxy is buffering" in done.stdout and "proxy_buffering off" in done.stdout
    assert "Traceback" not in done.stdout + done.stderr


def test_a_streaming_nginx_passes(ours: str, tmp_path: Path) -> None:
    port = int(ours.rsplit(":", 1)[1])
    with nginx_in_front(port, tmp_path, STREAMING) as front:
        done = doctor(f"http://127.0.0.1:{front}/mcp")
    assert done.returncode == 0, done.stdout
    assert rows(done.stdout).get("buffering") == "OK"


def test_the_sdk_server_is_told_what_it_lacks() -> None:
    with run_server(build_test_server().streamable_http_app()) as url:
        done = doctor(url + "/mcp", "--stream-wait", "17")  # it sends its first keepalive after 15 s
    found = rows(done.stdout)
    assert done.returncode == 0, "lacking is not broken: " + done.stdout
    assert found.get("streamable-http") == "OK", done.stdout
    assert found.get("priming") == "WARN", "no event store: no priming event"
    assert found.get("resume") == "WARN", "no event ids: nothing to resume"
    assert found.get("redirects") == "WARN", "/mcp/ is redirected"
    assert found.get("buffering") == "WARN", "a first event only after 15 s"
    assert found.get("cors") == "INFO", "no CORS at all"
    assert "/sse" in done.stdout and "no 2024-11-05 HTTP+SSE" in done.stdout


# --- the auth report -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def issuer_url() -> Iterator[str]:
    """An authorization server's RFC 8414 metadata on loopback (only the metadata: the doctor reads
    no more of it)."""

    async def metadata_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            await answer_lifespan(receive, send)
            return
        found = scope["path"] == "/.well-known/oauth-authorization-server"
        host = dict(scope["headers"])[b"host"].decode()
        await send({"type": "http.response.start", "status": 200 if found else 404, "headers": []})
        await send({"type": "http.response.body", "body": b'{"issuer": "http://%s"}' % host.encode() if found else b""})

    with run_server(metadata_app) as url:
        yield url


def test_the_auth_setup_is_reported_green_when_it_is_right(issuer_url: str, tmp_path: Path) -> None:
    (tmp_path / "tokens").write_text("doctor-secret doc mcp\n")
    config = ServerConfig(
        token_file=str(tmp_path / "tokens"), authorization_servers=(issuer_url,), required_scopes=("mcp",)
    )
    with run_server(create_app(build_test_server(), config)) as url:
        done = doctor(url + "/mcp", "--bearer", "doctor-secret")
        anonymous = doctor(url + "/mcp")
    found = rows(done.stdout)
    assert done.returncode == 0, done.stdout
    for check in ("auth-metadata", "auth-server", "cors-auth", "streamable-http", "priming", "cors"):
        assert found.get(check) == "OK", (check, done.stdout)
    assert "scope 'mcp'" in done.stdout
    assert "WARN" not in found.values() and "FAIL" not in found.values(), done.stdout
    assert anonymous.returncode == 0, anonymous.stdout
    assert rows(anonymous.stdout).get("auth-metadata") == "OK"
    assert "pass --bearer" in anonymous.stdout and "streamable-http" not in rows(anonymous.stdout)


def test_metadata_naming_another_url_and_a_bare_challenge_are_named(issuer_url: str) -> None:
    wrong = ServerConfig(
        auth_token="t", authorization_servers=(issuer_url,), resource_url="https://elsewhere.example/mcp"
    )
    with run_server(create_app(build_test_server(), wrong)) as url:
        mismatched = doctor(url + "/mcp", "--bearer", "t")
    assert mismatched.returncode == 1
    assert rows(mismatched.stdout).get("auth-metadata") == "FAIL"
    assert "elsewhere.example" in mismatched.stdout and "--resource-url" in mismatched.stdout
    port = free_port()
    other_name = ServerConfig(
        auth_token="t", authorization_servers=(issuer_url,), resource_url=f"http://localhost:{port}/mcp"
    )
    with run_server(create_app(build_test_server(), other_name), port=port) as url:
        renamed = doctor(url + "/mcp", "--bearer", "t")
    assert renamed.returncode == 1
    assert rows(renamed.stdout).get("auth-metadata") == "FAIL"
    assert "is not the URL used" in renamed.stdout, renamed.stdout
    slash = ServerConfig(auth_token="t", authorization_servers=(issuer_url + "/",))
    with run_server(create_app(build_test_server(), slash)) as url:
        misnamed = doctor(url + "/mcp", "--bearer", "t")
    assert rows(misnamed.stdout).get("auth-server") == "FAIL", misnamed.stdout
    assert "calls itself" in misnamed.stdout
    with run_server(create_app(build_test_server(), ServerConfig(auth_token="t"))) as url:
        bare = doctor(url + "/mcp", "--bearer", "t")
    assert bare.returncode == 0, bare.stdout
    assert rows(bare.stdout).get("auth") == "WARN" and "resource_metadata" in bare.stdout


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_a_server_that_needs_no_token_is_said_so(ours: str) -> None:
    done = doctor(ours + "/mcp")
    assert rows(done.stdout).get("auth") == "INFO" and "no token is needed" in done.stdout
