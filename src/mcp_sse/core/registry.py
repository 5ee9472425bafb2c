"""The set of live sessions: creation under a limit, lookup, ending, reaping the idle ones, and
bringing back the sessions a previous process kept in a durable store.

Each session's upstream runs as a task owned by the registry's task group, so every task has an
owner and a way to end (structured concurrency). This module must never know about HTTP.

Sessions that survive a restart (docs/durability.md): with a store that keeps session state
(``SessionStateStore``: SQLite, Redis), a session era session's record is written when it opens.
When the process stops, its sessions are kept, not ended: requests in progress are answered with
the ``INTERRUPTED`` error and the log stays. A request that names a session this process does not
know asks ``revive``: the record is read, a new epoch begins (``core/session_record.py``),
requests a crash left open are answered with the same error, and a fresh upstream is brought to
the session's state with the stored ``initialize`` (its answer consumed, never sent) and
``notifications/initialized``.
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

from mcp_sse.core.events import EventStore, SessionStateStore
from mcp_sse.core.limits import CallerLimits, Refused
from mcp_sse.core.observer import NullObserver, Observer
from mcp_sse.core.session import Session, SessionKind
from mcp_sse.core.session_record import SessionRecord
from mcp_sse.logs import fields
from mcp_sse.wire import jsonrpc

__all__ = [
    "CallerLimitReached",
    "Ownership",
    "SessionLimitReached",
    "SessionRegistry",
    "SessionRunner",
    "new_session_id",
]

logger = logging.getLogger(__name__)


class SessionRunner(Protocol):
    """Whatever answers a session's messages (see ``mcp_sse.upstream``)."""

    async def serve_session(self, session: Session) -> None: ...


class OwnershipUnavailable(Exception):
    """Who owns a session cannot be known now (the cluster's Redis is away): try again shortly."""


class Ownership(Protocol):
    """Who runs a session when several processes share one store (the cluster layer answers; one
    process alone owns everything)."""

    async def claim_new(self, session_id: str) -> None: ...

    async def release(self, session_id: str) -> None: ...


class SessionLimitReached(Exception):
    pass


class CallerLimitReached(Exception):
    """One caller holds as many sessions as it may (``core/limits.py``)."""

    def __init__(self, refused: Refused) -> None:
        super().__init__(refused.reason)
        self.refused = refused


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
        revive_timeout: float = 30.0,
        limits: CallerLimits | None = None,
        ownership: Ownership | None = None,
    ) -> None:
        self.limits = limits or CallerLimits()
        self.ownership = ownership
        self.backlog_limit = backlog_limit
        self.revive_timeout = revive_timeout
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
        self._reviving: dict[str, anyio.Event] = {}

    @property
    def keeps_sessions(self) -> bool:
        """Whether sessions outlive the process (the store keeps their state)."""
        return isinstance(self.store, SessionStateStore)

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
                    await self.end(session, keep=self.keeps_sessions)
                with anyio.CancelScope(shield=True):
                    while self._session_tasks:  # each ends once its session's scope is cancelled
                        await asyncio.wait(set(self._session_tasks))
                tg.cancel_scope.cancel()

    def end_streams(self, retry_ms: int) -> int:
        """Going away (a drain, a restart): end every open stream of a Streamable HTTP session now,
        each telling its client to come back in ``retry_ms`` and resume with ``Last-Event-ID``, rather
        than leave them to be cut when the server's grace period runs out. The sessions stay (kept
        by a durable store for whoever serves them next). How many were ended."""
        ended = 0
        for session in self._sessions.values():
            if session.kind is not SessionKind.STREAMABLE:
                continue  # HTTP+SSE cannot resume: its stream is its session
            for stream in list(session.streams.values()):
                if stream.writer is not None:
                    stream.writer.cancel(retry_ms)
                    ended += 1
        return ended

    def inbound_depth(self) -> int:
        return sum(session.inbound_depth for session in self._sessions.values())

    async def settle(self, within: float) -> int:
        """Wait, at most ``within`` seconds, for the calls in progress to be answered (a stopping
        server lets them finish); how many sessions were still busy when the time ran out."""
        deadline = anyio.current_time() + within
        # A bounded wait at shutdown, checked 20 times a second; no message path waits like this.
        while (busy := sum(s.busy for s in self._sessions.values())) and anyio.current_time() < deadline:  # noqa: ASYNC110
            await anyio.sleep(0.05)
        return busy

    def sessions(self) -> list[Session]:
        """The live sessions, oldest first (a copy: safe to hold across awaits)."""
        return list(self._sessions.values())

    def get(self, session_id: str) -> Session | None:
        return self._sessions.get(session_id)

    async def open(
        self,
        kind: SessionKind,
        version: str,
        initialize: dict[str, object] | None = None,
        principal: str | None = None,
        caller: str | None = None,
    ) -> Session:
        """Create a session and start its upstream; SessionLimitReached when full. ``initialize``
        (the request's params) is what a durable store keeps to bring the session back; ``principal``
        is whom the session belongs to (no other caller can use it); ``caller`` is whose
        per-caller session limit it counts against (``CallerLimitReached`` beyond it)."""
        self._count_session(caller)
        record = None
        session_id = new_session_id()
        if kind is SessionKind.STREAMABLE and isinstance(self.store, SessionStateStore):
            record = SessionRecord(session_id, version, initialize, principal=principal)
        try:
            if self.ownership is not None:
                await self.ownership.claim_new(session_id)  # before anyone can name it
            session = self._start(session_id, kind, version, record)
        except BaseException:
            self._uncount_session(caller)
            raise
        session.principal = principal
        session.caller = caller
        if record is not None:
            assert isinstance(self.store, SessionStateStore)
            self.store.save_record(session.id, record.to_bytes())
        logger.info(
            "session %s opened (%s, %s)",
            session.id,
            kind.value,
            version,
            extra=fields(session_id=session.id, transport=kind.value),
        )
        return session

    async def revive(self, session_id: str, caller: str | None = None) -> Session | None:
        """The session a previous process kept, running again here; None when there is none."""
        store = self.store
        if not isinstance(store, SessionStateStore):
            return None
        while (reviving := self._reviving.get(session_id)) is not None:
            await reviving.wait()  # another request is bringing it back: one revival, however many ask
        if (session := self._sessions.get(session_id)) is not None:
            return session
        done = self._reviving[session_id] = anyio.Event()
        try:
            return await self._revive(store, session_id, caller)
        except ValueError:
            return None  # not a session id a store could hold
        finally:
            del self._reviving[session_id]
            done.set()

    async def _revive(self, store: SessionStateStore, session_id: str, caller: str | None) -> Session | None:
        raw = await store.load_record(session_id)
        if raw is None:
            return None
        record = SessionRecord.from_bytes(raw)
        self._count_session(caller)
        open_requests = await store.open_requests(session_id)
        record.begin_epoch(await store.last_seqs(session_id))
        try:
            session = self._start(session_id, SessionKind.STREAMABLE, record.version, record)
        except BaseException:
            self._uncount_session(caller)
            raise
        session.principal = record.principal
        session.caller = caller
        session.adopt_open_requests(open_requests)
        await session.interrupt_open_requests("the server restarted while it was in progress")
        store.save_record(session_id, record.to_bytes())
        await store.flush()  # ids of the new epoch go out only once the epoch is on record
        logger.info(
            "session %s brought back (epoch %d, %d interrupted requests)",
            session_id,
            record.epoch,
            len(open_requests),
            extra=fields(session_id=session_id, transport=SessionKind.STREAMABLE.value),
        )
        if record.initialize is not None and not await self._reinitialize(session, record):
            logger.warning("session %s: its upstream did not accept the stored initialize", session_id)
            await self.end(session)
            return None
        return session

    async def _reinitialize(self, session: Session, record: SessionRecord) -> bool:
        """Bring a fresh upstream to the session's state: the stored initialize, then initialized."""
        request = {
            "jsonrpc": "2.0",
            "id": f"mcp-sse-revive-{record.epoch}",
            "method": "initialize",
            "params": record.initialize,
        }
        with anyio.move_on_after(self.revive_timeout) as waited:
            await session.call_upstream(jsonrpc.classify(request))
        if waited.cancelled_caught:
            return False
        if record.initialized:
            await session.send_internal(jsonrpc.classify({"jsonrpc": "2.0", "method": "notifications/initialized"}))
        return True

    def _start(self, session_id: str, kind: SessionKind, version: str, record: SessionRecord | None) -> Session:
        """Make a session and start its upstream."""
        if self._task_group is None:
            raise RuntimeError("the session registry is not running (the app's lifespan did not start)")
        if self.max_sessions is not None and len(self._sessions) >= self.max_sessions:
            raise SessionLimitReached(self.max_sessions)
        session = Session(
            session_id,
            kind,
            version,
            self.store,
            json_response=self.json_response,
            backlog_limit=self.backlog_limit,
            slow_consumer_timeout=self.slow_consumer_timeout,
            observer=self.observer,
            record=record,
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
        return session

    async def _run(self, session: Session) -> None:
        """The session's upstream; cancelled when the session ends, and it ends the session when
        the upstream stops by itself."""
        try:
            await self.runner.serve_session(session)
        except Exception:
            logger.exception("session %s: upstream failed", session.id, extra=fields(session_id=session.id))
        await self.end(session)

    def _count_session(self, caller: str | None) -> None:
        if caller is not None and (refused := self.limits.open_session(caller)) is not None:
            raise CallerLimitReached(refused)

    def _uncount_session(self, caller: str | None) -> None:
        if caller is not None:
            self.limits.close_session(caller)

    async def end(self, session: Session, *, keep: bool = False) -> None:
        """End a session: it answers 404 from now on. ``keep``: the process stops, the session does
        not (a durable store keeps it for the next process)."""
        if self._sessions.get(session.id) is session:
            del self._sessions[session.id]
            self._uncount_session(session.caller)
            self.observer.session_closed(session.kind.value)
            said = "kept for the next process" if keep and session.record is not None else "ended"
            logger.info("session %s %s", session.id, said, extra=fields(session_id=session.id))
            if not keep and self.ownership is not None:
                await self.ownership.release(session.id)
        await session.close(keep=keep)

    async def _reap_forever(self, idle_limit: float) -> None:
        interval = min(max(idle_limit / 4, 0.05), 30.0)
        while True:
            await anyio.sleep(interval)
            now = time.monotonic()
            for session in list(self._sessions.values()):
                if session.idle_for(now) > idle_limit:
                    logger.info("session %s idle for %.0fs: ending it", session.id, idle_limit)
                    await self.end(session)
