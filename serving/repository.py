"""`PicksRepository`: every Redis read of the request path, the caches and the fallbacks.

A request resolves its channel's live snapshot once (in memory), then:

1. answer cache: (snapshot, user, k, region, tier, suspensions) → finished picks JSON, for
   requests without `category`/`exclude` (the common storefront call);
2. picks cache: (snapshot, user) → decoded list, or "no list" (snapshots are immutable);
3. Redis: one HGET of the user's bucket, only on a picks-cache miss (misses in flight together
   share one pipelined round trip, `serving.batcher`).

Serve-time filters (suspended or not active, not sold in the region, excluded, other category)
drop picks, and the answer is refilled from deeper in the list, then from the fallback lists.
If Redis is unreachable the answer comes from the snapshot's fallback lists already in memory
(`source: fallback:degraded`).
"""

from __future__ import annotations

import logging
import time
from typing import Final

import numpy as np
import orjson

from recsys.cache.codec import decode_arrays
from recsys.cache.keys import bucket_of
from serving.answer import Selection, render, select
from serving.batcher import HgetBatcher
from serving.errors import ApiError
from serving.exposures import Exposure, ExposureBuffer
from serving.live import REDIS_ERRORS, LiveState
from serving.lru import LRU
from serving.metrics import Metrics
from serving.params import PicksQuery
from serving.served import PickEntry, ServedSnapshot
from serving.settings import Settings

log = logging.getLogger("recsys.serving")
NO_LIST: Final = PickEntry(np.zeros(0, np.int32), np.zeros(0, np.float32), np.zeros(0, "V12"))
_USER_KEY = {"agent": b'{"agent_id":"', "customer": b'{"customer_id":"'}
_NULL = b"null"


def _source(chain: list[tuple[str, PickEntry]], selection: Selection, degraded: bool) -> str:
    """`personal` when the first pick comes from the user's list, else `fallback:<kind>`."""
    if degraded:
        return "fallback:degraded"
    first = selection[0][0] if selection else (chain[0][1] if chain else None)
    kind = next((kind for kind, e in chain if e is first), "global")
    return kind if kind == "personal" else f"fallback:{kind}"


class PicksRepository:
    """Reads picks and similar SKUs for the routes, with caching, filters and fallbacks."""

    def __init__(
        self, settings: Settings, live: LiveState, metrics: Metrics, exposures: ExposureBuffer
    ) -> None:
        self.live = live
        self.metrics = metrics
        self.exposures = exposures
        self.batcher = HgetBatcher(lambda: live.redis)
        self.entries: LRU[tuple[str, str, str], PickEntry] = LRU(settings.picks_cache_size)
        self.answers: LRU[tuple[object, ...], tuple[bytes, list[int], str]] = LRU(
            settings.answer_cache_size
        )

    def _snapshot(self, target: str, channel: str) -> ServedSnapshot:
        served = self.live.snapshot(target, channel) or self.live.snapshot(target)
        if served is None:
            raise ApiError(
                503,
                f"no {target} snapshot is live yet (publish one, or wait for Redis)",
                headers={"Retry-After": "1"},
            )
        return served

    async def _entry(
        self, served: ServedSnapshot, kind: str, member: str
    ) -> tuple[PickEntry | None, bool]:
        """(list or None, degraded): from the picks cache, else one HGET."""
        key = (served.id, kind, member)
        cached = self.entries.get(key)
        if cached is not None:
            self.metrics.picks_hit.inc()
            return (None if cached is NO_LIST else cached), False
        self.metrics.picks_miss.inc()
        live = self.live
        if not live.redis_usable():
            return None, True
        keys = served.snapshot.keys
        if kind == "picks":
            name = keys.picks(served.id, bucket_of(member, int(served.meta["n_buckets"])))
        elif served.n_similar_buckets:
            name = keys.similar(served.id, bucket_of(member, served.n_similar_buckets))
        else:
            return None, False
        try:
            raw = await self.batcher.hget(name, member)
        except REDIS_ERRORS as exc:
            live.mark_down("hget", exc)
            return None, True
        entry = NO_LIST
        if raw is not None:
            try:
                entry = served.entry(decode_arrays(raw))
            except ValueError as exc:  # a corrupt value: serve the fallback, say why in the log
                log.error("bad encoded %s for %r in snapshot %s: %s", kind, member, served.id, exc)
        self.entries.put(key, entry)
        return (None if entry is NO_LIST else entry), False

    async def picks(
        self,
        target: str,
        user_id: str,
        query: PicksQuery,
        *,
        request_id: str,
    ) -> bytes:
        """The JSON body of a picks answer for one agent or customer (see module docstring)."""
        k, category, exclude, region, tier = query
        live = self.live
        assigned = live.experiments.assign(target, user_id)
        experiment, variant = assigned if assigned is not None else (None, None)
        served = self._snapshot(target, variant.channel if variant is not None else "current")
        version = live.suspension_version
        cacheable = category is None and not exclude
        akey = (served.id, target, user_id, k, region, tier, version)
        hit = self.answers.get(akey) if cacheable else None
        if hit is not None:
            self.metrics.answer_hit.inc()
            picks_json, rows, source = hit
        else:
            self.metrics.answer_miss.inc()
            entry, degraded = await self._entry(served, "picks", user_id)
            chain = served.fallback_chain(region, tier)
            if entry is not None:
                chain.insert(0, ("personal", entry))
            allowed = served.allowed(region, category, live.suspended, version)
            if exclude:
                allowed = allowed.copy()
                rows_out = [r for r in map(served.row_of.get, exclude) if r is not None]
                allowed[rows_out] = False
            selection = select([e for _, e in chain], allowed, k)
            picks_json, rows = render(served, selection)
            source = _source(chain, selection, degraded)
            if cacheable and not degraded:
                self.answers.put(akey, (picks_json, rows, source))
        if source != "personal":
            self.metrics.fallback(source[len("fallback:") :])
        self.exposures.add(
            Exposure(
                request_id=request_id,
                ts_ms=int(time.time() * 1000),
                target=target,
                user_id=user_id,
                variant=variant.name if variant is not None else None,
                experiment=experiment.name if experiment is not None else None,
                snapshot=served,
                rows=rows,
                source=source,
            )
        )
        return b"".join(
            (
                _USER_KEY[target],
                user_id.encode(),  # a safe id (checked by the route): no escaping needed
                b'","picks":',
                picks_json,
                served.static_json,
                b',"variant":',
                orjson.dumps(variant.name) if variant is not None else _NULL,
                b',"request_id":"',
                request_id.encode(),
                b'","source":"',
                source.encode(),
                b'"}',
            )
        )

    async def similar(self, sku_id: str, k: int, *, region: str | None, request_id: str) -> bytes:
        """The JSON body of SKUs similar to `sku_id` (agent snapshot), with fallbacks."""
        served = self._snapshot("agent", "current")
        live = self.live
        entry, degraded = await self._entry(served, "similar", sku_id)
        allowed = served.allowed(region, None, live.suspended, live.suspension_version)
        row = served.row_of.get(sku_id)
        if entry is not None:
            lists, source = [entry], "similar"
        else:
            lists = [e for _, e in served.fallback_chain(region, None)]
            source = "fallback:degraded" if degraded else "fallback:global"
            if row is not None and served.categories[row] is not None:
                allowed = allowed & (served.categories == served.categories[row])
                source = "fallback:degraded" if degraded else "fallback:category"
            self.metrics.fallback(source[len("fallback:") :])
        if row is not None:
            allowed = allowed.copy()
            allowed[row] = False  # a SKU is not similar to itself
        picks_json, _ = render(served, select(lists, allowed, k))
        return b"".join(
            (
                b'{"sku_id":"',
                sku_id.encode(),
                b'","similar":',
                picks_json,
                served.static_json,
                b',"request_id":"',
                request_id.encode(),
                b'","source":"',
                source.encode(),
                b'"}',
            )
        )
