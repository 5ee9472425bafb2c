"""The set of live sessions: creation under a limit, lookup, ending, and reaping the idle ones.

Each session's upstream runs as a task owned by the registry's task group, so every task has an
owner and a way to end (structured concurrency). This module must never know about HTTP.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Protocol

import anyio
from anyio.abc import TaskGroup

from mcp_sse.core.events import EventStore
from mcp_sse.core.observer import NullObserver, Observer
from mcp_sse.core.session import Session, SessionKind
from mcp_sse.logs import fields

__all__ = ["SessionLimitReached", "SessionRegistry", "SessionRunner", "new_session_id"]

logger = logging.getLogger(__name__)


class SessionRunner(Protocol):
    """Whatever answers a session's messages (see ``mcp_sse.upstream``)."""

    async def serve_session(self, session: Session) -> None: ...


class SessionLimitReached(Exception):
    pass


def new_session_id() -> str:
    """192 random bits as URL-safe base64: visible ASCII only (MCP 2025-11-25, Transports, "Session
    Management": https://modelcontextprotocol.io/specification/2025-11-25/basic/transports#session-management)."""
    return secrets.token_urlsafe(24)


class SessionRegistry:
    def __init__(
        self,
        store: EventStore,
        runner: SessionRunner,
        *,
        max_sessions: int | None,
        idle_timeout: float | None,
        json_response: bool = False,
        observer: Observer | None = None,
        backlog_limit: int = 5_000,
        slow_consumer_timeout: float = 30.0,
    ) -> None:
        self.backlog_limit = backlog_limit
        self.slow_consumer_timeout = slow_consumer_timeout
        self.observer: Observer = observer or NullObserver()
        self.store = store
        self.runner = runner
        self.max_sessions = max_sessions
        self.idle_timeout = idle_timeout
        self.json_response = json_response
        self._sessions: dict[str, Session] = {}
        self._task_group: TaskGroup | None = None
        self._session_tasks: set[asyncio.Task[None]] = set()

    def __len__(self) -> int:
        return len(self._sessions)

    @asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        """Own the session tasks and the reaper for as long as the app runs."""
        async with anyio.create_task_group() as tg:
            self._task_group = tg
            if self.idle_timeout is not None:
                tg.start_soon(self._reap_forever, self.idle_timeout)
            try:
                yield
            finally:
                self._task_group = None
                for session in list(self._sessions.values()):
                    await self.end(session)
                with anyio.CancelScope(shield=True):
                    while self._session_tasks:  # each ends once its session's scope is cancelled
                        await asyncio.wait(set(self._session_tasks))
                tg.cancel_scope.cancel()

    def inbound_depth(self) -> int:
        return sum(session.inbound_depth for session in self._sessions.values())

    def sessions(self) -> list[Session]:
        """The live sessions, oldest first (a copy: safe to hold across awaits)."""
        return list(self._sessions.values())

    def get(self, session_id: str) -> Session | None:
        return self._sessions.get(session_id)

    async def open(self, kind: SessionKind, version: str) -> Session:
        """Create a session and start its upstream; SessionLimitReached when full."""
        if self._task_group is None:
            raise RuntimeError("the session registry is not running (the app's lifespan did not start)")
        if self.max_sessions is not None and len(self._sessions) >= self.max_sessions:
            raise SessionLimitReached(self.max_sessions)
        session = Session(
            new_session_id(),
            kind,
            version,
            self.store,
            json_response=self.json_response,
            backlog_limit=self.backlog_limit,
            slow_consumer_timeout=self.slow_consumer_timeout,
            observer=self.observer,
        )
        self._sessions[session.id] = session
        self.observer.session_opened(kind.value)
        # A bare asyncio task, not one of the task group's: anyio keeps a cancel scope, an event and
        # a handle per spawned task, 2 KiB per session for as long as it lives (W3 in
        # docs/benchmarks.md); ending the session cancels the task itself. The task set and the
        # shutdown above keep it structured.
        task = asyncio.get_running_loop().create_task(self._run(session))
        session.bind_upstream(task.cancel)
        self._session_tasks.add(task)
        task.add_done_callback(self._session_tasks.discard)
        logger.info(
            "session %s opened (%s, %s)",
            session.id,
            kind.value,
            version,
            extra=fields(session_id=session.id, transport=kind.value),
        )
        return session

    async def _run(self, session: Session) -> None:
        """The session's upstream; cancelled when the session ends, and it ends the session when
        the upstream stops by itself."""
        try:
            await self.runner.serve_session(session)
        except Exception:
            logger.exception("session %s: upstream failed", session.id, extra=fields(session_id=session.id))
        await self.end(session)

    async def end(self, session: Session) -> None:
        """End a session: it answers 404 from now on."""
        if self._sessions.get(session.id) is session:
            del self._sessions[session.id]
            self.observer.session_closed(session.kind.value)
            logger.info("session %s ended", session.id, extra=fields(session_id=session.id))
        await session.close()

    async def _reap_forever(self, idle_limit: float) -> None:
        interval = min(max(idle_limit / 4, 0.05), 30.0)
        while True:
            await anyio.sleep(interval)
            now = time.monotonic()
            for session in list(self._sessions.values()):
                if session.idle_for(now) > idle_limit:
                    logger.info("session %s idle for %.0fs: ending it", session.id, idle_limit)
                    await self.end(session)
