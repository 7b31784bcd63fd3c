"""Temporal holdout: train on the log before a cutoff, evaluate on the purchases of the last days.

The window is [cutoff, end) with end just after the last purchase and cutoff = end − holdout.
Training sees only shares, purchases and returns with `ts < cutoff`; the catalogue, agents and
customers tables are kept whole, so SKUs launched after the cutoff stay candidates. The truth
counts every return of a holdout purchase found in the log, even one filed after the window.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
import pandas as pd
import pyarrow as pa

from features.logs import lookup, lookup_arrow, returned_units
from recsys.columns import Columns, Tables
from recsys.data.dataset import FAULT_RETURNED_QTY, RETURNED_QTY, user_column
from recsys.exceptions import EmptyDataError

C = Columns
# `end` lies this far after the last purchase, so the last purchase is inside [cutoff, end).
EPSILON = pd.Timedelta(microseconds=1)
KEPT_QTY = "kept_qty"
IS_NEW = "is_new"
NEW_USER = "new_user"
USER_TABLE: dict[str, str] = {"agent": Tables.AGENTS, "customer": Tables.CUSTOMERS}


def _utc(values: pd.Series) -> pd.Series:
    """A timestamp column as datetime64[ns, UTC]."""
    return pd.to_datetime(values, utc=True)


def _index_of(values: np.ndarray, keys: np.ndarray, arrow: pa.Array | None = None) -> np.ndarray:
    """Position of each value among the unique `keys`, -1 where absent or null.

    `arrow` (the values already in Arrow, possibly dictionary-encoded) skips the conversion.
    """
    if arrow is not None and len(arrow) == len(values):
        found = lookup_arrow(arrow, keys)
        if found is not None:
            return found
    return lookup(values, keys)


def _units_returned(purchases: pd.DataFrame, returns: pd.DataFrame) -> pd.DataFrame:
    """`returned_qty` and `fault_returned_qty` of each purchase line (capped at its qty)."""
    qty = purchases[C.QTY].to_numpy(dtype=np.int64)
    returned, fault = returned_units(purchases[C.PURCHASE_ID], qty, returns)
    return pd.DataFrame({RETURNED_QTY: returned, FAULT_RETURNED_QTY: fault}, index=purchases.index)


@dataclass(frozen=True)
class Split:
    """A temporal split of the tables: what training may see, and the holdout truth.

    Attributes
    ----------
    tables
        The whole log (the truth reads holdout purchases and all returns from it).
    cutoff, end
        The holdout window [cutoff, end): end is just after the last purchase.
    holdout_days
        Length of the window in days.
    """

    tables: Mapping[str, pd.DataFrame]
    cutoff: pd.Timestamp
    end: pd.Timestamp
    holdout_days: float
    # Id columns of `tables` in Arrow, same values (`LoadedTables.arrow`), for fast lookups.
    arrow_columns: Mapping[str, Mapping[str, pa.Array]] | None = field(default=None, repr=False)

    def _twin(self, name: str, column: str) -> pa.Array | None:
        """The Arrow twin of one column of `tables`, if given."""
        if self.arrow_columns is None:
            return None
        arr = self.arrow_columns.get(name, {}).get(column)
        return arr if arr is not None and len(arr) == len(self.tables[name]) else None

    @cached_property
    def train_tables(self) -> dict[str, pd.DataFrame]:
        """Shares, purchases and returns with `ts < cutoff`; skus, agents, customers unchanged.

        Built on first use: `build_dataset(split.tables, target, cutoff=split.cutoff)` sees the
        same data without copying the log.
        """
        train = dict(self.tables)
        for name in (Tables.SHARES, Tables.PURCHASES, Tables.RETURNS):
            frame = self.tables[name]
            train[name] = frame.loc[(_utc(frame[C.TS]) < self.cutoff).to_numpy()]
        return train

    def _before_mask(self, name: str) -> np.ndarray:
        """Rows of event table `name` with `ts < cutoff` (the rows `train_tables` keeps)."""
        return (_utc(self.tables[name][C.TS]) < self.cutoff).to_numpy()

    @property
    def test_purchases(self) -> pd.DataFrame:
        """The purchase lines in the holdout window (`cutoff <= ts < end`)."""
        purchases = self.tables[Tables.PURCHASES]
        ts = _utc(purchases[C.TS])
        return purchases.loc[((ts >= self.cutoff) & (ts < self.end)).to_numpy()]

    def _seen_before(self, target: str, users: np.ndarray, skus: np.ndarray) -> np.ndarray:
        """Whether each (user, sku) pair had an interaction before the cutoff.

        Purchase lines attributed to the user count, and for agents also her shares. Pairs are
        compared as integer codes over the few users and SKUs asked about, so each id of the
        long log is hashed once, against a small table.
        """
        col = user_column(target)
        user_keys = pd.unique(users)
        sku_keys = pd.unique(skus)
        n_skus = len(sku_keys)
        asked = _index_of(users, user_keys) * n_skus + _index_of(skus, sku_keys)
        sources = [(Tables.PURCHASES, col)]
        if target == "agent":
            sources.append((Tables.SHARES, C.AGENT_ID))
        seen = []
        for name, user_col in sources:
            before = self._before_mask(name)
            frame = self.tables[name]
            u = _index_of(
                frame[user_col].to_numpy(dtype=object), user_keys, self._twin(name, user_col)
            )
            hit = np.flatnonzero((u >= 0) & before)
            sku_values = frame[C.SKU_ID].to_numpy(dtype=object)
            sku_twin = self._twin(name, C.SKU_ID)
            if sku_twin is not None:  # a dictionary lookup over all rows costs next to nothing
                s = _index_of(sku_values, sku_keys, sku_twin)[hit]
            else:
                s = _index_of(sku_values[hit], sku_keys)
            ok = s >= 0
            seen.append(u[hit][ok] * n_skus + s[ok])
        # Probe the long list of seen codes into the short list of asked ones (a small hash table).
        asked_unique = pd.Index(pd.unique(asked))
        pos = asked_unique.get_indexer(np.concatenate(seen))
        found = np.zeros(len(asked_unique), dtype=bool)
        found[pos[pos >= 0]] = True
        return found[asked_unique.get_indexer(asked)]

    def truth(self, target: str) -> pd.DataFrame:
        """One row per (user, SKU) bought in the holdout window, sorted by user then SKU.

        Columns: the user id column (`agent_id` for agents, via the purchase's attribution, or
        `customer_id`), `sku_id`, `qty` (units bought), `returned_qty` (of those units, returned at
        any time in the log), `fault_returned_qty` (returned as quality/not_as_described),
        `kept_qty` = qty − returned_qty, and `is_new` (no interaction with that SKU before the
        cutoff). Users with no holdout purchase have no rows.
        """
        col = user_column(target)
        test = self.test_purchases
        units = _units_returned(test, self.tables[Tables.RETURNS])
        lines = pd.DataFrame(
            {
                col: test[col].to_numpy(dtype=object),
                C.SKU_ID: test[C.SKU_ID].to_numpy(dtype=object),
                C.QTY: test[C.QTY].to_numpy(dtype=np.int64),
                RETURNED_QTY: units[RETURNED_QTY].to_numpy(),
                FAULT_RETURNED_QTY: units[FAULT_RETURNED_QTY].to_numpy(),
            }
        )
        truth = lines.groupby([col, C.SKU_ID], sort=True, as_index=False)[
            [C.QTY, RETURNED_QTY, FAULT_RETURNED_QTY]
        ].sum()
        truth[KEPT_QTY] = truth[C.QTY] - truth[RETURNED_QTY]
        truth[IS_NEW] = ~self._seen_before(
            target, truth[col].to_numpy(dtype=object), truth[C.SKU_ID].to_numpy(dtype=object)
        )
        for c in (C.QTY, RETURNED_QTY, FAULT_RETURNED_QTY, KEPT_QTY):
            truth[c] = truth[c].astype(np.int64)
        return truth.reset_index(drop=True)

    def segments(
        self, target: str, *, new_days: float = 30.0, max_new_interactions: int = 3
    ) -> pd.DataFrame:
        """Segment labels of every agent (or customer), one row per user, sorted by user id.

        Columns: the user id column, `new_user` (joined within `new_days` before the cutoff, or
        at most `max_new_interactions` interactions before it: purchase lines, plus shares for
        agents), `region`, and `tier` for agents.
        """
        col = user_column(target)
        users = self.tables[USER_TABLE[target]]
        ids = users[col].to_numpy(dtype=object)
        # interactions before the cutoff per user, counted over user codes (no str hashing twice)
        sources = [(Tables.PURCHASES, col)]
        if target == "agent":
            sources.append((Tables.SHARES, C.AGENT_ID))
        keys = pd.unique(ids)
        counts = np.zeros(len(keys) + 1, dtype=np.int64)  # the last slot counts nothing (-1)
        for name, user_col in sources:
            values = self.tables[name][user_col].to_numpy(dtype=object)
            code = _index_of(values, keys, self._twin(name, user_col))
            code = code[(code >= 0) & self._before_mask(name)]
            counts[:-1] += np.bincount(code, minlength=len(keys))
        n_before = counts[_index_of(ids, keys)]
        recent = (_utc(users[C.JOINED_AT]) >= self.cutoff - pd.Timedelta(days=new_days)).to_numpy()
        out = pd.DataFrame(
            {
                col: ids,
                NEW_USER: recent | (n_before <= max_new_interactions),
                C.REGION: users[C.REGION].to_numpy(dtype=object),
            }
        )
        if target == "agent":
            out[C.TIER] = users[C.TIER].to_numpy()
        return out.sort_values(col, kind="stable").reset_index(drop=True)

    def new_skus(self, launched_within_days: float = 0.0) -> np.ndarray:
        """Ids of SKUs launched at or after `cutoff − launched_within_days` (sorted)."""
        skus = self.tables[Tables.SKUS]
        since = self.cutoff - pd.Timedelta(days=launched_within_days)
        keep = (_utc(skus[C.LAUNCHED_AT]) >= since).to_numpy()
        return np.sort(skus.loc[keep, C.SKU_ID].to_numpy(dtype=object))


def temporal_split(
    tables: Mapping[str, pd.DataFrame],
    holdout_days: float = 14,
    *,
    arrow_columns: Mapping[str, Mapping[str, pa.Array]] | None = None,
) -> Split:
    """Split the log at `end − holdout_days`, end being just after the last purchase.

    `arrow_columns` may hold id columns of `tables` in Arrow, same values (the loader's
    `LoadedTables.arrow`), which spares the truth and segments converting millions of `str`.

    Raises
    ------
    ValueError
        If `holdout_days` is not positive, a table is missing, or no purchase falls before the
        cutoff (the holdout would swallow the whole log).
    EmptyDataError
        If there are no purchases.
    """
    if not holdout_days > 0:
        raise ValueError(f"holdout_days must be > 0, got {holdout_days!r}")
    missing = [t for t in Tables.ALL if t not in tables]
    if missing:
        raise ValueError(f"tables is missing table(s) {missing}; it has {sorted(tables)}")
    purchases = tables[Tables.PURCHASES]
    if len(purchases) == 0:
        raise EmptyDataError("the purchases table is empty: there is nothing to split")
    p_ts = _utc(purchases[C.TS])
    end = p_ts.max() + EPSILON
    cutoff = end - pd.Timedelta(days=holdout_days)
    if not (p_ts < cutoff).any():
        raise ValueError(
            f"holdout_days={holdout_days} leaves no purchases before the cutoff "
            f"{cutoff.isoformat()} (purchases span {p_ts.min().isoformat()} to "
            f"{p_ts.max().isoformat()})"
        )
    return Split(
        tables=tables,
        cutoff=cutoff,
        end=end,
        holdout_days=float(holdout_days),
        arrow_columns=arrow_columns,
    )
