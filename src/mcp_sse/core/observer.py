"""What the core reports as it works, for whoever counts it (the server's Prometheus metrics).

A protocol with a do-nothing default, so the core never imports a metrics library.
"""

from __future__ import annotations

from typing import Protocol

__all__ = ["NullObserver", "Observer"]


class Observer(Protocol):
    def session_opened(self, kind: str) -> None: ...
    def session_closed(self, kind: str) -> None: ...
    def event_appended(self, seconds: float) -> None: ...
    def events_sent(self, live: int, replayed: int) -> None: ...
    def stream_opened(self) -> None: ...
    def stream_closed(self) -> None: ...
    def stream_taken_over(self) -> None: ...
    def resumed(self) -> None: ...
    def replay_missed(self) -> None: ...
    def slow_consumer_closed(self) -> None: ...


class NullObserver:
    def session_opened(self, kind: str) -> None:
        pass

    def session_closed(self, kind: str) -> None:
        pass

    def event_appended(self, seconds: float) -> None:
        pass

    def events_sent(self, live: int, replayed: int) -> None:
        pass

    def stream_opened(self) -> None:
        pass

    def stream_closed(self) -> None:
        pass

    def stream_taken_over(self) -> None:
        pass

    def resumed(self) -> None:
        pass

    def replay_missed(self) -> None:
        pass

    def slow_consumer_closed(self) -> None:
        pass
