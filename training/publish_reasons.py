"""Reason codes for published picks and fallback lists, computed from what a publish knows.

A personal pick says `customers_rebuy` (agents: n of her customers bought it before) or
`bought_before` (customers: n orders) when the history has the pair, else `picked_for_you`;
a second reason `popular_in_region` (n buyers) is added when the SKU is on the user's region
fallback list. Fallback lists say `popular_overall`, `popular_in_region` or `popular_with_tier`.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from recsys.cache.codec import encode_batch
from recsys.columns import Columns
from recsys.reasons import MAX_PARAM, reason_id
from training.publish_inputs import N_BUYERS, History

C = Columns
DENSE_LIMIT = 32_000_000  # region × SKU cells of the dense lookup table (64 MB)
_FALLBACK_REASON = {"global": "popular_overall", "region": "popular_in_region"}


def encode_fallbacks(
    fallbacks: Mapping[str, pd.DataFrame], sku_pos: pd.Index
) -> tuple[list[str], list[bytes]]:
    """Encode every fallback list (SKUs unknown to the SKU table are dropped) with its reason.

    Raises
    ------
    ValueError
        If there is no `global` list or a field is not global / region:<r> / tier:<t>.
    """
    if "global" not in fallbacks:
        raise ValueError(f"fallbacks must include a 'global' list, got {sorted(fallbacks)}")
    names, idx, score, param, reason, sizes = [], [], [], [], [], []
    for name, frame in fallbacks.items():
        kind, _, value = name.partition(":")
        if kind not in ("global", "region", "tier") or (kind != "global") != bool(value):
            raise ValueError(f"fallback field must be global, region:<r> or tier:<t>, got {name!r}")
        rows = sku_pos.get_indexer(frame[C.SKU_ID])
        keep = rows >= 0
        n = int(keep.sum())
        if kind == "tier":
            code, values = "popular_with_tier", np.full(n, int(value) if value.isdigit() else 0)
        else:
            code = _FALLBACK_REASON[kind]
            values = frame[N_BUYERS].to_numpy(np.int64)[keep] if N_BUYERS in frame else np.zeros(n)
        names.append(name)
        idx.append(rows[keep])
        score.append(frame[C.SCORE].to_numpy(np.float64)[keep])
        param.append(np.minimum(values, MAX_PARAM).astype(np.int64))
        reason.append(np.full(n, reason_id(code), dtype=np.uint8))
        sizes.append(n)
    offsets = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
    packed = encode_batch(
        offsets,
        np.concatenate(idx),
        np.concatenate(score),
        np.concatenate(reason),
        np.concatenate(param),
        n_skus=len(sku_pos),
    )
    return names, packed


class PickReasons:
    """Computes the reasons of a batch of personal picks, vectorised over picks."""

    def __init__(
        self,
        target: str,
        *,
        history: History | None = None,
        regions: pd.Series | None = None,
        fallbacks: Mapping[str, pd.DataFrame] | None = None,
        sku_pos: pd.Index | None = None,
    ) -> None:
        self.history = history
        self.rebuy = reason_id("customers_rebuy" if target == "agent" else "bought_before")
        # Buyers per (region code, SKU row) of the region fallback lists: a dense table when it
        # is small (one gather per batch), else sorted int64 keys for a searchsorted.
        self.region_index = pd.Index([])
        self.n_skus = len(sku_pos) if sku_pos is not None else 0
        self.region_keys = np.zeros(0, dtype=np.int64)
        self.region_buyers = np.zeros(0, dtype=np.int64)
        self.region_table: np.ndarray | None = None
        self.region_users = pd.Index([])
        self.region_codes = np.zeros(0, dtype=np.int64)
        if regions is not None and fallbacks and sku_pos is not None:
            lists = {
                k[len("region:") :]: f for k, f in fallbacks.items() if k.startswith("region:")
            }
            self.region_index = pd.Index(sorted(lists))
            keys, buyers = [np.zeros(0, dtype=np.int64)], [np.zeros(0, dtype=np.int64)]
            for code, name in enumerate(self.region_index):
                frame = lists[name]
                cols = sku_pos.get_indexer(frame[C.SKU_ID])
                n = frame[N_BUYERS].to_numpy(np.int64) if N_BUYERS in frame else np.zeros(len(cols))
                keep = (cols >= 0) & (n > 0)
                keys.append(code * self.n_skus + cols[keep].astype(np.int64))
                buyers.append(n[keep].astype(np.int64))
            self.region_users = pd.Index(regions.index)
            codes = self.region_index.get_indexer(regions.to_numpy())
            self.region_codes = np.where(codes >= 0, codes, len(self.region_index))
            all_keys, all_buyers = np.concatenate(keys), np.concatenate(buyers)
            order = np.argsort(all_keys, kind="stable")
            self.region_keys, self.region_buyers = all_keys[order], all_buyers[order]
            if (len(self.region_index) + 1) * self.n_skus <= DENSE_LIMIT:
                # one extra all-zero row for users of no (known) region
                size = (len(self.region_index) + 1) * self.n_skus
                self.region_table = np.zeros(size, np.uint16)
                self.region_table[all_keys] = np.minimum(all_buyers, MAX_PARAM)

    def locate(self, users: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """History row (-1: none) and region code (one past the last: none) of each user.

        A publish calls it once for all its users and hands slices to `compute`, so each
        batch does not look the ids up again.
        """
        n_regions = len(self.region_index)
        rows = (
            self.history.rows_of(users)
            if self.history is not None
            else np.full(len(users), -1, dtype=np.int64)
        )
        codes = np.full(len(users), n_regions, dtype=np.int64)
        if len(self.region_users):
            found = self.region_users.get_indexer(users)
            codes = np.where(found >= 0, self.region_codes[np.maximum(found, 0)], n_regions)
        return rows, codes

    def compute(
        self,
        users: np.ndarray,
        pos: np.ndarray,
        sku: np.ndarray,
        popular: np.ndarray | None = None,
        located: tuple[np.ndarray, np.ndarray] | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Reason ids (u8) and params (u16), n × 1 or 2, for picks of `users[pos]` on `sku`.

        `popular` marks users whose list is the model's popularity fallback: their picks say
        `popular_overall` instead of `picked_for_you` (a rebuy still comes first). `located`
        is `locate(users)` when the caller has it already.
        """
        n = len(sku)
        rows, codes = located if located is not None else self.locate(users)
        first = np.full(n, reason_id("picked_for_you"), dtype=np.uint8)
        first_param = np.zeros(n, dtype=np.uint16)
        if n and popular is not None and popular.any():
            first[popular[pos]] = reason_id("popular_overall")
        if n and self.history is not None:
            count = self.history.lookup(rows, sku, pos)
            first = np.where(count > 0, np.uint8(self.rebuy), first)
            if self.history.exact:
                first_param = np.minimum(count, MAX_PARAM).astype(np.uint16)
        if not (n and len(self.region_keys) and len(self.region_users)):
            return first[:, None], first_param[:, None]
        query = codes[pos] * self.n_skus + sku
        if self.region_table is not None:
            buyers = self.region_table[query]
        else:
            at = np.minimum(np.searchsorted(self.region_keys, query), len(self.region_keys) - 1)
            found = self.region_keys[at] == query
            buyers = np.where(found, np.minimum(self.region_buyers[at], MAX_PARAM), 0)
        second = np.where(buyers > 0, np.uint8(reason_id("popular_in_region")), np.uint8(0))
        return (
            np.column_stack([first, second]),
            np.column_stack([first_param, buyers.astype(np.uint16)]),
        )
