"""The socket the CLI binds for uvicorn (``mcp-sse serve``, ``proxy``, ``demo``)."""

from __future__ import annotations

import socket

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
