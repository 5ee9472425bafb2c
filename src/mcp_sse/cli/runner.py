"""Run an ASGI app on uvicorn, on a socket we bind ourselves so ``--port 0`` can print the real URL."""

from __future__ import annotations

import importlib.util
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

import anyio
import uvicorn


def bind_socket(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    # Inherited by every accepted connection. Without it a response written in two parts (headers,
    # then body) waits for the client's delayed ACK on a kept-alive connection: 40 ms per call.
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.bind((host.strip("[]"), port))
    sock.set_inheritable(True)
    return sock


LISTEN_FD_ENV = "MCP_SSE_WORKER_LISTEN_FD"
"""Set in a worker's environment: the listening socket its parent bound, inherited by every worker."""
READY_FD_ENV = "MCP_SSE_WORKER_READY_FD"
"""Set in a worker's environment: where it writes one byte once it accepts connections."""


def is_worker() -> bool:
    return LISTEN_FD_ENV in os.environ


def url_for(sock: socket.socket, path: str) -> str:
    host, port = sock.getsockname()[:2]
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}{path}"


def serve(
    app: Any,
    host: str,
    port: int,
    *,
    on_ready: Callable[[socket.socket], None],
    log_level: str = "warning",
    log_config: Any = None,
) -> None:
    """Serve until interrupted; ``on_ready`` runs once the server accepts connections."""
    loop, parser = implementations()
    sockets: list[socket.socket]
    if is_worker():
        # One of --workers N: the public socket is the parent's; peers reach this worker on a
        # private loopback port of its own, for the sessions it owns.
        sock = socket.socket(fileno=int(os.environ[LISTEN_FD_ENV]))
        private = bind_socket(str(sock.getsockname()[0]), 0)  # the public socket's address, a port of its own
        sockets = [sock, private]
        ready_fd = int(os.environ[READY_FD_ENV])

        def worker_ready(_: socket.socket) -> None:
            os.write(ready_fd, b"1")
            os.close(ready_fd)

        on_ready = worker_ready
    else:
        sock = bind_socket(host, port)
        private = sock
        sockets = [sock]
    listening_at = getattr(app, "listening_at", None)
    if listening_at is not None:  # a cluster node tells its peers where to reach it
        if is_worker():
            listening_at(url_for(private, ""), own_port=True)
        else:
            listening_at(url_for(private, ""))
    config = uvicorn.Config(
        app,
        lifespan="on",
        log_level=log_level,
        log_config=log_config,  # None: uvicorn's loggers go through ours (one format for everything)
        timeout_graceful_shutdown=3,
        loop="auto",
        http=parser,
        # Forwarding headers are believed only from --trusted-proxy peers, by the app itself
        # (server/forwarded.py); uvicorn's own reading of them (from 127.0.0.1 by default) is off.
        proxy_headers=False,
    )
    server = uvicorn.Server(config)

    failed: list[int | str | None] = []

    async def main() -> None:
        async with anyio.create_task_group() as tg:

            async def announce() -> None:
                while not server.started:
                    if server.should_exit:
                        return
                    await anyio.sleep(0.02)
                on_ready(sock)

            async def tell_app_on_shutdown() -> None:
                # uvicorn has no shutdown hook before it waits for open connections; long-lived
                # streams that should end deliberately (listen) must hear about it now.
                while not server.should_exit:  # noqa: ASYNC110 (uvicorn offers only this flag)
                    await anyio.sleep(0.1)
                begin = getattr(app, "begin_shutdown", None)
                if begin is not None:
                    begin()

            tg.start_soon(announce)
            tg.start_soon(tell_app_on_shutdown)
            try:
                await server.serve(sockets=sockets)
            except SystemExit as exit_:  # uvicorn's way to say the app's startup failed (it said why)
                failed.append(exit_.code)
            tg.cancel_scope.cancel()

    # uvicorn shuts down gracefully on SIGTERM, then raises the signal again once its own handler is
    # gone. Noted here instead of killing the process on the spot, it ends in SystemExit out of this
    # function, so the caller's cleanup (``with``/``finally``) still runs.
    terminated: list[int] = []
    previous = signal.signal(signal.SIGTERM, lambda signum, frame: terminated.append(signum))
    try:
        # uvicorn's loop="auto" only applies when uvicorn makes the loop; here anyio does, so ask
        # it for uvloop when installed.
        anyio.run(main, backend_options={"use_uvloop": loop == "uvloop"})
    finally:
        signal.signal(signal.SIGTERM, previous)
    if failed:
        sys.exit(failed[0])
    if terminated:
        sys.exit(128 + terminated[0])


def serve_workers(
    workers: int,
    host: str,
    port: int,
    *,
    on_ready: Callable[[socket.socket], None],
    command: list[str] | None = None,
) -> None:
    """Run ``workers`` processes of this very command on one listening socket (the kernel spreads
    connections between them), each a node of the cluster (``--redis``); announce once all accept.
    SIGTERM and SIGINT go to every worker, and this process ends when they have."""
    sock = bind_socket(host, port)
    sock.listen(2048)
    read_end, write_end = os.pipe()
    env = {**os.environ, LISTEN_FD_ENV: str(sock.fileno()), READY_FD_ENV: str(write_end)}
    argv = command or [sys.executable, "-m", "mcp_sse", *sys.argv[1:]]  # by default, this very command
    children = [subprocess.Popen(argv, env=env, pass_fds=[sock.fileno(), write_end]) for _ in range(workers)]
    os.close(write_end)

    def stop(signum: int, frame: object) -> None:
        for child in children:
            if child.poll() is None:
                child.send_signal(signum)

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        ready = 0
        deadline = time.monotonic() + 120
        while ready < workers and time.monotonic() < deadline:
            got = os.read(read_end, workers - ready)
            if not got:
                break  # every worker exited before it was ready
            ready += len(got)
        if ready == workers:
            on_ready(sock)
        codes = [child.wait() for child in children]
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        os.close(read_end)
        sock.close()
    failed = next((code for code in codes if code not in (0, 128 + signal.SIGTERM, -signal.SIGTERM)), None)
    if failed is not None:
        sys.exit(failed)
    if any(code in (128 + signal.SIGTERM, -signal.SIGTERM) for code in codes):
        sys.exit(128 + signal.SIGTERM)


def implementations() -> tuple[str, str]:
    """The event loop and the HTTP parser ``serve`` runs on: uvloop and httptools where they are
    installed (a default dependency wherever they have wheels), else the standard library's loop and
    uvicorn's pure-Python h11."""
    loop = "uvloop" if _installed("uvloop") else "asyncio"
    parser = "httptools" if _installed("httptools") else "h11"
    return loop, parser


def _installed(name: str) -> bool:
    return importlib.util.find_spec(name) is not None
