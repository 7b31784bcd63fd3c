"""Reading a published snapshot: pointer, meta, SKU table, picks and the suspension hash.

A reader reads `current` once, then only keys of that snapshot (never `current` again for the
same answer), so it cannot mix two snapshots. Snapshots are immutable once live: the meta, SKU
table and fallback lists can be cached per snapshot id for as long as the id stays current.
The I/O helpers take a synchronous `redis.Redis` or `redis.cluster.RedisCluster` (they use only
single-key commands and non-transactional pipelines); an asyncio service issues the same
GET/HGET commands itself and hands the bytes to `Snapshot.from_raw` and `decode_arrays`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np
import orjson
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from recsys.cache.codec import PickArrays, decode_arrays
from recsys.cache.keys import SUSPENDED, CacheKeys, bucket_of
from recsys.columns import Columns

C = Columns
# Serve-time columns of the SKU table, in order.
SKU_TABLE_COLUMNS: tuple[str, ...] = (
    C.SKU_ID,
    C.TITLE,
    C.CATEGORY,
    C.SERIES,
    C.BRAND,
    C.PRICE,
    C.STATUS,
    C.REGIONS,
)
SELLABLE_STATUS = "active"


class SnapshotMissingError(LookupError):
    """A snapshot, or one of its keys, is not in Redis."""


def encode_sku_table(skus: pd.DataFrame) -> bytes:
    """The SKU table as an Arrow IPC stream (zstd); row i is SKU index i of the picks."""
    missing = [c for c in SKU_TABLE_COLUMNS if c not in skus.columns]
    if missing:
        raise ValueError(f"sku table lacks column(s) {missing}; it has {list(skus.columns)}")
    arrays = {}
    for col in SKU_TABLE_COLUMNS:
        if col == C.REGIONS:
            regions = pa.array(skus[col].to_numpy(dtype=object), type=pa.list_(pa.string()))
            # a missing list means "no restriction", like an empty one
            arrays[col] = pc.if_else(pc.is_null(regions), pa.scalar([], regions.type), regions)
        elif col == C.PRICE:
            arrays[col] = pa.array(skus[col].to_numpy(dtype=np.float64))
        else:
            arrays[col] = pa.array(skus[col].to_numpy(dtype=object), type=pa.string())
    table = pa.table(arrays)
    sink = pa.BufferOutputStream()
    options = pa.ipc.IpcWriteOptions(compression="zstd")
    with pa.ipc.new_stream(sink, table.schema, options=options) as writer:
        writer.write_table(table)
    return sink.getvalue().to_pybytes()


@dataclass
class SkuTable:
    """The SKU rows a snapshot's pick indices refer to, with masks for serve-time filters."""

    frame: pd.DataFrame
    _region_masks: dict[str, np.ndarray] = field(default_factory=dict, repr=False)
    _category_masks: dict[str, np.ndarray] = field(default_factory=dict, repr=False)

    def __len__(self) -> int:
        return len(self.frame)

    @cached_property
    def sku_ids(self) -> np.ndarray:
        """SKU id of each row (object array)."""
        return self.frame[C.SKU_ID].to_numpy(dtype=object)

    @cached_property
    def _index(self) -> pd.Index:
        return pd.Index(self.sku_ids)

    @cached_property
    def sellable(self) -> np.ndarray:
        """Rows whose catalogue status is active (not suspended or discontinued at publish)."""
        return (self.frame[C.STATUS] == SELLABLE_STATUS).to_numpy()

    @cached_property
    def _everywhere(self) -> np.ndarray:
        return np.array([len(r) == 0 for r in self.frame[C.REGIONS]], dtype=bool)

    def index_of(self, sku_ids: Iterable[str]) -> np.ndarray:
        """Row of each SKU id (-1 when the snapshot does not know it)."""
        return self._index.get_indexer(list(sku_ids)).astype(np.int64)

    @cached_property
    def _known(self) -> tuple[frozenset[str], frozenset[str]]:
        regions = frozenset(r for rs in self.frame[C.REGIONS] for r in rs)
        return regions, frozenset(self.frame[C.CATEGORY].dropna())

    def available_in(self, region: str) -> np.ndarray:
        """Rows sold in `region` (an empty `regions` list means sold everywhere); cached."""
        if region not in self._known[0]:  # request input: cache only the table's own regions
            return self._everywhere
        mask = self._region_masks.get(region)
        if mask is None:
            listed = np.array([region in r for r in self.frame[C.REGIONS]], dtype=bool)
            mask = self._region_masks[region] = listed | self._everywhere
        return mask

    def in_category(self, category: str) -> np.ndarray:
        """Rows of `category`; cached."""
        if category not in self._known[1]:
            return np.zeros(len(self.frame), dtype=bool)
        mask = self._category_masks.get(category)
        if mask is None:
            mask = self._category_masks[category] = (self.frame[C.CATEGORY] == category).to_numpy()
        return mask

    def allowed(
        self,
        *,
        region: str | None = None,
        category: str | None = None,
        exclude: Iterable[str] = (),
        suspended: Iterable[str] = (),
    ) -> np.ndarray:
        """Rows that may be served: sellable, in `region` and `category`, not excluded/suspended."""
        mask = self.sellable.copy()
        if region is not None:
            mask &= self.available_in(region)
        if category is not None:
            mask &= self.in_category(category)
        for ids in (exclude, suspended):
            rows = self.index_of(ids)
            mask[rows[rows >= 0]] = False
        return mask


def decode_sku_table(blob: bytes) -> SkuTable:
    """Read a SKU table written by `encode_sku_table`."""
    table = pa.ipc.open_stream(pa.py_buffer(blob)).read_all()
    return SkuTable(table.to_pandas())


def take_allowed(lists: Sequence[PickArrays], allowed: np.ndarray, k: int) -> list[tuple[int, int]]:
    """(list number, position) of the first k allowed, distinct SKUs, walking `lists` in order.

    This is the serve-time refill: pass the personal list first, then the fallback lists; the
    answer keeps their order and skips SKUs that are filtered out or already taken.
    """
    if not lists:
        return []
    sku = np.concatenate([p.sku_index for p in lists]).astype(np.int64)
    which = np.repeat(np.arange(len(lists)), [len(p) for p in lists])
    pos = np.concatenate([np.arange(len(p)) for p in lists])
    ok = np.flatnonzero(allowed[sku])
    _, first = np.unique(sku[ok], return_index=True)
    chosen = ok[np.sort(first)][:k]
    return list(zip(which[chosen].tolist(), pos[chosen].tolist(), strict=True))


@dataclass(frozen=True)
class Snapshot:
    """A live snapshot's immutable parts: id, meta, SKU table and decoded fallback lists."""

    target: str
    snapshot_id: str
    meta: dict[str, Any]
    skus: SkuTable
    fallbacks: dict[str, PickArrays]

    @classmethod
    def from_raw(
        cls,
        target: str,
        snapshot_id: str,
        meta: bytes,
        skus: bytes,
        fallbacks: Mapping[bytes | str, bytes],
    ) -> Snapshot:
        """Build from the raw values of the `meta`, `skus` and `fallbacks` keys."""
        fb = {
            (k.decode() if isinstance(k, bytes) else k): decode_arrays(v)
            for k, v in fallbacks.items()
        }
        return cls(target, snapshot_id, orjson.loads(meta), decode_sku_table(skus), fb)

    @property
    def keys(self) -> CacheKeys:
        """Key builder of this snapshot's target."""
        return CacheKeys(self.target)

    def picks_location(self, user_id: str) -> tuple[str, str]:
        """(hash key, field) holding a user's encoded picks: `HGET key field`."""
        bucket = bucket_of(user_id, int(self.meta["n_buckets"]))
        return self.keys.picks(self.snapshot_id, bucket), user_id

    def similar_location(self, sku_id: str) -> tuple[str, str]:
        """(hash key, field) holding a SKU's encoded similar SKUs: `HGET key field`."""
        bucket = bucket_of(sku_id, int(self.meta["n_similar_buckets"]))
        return self.keys.similar(self.snapshot_id, bucket), sku_id


def read_current(client: Any, target: str) -> str | None:
    """Id of the live snapshot of `target`, or None when nothing is published."""
    value = client.get(CacheKeys(target).current)
    return value.decode() if value is not None else None


def read_previous(client: Any, target: str) -> str | None:
    """Id of the snapshot rollback would go back to, or None."""
    value = client.get(CacheKeys(target).previous)
    return value.decode() if value is not None else None


def read_meta(client: Any, target: str, snapshot: str) -> dict[str, Any]:
    """The meta record of a snapshot; raise SnapshotMissingError when it is gone."""
    raw = client.get(CacheKeys(target).meta(snapshot))
    if raw is None:
        raise SnapshotMissingError(f"no meta for {target} snapshot {snapshot!r} in Redis")
    return dict(orjson.loads(raw))


def read_sku_table(client: Any, target: str, snapshot: str) -> SkuTable:
    """The SKU table of a snapshot; raise SnapshotMissingError when it is gone."""
    raw = client.get(CacheKeys(target).skus(snapshot))
    if raw is None:
        raise SnapshotMissingError(f"no sku table for {target} snapshot {snapshot!r} in Redis")
    return decode_sku_table(raw)


def load_snapshot(client: Any, target: str, snapshot: str | None = None) -> Snapshot:
    """The current (or given) snapshot's meta, SKU table and fallbacks, read in one round trip."""
    snapshot = snapshot or read_current(client, target)
    if snapshot is None:
        raise SnapshotMissingError(f"no {target} snapshot is published (no `current` pointer)")
    keys = CacheKeys(target)
    pipe = client.pipeline(transaction=False)
    pipe.get(keys.meta(snapshot))
    pipe.get(keys.skus(snapshot))
    pipe.hgetall(keys.fallbacks(snapshot))
    meta, skus, fallbacks = pipe.execute()
    if meta is None or skus is None:
        raise SnapshotMissingError(f"{target} snapshot {snapshot!r} is incomplete or gone")
    return Snapshot.from_raw(target, snapshot, meta, skus, fallbacks)


def read_picks(client: Any, snapshot: Snapshot, user_id: str) -> PickArrays | None:
    """A user's decoded picks in `snapshot`, or None when the snapshot has none for her."""
    key, member = snapshot.picks_location(user_id)
    raw = client.hget(key, member)
    return decode_arrays(raw) if raw is not None else None


def read_similar(client: Any, snapshot: Snapshot, sku_id: str) -> PickArrays | None:
    """SKUs similar to `sku_id` in `snapshot`, or None when it has no list for it."""
    if int(snapshot.meta.get("n_similar_buckets", 0)) == 0:
        return None
    key, member = snapshot.similar_location(sku_id)
    raw = client.hget(key, member)
    return decode_arrays(raw) if raw is not None else None


def read_suspended(client: Any) -> dict[str, dict[str, Any]]:
    """Every suspended SKU id with its reason record (global, not per snapshot)."""
    return {k.decode(): orjson.loads(v) for k, v in client.hgetall(SUSPENDED).items()}


def suspend_sku(client: Any, sku_id: str, reason: Mapping[str, Any]) -> None:
    """Suspend a SKU at once for every target and snapshot, with a JSON reason record."""
    client.hset(SUSPENDED, sku_id, orjson.dumps(dict(reason)))


def unsuspend_sku(client: Any, sku_id: str) -> bool:
    """Lift a suspension; True when the SKU was suspended."""
    return bool(client.hdel(SUSPENDED, sku_id))
