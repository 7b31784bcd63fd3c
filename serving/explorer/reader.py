"""The explorer's reads: an agent's feed as served, any snapshot's feed, profiles, SKU stats.

The feed "as served" goes through the service's own `PicksRepository`, so the explorer shows
exactly what the agent gets (her A/B variant, filters, refill, fallbacks), with two differences:
no exposure is logged (a merchandiser's look is not a customer seeing the feed) and its caches
and counters are its own (they do not skew the service's metrics). A comparison reads any
channel or kept snapshot and selects the same way (`serving.answer.select`).

Profiles and SKU return figures are records the publisher writes beside the picks
(docs/cache-contract.md, section 11); snapshots published without them still show their picks.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

import orjson
from redis.asyncio import Redis

from recsys.cache.codec import decode_arrays
from recsys.cache.keys import CacheKeys, bucket_of, check_channel, check_snapshot_id
from recsys.cache.snapshot import Snapshot
from serving.answer import render, select
from serving.errors import ApiError
from serving.explorer.views import Feed, build_cards
from serving.exposures import Exposure, ExposureBuffer
from serving.lru import LRU
from serving.metrics import Metrics
from serving.params import PicksQuery
from serving.repository import PicksRepository
from serving.served import ServedSnapshot
from serving.services import Services

TARGET = "agent"
KEPT_SNAPSHOTS = 4  # snapshots the explorer keeps decoded besides the live ones
LISTED_SNAPSHOTS = 20


class NoExposures(ExposureBuffer):
    """An exposure sink that keeps nothing: explorer views are not shown to customers."""

    def add(self, exposure: Exposure) -> None:
        """Drop the record."""
        return None


@dataclass(frozen=True)
class SnapshotInfo:
    """A published snapshot of a target and the pointers that name it."""

    target: str
    snapshot: str
    meta: dict[str, Any]
    pointers: tuple[str, ...]


def profile_location(snapshot: Snapshot, agent_id: str) -> tuple[str, str]:
    """(hash key, field) of an agent's profile: beside her picks, in the same bucket."""
    bucket = bucket_of(agent_id, int(snapshot.meta["n_buckets"]))
    return snapshot.keys.profiles(snapshot.snapshot_id, bucket), agent_id


def _unavailable(what: str) -> ApiError:
    return ApiError(503, f"{what}: Redis is not connected", headers={"Retry-After": "1"})


class ExplorerReader:
    """Reads what the explorer pages show, through the service's live state and repository."""

    def __init__(self, svc: Services) -> None:
        self.live = svc.live
        settings = svc.settings.model_copy(
            update={"picks_cache_size": 1_000, "answer_cache_size": 0}
        )
        metrics = Metrics()
        self.repo = PicksRepository(settings, svc.live, metrics, NoExposures(settings, metrics))
        self._decoded: LRU[tuple[str, str], ServedSnapshot] = LRU(KEPT_SNAPSHOTS)

    @property
    def client(self) -> Redis:
        """The background client (seconds of timeout: these pages are not the hot path)."""
        if self.live.bulk is None:
            raise _unavailable("explorer")
        return self.live.bulk

    # ---- snapshots ---------------------------------------------------------------------------
    async def served(self, target: str, snapshot: str) -> ServedSnapshot:
        """A snapshot ready to read: a live one, one decoded before, or loaded now.

        Raises
        ------
        ApiError
            404 when the snapshot is not (or no longer) in Redis.
        """
        for live in self.live.snapshots.values():
            if live.target == target and live.id == snapshot:
                return live
        cached = self._decoded.get((target, snapshot))
        if cached is not None:
            return cached
        keys = CacheKeys(target)
        pipe = self.client.pipeline(transaction=False)
        pipe.get(keys.meta(snapshot))
        pipe.get(keys.skus(snapshot))
        pipe.hgetall(keys.fallbacks(snapshot))
        meta, skus, fallbacks = await pipe.execute()
        if meta is None or skus is None:
            raise ApiError(404, f"{target} snapshot {snapshot} is not in Redis (expired?)")
        served = await asyncio.to_thread(
            lambda: ServedSnapshot(Snapshot.from_raw(target, snapshot, meta, skus, fallbacks))
        )
        self._decoded.put((target, snapshot), served)
        return served

    async def pointer(self, target: str, channel: str) -> str | None:
        """The snapshot id live on `channel` (read from Redis, not the refresher's copy)."""
        raw = await self.client.get(CacheKeys(target).pointer(channel))
        return raw.decode() if raw is not None else None

    async def channels(self, target: str) -> list[str]:
        """ "current" and every named A/B channel of the target."""
        names = await self.client.smembers(CacheKeys(target).channels)
        return ["current", *sorted(n.decode() for n in names)]

    async def snapshots(self, target: str) -> list[SnapshotInfo]:
        """Published snapshots still in Redis, newest first, with the pointers naming them."""
        keys = CacheKeys(target)
        channels = await self.channels(target)
        pipe = self.client.pipeline(transaction=False)
        pipe.zrevrange(keys.snapshots, 0, LISTED_SNAPSHOTS - 1)
        for name in [*(keys.pointer(c) for c in channels), keys.previous]:
            pipe.get(name)  # one GET each: a Redis Cluster pipeline refuses MGET
        ids, *pointed = await pipe.execute()
        names: dict[str, list[str]] = {}
        for name, sid in zip([*channels, "previous"], pointed, strict=True):
            if sid is not None:
                names.setdefault(sid.decode(), []).append(name)
        snapshots = [i.decode() for i in ids]
        snapshots += [s for s in names if s not in snapshots]
        pipe = self.client.pipeline(transaction=False)
        for sid in snapshots:
            pipe.get(keys.meta(sid))
        metas = await pipe.execute()
        return [
            SnapshotInfo(target, sid, orjson.loads(meta), tuple(names.get(sid, ())))
            for sid, meta in zip(snapshots, metas, strict=True)
            if meta is not None
        ]

    async def resolve(self, target: str, source: str) -> tuple[ServedSnapshot, str]:
        """The snapshot a compare side names (`channel:<name>` or `snapshot:<id>`), and a label.

        Raises
        ------
        ApiError
            422 for a malformed source, 404 when nothing is live on the channel.
        """
        kind, _, name = source.partition(":")
        try:
            if kind == "channel":
                sid = await self.pointer(target, check_channel(name))
                if sid is None:
                    raise ApiError(404, f"nothing is live on channel {name!r}")
                return await self.served(target, sid), f"channel {name}"
            if kind == "snapshot":
                return await self.served(target, check_snapshot_id(name)), f"snapshot {name}"
        except ValueError as exc:
            raise ApiError(422, f"compare: {exc}") from None
        raise ApiError(422, f"compare: use channel:<name> or snapshot:<id>, got {source!r}")

    # ---- published records -------------------------------------------------------------------
    async def profile(self, served: ServedSnapshot, agent_id: str) -> dict[str, Any] | None:
        """The agent's published profile, or None (unknown agent, or none published)."""
        if "profiles" not in served.meta.get("counts", {}):
            return None
        raw = await self.client.hget(*profile_location(served.snapshot, agent_id))
        return orjson.loads(raw) if raw is not None else None

    async def sku_stats(self, served: ServedSnapshot, sku_ids: list[str]) -> dict[str, Any] | None:
        """Return figures of `sku_ids` (SKUs without are left out); None if none are published."""
        if "sku_stats" not in served.meta.get("counts", {}):
            return None
        if not sku_ids:
            return {}
        key = served.snapshot.keys.sku_stats(served.id)
        values = await self.client.hmget(key, sku_ids)
        return {s: orjson.loads(v) for s, v in zip(sku_ids, values, strict=True) if v is not None}

    # ---- feeds -------------------------------------------------------------------------------
    async def as_served(
        self, agent_id: str, k: int, region: str | None, tier: str | None, request_id: str
    ) -> Feed:
        """Her feed exactly as the picks route answers it (variant, filters, fallbacks)."""
        query = PicksQuery(k, None, (), region, tier)
        body = orjson.loads(await self.repo.picks(TARGET, agent_id, query, request_id=request_id))
        served = await self.served(TARGET, body["snapshot"])
        return await self._feed(served, body["picks"], "as served", body["source"], body)

    async def feed_from(
        self,
        served: ServedSnapshot,
        agent_id: str,
        k: int,
        region: str | None,
        tier: str | None,
        label: str,
    ) -> Feed:
        """Her feed from one snapshot: her list, refilled from the fallbacks, live filters."""
        key, member = served.snapshot.picks_location(agent_id)
        raw = await self.client.hget(key, member)
        chain = served.fallback_chain(region, tier)
        personal = served.entry(decode_arrays(raw)) if raw is not None else None
        if personal is not None:
            chain.insert(0, ("personal", personal))
        live = self.live
        allowed = served.allowed(region, None, live.suspended, live.suspension_version)
        selection = select([e for _, e in chain], allowed, k)
        picks_json, _ = render(served, selection)
        first = selection[0][0] if selection else None
        kind = next((kind for kind, e in chain if e is first), "global")
        source = kind if kind == "personal" else f"fallback:{kind}"
        return await self._feed(served, orjson.loads(picks_json), label, source, {})

    async def _feed(
        self,
        served: ServedSnapshot,
        picks: list[dict[str, Any]],
        label: str,
        source: str,
        body: dict[str, Any],
    ) -> Feed:
        stats = await self.sku_stats(served, [str(p["sku_id"]) for p in picks])
        version = served.model_version
        return Feed(
            label=label,
            snapshot=served.id,
            model_version=None if version is None else str(version),
            source=source,
            variant=body.get("variant"),
            cards=build_cards(served, picks, stats),
        )
