"""Exposure records of served feeds, buffered in-process and written to a Redis Stream.

A request only appends a small record to a bounded deque (no Redis round trip); a background
task writes them in batches (one script call per batch, XADD with an approximate MAXLEN), and
the shutdown flushes what is left. When Redis is down the records wait in the buffer; when the
buffer is full the oldest are dropped and counted (`recsys_exposures_dropped_total`).

Stream entry fields (all strings): request_id, ts (epoch ms), target, agent_id or customer_id,
variant, experiment (empty when none), snapshot, model_version, sku_ids (JSON list, served
order), positions (JSON list of the 1-based ranks, aligned with sku_ids), source.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from dataclasses import dataclass

import orjson
from redis.asyncio import Redis

from serving.live import REDIS_ERRORS, LiveState
from serving.metrics import Metrics
from serving.served import ServedSnapshot
from serving.settings import Settings

log = logging.getLogger("recsys.serving")
USER_FIELD = {"agent": "agent_id", "customer": "customer_id"}
# One round trip and one command per batch: redis-py packs each command's arguments in Python
# (~11 fields per record), which cost more CPU than serving the request itself.
_XADD_MANY = """
local n = 0
for _, fields in ipairs(cjson.decode(ARGV[2])) do
  redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[1], '*', unpack(fields))
  n = n + 1
end
return n
"""


@dataclass(frozen=True, slots=True)
class Exposure:
    """One served feed (SKU ids are looked up at write time, off the request path)."""

    request_id: str
    ts_ms: int
    target: str
    user_id: str
    variant: str | None
    experiment: str | None
    snapshot: ServedSnapshot
    rows: list[int]
    source: str

    def fields(self) -> list[str]:
        """The stream entry as a flat [field, value, ...] list."""
        skus = self.snapshot.sku_ids[self.rows].tolist() if self.rows else []
        version = self.snapshot.model_version
        return [
            "request_id", self.request_id,
            "ts", str(self.ts_ms),
            "target", self.target,
            USER_FIELD[self.target], self.user_id,
            "variant", self.variant or "",
            "experiment", self.experiment or "",
            "snapshot", self.snapshot.id,
            "model_version", "" if version is None else str(version),
            "sku_ids", orjson.dumps(skus).decode(),
            "positions", orjson.dumps(list(range(1, len(skus) + 1))).decode(),
            "source", self.source,
        ]  # fmt: skip


class ExposureBuffer:
    """Bounded in-process queue of exposures with a batch writer."""

    def __init__(self, settings: Settings, metrics: Metrics) -> None:
        self.settings = settings
        self.metrics = metrics
        self._items: deque[Exposure] = deque()

    def __len__(self) -> int:
        return len(self._items)

    def add(self, exposure: Exposure) -> None:
        """Queue one record; when full, drop the oldest (counted)."""
        items = self._items
        if len(items) >= self.settings.exposure_buffer_max:
            items.popleft()
            self.metrics.exposures_dropped.inc()
        items.append(exposure)

    async def flush(self, client: Redis) -> int:
        """Write every queued record in pipelined batches; return how many were written.

        On a Redis error the unwritten batch goes back to the front of the queue and the error
        is raised.
        """
        s = self.settings
        written = 0
        items = self._items
        script = client.register_script(_XADD_MANY)
        while items:
            batch = [items.popleft() for _ in range(min(s.exposure_batch_size, len(items)))]
            payload = orjson.dumps([e.fields() for e in batch])
            try:
                await script(keys=[s.exposure_stream], args=[s.exposure_stream_maxlen, payload])
            except BaseException:
                room = s.exposure_buffer_max - len(items)
                keep = batch[-room:] if room > 0 else []
                items.extendleft(reversed(keep))
                self.metrics.exposures_dropped.inc(len(batch) - len(keep))
                self.metrics.exposures_buffered.set(len(items))
                raise
            written += len(batch)
            self.metrics.exposures_written.inc(len(batch))
        self.metrics.exposures_buffered.set(len(items))
        return written

    async def run(self, live: LiveState, stop: asyncio.Event) -> None:
        """Flush every `exposure_flush_interval_s` until `stop` is set; errors are counted."""
        while not stop.is_set():
            await asyncio.sleep(self.settings.exposure_flush_interval_s)
            self.metrics.exposures_buffered.set(len(self._items))
            if not self._items or live.bulk is None or not live.redis_usable():
                continue
            try:
                await self.flush(live.bulk)
            except REDIS_ERRORS as exc:
                live.mark_down("xadd")
                log.warning("exposure flush failed (%d waiting): %s", len(self._items), exc)
