"""Prometheus metrics of one app instance (its own registry, so tests can build many apps).

Each uvicorn worker counts for itself: scrape every worker, or run one worker per container.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

# Request latencies of a cached answer are ~0.1-1 ms; a Redis miss a few ms.
LATENCY_BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)


class Metrics:
    """Every metric the service exports; children are cached so the hot path skips `labels()`."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.latency = Histogram(
            "recsys_http_request_duration_seconds",
            "Request latency by route template, method and status.",
            ["route", "method", "status"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.fallbacks = Counter(
            "recsys_fallbacks_total",
            "Answers served from a fallback list, by kind (region, tier, global, degraded).",
            ["kind"],
            registry=r,
        )
        self.redis_errors = Counter(
            "recsys_redis_errors_total",
            "Redis errors and timeouts, by operation.",
            ["op"],
            registry=r,
        )
        self.snapshot_age = Gauge(
            "recsys_snapshot_age_seconds",
            "Seconds since the live snapshot was published, by target and channel.",
            ["target", "channel"],
            registry=r,
        )
        self.exposures_buffered = Gauge(
            "recsys_exposures_buffered", "Exposure records waiting to be written.", registry=r
        )
        self.exposures_written = Counter(
            "recsys_exposures_written_total", "Exposure records written to the stream.", registry=r
        )
        self.exposures_dropped = Counter(
            "recsys_exposures_dropped_total",
            "Exposure records dropped because the buffer was full.",
            registry=r,
        )
        self.cache = Counter(
            "recsys_picks_cache_total",
            "In-process picks cache lookups, by level (answer, picks) and result (hit, miss).",
            ["level", "result"],
            registry=r,
        )
        self.auth_failures = Counter(
            "recsys_auth_failures_total",
            "Rejected requests, by reason (missing, invalid, forbidden, rate_limited).",
            ["reason"],
            registry=r,
        )
        self.events = Counter(
            "recsys_events_total",
            "Posted events, by result (stored, duplicate, rejected).",
            ["result"],
            registry=r,
        )
        self.sink_lag = Gauge(
            "recsys_sink_lag",
            "Entries the sink has not acknowledged, by stream (Redis >= 7, or no sink ran yet).",
            ["stream"],
            registry=r,
        )
        self.sink_lag_seconds = Gauge(
            "recsys_sink_lag_seconds",
            "Seconds between a stream's newest entry and the oldest the sink has not acknowledged.",
            ["stream"],
            registry=r,
        )
        self._latency_children: dict[tuple[str, str, int], object] = {}
        self._fallback_children = {
            kind: self.fallbacks.labels(kind) for kind in ("region", "tier", "global", "degraded")
        }
        self.answer_hit = self.cache.labels("answer", "hit")
        self.answer_miss = self.cache.labels("answer", "miss")
        self.picks_hit = self.cache.labels("picks", "hit")
        self.picks_miss = self.cache.labels("picks", "miss")

    def observe(self, route: str, method: str, status: int, seconds: float) -> None:
        """Record one request's latency (children cached by label tuple)."""
        key = (route, method, status)
        child = self._latency_children.get(key)
        if child is None:
            child = self._latency_children[key] = self.latency.labels(route, method, str(status))
        child.observe(seconds)  # type: ignore[attr-defined]

    def fallback(self, kind: str) -> None:
        """Count one answer served from fallback list `kind`."""
        child = self._fallback_children.get(kind)
        if child is None:
            child = self._fallback_children[kind] = self.fallbacks.labels(kind)
        child.inc()

    def render(self) -> bytes:
        """The text exposition of this worker's metrics."""
        return generate_latest(self.registry)
