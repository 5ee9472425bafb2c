"""The client's decisions, kept apart from its I/O: which era, when to fall back, how long to wait,
which id to resume from, which events are duplicates, which requests may be sent again.

Nothing here touches a socket or a clock: time comes in as numbers and randomness as an object,
so every decision is tested without a network.
"""

from __future__ import annotations

import enum
import random
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import urljoin, urlsplit

from mcp_sse.client.policy import ReconnectPolicy
from mcp_sse.wire import eras

__all__ = [
    "ERA_CACHE",
    "PROBE_REMEMBERED",
    "Backoff",
    "Cursor",
    "Era",
    "EraCache",
    "EventVerdict",
    "ProbeMemory",
    "RetryRules",
    "origin_of",
    "resolve_endpoint",
    "should_fall_back_to_sse",
]

Era = Literal["streamable-http", "sse"]


class Backoff:
    """Waits between reconnection attempts: exponential, full jitter, capped, within a time budget."""

    def __init__(self, policy: ReconnectPolicy, rng: random.Random | None = None) -> None:
        self.policy = policy
        self.rng = rng or random.Random()
        self.attempt = 0
        self.started: float | None = None

    def next_delay(self, now: float, server_retry_ms: int | None = None) -> float | None:
        """Seconds to wait before the next attempt, or None once the budget is spent."""
        if self.started is None:
            self.started = now
        elapsed = now - self.started
        if elapsed >= self.policy.budget:
            return None
        if server_retry_ms is not None:
            delay = server_retry_ms / 1000
        else:
            ceiling = min(self.policy.max_delay, self.policy.initial_delay * self.policy.multiplier**self.attempt)
            delay = self.rng.uniform(0, ceiling) if self.policy.jitter else ceiling
        self.attempt += 1
        return min(delay, max(0.0, self.policy.budget - elapsed))

    def reset(self) -> None:
        """A connection worked: the next failure starts from the smallest wait and a fresh budget."""
        self.attempt = 0
        self.started = None


def should_fall_back_to_sse(status: int, requested_version: str | None) -> bool:
    """Whether a failed POST initialize means "try HTTP+SSE".

    MCP 2025-11-25, Transports, "Backwards Compatibility":
    https://modelcontextprotocol.io/specification/2025-11-25/basic/transports#backwards-compatibility

    2025-11-25 falls back only on 400, 404 and 405; earlier versions on any 4xx. 401 and 403 are
    authorization problems at every version, never a reason to downgrade the transport.
    """
    if status in (401, 403):
        return False
    if requested_version in (eras.V2025_11,) or requested_version is None:
        return status in (400, 404, 405)
    return 400 <= status < 500


def origin_of(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()


class EraCache:
    """What each origin turned out to speak, so the next connection skips the probe.

    MCP 2026-07-28, Versioning (a client that remembers a server's era):
    https://modelcontextprotocol.io/specification/2026-07-28/basic/versioning
    """

    def __init__(self) -> None:
        self._eras: dict[str, Era] = {}
        self._stateless: dict[str, bool] = {}

    def get(self, url: str) -> Era | None:
        return self._eras.get(origin_of(url))

    def remember(self, url: str, era: Era) -> None:
        self._eras[origin_of(url)] = era

    def forget(self, url: str) -> None:
        self._eras.pop(origin_of(url), None)
        self._stateless.pop(origin_of(url), None)

    def stateless(self, url: str) -> bool | None:
        """Whether the origin answered the 2026-07-28 probe (True), refused it and took an
        ``initialize`` instead (False), or is unknown (None)."""
        return self._stateless.get(origin_of(url))

    def remember_stateless(self, url: str, answered: bool) -> None:
        self._stateless[origin_of(url)] = answered

    def forget_stateless(self, url: str) -> None:
        """Probe again next time: what was remembered just failed."""
        self._stateless.pop(origin_of(url), None)


ERA_CACHE = EraCache()


PROBE_REMEMBERED = "server/discover: this origin refused the 2026-07-28 probe before and took an initialize"


class ProbeMemory:
    """One connection's part in what ``EraCache`` remembers about the 2026-07-28 probe.

    ``mcp.Client`` probes with ``server/discover`` and, when that is refused, sends ``initialize``.
    A refusal followed by a working ``initialize`` is worth remembering per origin (the next
    connection's probe is answered locally); a remembered refusal followed by a failed
    ``initialize`` was wrong, and is forgotten so that the next probe goes on the wire.
    """

    def __init__(self, url: str, cache: EraCache = ERA_CACHE) -> None:
        self.url = url
        self.cache = cache
        self._refused = False  # this connection's server/discover got an error
        self._answered_locally = False

    def answer_locally(self, method: str) -> bool:
        """Whether to refuse this request ourselves: a probe this origin refused before."""
        if method == "server/discover" and self.cache.stateless(self.url) is False:
            self._answered_locally = True
            return True
        return False

    def learn(self, method: str, *, modern: bool, answered: bool) -> None:
        """Read the outcome of a probe or a handshake."""
        if method == "server/discover" and modern:
            if answered:
                self.cache.remember_stateless(self.url, True)
            else:
                self._refused = True
        elif method == "initialize":
            if answered and self._refused:
                self.cache.remember_stateless(self.url, False)
            elif not answered and self._answered_locally:
                self.cache.forget_stateless(self.url)


def resolve_endpoint(sse_url: str, endpoint: str) -> str:
    """The POST URL an ``endpoint`` event names, relative to the SSE URL; another origin is refused."""
    resolved = urljoin(sse_url, endpoint.strip())
    if origin_of(resolved) != origin_of(sse_url):
        raise ValueError(f"endpoint {endpoint!r} is on another origin than {sse_url!r}")
    return resolved


class EventVerdict(enum.Enum):
    """What to do with an event, by its ``id`` field."""

    DUPLICATE = "duplicate"  # delivered before: drop it
    NEW = "new"  # a new id: record it (a resumption token), then deliver the event's data
    SAME = "same"  # no new id (none, or the last one carried over): deliver the event's data


class Cursor:
    """The resume position of one stream and the ids already delivered from it.

    Ids are remembered (a bounded window) so that an event replayed twice is delivered once;
    an empty ``id:`` resets the position, so nothing stale is sent as ``Last-Event-ID``.
    """

    def __init__(self, last_event_id: str | None = None, window: int = 4096) -> None:
        self.retry_ms: int | None = None  # the server's latest ``retry``: it replaces the next wait
        self.lost = 0  # events skipped between consecutive ids, when ids say ``<stream>-<seq>``
        self._seen: OrderedDict[str, None] = OrderedDict()
        self._window = window
        self._previous_id = ""  # the id field of this response's previous event
        self._set_last(last_event_id)

    def new_response(self) -> None:
        """A new HTTP response starts: its first event's id is new whatever the last one was."""
        self._previous_id = ""

    def event(self, event_id: str) -> EventVerdict:
        """An event arrived with this ``id`` field (a decoder carries the last one over to events
        that have none, so only a change of id is a new one)."""
        if event_id == self._previous_id:
            return EventVerdict.SAME
        self._previous_id = event_id
        if not event_id:
            return EventVerdict.SAME
        return EventVerdict.NEW if self.see(event_id) else EventVerdict.DUPLICATE

    def _set_last(self, event_id: str | None) -> None:
        self.last_event_id = event_id
        # Its ``<stream>-<seq>`` parts, split once here rather than again at the next event.
        self._stream, self._seq = _stream_seq(event_id) if event_id else (None, -1)

    def see(self, event_id: str) -> bool:
        """Record an event's id; False when it was delivered before (drop it)."""
        if not event_id:
            self._set_last(None)
            return True
        stream, seq = _stream_seq(event_id)
        if stream is not None and stream == self._stream and seq > self._seq + 1:
            self.lost += seq - self._seq - 1
        self.last_event_id, self._stream, self._seq = event_id, stream, seq
        if event_id in self._seen:
            return False
        self._seen[event_id] = None
        if len(self._seen) > self._window:
            self._seen.popitem(last=False)
        return True


def _stream_seq(event_id: str) -> tuple[str | None, int]:
    """``"<stream>-<seq>"`` as (stream, seq); (None, -1) for an id of another form, which says
    nothing about events lost in between."""
    stream, dash, seq = event_id.rpartition("-")
    if not dash or not (seq.isascii() and seq.isdigit()):
        return None, -1
    return stream, int(seq)


@dataclass
class RetryRules:
    """Which requests may be sent again when a break may have let the server run them once already."""

    policy: ReconnectPolicy
    safe_tools: set[str] = field(default_factory=set)

    def learn_tools(self, result: Any) -> None:
        """Read a ``tools/list`` result: tools annotated idempotent or read-only are safe to resend."""
        if not self.policy.trust_tool_annotations or not isinstance(result, dict):
            return
        for tool in result.get("tools") or ():
            if not isinstance(tool, dict):
                continue
            hints = tool.get("annotations") or {}
            if isinstance(hints, dict) and (hints.get("idempotentHint") or hints.get("readOnlyHint")):
                self.safe_tools.add(str(tool.get("name")))

    def is_safe(self, request: dict[str, Any]) -> bool:
        method = request.get("method")
        if method in self.policy.retry_methods:
            return True
        if method == "tools/call":
            params = request.get("params") or {}
            name = params.get("name") if isinstance(params, dict) else None
            return name in self.policy.retry_tools or name in self.safe_tools
        return False
