"""Transport metrics in Prometheus format (``/metrics``): open sessions and streams, replays, replay
misses, takeovers, slow consumers, rejections; what no other MCP transport exports.

One registry per app, so several apps in one process (tests, mounts) never collide.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Callable, Iterator

from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.metrics_core import CounterMetricFamily, HistogramMetricFamily, Metric

__all__ = ["CONTENT_TYPE", "EventCounts", "Metrics"]

CONTENT_TYPE = CONTENT_TYPE_LATEST.encode()


class Metrics:
    """Implements ``core.observer.Observer`` and counts rejections at the edge."""

    def __init__(self, queue_depth: Callable[[], float]) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.sessions = Gauge("mcp_sse_sessions_open", "Sessions open, by transport", ["transport"], registry=r)
        self.sessions_total = Counter("mcp_sse_sessions", "Sessions opened, by transport", ["transport"], registry=r)
        # A plain count read at scrape time: a stream opens and closes on every call, and a
        # prometheus_client Gauge takes a lock on each change.
        self.streams_open = 0
        streams = Gauge("mcp_sse_streams_open", "SSE connections writing a stream now", registry=r)
        streams.set_function(lambda: self.streams_open)
        self.events = EventCounts()
        r.register(self.events)
        self.resumes = Counter("mcp_sse_resumes", "Streams resumed with Last-Event-ID", registry=r)
        self.misses = Counter("mcp_sse_replay_misses", "Resumes refused: events no longer kept (410)", registry=r)
        self.takeovers = Counter(
            "mcp_sse_stream_takeovers", "Reconnects seen: a new connection took over a stream", registry=r
        )
        self.slow = Counter(
            "mcp_sse_slow_consumers_closed", "Connections closed for falling behind the log", registry=r
        )
        self.rejects = Counter(
            "mcp_sse_rejects", "Requests refused, by status and reason", ["status", "reason"], registry=r
        )
        depth = Gauge("mcp_sse_inbound_queue_depth", "Client messages waiting for the upstream", registry=r)
        depth.set_function(queue_depth)

    def render(self) -> bytes:
        return generate_latest(self.registry)

    def totals(self) -> dict[str, float]:
        """Each counter and gauge summed over its labels, by sample name; ``events_sent`` by kind.

        For the dashboard, which reads these once a second: cheap enough, and no second set of counters.
        """
        out: dict[str, float] = {}
        for family in self.registry.collect():
            for sample in family.samples:
                if sample.name.endswith(("_created", "_bucket")):
                    continue
                key = sample.name
                if kind := sample.labels.get("kind"):
                    key = f"{key}:{kind}"
                out[key] = out.get(key, 0.0) + sample.value
        return out

    def rejected(self, status: int, reason: str) -> None:
        self.rejects.labels(str(status), reason).inc()

    # --- Observer ---

    def session_opened(self, kind: str) -> None:
        self.sessions.labels(kind).inc()
        self.sessions_total.labels(kind).inc()

    def session_closed(self, kind: str) -> None:
        self.sessions.labels(kind).dec()

    def event_appended(self, seconds: float) -> None:
        self.events.appended(seconds)

    def events_sent(self, live: int, replayed: int) -> None:
        self.events.live += live
        self.events.replayed += replayed

    def stream_opened(self) -> None:
        self.streams_open += 1

    def stream_closed(self) -> None:
        self.streams_open -= 1

    def stream_taken_over(self) -> None:
        self.takeovers.inc()

    def resumed(self) -> None:
        self.resumes.inc()

    def replay_missed(self) -> None:
        self.misses.inc()

    def slow_consumer_closed(self) -> None:
        self.slow.inc()


APPEND_BUCKETS = (0.00001, 0.00005, 0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5)


class EventCounts:
    """The per-event metrics as plain integers, turned into Prometheus samples only when scraped.

    ``prometheus_client``'s Counter and Histogram take a lock on every update; at one update per
    event that was a tenth of the server's CPU per notification (W1 in docs/benchmarks.md). The loop
    is the only writer, so plain integers are exact.
    """

    def __init__(self) -> None:
        self.appended_count = 0
        self.append_seconds = 0.0
        self.append_buckets = [0] * (len(APPEND_BUCKETS) + 1)  # the last one is +Inf
        self.live = 0
        self.replayed = 0

    def appended(self, seconds: float) -> None:
        self.appended_count += 1
        self.append_seconds += seconds
        self.append_buckets[bisect_left(APPEND_BUCKETS, seconds)] += 1

    def collect(self) -> Iterator[Metric]:
        yield CounterMetricFamily(
            "mcp_sse_events_appended", "Events appended to the event log", value=self.appended_count
        )
        sent = CounterMetricFamily(
            "mcp_sse_events_sent", "Events written to clients, live or replayed", labels=["kind"]
        )
        sent.add_metric(["live"], self.live)
        sent.add_metric(["replayed"], self.replayed)
        yield sent
        cumulative, buckets = 0, []
        for bound, count in zip([*map(str, APPEND_BUCKETS), "+Inf"], self.append_buckets, strict=True):
            cumulative += count
            buckets.append((bound, cumulative))
        yield HistogramMetricFamily(
            "mcp_sse_store_append_seconds",
            "Time to append one event to the event store",
            buckets=buckets,
            sum_value=self.append_seconds,
        )
