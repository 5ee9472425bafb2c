"""What one Streamable HTTP client connection knows, with no I/O: its session, the negotiated
version, the original ``initialize`` (to open a new session with after a lost one), the headers
each exchange carries, and what answers teach it (era, tools safe to resend).

``StreamableHTTPClient`` owns one and changes it only through these methods.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from typing import Any

from mcp_sse.client.decisions import ProbeMemory, RetryRules
from mcp_sse.client.lifecycle import RequestLifecycle
from mcp_sse.client.policy import ReconnectPolicy
from mcp_sse.wire import headers as h

__all__ = ["Cancellation", "Connection"]


class Cancellation(enum.Enum):
    """How a ``notifications/cancelled`` from the session reaches the server."""

    POST = "post"  # POST it (under the request's wire id)
    CLOSE = "close"  # 2026-07-28: close the request's response stream instead
    DROP = "drop"  # a stateless connection, and the request is already over: send nothing


class Connection:
    """The state of one connection, shared by all its requests."""

    def __init__(self, url: str, policy: ReconnectPolicy, *, allow_fallback: bool = False) -> None:
        self.policy = policy
        self.allow_fallback = allow_fallback
        self.rules = RetryRules(policy)
        self.probe = ProbeMemory(url)
        self.session_id: str | None = None
        self.protocol_version: str | None = None
        self.init_request: dict[str, Any] | None = None
        self.modern = False  # the last request went out in the stateless era
        self._reopened = 0
        self._internal_ids = 0

    def request(self, obj: dict[str, Any], resumption_token: str | None = None) -> RequestLifecycle:
        """A request from the session: its lifecycle, with what this connection knows about it."""
        life = RequestLifecycle(
            obj,
            safe=self.rules.is_safe(obj),
            policy=self.policy,
            resumption_token=resumption_token,
            allow_fallback=self.allow_fallback,
        )
        if life.modern:
            self.modern = True
        elif life.method == "initialize":
            self.modern = False
            self.init_request = obj
        return life

    def answered(self, life: RequestLifecycle, response: dict[str, Any]) -> None:
        """Learn from a request's answer (a result or an error)."""
        result = response.get("result")
        answered = isinstance(result, dict)
        if answered and life.method == "initialize":
            self.protocol_version = result.get("protocolVersion")  # type: ignore[union-attr]
        elif answered and life.modern and life.method == "server/discover":
            self.protocol_version = None  # stateless: each request carries its own version header
        elif answered and life.method == "tools/list":
            self.rules.learn_tools(result)
        self.probe.learn(life.method, modern=life.modern, answered=answered)

    def session_opened(self, response_headers: Mapping[str, str]) -> None:
        """An ``initialize`` was accepted: the session the server named (if any) is ours now."""
        self.session_id = response_headers.get(h.SESSION_ID) or None

    def reopening(self) -> dict[str, Any]:
        """The session was lost: forget it, and give the initialize request that opens the next one."""
        assert self.init_request is not None
        self.session_id = None
        self._reopened += 1
        return dict(self.init_request, id=f"mcp-sse-reinitialize-{self._reopened}")

    def reopened(self, response_headers: Mapping[str, str], result: Mapping[str, Any]) -> None:
        self.session_opened(response_headers)
        self.protocol_version = result.get("protocolVersion", self.protocol_version)

    def cancellation(
        self, notification: dict[str, Any], life: RequestLifecycle | None
    ) -> tuple[Cancellation, dict[str, Any]]:
        """How to carry out the session's cancellation of ``life`` (None: not in flight any more).

        2026-07-28 has no client notifications: closing a request's stream cancels it (MCP
        2026-07-28, Cancellation: https://modelcontextprotocol.io/specification/2026-07-28/basic/patterns/cancellation).
        Otherwise the server knows the request by its latest wire id, which a resend changed.
        """
        if life is None:
            # Too late to matter; never leak a notification onto a stateless server.
            return (Cancellation.DROP if self.modern else Cancellation.POST), notification
        if life.modern:
            return Cancellation.CLOSE, notification
        params = notification.get("params")
        if not life.resends or not isinstance(params, dict):
            return Cancellation.POST, notification
        return Cancellation.POST, dict(notification, params=dict(params, requestId=life.wire_request["id"]))

    def internal_id(self, purpose: str) -> str:
        """An id for a request of our own, which the session never sees."""
        self._internal_ids += 1
        return f"mcp-sse-{purpose}-{self._internal_ids}"

    def headers(
        self, stamped: Mapping[str, str] | None = None, *, accept: str | None = None, last_event_id: str | None = None
    ) -> dict[str, str]:
        """The headers of an exchange: POST (``accept`` None) or GET/DELETE (``accept`` given)."""
        headers = {"accept": accept or h.ACCEPT_BOTH}
        if accept is None:
            headers["content-type"] = "application/json"
        if self.session_id:
            headers[h.SESSION_ID] = self.session_id
        if self.protocol_version:
            headers[h.PROTOCOL_VERSION] = self.protocol_version
        if last_event_id:
            headers[h.LAST_EVENT_ID] = last_event_id
        if stamped:
            # Lower-case, so a header the session stamps replaces ours instead of going out twice.
            headers.update((name.lower(), value) for name, value in stamped.items())
        return headers
