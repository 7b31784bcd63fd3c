"""Service settings from the environment (prefix `RECSYS_`), e.g. `RECSYS_REDIS_URL`."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """How the service connects, caches and limits; defaults are meant for one small worker."""

    model_config = SettingsConfigDict(env_prefix="RECSYS_", env_file=".env", extra="ignore")

    # One server (redis://, rediss://) or a Redis Cluster (redis+cluster://host:port[,host:port]).
    redis_url: str = Field("redis://127.0.0.1:6379/0", description="Redis of the snapshots")
    # Serving, not batch: fail in tens of milliseconds, retry at most once, bounded pool (a
    # request finding all connections busy answers from memory rather than queue).
    redis_connect_timeout_s: float = 0.05
    redis_timeout_s: float = 0.05
    redis_max_connections: int = 64
    redis_retries: int = 1
    # How often the live pointer, suspensions and experiments are re-read (seconds).
    refresh_interval_s: float = 0.5
    # A second, small client for background work (snapshot loads, exposure batches, refresh):
    # a SKU table of 100k rows is megabytes, which a 50 ms read timeout would cut off.
    redis_bulk_timeout_s: float = 2.0
    redis_bulk_max_connections: int = 4
    # After a Redis error, requests skip Redis for this long (the refresher probes meanwhile).
    redis_down_backoff_s: float = 1.0
    # In-process cache of decoded picks per (snapshot, user): ~2.8 KB each (100 picks);
    # snapshots are immutable, so it needs no invalidation.
    picks_cache_size: int = Field(100_000, ge=0)
    # Finished answers per (snapshot, user, k, region, tier) without per-request filters,
    # valid until the snapshot or the suspension set changes: ~3.5 KB each at k=20.
    answer_cache_size: int = Field(20_000, ge=0)
    key_cache_ttl_s: float = 5.0
    rate_limit_per_s: float = 200.0
    rate_limit_burst: float = 400.0
    auth_enabled: bool = True
    experiments_file: Path | None = None
    exposure_stream: str = "events:v1:exposures"
    exposure_stream_maxlen: int = 1_000_000
    # Exposures are buffered in-process and written in pipelined batches off the request path.
    exposure_flush_interval_s: float = 0.2
    exposure_batch_size: int = Field(500, ge=1)
    exposure_buffer_max: int = Field(100_000, ge=1)
    # POST /v1/events writes to this stream; `recsys sink` drains it (docs/events.md).
    event_stream: str = "events:v1:events"
    event_stream_maxlen: int = Field(2_000_000, ge=1)
    # An event id is remembered this long: a re-sent event is stored once (the sink also drops
    # ids already written to the event's day).
    event_dedupe_ttl_s: int = Field(172_800, ge=1)
    # A batch of 1,000 events is ~250 KB of JSON: the events route has its own body cap.
    events_max_body_bytes: int = Field(2_097_152, ge=1)
    # The sink's consumer group, whose lag /metrics shows, read every `sink_lag_interval_s`.
    sink_group: str = "parquet-sink"
    sink_lag_interval_s: float = Field(10.0, gt=0)
    default_k: int = 20
    # Request bodies above this are refused with 413 (admin bodies are a few hundred bytes).
    max_body_bytes: int = Field(65_536, ge=1)
    access_log: bool = True
    # Expose `GET /v1/_bench/constant` (a constant body) for the serving benchmark only.
    bench_endpoints: bool = False
    bench_body_bytes: int = Field(2_500, ge=2)
    # Picks explorer (`/explorer`): where `recsys ab-report` writes its report.html files, the
    # MLflow UI the snapshot meta links to, and how long a login lasts.
    reports_dir: Path | None = None
    mlflow_ui_url: str = "http://127.0.0.1:5000"
    explorer_session_ttl_s: int = Field(8 * 3600, ge=60)

    @field_validator("redis_url")
    @classmethod
    def _known_redis_url(cls, url: str) -> str:
        """Refuse a URL no client can open at start, not at the first request."""
        from recsys.cache.connect import parse_redis_url

        parse_redis_url(url)
        return url


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings from the environment (tests pass their own to `create_app`)."""
    return Settings()
