"""What the service keeps live in-process, and the background task that keeps it fresh.

Every `refresh_interval_s` one pipelined round trip reads the snapshot pointers of every
channel in use, the suspension hash, the experiments and (every `key_cache_ttl_s`) the API key
hashes. A pointer that moved to a new snapshot is loaded and made ready off the request path,
then swapped in: a request holds one `ServedSnapshot` from start to end, so it never mixes two.
When Redis fails, requests skip it for `redis_down_backoff_s` and the refresher keeps probing.
`RECSYS_REDIS_URL=redis+cluster://host:port[,host:port]` serves from a Redis Cluster: the same
commands, sent by a cluster client that routes each key to its node (docs/serving.md).
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import orjson
from redis.asyncio import BlockingConnectionPool, ConnectionPool, Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import MaxConnectionsError, RedisClusterException, RedisError

from recsys.cache.connect import connect_async_cluster, is_cluster_url
from recsys.cache.keys import SUSPENDED, CacheKeys
from recsys.cache.snapshot import Snapshot
from recsys.data.dataset import TARGETS
from serving.auth import KEYS_HASH, KeyCache, KeyRecord, hash_key
from serving.experiments import (
    EXPERIMENTS_HASH,
    ExperimentRegistry,
    decode_stored,
    load_experiments_file,
)
from serving.lru import LRU
from serving.metrics import Metrics
from serving.served import ServedSnapshot
from serving.settings import Settings

log = logging.getLogger("recsys.serving")
# A cluster client raises RedisClusterException (not a RedisError) when no node answers.
REDIS_ERRORS: tuple[type[BaseException], ...] = (
    RedisError,
    RedisClusterException,
    OSError,
    TimeoutError,
)
LOAD_RETRY_S = 5.0


def open_redis(settings: Settings, *, bulk: bool = False) -> Redis:
    """An asyncio client for serving: timeouts in tens of ms, one retry, a bounded pool.

    The request path's pool refuses a connection beyond `redis_max_connections` at once
    (`MaxConnectionsError`: the request answers from memory); a blocking pool's wait costs a
    timer task per checkout, ~25% of a GET's CPU here. Background work waits its turn instead.
    A cluster client bounds connections per node and has no blocking pool: there background
    work gets the same refuse-at-once bound, which its few sequential tasks never reach.
    """
    common: dict[str, Any] = {
        "socket_connect_timeout": settings.redis_connect_timeout_s,
        "retry": Retry(NoBackoff(), settings.redis_retries),
    }
    if is_cluster_url(settings.redis_url):
        limit = settings.redis_bulk_max_connections if bulk else settings.redis_max_connections
        timeout = settings.redis_bulk_timeout_s if bulk else settings.redis_timeout_s
        client: Any = connect_async_cluster(
            settings.redis_url, max_connections=limit, socket_timeout=timeout, **common
        )
        return client  # same command methods as `Redis` for everything served here
    if bulk:
        pool: ConnectionPool = BlockingConnectionPool.from_url(
            settings.redis_url,
            max_connections=settings.redis_bulk_max_connections,
            timeout=settings.redis_bulk_timeout_s,
            socket_timeout=settings.redis_bulk_timeout_s,
            **common,
        )
    else:
        pool = ConnectionPool.from_url(
            settings.redis_url,
            max_connections=settings.redis_max_connections,
            socket_timeout=settings.redis_timeout_s,
            **common,
        )
    return Redis.from_pool(pool)


class LiveState:
    """Live snapshots per (target, channel), suspensions, experiments and API keys."""

    def __init__(self, settings: Settings, metrics: Metrics) -> None:
        self.settings = settings
        self.metrics = metrics
        self.redis: Redis | None = None  # request path
        self.bulk: Redis | None = None  # background work
        self.snapshots: dict[tuple[str, str], ServedSnapshot] = {}
        self._loaded: dict[tuple[str, str], ServedSnapshot] = {}
        self._failed: dict[tuple[str, str], float] = {}
        self.suspended: frozenset[str] = frozenset()
        self.suspended_records: dict[str, dict[str, Any]] = {}
        self.suspension_version = 0
        file_experiments = (
            load_experiments_file(settings.experiments_file) if settings.experiments_file else {}
        )
        self.experiments = ExperimentRegistry(from_file=file_experiments)
        self.keys = KeyCache(ttl_s=settings.key_cache_ttl_s)
        self._unknown_keys: LRU[str, float] = LRU(10_000)
        self.down_until = 0.0
        self.last_refresh: float | None = None

    # ---- connections and health -------------------------------------------------------------
    async def open(self) -> None:
        """Open the clients and try a first refresh (the service starts even if Redis is down)."""
        self.redis = open_redis(self.settings)
        self.bulk = open_redis(self.settings, bulk=True)
        await self.refresh_once()

    async def close(self) -> None:
        """Close both clients."""
        for client in (self.redis, self.bulk):
            if client is not None:
                await client.aclose()

    def redis_usable(self) -> bool:
        """False for a short while after a Redis error: requests answer from memory instead."""
        return self.redis is not None and time.monotonic() >= self.down_until

    def mark_down(self, op: str, exc: BaseException | None = None) -> None:
        """Count a Redis error and keep requests away from Redis for the backoff period.

        An exhausted pool is counted but is no outage: only that request answers from memory.
        """
        if isinstance(exc, MaxConnectionsError):
            self.metrics.redis_errors.labels("pool_exhausted").inc()
            return
        self.metrics.redis_errors.labels(op).inc()
        self.down_until = time.monotonic() + self.settings.redis_down_backoff_s

    def snapshot(self, target: str, channel: str = "current") -> ServedSnapshot | None:
        """The snapshot live on `channel` of `target`, or None."""
        return self.snapshots.get((target, channel))

    # ---- suspensions and keys ---------------------------------------------------------------
    def set_suspended(self, records: dict[str, dict[str, Any]]) -> None:
        """Replace the suspended SKUs; a change bumps the version that filter masks key on."""
        if records.keys() != self.suspended_records.keys():
            self.suspended = frozenset(records)
            self.suspension_version += 1
        self.suspended_records = records

    async def lookup_key(self, key: str) -> KeyRecord | None:
        """A key's record from the in-process copy; an unknown key is looked up in Redis once."""
        record = self.keys.lookup(key)
        if record is not None:
            return record
        digest = hash_key(key)
        seen = self._unknown_keys.get(digest)
        if seen is not None and time.monotonic() - seen < self.settings.key_cache_ttl_s:
            return None
        if not self.redis_usable():
            return None
        try:
            raw = await self.redis.hget(KEYS_HASH, digest)  # type: ignore[union-attr]
        except REDIS_ERRORS as exc:
            self.mark_down("auth", exc)
            return None
        if raw is None:
            self._unknown_keys.put(digest, time.monotonic())
            return None
        record = KeyRecord.from_json(digest, raw)
        self.keys.records[digest] = record
        return record

    # ---- refresh ----------------------------------------------------------------------------
    async def run(self, stop: asyncio.Event) -> None:
        """Refresh until `stop` is set; errors are counted, never raised."""
        while not stop.is_set():
            await asyncio.sleep(self.settings.refresh_interval_s)
            await self.refresh_once()

    async def refresh_once(self) -> bool:
        """One refresh round; True when Redis answered."""
        try:
            changed = await self._refresh()
            if changed:  # an experiment now reads other channels: read their pointers too
                await self._refresh()
        except REDIS_ERRORS as exc:
            self.mark_down("refresh")
            log.warning("refresh from Redis failed: %s: %s", type(exc).__name__, exc)
            return False
        except Exception:  # noqa: BLE001 - the refresher must outlive a bad record
            log.exception("refresh failed")
            return False
        return True

    async def _refresh(self) -> bool:
        client = self.bulk
        assert client is not None, "LiveState.open() was not called"
        channels = {t: self.experiments.channels(t) for t in TARGETS}
        reload_keys = self.keys.stale()
        pipe = client.pipeline(transaction=False)
        for target in TARGETS:  # one GET per pointer: a cluster pipeline refuses MGET
            for channel in channels[target]:
                pipe.get(CacheKeys(target).pointer(channel))
        pipe.hgetall(SUSPENDED)
        pipe.hgetall(EXPERIMENTS_HASH)
        if reload_keys:
            pipe.hgetall(KEYS_HASH)
        replies = await pipe.execute()
        self.down_until = 0.0
        pointers = [(t, c) for t in TARGETS for c in channels[t]]
        n = len(pointers)
        self.set_suspended({k.decode(): _json_or_text(v) for k, v in replies[n].items()})
        changed = self.experiments.set_redis(decode_stored(replies[n + 1]))
        if reload_keys:
            self.keys.replace(replies[n + 2])
        wanted: dict[tuple[str, str], str | None] = {
            key: sid.decode() if sid is not None else None
            for key, sid in zip(pointers, replies[:n], strict=True)
        }
        for (target, channel), sid in wanted.items():
            await self._point(target, channel, sid)
        for key in [k for k in self.snapshots if k not in wanted]:
            del self.snapshots[key]
        in_use = {(s.target, s.id) for s in self.snapshots.values()}
        self._loaded = {k: v for k, v in self._loaded.items() if k in in_use}
        self._update_ages()
        self.last_refresh = time.time()
        return changed

    async def _point(self, target: str, channel: str, sid: str | None) -> None:
        key = (target, channel)
        if sid is None:
            self.snapshots.pop(key, None)
            return
        current = self.snapshots.get(key)
        if current is not None and current.id == sid:
            return
        served = self._loaded.get((target, sid)) or await self._load(target, sid)
        if served is not None:
            self.snapshots[key] = served

    async def _load(self, target: str, sid: str) -> ServedSnapshot | None:
        """Read and prepare a snapshot; None (keep serving the old one) when it is incomplete."""
        if time.monotonic() < self._failed.get((target, sid), 0.0):
            return None
        keys = CacheKeys(target)
        try:
            names = (keys.meta(sid), keys.skus(sid), keys.fallbacks(sid))
        except ValueError as exc:
            log.error("pointer of %s holds a bad snapshot id: %s", target, exc)
            self._failed[(target, sid)] = time.monotonic() + LOAD_RETRY_S
            return None
        pipe = self.bulk.pipeline(transaction=False)  # type: ignore[union-attr]
        pipe.get(names[0])
        pipe.get(names[1])
        pipe.hgetall(names[2])
        meta, skus, fallbacks = await pipe.execute()
        if meta is None or skus is None:
            log.error(
                "%s snapshot %s is incomplete or gone; still serving the old one", target, sid
            )
            self._failed[(target, sid)] = time.monotonic() + LOAD_RETRY_S
            return None
        served = await asyncio.to_thread(_prepare, target, sid, meta, skus, fallbacks)
        self._loaded[(target, sid)] = served
        self._failed.pop((target, sid), None)
        log.info("loaded %s snapshot %s (%d SKUs)", target, sid, served.n_skus)
        return served

    def _update_ages(self) -> None:
        now = time.time()
        for (target, channel), served in self.snapshots.items():
            if served.published_at is not None:
                self.metrics.snapshot_age.labels(target, channel).set(now - served.published_at)


def _prepare(
    target: str, sid: str, meta: bytes, skus: bytes, fallbacks: dict[bytes, bytes]
) -> ServedSnapshot:
    return ServedSnapshot(Snapshot.from_raw(target, sid, meta, skus, fallbacks))


def _json_or_text(raw: bytes) -> dict[str, Any]:
    """A suspension record (JSON written by the admin API or `suspend_sku`), tolerant of text."""
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return {"reason": raw.decode(errors="replace")}
    return value if isinstance(value, dict) else {"reason": str(value)}
