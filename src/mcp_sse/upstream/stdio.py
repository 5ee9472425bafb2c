"""Serve a stdio MCP server process (any language) over HTTP: one child per session, or one shared.

Messages cross as JSON lines parsed once with orjson for routing; no pydantic on this path.

Where each message goes is decided by a pure table (``upstream/routing.py``, unit-tested without a
process): every client request reaches the child under an id (and progress token) of the child's
own, so two clients' ids never collide; a response, progress and cancellation go back to exactly
their request; logs and the child's own requests go to the session whose request is in flight (in
a shared child, never guessed when several are); list changes go to every session. This module only
carries those decisions out: processes, pipes, sessions.

A child that exits answers its in-flight requests with errors; the next message starts a new one,
re-initialized with the session's original initialize, so the session carries on.

When the server checks tokens, a per-session child is told whose session it serves in its
environment (``MCP_SSE_PRINCIPAL``); a shared child serves everyone and is told nobody.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shlex
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import anyio
import orjson
from anyio.abc import Process, TaskGroup
from anyio.streams.buffered import BufferedByteReceiveStream

from mcp_sse.core.session import Outbound
from mcp_sse.logs import fields
from mcp_sse.upstream.base import UpstreamSession
from mcp_sse.upstream.routing import Broadcast, Deliver, Malformed, Refuse, RoutingTable
from mcp_sse.wire.jsonrpc import CONNECTION_CLOSED, Kind, error_message

__all__ = ["PRINCIPAL_ENV", "ChildExited", "SharedStdioUpstream", "StdioCommand", "StdioUpstream", "stdio_command"]

logger = logging.getLogger(__name__)

MAX_LINE = 64 * 1024 * 1024
INIT_TIMEOUT = 60.0


@dataclass(frozen=True)
class StdioCommand:
    """The command that starts the server process, with its environment and working directory."""

    argv: Sequence[str]
    env: Mapping[str, str] = field(default_factory=dict)
    cwd: str | None = None

    def __str__(self) -> str:
        return shlex.join(self.argv)


PRINCIPAL_ENV = "MCP_SSE_PRINCIPAL"
"""The environment variable that names a per-session child's principal (the authenticated caller
whose session it serves), when the server checks tokens. A shared child serves every principal at
once, so it is given none."""


class ChildExited(Exception):
    pass


class Child:
    """One server process: JSON lines in on stdin, out on stdout, stderr into our log."""

    def __init__(
        self, command: StdioCommand, label: str, session_id: str | None = None, principal: str | None = None
    ) -> None:
        self.command = command
        self.label = label
        self.session_id = session_id
        self.principal = principal
        self.process: Process | None = None
        self.exited = anyio.Event()
        self.returncode: int | None = None

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None else None

    async def start(self, task_group: TaskGroup) -> None:
        env = dict(os.environ)
        env.pop(PRINCIPAL_ENV, None)  # never inherited from our own environment
        env.update(self.command.env)
        if self.principal is not None:
            env[PRINCIPAL_ENV] = self.principal
        self.process = await anyio.open_process(list(self.command.argv), env=env, cwd=self.command.cwd)
        task_group.start_soon(self._log_stderr)
        logger.info("%s: started %s (pid %d)", self.label, self.command, self.process.pid)

    async def send(self, obj: Any) -> None:
        if self.process is None or self.process.stdin is None or self.exited.is_set():
            raise ChildExited(self.label)
        try:
            await self.process.stdin.send(orjson.dumps(obj) + b"\n")
        except (anyio.BrokenResourceError, anyio.ClosedResourceError, OSError):
            raise ChildExited(self.label) from None

    async def lines(self) -> AsyncIterator[dict[str, Any]]:
        """Each JSON-RPC message the child writes; ends when its stdout does."""
        assert self.process is not None and self.process.stdout is not None
        reader = BufferedByteReceiveStream(self.process.stdout)
        while True:
            try:
                line = await reader.receive_until(b"\n", MAX_LINE)
            except (anyio.IncompleteRead, anyio.EndOfStream, anyio.BrokenResourceError, anyio.ClosedResourceError):
                break
            if not line.strip():
                continue
            try:
                obj = orjson.loads(line)
            except orjson.JSONDecodeError:
                logger.warning("%s: ignoring a stdout line that is not JSON: %.200r", self.label, line)
                continue
            if isinstance(obj, dict):
                yield obj
        self.returncode = await self.process.wait()
        self.exited.set()
        logger.info("%s: exited with code %s", self.label, self.returncode)

    async def _log_stderr(self) -> None:
        assert self.process is not None and self.process.stderr is not None
        reader = BufferedByteReceiveStream(self.process.stderr)
        while True:
            try:
                line = await reader.receive_until(b"\n", MAX_LINE)
            except (anyio.IncompleteRead, anyio.EndOfStream, anyio.BrokenResourceError, anyio.ClosedResourceError):
                return
            text = line.decode("utf-8", "replace")
            logger.info("%s stderr: %s", self.label, text, extra=fields(session_id=self.session_id, pid=self.pid))

    async def stop(self) -> None:
        if self.process is None or self.exited.is_set():
            return
        with anyio.CancelScope(shield=True):
            if self.process.stdin is not None:
                await self.process.stdin.aclose()
            with anyio.move_on_after(2):
                await self.process.wait()
                return
            self.process.terminate()
            with anyio.move_on_after(2):
                await self.process.wait()
                return
            self.process.kill()


async def _deliver(sessions: Mapping[str, UpstreamSession], route: Deliver) -> None:
    session = sessions.get(route.session)
    if session is not None:
        await session.emit(Outbound(orjson.dumps(route.message), route.kind, route.request_id, route.related))


def _answers_own_request(table: RoutingTable, obj: dict[str, Any]) -> bool:
    return "method" not in obj and obj.get("id") is not None and table.owns(obj["id"])


# --- one child per session -------------------------------------------------------------------


class StdioUpstream:
    """Each session gets its own child, started by its first message and ended with the session.
    A session whose ``warm_start`` is true (a spare the 2026-07-28 front keeps ready) has its child
    started at once, so the process is up when the session's first message comes."""

    spawns_per_session = True

    def __init__(self, command: StdioCommand) -> None:
        self.command = command

    @asynccontextmanager
    async def lifespan(self) -> AsyncIterator[None]:
        yield

    async def serve_session(self, session: UpstreamSession) -> None:
        await _SessionBridge(self.command, session).run()


class _SessionBridge:
    """One session's child: the I/O around its ``RoutingTable`` (which decides where messages go)."""

    def __init__(self, command: StdioCommand, session: UpstreamSession) -> None:
        self.command = command
        self.session = session
        self.sessions = {session.id: session}
        self.table = RoutingTable(shared=False)
        self.table.add_session(session.id)
        self.child: Child | None = None
        self.init_request: dict[str, Any] | None = None
        self.initialized_sent = False
        self._internal: dict[str, anyio.Event] = {}  # our own requests to the child, until answered

    async def run(self) -> None:
        async with anyio.create_task_group() as tg:
            try:
                if getattr(self.session, "warm_start", False):
                    await self._start(tg, replay=False)
                while True:
                    try:
                        inbound = await self.session.receive()
                    except anyio.EndOfStream:
                        break
                    await self._forward(tg, inbound.message.obj)
            finally:
                if self.child is not None:
                    await self.child.stop()
                tg.cancel_scope.cancel()

    async def _forward(self, tg: TaskGroup, obj: dict[str, Any]) -> None:
        method = obj.get("method")
        if method == "initialize":
            self.init_request = obj
        elif method == "notifications/initialized":
            self.initialized_sent = True
        if self.child is None or self.child.exited.is_set():
            await self._start(tg, replay=method != "initialize")
        out = self.table.from_client(self.session.id, obj)
        if out is None:
            return
        assert self.child is not None
        try:
            await self.child.send(out)
        except ChildExited:
            await self._settle_exit(self.child)

    async def _start(self, tg: TaskGroup, *, replay: bool) -> None:
        self.child = Child(self.command, self.child_label, self.session.id, self.session.principal)
        await self.child.start(tg)
        tg.start_soon(self._read, self.child)
        if replay and self.init_request is not None:
            # A restarted child knows nothing: initialize it as the session once did.
            request = self.table.own_request(self.init_request)
            done = self._internal[request["id"]] = anyio.Event()
            await self.child.send(request)
            with anyio.move_on_after(INIT_TIMEOUT):
                await done.wait()
            if self.initialized_sent:
                await self.child.send({"jsonrpc": "2.0", "method": "notifications/initialized"})

    async def _read(self, child: Child) -> None:
        async for obj in child.lines():
            await self._route(child, obj)
        await self._settle_exit(child)

    @property
    def child_label(self) -> str:
        return f"session {self.session.id}"

    async def _route(self, child: Child, obj: dict[str, Any]) -> None:
        if _answers_own_request(self.table, obj):
            self._internal.pop(str(obj["id"]), anyio.Event()).set()
        route = self.table.route(obj)
        if isinstance(route, Deliver):
            await _deliver(self.sessions, route)
        elif isinstance(route, Broadcast):
            await self.session.emit(Outbound(orjson.dumps(route.message), Kind.NOTIFICATION))
        elif isinstance(route, Refuse):
            with contextlib.suppress(ChildExited):
                await child.send(route.message)
        elif isinstance(route, Malformed):
            _log_malformed(child, route)

    async def _settle_exit(self, child: Child) -> None:
        if child is not self.child:
            return
        await child.exited.wait()
        for failed in self.table.child_exited(child.returncode):
            await _deliver(self.sessions, failed)
        for event in self._internal.values():
            event.set()
        self._internal.clear()


# --- one child for every session ---------------------------------------------------------------


class SharedStdioUpstream:
    """One child serves every session, through a shared ``RoutingTable`` (ids and progress tokens
    remapped per session)."""

    def __init__(self, command: StdioCommand) -> None:
        self.command = command
        self.child: Child | None = None
        self.sessions: dict[str, UpstreamSession] = {}
        self.table = RoutingTable(shared=True)
        self.init_request: dict[str, Any] | None = None
        self.init_result: dict[str, Any] | None = None
        self._init_lock = anyio.Lock()
        self._init_done: anyio.Event | None = None
        self._task_group: TaskGroup | None = None

    @asynccontextmanager
    async def lifespan(self) -> AsyncIterator[None]:
        async with anyio.create_task_group() as tg:
            self._task_group = tg
            try:
                yield
            finally:
                if self.child is not None:
                    await self.child.stop()
                tg.cancel_scope.cancel()

    async def serve_session(self, session: UpstreamSession) -> None:
        self.sessions[session.id] = session
        self.table.add_session(session.id)
        try:
            while True:
                try:
                    inbound = await session.receive()
                except anyio.EndOfStream:
                    break
                await self._forward(session, inbound.message.obj)
        finally:
            del self.sessions[session.id]
            abandoned = self.table.remove_session(session.id)
            if abandoned and self.child is not None:
                # Nobody is left to read these answers: the child may stop working on them.
                with contextlib.suppress(ChildExited):
                    for child_id in abandoned:
                        params = {"requestId": child_id, "reason": "the client's session ended"}
                        await self.child.send({"jsonrpc": "2.0", "method": "notifications/cancelled", "params": params})

    async def _ensure_child(self) -> Child:
        async with self._init_lock:
            if self.child is not None and not self.child.exited.is_set():
                return self.child
            assert self._task_group is not None
            self.child = Child(self.command, "shared child")
            await self.child.start(self._task_group)
            self._task_group.start_soon(self._read, self.child)
            if self.init_request is not None:
                await self._initialize_child(self.child, self.init_request)
            return self.child

    async def _initialize_child(self, child: Child, request: dict[str, Any]) -> None:
        self._init_done = anyio.Event()
        await child.send(self.table.own_request(request))
        with anyio.move_on_after(INIT_TIMEOUT):
            await self._init_done.wait()
        await child.send({"jsonrpc": "2.0", "method": "notifications/initialized"})

    async def _forward(self, session: UpstreamSession, obj: dict[str, Any]) -> None:
        method = obj.get("method")
        if method == "initialize":
            await self._answer_initialize(session, obj)
            return
        if method == "notifications/initialized":
            return  # the child was initialized once, by us
        child = await self._ensure_child()
        out = self.table.from_client(session.id, obj)
        if out is None:
            return
        try:
            await child.send(out)
        except ChildExited:
            await self._settle_exit(child)

    async def _answer_initialize(self, session: UpstreamSession, obj: dict[str, Any]) -> None:
        if self.init_result is None:
            self.init_request = obj
            child = await self._ensure_child()
            if self.init_result is None:
                await self._initialize_child(child, obj)
        result = self.init_result
        if result is None:
            payload = orjson.dumps(
                error_message(CONNECTION_CLOSED, "the MCP server process did not initialize", obj["id"])
            )
            await session.emit(Outbound(payload, Kind.ERROR, obj["id"]))
            return
        payload = orjson.dumps({"jsonrpc": "2.0", "id": obj["id"], "result": result})
        await session.emit(Outbound(payload, Kind.RESPONSE, obj["id"]))

    async def _read(self, child: Child) -> None:
        async for obj in child.lines():
            await self._route(child, obj)
        await self._settle_exit(child)

    async def _route(self, child: Child, obj: dict[str, Any]) -> None:
        if _answers_own_request(self.table, obj):
            self.init_result = obj.get("result")
            if self._init_done is not None:
                self._init_done.set()
        route = self.table.route(obj)
        if isinstance(route, Deliver):
            await _deliver(self.sessions, route)
        elif isinstance(route, Broadcast):
            payload = orjson.dumps(route.message)
            for session in list(self.sessions.values()):
                await session.emit(Outbound(payload, Kind.NOTIFICATION))
        elif isinstance(route, Refuse):
            with contextlib.suppress(ChildExited):
                await child.send(route.message)
        elif isinstance(route, Malformed):
            _log_malformed(child, route)

    async def _settle_exit(self, child: Child) -> None:
        if child is not self.child:
            return
        await child.exited.wait()
        for failed in self.table.child_exited(child.returncode):
            await _deliver(self.sessions, failed)
        if self._init_done is not None:
            self._init_done.set()


def _log_malformed(child: Child, route: Malformed) -> None:
    logger.warning("%s: the server wrote something that is not JSON-RPC: %.200r", child.label, route.message)


def stdio_command(argv: Sequence[str], env: Mapping[str, str] | None = None, cwd: str | None = None) -> StdioCommand:
    if not argv:
        raise ValueError("no command given: put the server's command after --")
    return StdioCommand(list(argv), dict(env or {}), cwd)
