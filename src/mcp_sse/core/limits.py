"""Limits per caller, decided with no I/O: requests per second (a token bucket), sessions and open
streams at once. A caller is its principal when the server checks tokens, else its client address,
so one user or one host cannot take the whole server from the others.

The edge (``server/app.py``, ``server/streamable.py``) asks before it does the work and answers
429 with ``Retry-After`` and a JSON-RPC error when this module says no. Time comes in as numbers.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

__all__ = ["CallerLimits", "Refused", "retry_after_header"]


@dataclass(frozen=True, slots=True)
class Refused:
    """Why a caller was refused, and how long until trying again makes sense."""

    reason: str
    retry_after: float


class _Bucket:
    __slots__ = ("stamp", "tokens")

    def __init__(self, tokens: float, stamp: float) -> None:
        self.tokens = tokens
        self.stamp = stamp


class CallerLimits:
    """Per-caller request rate, sessions and streams; ``None`` for a limit means none."""

    def __init__(
        self,
        *,
        requests_per_second: float | None = None,
        burst: float | None = None,
        sessions: int | None = None,
        streams: int | None = None,
        max_callers: int = 100_000,
    ) -> None:
        self.rate = requests_per_second
        self.burst = burst if burst is not None else (max(1.0, 2 * requests_per_second) if requests_per_second else 0)
        self.max_sessions = sessions
        self.max_streams = streams
        self.max_callers = max_callers  # buckets kept at most (the idle ones are forgotten first)
        self._buckets: dict[str, _Bucket] = {}
        self._sessions: dict[str, int] = {}
        self._streams: dict[str, int] = {}

    # --- requests per second ------------------------------------------------------------------

    def request(self, caller: str, now: float) -> Refused | None:
        """A request from ``caller`` at time ``now``: None to serve it, else why not."""
        if self.rate is None:
            return None
        bucket = self._buckets.pop(caller, None)  # re-inserted last: the dict stays in recency order
        if bucket is None:
            bucket = _Bucket(self.burst, now)
        else:
            bucket.tokens = min(self.burst, bucket.tokens + (now - bucket.stamp) * self.rate)
            bucket.stamp = now
        self._buckets[caller] = bucket
        if len(self._buckets) > self.max_callers:
            del self._buckets[next(iter(self._buckets))]
        if bucket.tokens >= 1:
            bucket.tokens -= 1
            return None
        wait = (1 - bucket.tokens) / self.rate
        return Refused(f"more than {self.rate:g} requests per second", wait)

    # --- sessions and streams at once ------------------------------------------------------------

    def open_session(self, caller: str) -> Refused | None:
        return self._take(self._sessions, caller, self.max_sessions, "sessions")

    def close_session(self, caller: str) -> None:
        self._give_back(self._sessions, caller)

    def open_stream(self, caller: str) -> Refused | None:
        return self._take(self._streams, caller, self.max_streams, "open streams")

    def close_stream(self, caller: str) -> None:
        self._give_back(self._streams, caller)

    @staticmethod
    def _take(counts: dict[str, int], caller: str, limit: int | None, what: str) -> Refused | None:
        held = counts.get(caller, 0)
        if limit is not None and held >= limit:
            return Refused(f"more than {limit} {what} at once", 1.0)
        counts[caller] = held + 1
        return None

    @staticmethod
    def _give_back(counts: dict[str, int], caller: str) -> None:
        held = counts.get(caller, 0) - 1
        if held > 0:
            counts[caller] = held
        else:
            counts.pop(caller, None)


def retry_after_header(seconds: float) -> str:
    """``Retry-After`` in whole seconds, at least one."""
    return str(max(1, math.ceil(seconds)))
