"""The per-event metrics kept as plain integers still render as Prometheus counters and a histogram."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

from mcp_sse.server.metrics import Metrics


def samples(metrics: Metrics) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for family in text_string_to_metric_families(metrics.render().decode()):
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


def test_appends_fill_le_buckets_cumulatively_and_sends_count_by_kind() -> None:
    metrics = Metrics(lambda: 0.0)
    for seconds in (0.00001, 0.00002, 1.0):  # on a bound, between two, beyond the last
        metrics.event_appended(seconds)
    metrics.events_sent(live=5, replayed=2)
    metrics.events_sent(live=1, replayed=0)
    got = samples(metrics)
    bucket = "mcp_sse_store_append_seconds_bucket"
    assert got[(bucket, (("le", "1e-05"),))] == 1, "a value on a bound counts in that bucket (le)"
    assert got[(bucket, (("le", "5e-05"),))] == 2
    assert got[(bucket, (("le", "0.5"),))] == 2
    assert got[(bucket, (("le", "+Inf"),))] == 3
    assert got[("mcp_sse_store_append_seconds_count", ())] == 3
    assert abs(got[("mcp_sse_store_append_seconds_sum", ())] - 1.00003) < 1e-9
    assert got[("mcp_sse_events_appended_total", ())] == 3
    assert got[("mcp_sse_events_sent_total", (("kind", "live"),))] == 6
    assert got[("mcp_sse_events_sent_total", (("kind", "replayed"),))] == 2
    assert metrics.totals()["mcp_sse_events_appended_total"] == 3


def test_open_streams_are_counted_up_and_down() -> None:
    metrics = Metrics(lambda: 0.0)
    for _ in range(3):
        metrics.stream_opened()
    metrics.stream_closed()
    assert samples(metrics)[("mcp_sse_streams_open", ())] == 2
