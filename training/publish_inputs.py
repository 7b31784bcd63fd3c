"""What a publish needs besides the model, built from the contract tables.

The SKU table (what serve-time filters read), the fallback lists (distinct buyers over the last
28 days: global, per region, per tier), the purchase history behind `customers_rebuy` /
`bought_before` reasons, and each user's region.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.sparse as sp

from features.logs import returned_units
from recsys.cache.keys import check_target, fallback_field
from recsys.cache.snapshot import SKU_TABLE_COLUMNS
from recsys.columns import Columns, Tables
from recsys.data.dataset import user_column

C = Columns
N_BUYERS = "n_buyers"  # fallback lists: distinct buyers in the window (the reason parameter)
_KEPT = "kept"


@dataclass(frozen=True)
class History:
    """Purchase counts per (user, SKU): rows follow `user_ids`, columns the SKU table rows.

    `exact` is False when the counts are only 0/1 flags (e.g. a model's `seen_` matrix): the
    reasons then say "bought before" without a number.
    """

    user_ids: pd.Index
    counts: sp.csr_matrix
    exact: bool = True

    def __post_init__(self) -> None:
        if self.counts.shape[0] != len(self.user_ids):
            raise ValueError(
                f"history has {self.counts.shape[0]} rows but {len(self.user_ids)} user ids"
            )
        self.counts.sum_duplicates()  # one entry per (user, SKU): lookups rely on it

    def rows_of(self, user_ids: np.ndarray) -> np.ndarray:
        """Row of each user id in `counts` (-1 when the history does not know the user)."""
        return self.user_ids.get_indexer(user_ids).astype(np.int64)

    def lookup(
        self, rows: np.ndarray, sku_index: np.ndarray, pos: np.ndarray | None = None
    ) -> np.ndarray:
        """Count of each pick: user row `rows[pos[i]]` (or `rows[i]`) and SKU row `sku_index[i]`.

        Rows of -1 count 0. Only the entries of `rows` are read, then matched to the picks by
        a hash of (position, SKU): a batch of a million picks costs tens of milliseconds.
        """
        counts = self.counts
        pos = np.arange(len(rows)) if pos is None else pos
        rows = np.asarray(rows, dtype=np.int64)
        known = rows >= 0
        starts = counts.indptr[np.where(known, rows, 0)]
        lengths = np.where(known, counts.indptr[np.where(known, rows + 1, 0)] - starts, 0)
        first = np.repeat(np.cumsum(lengths) - lengths, lengths)
        entries = np.repeat(starts, lengths) + np.arange(int(lengths.sum())) - first
        n_cols = counts.shape[1]
        keys = np.repeat(np.arange(len(rows), dtype=np.int64), lengths) * n_cols
        keys += counts.indices[entries]
        at = pd.Index(keys).get_indexer(np.asarray(pos, dtype=np.int64) * n_cols + sku_index)
        values = counts.data[entries]
        found = np.where(at >= 0, values[np.maximum(at, 0)] if len(values) else 0, 0)
        return np.rint(found).astype(np.int64)

    @classmethod
    def from_model(cls, model: object, sku_ids: np.ndarray) -> History:
        """The 0/1 history a fitted model saw (`users_`, `skus_`, `seen_`), on the SKU table."""
        users = pd.Index(model.users_.external_ids)  # type: ignore[attr-defined]
        model_skus = model.skus_.external_ids  # type: ignore[attr-defined]
        seen = model.seen_.tocoo()  # type: ignore[attr-defined]
        cols = pd.Index(sku_ids).get_indexer(model_skus)[seen.col]
        keep = cols >= 0
        counts = sp.csr_matrix(
            (np.ones(int(keep.sum()), dtype=np.float32), (seen.row[keep], cols[keep])),
            shape=(len(users), len(sku_ids)),
        )
        return cls(users, counts, exact=False)


def build_sku_table(tables: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """The publish SKU table: every catalogue SKU, sorted by id, with the serve-time columns."""
    skus = tables[Tables.SKUS]
    return skus[list(SKU_TABLE_COLUMNS)].sort_values(C.SKU_ID, kind="stable").reset_index(drop=True)


def _purchases_with_groups(tables: dict[str, pd.DataFrame], target: str) -> pd.DataFrame:
    """Purchase lines with `kept` units and the region/tier of the user they count for."""
    purchases = tables[Tables.PURCHASES]
    lines = purchases[[C.PURCHASE_ID, C.TS, C.CUSTOMER_ID, C.AGENT_ID, C.SKU_ID, C.QTY]].copy()
    qty = lines[C.QTY].to_numpy(dtype=np.int64)
    returned, _ = returned_units(lines[C.PURCHASE_ID], qty, tables[Tables.RETURNS])
    lines[_KEPT] = qty - returned
    agents = tables[Tables.AGENTS].set_index(C.AGENT_ID)
    if target == "agent":
        lines[C.REGION] = lines[C.AGENT_ID].map(agents[C.REGION])
        lines[C.TIER] = lines[C.AGENT_ID].map(agents[C.TIER])
    else:
        customers = tables[Tables.CUSTOMERS].set_index(C.CUSTOMER_ID)
        lines[C.REGION] = lines[C.CUSTOMER_ID].map(customers[C.REGION])
        own_agent = lines[C.CUSTOMER_ID].map(customers[C.AGENT_ID])
        lines[C.TIER] = own_agent.map(agents[C.TIER])
    return lines


def _rank(lines: pd.DataFrame, k: int) -> pd.DataFrame:
    """Top-k SKUs of `lines` by distinct buyers, then kept units, then SKU id."""
    stats = lines.groupby(C.SKU_ID).agg(
        **{N_BUYERS: (C.CUSTOMER_ID, "nunique"), _KEPT: (_KEPT, "sum")}
    )
    stats = stats.reset_index().sort_values(
        [N_BUYERS, _KEPT, C.SKU_ID], ascending=[False, False, True], kind="stable"
    )
    top = stats.head(k)
    return pd.DataFrame(
        {
            C.SKU_ID: top[C.SKU_ID].to_numpy(dtype=object),
            C.SCORE: top[N_BUYERS].to_numpy(dtype=np.float32),
            N_BUYERS: top[N_BUYERS].to_numpy(dtype=np.int64),
        }
    )


def build_fallbacks(
    tables: dict[str, pd.DataFrame],
    target: str,
    *,
    k: int = 100,
    window_days: int = 28,
    now: pd.Timestamp | None = None,
) -> dict[str, pd.DataFrame]:
    """Most-bought active SKUs (distinct buyers) in the last `window_days`: global and per group.

    Lines fully returned do not count. Region lists hold only SKUs sold in the region. Keys are
    fallback fields (`global`, `region:<r>`, `tier:<t>`); values have sku_id, score, n_buyers.
    The global list is padded from all-time buyers (n_buyers 0) when the window is short.
    """
    check_target(target)
    if k < 1 or window_days < 1:
        raise ValueError(f"k and window_days must be >= 1, got k={k}, window_days={window_days}")
    lines = _purchases_with_groups(tables, target)
    skus = tables[Tables.SKUS]
    active = set(skus.loc[skus[C.STATUS] == "active", C.SKU_ID])
    lines = lines[lines[C.SKU_ID].isin(active) & (lines[_KEPT] > 0)]
    end = now if now is not None else (lines[C.TS].max() if len(lines) else pd.Timestamp.now("UTC"))
    window = lines[(lines[C.TS] > end - pd.Timedelta(days=window_days)) & (lines[C.TS] <= end)]

    out: dict[str, pd.DataFrame] = {}
    glob = _rank(window, k)
    if len(glob) < k:
        extra = _rank(lines[~lines[C.SKU_ID].isin(set(glob[C.SKU_ID]))], k - len(glob))
        extra[N_BUYERS] = 0
        extra[C.SCORE] = np.float32(0.0)
        glob = pd.concat([glob, extra], ignore_index=True)
    out[fallback_field("global")] = glob

    sold_in = dict(zip(skus[C.SKU_ID], skus[C.REGIONS], strict=True))
    for region, group in window.groupby(C.REGION, sort=True):
        ok = [len(sold_in[s]) == 0 or region in sold_in[s] for s in group[C.SKU_ID]]
        out[fallback_field("region", region)] = _rank(group[np.asarray(ok, dtype=bool)], k)
    for tier, group in window.groupby(C.TIER, sort=True):
        out[fallback_field("tier", int(tier))] = _rank(group, k)
    return {key: frame for key, frame in out.items() if len(frame)}


def build_history(tables: dict[str, pd.DataFrame], target: str, sku_ids: np.ndarray) -> History:
    """Who bought what: distinct customers per (agent, SKU), or orders per (customer, SKU)."""
    check_target(target)
    purchases = tables[Tables.PURCHASES]
    ucol = user_column(target)
    counted = C.CUSTOMER_ID if target == "agent" else C.ORDER_ID
    pairs = purchases.groupby([ucol, C.SKU_ID])[counted].nunique().reset_index()
    users = pd.Index(np.sort(pairs[ucol].unique()))
    cols = pd.Index(sku_ids).get_indexer(pairs[C.SKU_ID])
    keep = cols >= 0
    counts = sp.csr_matrix(
        (
            pairs[counted].to_numpy(dtype=np.float32)[keep],
            (users.get_indexer(pairs[ucol])[keep], cols[keep]),
        ),
        shape=(len(users), len(sku_ids)),
    )
    return History(users, counts, exact=True)


def user_regions(tables: dict[str, pd.DataFrame], target: str) -> pd.Series:
    """Region of every agent (or customer), indexed by id."""
    table = tables[Tables.AGENTS if check_target(target) == "agent" else Tables.CUSTOMERS]
    ucol = user_column(target)
    return pd.Series(table[C.REGION].to_numpy(), index=table[ucol].to_numpy(), name=C.REGION)


def user_ids(tables: dict[str, pd.DataFrame], target: str) -> np.ndarray:
    """Every agent (or customer) id in the tables, sorted."""
    table = tables[Tables.AGENTS if check_target(target) == "agent" else Tables.CUSTOMERS]
    return np.sort(table[user_column(target)].to_numpy(dtype=object))
