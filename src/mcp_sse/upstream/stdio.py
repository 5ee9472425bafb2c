"""Serve a stdio MCP server process (any language) over HTTP: one child per session, or one shared.

Messages cross as JSON lines parsed once with orjson for routing; no pydantic on this path.

Routing back from a child that knows nothing of HTTP streams: a response goes to its request; a
progress notification to the request whose ``progressToken`` it carries; ``notifications/cancelled``
to the request it names; any other notification or request (logs, sampling, elicitation) to the one
request in flight when there is exactly one, else to the session's standalone stream.

Shared mode (``--shared``): one child for every session, with request ids and progress tokens
remapped so that each response and each request-related notification reaches only its own session.
A child's log message or server-to-client request carries no sign of which request it belongs to:
it goes to the one session with requests in flight; with several, a log message is dropped and a
request is answered with an error, never shown to a client it may not belong to. Notifications
that belong to no request at all (``list_changed``) go to every session: each client's view changed.

A child that exits answers its in-flight requests with errors; the next message starts a new one,
re-initialized with the session's original initialize, so the session carries on.

When the server checks tokens, a per-session child is told whose session it serves in its
environment (``MCP_SSE_PRINCIPAL``); a shared child serves everyone and is told nobody.
"""

from __future__ import annotations

import contextlib
import itertools
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

from mcp_sse.core.session import Outbound, Session
from mcp_sse.logs import fields
from mcp_sse.wire.jsonrpc import CONNECTION_CLOSED, INTERNAL_ERROR, Kind, RequestId, classify, error_message

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


def _kind(obj: dict[str, Any]) -> Kind | None:
    try:
        return classify(obj).kind
    except ValueError:
        return None


def _progress_token(obj: dict[str, Any]) -> Any:
    params = obj.get("params")
    meta = params.get("_meta") if isinstance(params, dict) else None
    return meta.get("progressToken") if isinstance(meta, dict) else None


def _exited_error(request_id: RequestId, code: int | None) -> bytes:
    return orjson.dumps(
        error_message(CONNECTION_CLOSED, f"the MCP server process exited (code {code}) before answering", request_id)
    )


# --- one child per session -------------------------------------------------------------------


class StdioUpstream:
    """Each session gets its own child, started by its first message and ended with the session."""

    def __init__(self, command: StdioCommand) -> None:
        self.command = command

    @asynccontextmanager
    async def lifespan(self) -> AsyncIterator[None]:
        yield

    async def serve_session(self, session: Session) -> None:
        await _SessionBridge(self.command, session).run()


class _SessionBridge:
    def __init__(self, command: StdioCommand, session: Session) -> None:
        self.command = command
        self.session = session
        self.child: Child | None = None
        self.init_request: dict[str, Any] | None = None
        self.initialized_sent = False
        self.pending: dict[RequestId, Any] = {}  # request id -> its progress token
        self.tokens: dict[Any, RequestId] = {}
        self._internal: dict[RequestId, anyio.Event] = {}
        self._restarts = itertools.count(1)

    async def run(self) -> None:
        async with anyio.create_task_group() as tg:
            try:
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
        if "id" in obj and method is not None:
            token = _progress_token(obj)
            self.pending[obj["id"]] = token
            if token is not None:
                self.tokens[token] = obj["id"]
        assert self.child is not None
        try:
            await self.child.send(obj)
        except ChildExited:
            await self._settle_exit(self.child)

    async def _start(self, tg: TaskGroup, *, replay: bool) -> None:
        self.child = Child(self.command, self.child_label, self.session.id, self.session.principal)
        await self.child.start(tg)
        tg.start_soon(self._read, self.child)
        if replay and self.init_request is not None:
            # A restarted child knows nothing: initialize it as the session once did.
            request = dict(self.init_request, id=f"mcp-sse-restart-{next(self._restarts)}")
            done = self._internal[request["id"]] = anyio.Event()
            await self.child.send(request)
            with anyio.move_on_after(INIT_TIMEOUT):
                await done.wait()
            if self.initialized_sent:
                await self.child.send({"jsonrpc": "2.0", "method": "notifications/initialized"})

    async def _read(self, child: Child) -> None:
        async for obj in child.lines():
            await self._route(obj)
        await self._settle_exit(child)

    @property
    def child_label(self) -> str:
        return f"session {self.session.id}"

    async def _route(self, obj: dict[str, Any]) -> None:
        kind = _kind(obj)
        payload = orjson.dumps(obj)
        if kind is Kind.RESPONSE or kind is Kind.ERROR:
            request_id: RequestId | None = obj.get("id")
            if request_id is None:
                logger.warning("%s: the server sent an error tied to no request: %.200r", self.child_label, obj)
                return
            if request_id in self._internal:
                self._internal.pop(request_id).set()
                return
            token = self.pending.pop(request_id, None)
            self.tokens.pop(token, None)
            await self.session.emit(Outbound(payload, kind, request_id))
            return
        related: RequestId | None = None
        if obj.get("method") == "notifications/progress":
            related = self.tokens.get((obj.get("params") or {}).get("progressToken"))
        elif obj.get("method") == "notifications/cancelled":
            related = (obj.get("params") or {}).get("requestId")
        if related is None and len(self.pending) == 1:
            related = next(iter(self.pending))
        out_kind = Kind.REQUEST if kind is Kind.REQUEST else Kind.NOTIFICATION
        await self.session.emit(Outbound(payload, out_kind, obj.get("id"), related))

    async def _settle_exit(self, child: Child) -> None:
        if child is not self.child:
            return
        await child.exited.wait()
        for request_id in list(self.pending):
            await self.session.emit(Outbound(_exited_error(request_id, child.returncode), Kind.ERROR, request_id))
        self.pending.clear()
        self.tokens.clear()
        for event in self._internal.values():
            event.set()
        self._internal.clear()


# --- one child for every session ---------------------------------------------------------------


@dataclass
class _Origin:
    session: Session
    request_id: RequestId
    token: Any = None


class SharedStdioUpstream:
    """One child serves every session; ids and progress tokens are remapped per session."""

    def __init__(self, command: StdioCommand) -> None:
        self.command = command
        self.child: Child | None = None
        self.sessions: dict[str, Session] = {}
        self.requests: dict[str, _Origin] = {}  # child-side request id -> where it came from
        self.tokens: dict[str, _Origin] = {}  # child-side progress token -> its request
        self.back: dict[tuple[str, RequestId], str] = {}  # (session, client id) -> child-side id
        self.server_requests: dict[str, tuple[Session, RequestId]] = {}  # id seen by a client -> child id
        self.init_request: dict[str, Any] | None = None
        self.init_result: dict[str, Any] | None = None
        self._init_lock = anyio.Lock()
        self._init_done: anyio.Event | None = None
        self._ids = itertools.count(1)
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

    async def serve_session(self, session: Session) -> None:
        self.sessions[session.id] = session
        try:
            while True:
                try:
                    inbound = await session.receive()
                except anyio.EndOfStream:
                    break
                await self._forward(session, inbound.message.obj)
        finally:
            del self.sessions[session.id]
            for child_id, origin in list(self.requests.items()):
                if origin.session is session:
                    self._forget(child_id)

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
        child_id = f"mcp-sse-init-{next(self._ids)}"
        self._init_done = anyio.Event()
        await child.send(dict(request, id=child_id))
        with anyio.move_on_after(INIT_TIMEOUT):
            await self._init_done.wait()
        await child.send({"jsonrpc": "2.0", "method": "notifications/initialized"})

    async def _forward(self, session: Session, obj: dict[str, Any]) -> None:
        method = obj.get("method")
        if method == "initialize":
            await self._answer_initialize(session, obj)
            return
        if method == "notifications/initialized":
            return  # the child was initialized once, by us
        child = await self._ensure_child()
        kind = _kind(obj)
        if kind is Kind.REQUEST:
            child_id = f"{next(self._ids)}"
            origin = _Origin(session, obj["id"], _progress_token(obj))
            self.requests[child_id] = origin
            self.back[(session.id, obj["id"])] = child_id
            obj = dict(obj, id=child_id)
            if origin.token is not None:
                child_token = f"mcp-sse-{child_id}"
                self.tokens[child_token] = origin
                params = dict(obj["params"])
                params["_meta"] = dict(params["_meta"], progressToken=child_token)
                obj["params"] = params
        elif kind in (Kind.RESPONSE, Kind.ERROR):
            target = self.server_requests.pop(str(obj.get("id")), None)
            if target is None:
                return
            obj = dict(obj, id=target[1])
        elif method == "notifications/cancelled":
            params = dict(obj.get("params") or {})
            cancelled = self.back.get((session.id, params.get("requestId", "")))
            if cancelled is None:
                return
            params["requestId"] = cancelled
            obj = dict(obj, params=params)
        try:
            await child.send(obj)
        except ChildExited:
            await self._settle_exit(child)

    async def _answer_initialize(self, session: Session, obj: dict[str, Any]) -> None:
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
            await self._route(obj)
        await self._settle_exit(child)

    async def _route(self, obj: dict[str, Any]) -> None:
        kind = _kind(obj)
        method = obj.get("method")
        if kind is Kind.RESPONSE or kind is Kind.ERROR:
            child_id = str(obj.get("id"))
            if child_id.startswith("mcp-sse-init-"):
                self.init_result = obj.get("result")
                if self._init_done is not None:
                    self._init_done.set()
                return
            origin = self._forget(child_id)
            if origin is not None:
                reply = dict(obj, id=origin.request_id)
                await origin.session.emit(Outbound(orjson.dumps(reply), kind, origin.request_id))
            return
        if method == "notifications/progress":
            params = dict(obj.get("params") or {})
            origin = self.tokens.get(str(params.get("progressToken")))
            if origin is not None:
                params["progressToken"] = origin.token
                payload = orjson.dumps(dict(obj, params=params))
                await origin.session.emit(Outbound(payload, Kind.NOTIFICATION, None, origin.request_id))
            return
        if method == "notifications/cancelled":
            params = dict(obj.get("params") or {})
            origin = self.requests.get(str(params.get("requestId")))
            if origin is not None:
                params["requestId"] = origin.request_id
                payload = orjson.dumps(dict(obj, params=params))
                await origin.session.emit(Outbound(payload, Kind.NOTIFICATION, None, origin.request_id))
            return
        owner = self._only_active_session()
        if kind is Kind.REQUEST:
            if owner is None:
                # Several clients could be the one this request is for: answering it with an error is
                # honest; sending it to a guessed client could show one user another user's data.
                reason = "mcp-sse --shared cannot tell which client this request is for; run one process per session"
                await self._send_child_error(obj.get("id"), reason)
                return
            session, related = owner
            client_id = f"mcp-sse-{next(self._ids)}"
            self.server_requests[client_id] = (session, obj["id"])
            await session.emit(Outbound(orjson.dumps(dict(obj, id=client_id)), Kind.REQUEST, client_id, related))
            return
        payload = orjson.dumps(obj)
        if method == "notifications/message":
            if owner is None:
                logger.debug("shared child: a log message with several clients active cannot be attributed; dropped")
                return
            session, related = owner
            await session.emit(Outbound(payload, Kind.NOTIFICATION, None, related))
            return
        for session in list(self.sessions.values()):  # list_changed and the like: each client's view changed
            await session.emit(Outbound(payload, Kind.NOTIFICATION))

    def _only_active_session(self) -> tuple[Session, RequestId | None] | None:
        """The one session with requests in flight (and its request, if just one), or None."""
        origins = list(self.requests.values())
        sessions = {origin.session.id for origin in origins}
        if len(sessions) != 1:
            return None
        related = origins[0].request_id if len(origins) == 1 else None
        return origins[0].session, related

    async def _send_child_error(self, request_id: Any, reason: str) -> None:
        if self.child is not None and request_id is not None:
            with contextlib.suppress(ChildExited):
                await self.child.send(error_message(INTERNAL_ERROR, reason, request_id))

    def _forget(self, child_id: str) -> _Origin | None:
        origin = self.requests.pop(child_id, None)
        if origin is not None:
            self.back.pop((origin.session.id, origin.request_id), None)
            if origin.token is not None:
                self.tokens.pop(f"mcp-sse-{child_id}", None)
        return origin

    async def _settle_exit(self, child: Child) -> None:
        if child is not self.child:
            return
        await child.exited.wait()
        for child_id in list(self.requests):
            origin = self._forget(child_id)
            if origin is not None:
                payload = _exited_error(origin.request_id, child.returncode)
                await origin.session.emit(Outbound(payload, Kind.ERROR, origin.request_id))
        self.server_requests.clear()
        if self._init_done is not None:
            self._init_done.set()


def stdio_command(argv: Sequence[str], env: Mapping[str, str] | None = None, cwd: str | None = None) -> StdioCommand:
    if not argv:
        raise ValueError("no command given: put the server's command after --")
    return StdioCommand(list(argv), dict(env or {}), cwd)
