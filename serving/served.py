"""A live snapshot made ready to serve: decoded once, then shared by every request.

Snapshots are immutable once live (docs/cache-contract.md), so everything derived from one —
JSON fragments per SKU, rendered reasons, filter masks per region and category — is computed
once per snapshot and kept for as long as a channel points at it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
import orjson

from recsys.cache.codec import PickArrays
from recsys.cache.snapshot import Snapshot
from recsys.columns import Columns
from recsys.reasons import REASONS, Reason

C = Columns
# Distinct (reasons, params) combinations rendered and kept per snapshot; beyond this a pick's
# reasons are still rendered, just not kept (memory stays bounded).
MAX_SHARED_TAILS = 200_000


@dataclass(frozen=True, slots=True)
class PickEntry:
    """One ranked list ready to serve: SKU-table rows, scores and packed reason keys."""

    rows: np.ndarray  # int32 rows of the snapshot's SKU table, best first
    scores: np.ndarray  # float32
    reason_keys: np.ndarray  # V12 per pick: 3 reason ids, a pad byte, 3 u16 params, 2 pads

    def __len__(self) -> int:
        return len(self.rows)


def pack_reasons(reasons: np.ndarray, params: np.ndarray) -> np.ndarray:
    """(n x 3) reason ids and params as one 12-byte key per pick (hashable once `.tolist()`)."""
    n = len(reasons)
    packed = np.zeros((n, 12), dtype=np.uint8)
    packed[:, :3] = reasons
    packed[:, 4:10] = params.astype("<u2").view(np.uint8).reshape(n, 6)
    return packed.view("V12").ravel()


def reason_table(meta: Mapping[str, Any]) -> dict[int, Reason]:
    """The reasons a snapshot was published with (its meta), else this code's registry."""
    records = meta.get("reasons")
    if not records:
        return dict(REASONS)
    table = {}
    for rec in records:
        table[int(rec["id"])] = Reason(
            id=int(rec["id"]),
            code=str(rec["code"]),
            template=str(rec["template"]),
            param=rec.get("param"),
            plain=rec.get("plain"),
            singular=rec.get("singular"),
        )
    return table


class ReasonTails:
    """Renders a pick's reasons as the JSON tail `,"reasons":[...]}`, once per combination."""

    def __init__(self, table: Mapping[int, Reason]) -> None:
        self.table = table
        self._cache: dict[bytes, bytes] = {}

    def render(self, reasons: Iterable[int], params: Iterable[int]) -> bytes:
        """The tail of one pick from its reason ids and parameters (0 = none)."""
        items = []
        for rid, value in zip(reasons, params, strict=True):
            if rid == 0:
                break
            reason = self.table.get(rid)
            if reason is None:  # published by a newer writer: show the id, not a 500
                items.append({"code": f"reason_{rid}", "text": "", "params": {}})
                continue
            shown = {reason.param: value} if reason.param is not None and value else {}
            items.append({"code": reason.code, "text": reason.render(value), "params": shown})
        return b',"reasons":' + orjson.dumps(items) + b"}"

    def tail(self, key: bytes) -> bytes:
        """The tail of a packed reason key (see `pack_reasons`), rendered once per key."""
        tail = self._cache.get(key)
        if tail is None:
            raw = np.frombuffer(key, dtype=np.uint8)
            params = raw[4:10].view("<u2").tolist()
            tail = self.render(raw[:3].tolist(), params)
            if len(self._cache) < MAX_SHARED_TAILS:
                self._cache[key] = tail
        return tail


def _epoch(iso: object) -> float | None:
    try:
        return datetime.fromisoformat(str(iso)).timestamp()
    except ValueError:
        return None


class ServedSnapshot:
    """A snapshot's serving structures: SKU fragments, filter masks, fallback entries."""

    def __init__(self, snapshot: Snapshot) -> None:
        self.snapshot = snapshot
        self.id = snapshot.snapshot_id
        self.target = snapshot.target
        self.meta = snapshot.meta
        skus = snapshot.skus
        self.n_skus = len(skus)
        self.sku_ids: np.ndarray = skus.sku_ids
        self.row_of: dict[str, int] = {s: i for i, s in enumerate(self.sku_ids.tolist())}
        self.heads: list[bytes] = [
            b'{"sku_id":' + orjson.dumps(s) + b',"score":' for s in self.sku_ids.tolist()
        ]
        self.model_version = self.meta.get("model_version")
        self.published_at = _epoch(self.meta.get("published_at"))
        # The constant middle of every answer from this snapshot.
        self.static_json = (
            b',"model_version":'
            + orjson.dumps(None if self.model_version is None else str(self.model_version))
            + b',"snapshot":'
            + orjson.dumps(self.id)
        )
        self.sellable: np.ndarray = skus.sellable
        frame = skus.frame
        self.categories: np.ndarray = frame[C.CATEGORY].to_numpy(dtype=object)
        region_lists = [list(r) if r is not None else [] for r in frame[C.REGIONS]]
        self._everywhere = np.array([len(r) == 0 for r in region_lists], dtype=bool)
        self._region_rows: dict[str, list[int]] = {}
        for row, regions in enumerate(region_lists):
            for region in regions:
                self._region_rows.setdefault(str(region), []).append(row)
        self._known_categories = {c for c in self.categories.tolist() if c is not None}
        self.tails = ReasonTails(reason_table(self.meta))
        self.fallbacks: dict[str, PickEntry] = {
            name: self.entry(arrays) for name, arrays in snapshot.fallbacks.items()
        }
        self.n_similar_buckets = int(self.meta.get("n_similar_buckets", 0) or 0)
        self._masks: dict[tuple[str | None, str | None], np.ndarray] = {}
        self._mask_version = -1

    # ---- entries ---------------------------------------------------------------------------
    def entry(self, arrays: PickArrays) -> PickEntry:
        """A decoded list as a `PickEntry` (picks pointing outside the SKU table are dropped)."""
        rows = arrays.sku_index
        keep = rows < self.n_skus
        if not keep.all():
            arrays = PickArrays(
                rows[keep], arrays.score[keep], arrays.reasons[keep], arrays.params[keep]
            )
        return PickEntry(
            rows=arrays.sku_index.astype(np.int32),
            scores=arrays.score.astype(np.float32),
            reason_keys=pack_reasons(arrays.reasons, arrays.params),
        )

    def fallback_chain(self, region: str | None, tier: str | None) -> list[tuple[str, PickEntry]]:
        """(kind, list) to serve or refill from, most specific first: region, tier, global."""
        chain = []
        for kind, value in (("region", region), ("tier", tier)):
            if value is not None:
                found = self.fallbacks.get(f"{kind}:{value}")
                if found is not None:
                    chain.append((kind, found))
        glob = self.fallbacks.get("global")
        if glob is not None:
            chain.append(("global", glob))
        return chain

    # ---- filters ---------------------------------------------------------------------------
    def allowed(
        self,
        region: str | None,
        category: str | None,
        suspended: frozenset[str],
        version: int,
    ) -> np.ndarray:
        """Rows that may be served: active, not suspended, sold in `region`, in `category`.

        Cached per (region, category) for the current suspension `version`; a region no SKU
        lists keeps only SKUs sold everywhere, an unknown category allows nothing.
        """
        if version != self._mask_version:
            self._masks = {}
            self._mask_version = version
        if region is not None and region not in self._region_rows:
            region = ""  # unknown region: one shared mask, whatever the hint
        if category is not None and category not in self._known_categories:
            category = ""
        key = (region, category)
        mask = self._masks.get(key)
        if mask is None:
            mask = self.sellable.copy()
            for sku in suspended:
                row = self.row_of.get(sku)
                if row is not None:
                    mask[row] = False
            if region is not None:
                sold = self._everywhere.copy()
                sold[self._region_rows.get(region, [])] = True
                mask &= sold
            if category is not None:
                mask &= self.categories == category if category else False
            self._masks[key] = mask
        return mask
