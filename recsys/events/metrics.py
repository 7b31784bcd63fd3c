"""Prometheus metrics of the sink (its own registry; `recsys sink --metrics-port` serves it)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest


class SinkMetrics:
    """Lag per stream, and what the sink wrote, skipped and refused."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        r = self.registry
        self.lag = Gauge(
            "recsys_sink_lag",
            "Stream entries the sink has not acknowledged yet (undelivered + pending), by stream.",
            ["stream"],
            registry=r,
        )
        self.lag_seconds = Gauge(
            "recsys_sink_lag_seconds",
            "Seconds between the newest entry and the oldest unacknowledged one, by stream.",
            ["stream"],
            registry=r,
        )
        self.rows = Counter(
            "recsys_sink_rows_written_total",
            "Rows written to Parquet, by table.",
            ["table"],
            registry=r,
        )
        self.duplicates = Counter(
            "recsys_sink_duplicates_total",
            "Entries skipped because their event id was already written, by table.",
            ["table"],
            registry=r,
        )
        self.rejected = Counter(
            "recsys_sink_rejected_total",
            "Entries that failed the checks, set aside in _sink/rejected.jsonl, by stream.",
            ["stream"],
            registry=r,
        )
        self.trimmed = Counter(
            "recsys_sink_trimmed_total",
            "Pending entries trimmed from the stream before they could be written, by stream.",
            ["stream"],
            registry=r,
        )
        self.parts = Counter(
            "recsys_sink_parts_written_total", "Parquet part files written.", registry=r
        )

    def render(self) -> bytes:
        """The text exposition of these metrics."""
        return generate_latest(self.registry)
