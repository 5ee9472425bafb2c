"""How the client waits, retries and gives up: one typed object with safe defaults."""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["READ_ONLY_METHODS", "ReconnectPolicy"]

READ_ONLY_METHODS = frozenset(
    {
        "ping",
        "tools/list",
        "prompts/list",
        "prompts/get",
        "resources/list",
        "resources/templates/list",
        "resources/read",
        "completion/complete",
    }
)
"""Methods whose effect does not change if the server runs them twice: safe to send again."""


@dataclass(frozen=True, slots=True)
class ReconnectPolicy:
    """Reconnection and timeout policy.

    Waits grow exponentially with full jitter up to ``max_delay``; a server's ``retry`` field
    replaces the next wait. A stream gives up only after ``budget`` seconds of failing to
    reconnect, not after a fixed number of tries: a fixed count gives up during a short outage
    when the waits are short, and waits far too long when they are long.
    """

    initial_delay: float = 0.25
    max_delay: float = 15.0
    multiplier: float = 2.0
    budget: float = 120.0
    jitter: bool = True
    connect_timeout: float = 10.0
    response_timeout: float = 300.0
    """How long to wait for a response's headers (a JSON-mode server answers only when done)."""
    idle_timeout: float = 60.0
    """No byte on an open stream, not even a keepalive comment, for this long: the stream is dead."""
    reinitialize: bool = True
    """On 404 for a known session, open a new one with the original initialize parameters."""
    retry_methods: frozenset[str] = field(default=READ_ONLY_METHODS)
    retry_tools: frozenset[str] = frozenset()
    """Tool names whose calls may be sent again after a break that may have reached the server."""
    trust_tool_annotations: bool = True
    """Treat tools the server annotates ``idempotentHint`` or ``readOnlyHint`` as safe to resend."""

    def __post_init__(self) -> None:
        if self.initial_delay < 0 or self.max_delay < self.initial_delay or self.multiplier < 1:
            raise ValueError("need 0 <= initial_delay <= max_delay and multiplier >= 1")
        if self.budget < 0 or self.idle_timeout <= 0 or self.connect_timeout <= 0 or self.response_timeout <= 0:
            raise ValueError("timeouts must be positive")
