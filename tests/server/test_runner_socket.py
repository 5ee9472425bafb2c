"""The socket the CLI binds for uvicorn (``mcp-sse serve``, ``proxy``, ``demo``), and the event loop and
HTTP parser it runs on."""

from __future__ import annotations

import socket

import pytest

from mcp_sse.cli import runner
from mcp_sse.cli.runner import bind_socket


def test_accepted_connections_send_small_writes_at_once() -> None:
    # Without TCP_NODELAY (inherited by accepted sockets on Linux), a response written as headers
    # then body waits for the client's delayed ACK on a kept-alive connection: 40 ms a call.
    sock = bind_socket("127.0.0.1", 0)
    try:
        sock.listen()
        with socket.create_connection(sock.getsockname()[:2]):
            accepted, _ = sock.accept()
            with accepted:
                assert accepted.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0
    finally:
        sock.close()


def test_the_fast_loop_and_parser_are_picked_when_installed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(runner, "_installed", lambda name: True)
    assert runner.implementations() == ("uvloop", "httptools")


def test_without_them_the_stdlib_loop_and_h11_run(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(runner, "_installed", lambda name: False)
    assert runner.implementations() == ("asyncio", "h11")


@pytest.mark.parametrize(
    ("installed", "shown"), [(True, "uvloop event loop, httptools parser"), (False, "asyncio event loop, h11 parser")]
)
def test_the_start_line_says_which_loop_and_parser_run(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], installed: bool, shown: str
) -> None:
    from mcp_sse.cli.main import _announce

    monkeypatch.setattr(runner, "_installed", lambda name: installed)
    sock = bind_socket("127.0.0.1", 0)
    try:
        _announce("/mcp", "mcp-sse serving app.py:mcp")(sock)
    finally:
        sock.close()
    start = capsys.readouterr().out.splitlines()[0]
    assert start == f"mcp-sse serving app.py:mcp listening ({shown})"
