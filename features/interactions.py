"""Users × SKUs interaction matrices (scipy CSR, float32) and the events frame behind them.

Memory and time grow with the number of events, never with users × SKUs: events are mapped to
indices, weighted one by one (features/weights.py) and summed per pair by scipy's COO → CSR
conversion, which adds duplicate entries. Each id column of the log is hashed once.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.sparse as sp

from features.logs import (
    ArrowColumns,
    TimeLike,
    arrow_column,
    map_ids,
    require_tables,
    resolve_cutoff,
    returned_units,
    time_ns,
)
from features.weights import (
    InteractionWeights,
    as_weights,
    finish_pair_weights,
    line_weights,
    share_weights,
)
from recsys.columns import Columns, Tables
from recsys.data.dataset import (
    FAULT_RETURNED_QTY,
    RETURNED_QTY,
    SKU_IDX,
    USER_IDX,
    user_column,
)
from recsys.data.id_map import IdMap

C = Columns
USER_TABLE: dict[str, str] = {"agent": Tables.AGENTS, "customer": Tables.CUSTOMERS}


@dataclass(frozen=True)
class ShareEvents:
    """Shares before the cutoff by known agents of known SKUs, as index arrays."""

    user_idx: np.ndarray
    sku_idx: np.ndarray
    ts_ns: np.ndarray

    def __len__(self) -> int:
        return len(self.user_idx)


def user_id_map(tables: Mapping[str, pd.DataFrame], target: str) -> IdMap:
    """Every agent (or customer) of the tables, sorted: users with no events are scorable too."""
    col = user_column(target)
    return IdMap.from_values(tables[USER_TABLE[target]][col].to_numpy(dtype=object))


def sku_id_map(tables: Mapping[str, pd.DataFrame]) -> IdMap:
    """Every SKU of the catalogue, sorted: SKUs with no events (new launches) stay candidates."""
    return IdMap.from_values(tables[Tables.SKUS][C.SKU_ID].to_numpy(dtype=object))


def _tied(sorted_keys: np.ndarray) -> np.ndarray:
    """Positions of a sorted key array whose value equals the one before or after."""
    same = sorted_keys[1:] == sorted_keys[:-1]
    tied = np.zeros(len(sorted_keys), dtype=bool)
    tied[:-1] |= same
    tied[1:] |= same
    return np.flatnonzero(tied)


def _sort_groups(group: np.ndarray, keys: list[np.ndarray]) -> np.ndarray:
    """Stable permutation sorting rows by (group, *keys), first key first.

    `group` (non-decreasing ints) and the leading integer keys are packed into one int64 while
    their ranges fit, so one stable sort does the work of several lexsort passes; rows still tied
    after it are ordered by the remaining keys.
    """
    packed = group.astype(np.int64)
    span = int(packed.max()) + 1
    used = 0
    for key in keys:
        if key.dtype.kind not in "iu":
            break
        low, width = int(key.min()), int(key.max()) - int(key.min()) + 1
        if span * width >= 2**62:
            break
        packed = packed * width + (key.astype(np.int64) - low)
        span *= width
        used += 1
    order = np.argsort(packed, kind="stable")
    rest = keys[used:]
    if rest:
        sorted_packed = packed[order]
        pos = _tied(sorted_packed)
        if len(pos):
            sub = order[pos]
            # lexsort keys go last-to-first; the packed key keeps tied blocks where they are
            order[pos] = sub[np.lexsort([k[sub] for k in reversed(rest)] + [sorted_packed[pos]])]
    return order


def time_order(ts_ns: np.ndarray, *tie_keys: np.ndarray) -> np.ndarray:
    """Permutation sorting by time, ties broken by `tie_keys` (first key first), row order aside.

    A stable sort by time is nearly free on a log already in time order; only rows sharing a
    timestamp are then re-sorted by the tie keys.
    """
    order = np.argsort(ts_ns, kind="stable")
    sorted_ts = ts_ns[order]
    pos = _tied(sorted_ts)
    if len(pos):
        sub = order[pos]
        # number the runs of equal times, so the tied rows sort as (run, *tie_keys)
        tied_ts = sorted_ts[pos]
        run = np.cumsum(np.concatenate(([0], tied_ts[1:] != tied_ts[:-1])))
        order[pos] = sub[_sort_groups(run, [k[sub] for k in tie_keys])]
    return order


def build_events_frame(
    tables: Mapping[str, pd.DataFrame],
    target: str,
    users: IdMap,
    skus: IdMap,
    cutoff: pd.Timestamp,
    arrow_columns: ArrowColumns | None = None,
) -> pd.DataFrame:
    """The `Dataset.events` frame: purchase lines before `cutoff` of known users and SKUs.

    Columns: the user id column, `sku_id`, `ts`, `qty`, `unit_price`, `returned_qty` and
    `fault_returned_qty` (units returned before the cutoff), `user_idx`, `sku_idx`; sorted by
    time, then user, SKU, quantities and price, so the same log in any row order gives the same
    frame.
    Lines whose user or SKU is not in the id maps are dropped (none, on validated data).
    `arrow_columns` may hold id columns of the tables in Arrow (same values), sparing lookups
    the conversion of millions of `str`.
    """
    col = user_column(target)
    require_tables(tables, [Tables.PURCHASES, Tables.RETURNS])
    purchases = tables[Tables.PURCHASES]
    n = len(purchases)
    ts_all = time_ns(purchases[C.TS])
    rows = np.flatnonzero(ts_all < cutoff.value)
    twin = arrow_column(arrow_columns, Tables.PURCHASES, col, n)
    user_idx = map_ids(users, purchases[col], rows, arrow=twin)
    twin = arrow_column(arrow_columns, Tables.PURCHASES, C.SKU_ID, n)
    sku_idx = map_ids(skus, purchases[C.SKU_ID], rows, arrow=twin)
    known = (user_idx >= 0) & (sku_idx >= 0)
    if not known.all():
        rows, user_idx, sku_idx = rows[known], user_idx[known], sku_idx[known]
    qty = purchases[C.QTY].to_numpy(dtype=np.int64)[rows]
    # purchase ids are Arrow-backed (event ids): the lookup reads them without a copy
    returned, fault = returned_units(
        purchases[C.PURCHASE_ID].take(rows), qty, tables[Tables.RETURNS], before=cutoff
    )
    ts = ts_all[rows]
    price = purchases[C.UNIT_PRICE].to_numpy(dtype=np.float64)[rows]
    order = time_order(ts, user_idx, sku_idx, qty, returned, fault, price)
    return pd.DataFrame(
        {
            col: users.to_external(user_idx[order]),
            C.SKU_ID: skus.to_external(sku_idx[order]),
            C.TS: pd.DatetimeIndex(ts[order].view("datetime64[ns]"), tz="UTC"),
            C.QTY: qty[order],
            C.UNIT_PRICE: price[order],
            RETURNED_QTY: returned[order],
            FAULT_RETURNED_QTY: fault[order],
            USER_IDX: user_idx[order],
            SKU_IDX: sku_idx[order],
        },
        copy=False,  # the arrays are fresh: no need to copy them into consolidated blocks
    )


def share_events(
    tables: Mapping[str, pd.DataFrame],
    users: IdMap,
    skus: IdMap,
    cutoff: pd.Timestamp,
    arrow_columns: ArrowColumns | None = None,
) -> ShareEvents:
    """Shares with `ts < cutoff` by agents in `users` of SKUs in `skus`."""
    require_tables(tables, [Tables.SHARES])
    shares = tables[Tables.SHARES]
    ts_all = time_ns(shares[C.TS])
    rows = np.flatnonzero(ts_all < cutoff.value)
    n = len(shares)
    twin = arrow_column(arrow_columns, Tables.SHARES, C.AGENT_ID, n)
    user_idx = map_ids(users, shares[C.AGENT_ID], rows, arrow=twin)
    twin = arrow_column(arrow_columns, Tables.SHARES, C.SKU_ID, n)
    sku_idx = map_ids(skus, shares[C.SKU_ID], rows, arrow=twin)
    ok = (user_idx >= 0) & (sku_idx >= 0)
    return ShareEvents(user_idx[ok], sku_idx[ok], ts_all[rows][ok])


def matrix_from_events(
    events: pd.DataFrame,
    shares: ShareEvents | None,
    shape: tuple[int, int],
    weights: InteractionWeights,
    cutoff: pd.Timestamp,
) -> sp.csr_matrix:
    """Sum the weighted events (and shares, for agents) per pair into a float32 CSR matrix."""
    rows = [events[USER_IDX].to_numpy(dtype=np.int64)]
    cols = [events[SKU_IDX].to_numpy(dtype=np.int64)]
    vals = [line_weights(events, weights, cutoff)]
    if shares is not None and len(shares) and weights.share_weight > 0:
        rows.append(shares.user_idx)
        cols.append(shares.sku_idx)
        vals.append(share_weights(shares.ts_ns, weights, cutoff))
    # float64 while summing, so that a purchase and its return cancel exactly.
    summed = sp.coo_matrix(
        (np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=shape
    ).tocsr()
    summed.sum_duplicates()
    summed.data = finish_pair_weights(summed.data, weights)
    summed.eliminate_zeros()
    matrix = summed.astype(np.float32)
    matrix.sort_indices()
    return matrix


def build_events(
    tables: Mapping[str, pd.DataFrame],
    target: str,
    cutoff: TimeLike | None = None,
    *,
    users: IdMap | None = None,
    skus: IdMap | None = None,
) -> pd.DataFrame:
    """The purchase lines before `cutoff` attributed to each user, as `Dataset.events`.

    Parameters
    ----------
    tables
        Typed contract tables (at least skus, the target's user table, purchases, returns).
    target
        "agent" (lines attributed via `purchases.agent_id`) or "customer".
    cutoff
        Only lines and returns with `ts < cutoff` count; None = after the last event.
    users, skus
        Id maps fixing the indices (default: every user of the target, the whole catalogue).
    """
    user_column(target)
    cutoff_ts = resolve_cutoff(tables, cutoff)
    users = users if users is not None else user_id_map(tables, target)
    skus = skus if skus is not None else sku_id_map(tables)
    return build_events_frame(tables, target, users, skus, cutoff_ts)


def build_interactions(
    tables: Mapping[str, pd.DataFrame],
    target: str,
    users: IdMap,
    skus: IdMap,
    weights: InteractionWeights | dict[str, object] | None = None,
    cutoff: TimeLike | None = None,
) -> sp.csr_matrix:
    """The users × skus float32 CSR matrix of interaction weights before `cutoff`.

    Agent rows sum her own shares and the purchase lines attributed to her; customer rows sum the
    customer's own lines. The formula is in features/weights.py and docs/features.md.

    Raises
    ------
    ValueError
        If `target` is unknown, `weights` is invalid or a needed table is missing.
    """
    user_column(target)
    w = as_weights(weights)
    cutoff_ts = resolve_cutoff(tables, cutoff)
    events = build_events_frame(tables, target, users, skus, cutoff_ts)
    shares = share_events(tables, users, skus, cutoff_ts) if target == "agent" else None
    return matrix_from_events(events, shares, (len(users), len(skus)), w, cutoff_ts)
