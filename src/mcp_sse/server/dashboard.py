"""The browser page (``dashboard=True``): a live view of the transport, and a search box.

``GET /`` and ``GET /dashboard`` answer one static page (``dashboard.html``). The page opens a plain
``EventSource`` on ``/dashboard/events``, where this module sends one ``stats`` event a second
(sessions, streams, events per second, replays, rejects, and the sessions themselves with their
ids cut short), and it calls the server's own tools over Streamable HTTP with ``fetch``, as any
browser client would, through the same Host/Origin checks and CORS as every other request.

This module only reads the registry and the metrics; it never changes a session.
"""

from __future__ import annotations

import json
import time
from importlib.resources import files
from typing import Any

import anyio
import orjson

from mcp_sse.config import ServerConfig
from mcp_sse.core.registry import SessionRegistry
from mcp_sse.server.asgi import HeaderList, Receive, Scope, Send, send_response
from mcp_sse.server.metrics import Metrics
from mcp_sse.server.sse_writer import SSE_HEADERS
from mcp_sse.wire.sse import encode_event, encode_retry

__all__ = ["Dashboard"]

PAGE_PATHS = frozenset({"/", "/dashboard", "/dashboard/"})
EVENTS_PATH = "/dashboard/events"
MAX_LISTED_SESSIONS = 100
SHOWN_ID_CHARS = 8  # enough to tell sessions apart, too little to hijack one


class Dashboard:
    """Serves the page and its stats stream for one app."""

    def __init__(
        self, config: ServerConfig, registry: SessionRegistry, metrics: Metrics, interval: float = 1.0
    ) -> None:
        self.config = config
        self.registry = registry
        self.metrics = metrics
        self.interval = interval
        self._stopping = False
        self._template = files("mcp_sse.server").joinpath("dashboard.html").read_text("utf-8")

    def stop(self) -> None:
        """The server is shutting down: live views end (within one interval) instead of holding it up."""
        self._stopping = True

    def handles(self, path: str) -> bool:
        return path in PAGE_PATHS or path == EVENTS_PATH

    async def serve(self, scope: Scope, receive: Receive, send: Send, path: str, extra: HeaderList) -> None:
        if path == EVENTS_PATH:
            await self._events(receive, send, extra)
        else:
            await self._page(scope, send, extra)

    async def _page(self, scope: Scope, send: Send, extra: HeaderList) -> None:
        root = scope.get("root_path", "")
        settings = {"mcp": root + self.config.path, "events": root + EVENTS_PATH}
        # Inside a <script> block: escape "<" so no value can close the tag.
        page = self._template.replace("__SETTINGS__", json.dumps(settings).replace("<", "\\u003c"))
        headers = [*extra, (b"cache-control", b"no-store")]
        await send_response(send, 200, page.encode(), headers, b"text/html; charset=utf-8")

    async def _events(self, receive: Receive, send: Send, extra: HeaderList) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": SSE_HEADERS + extra})
        async with anyio.create_task_group() as tg:
            tg.start_soon(_cancel_on_disconnect, receive, tg.cancel_scope)
            previous = (time.monotonic(), self.metrics.totals())
            body = encode_retry(int(self.interval * 1000)) + self._stats_event(previous, previous)
            while not self._stopping:
                await send({"type": "http.response.body", "body": body, "more_body": True})
                await anyio.sleep(self.interval)
                now = (time.monotonic(), self.metrics.totals())
                body = self._stats_event(previous, now)
                previous = now
            tg.cancel_scope.cancel()
        await send({"type": "http.response.body", "body": b"", "more_body": False})

    def _stats_event(self, before: tuple[float, dict[str, float]], now: tuple[float, dict[str, float]]) -> bytes:
        return encode_event(orjson.dumps(self.snapshot(before, now)), event="stats")

    def snapshot(self, before: tuple[float, dict[str, float]], now: tuple[float, dict[str, float]]) -> dict[str, Any]:
        """What the page shows: totals, a rate over the last interval, and the live sessions."""
        (t0, old), (t1, new) = before, now
        elapsed = t1 - t0

        def total(name: str) -> int:
            return int(new.get(name, 0.0))

        def rate(name: str) -> float:
            return round((new.get(name, 0.0) - old.get(name, 0.0)) / elapsed, 1) if elapsed > 0 else 0.0

        sessions = self.registry.sessions()
        clock = time.monotonic()
        listed = sorted(sessions, key=lambda s: s.last_activity, reverse=True)[:MAX_LISTED_SESSIONS]
        return {
            "sessions_open": len(sessions),
            "streams_open": total("mcp_sse_streams_open"),
            "events_per_second": rate("mcp_sse_events_appended_total"),
            "events_appended": total("mcp_sse_events_appended_total"),
            "events_sent": total("mcp_sse_events_sent_total:live") + total("mcp_sse_events_sent_total:replayed"),
            "events_replayed": total("mcp_sse_events_sent_total:replayed"),
            "resumes": total("mcp_sse_resumes_total"),
            "replay_misses": total("mcp_sse_replay_misses_total"),
            "takeovers": total("mcp_sse_stream_takeovers_total"),
            "slow_consumers_closed": total("mcp_sse_slow_consumers_closed_total"),
            "rejects": total("mcp_sse_rejects_total"),
            "inbound_queue": total("mcp_sse_inbound_queue_depth"),
            "sessions": [
                {
                    "id": session.id[:SHOWN_ID_CHARS] + "…",
                    "transport": session.kind.value,
                    "version": session.version,
                    "streams": len(session.streams),
                    "connected": sum(1 for stream in session.streams.values() if stream.writer is not None),
                    "age_seconds": round(clock - session.opened, 1),
                    "idle_seconds": round(session.idle_for(clock), 1),
                }
                for session in listed
            ],
        }


async def _cancel_on_disconnect(receive: Receive, scope: anyio.CancelScope) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass
    scope.cancel()
