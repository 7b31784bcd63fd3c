"""Greedy matching of return lines to the purchases they send back."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from recsys.contract.importers.source import LogColumns as L

RETURN_POS = "return_pos"
PURCHASE_POS = "purchase_pos"
PIECE = "piece"
MATCHED_QTY = "qty"
UNMATCHED_QTY = "unmatched_qty"


@dataclass(frozen=True)
class ReturnMatch:
    """Result of `match_returns`.

    `matched` has one row per (return line, purchase) piece: `return_pos`, `purchase_pos`,
    `piece` (1-based within the return line) and `qty`; `unmatched` has one row per return line
    with quantity left over: `return_pos`, `qty` (the part matched) and `unmatched_qty`.
    Positions are 0-based row positions in the frames given to `match_returns`.
    """

    matched: pd.DataFrame
    unmatched: pd.DataFrame


def match_returns(purchases: pd.DataFrame, returns: pd.DataFrame) -> ReturnMatch:
    """Match each return to the buyer's most recent earlier purchases of the same product.

    Both frames need `buyer`, `stock_code`, `ts`, `quantity` and `source_row` columns; return
    quantities may be given negative (as in the log) or positive. Returns are taken in time
    order (then source row); each one takes, greedily, from the most recent purchase made at or
    before its time that still has unreturned quantity, then from the next most recent, and so
    on. A purchase is never returned more than it was bought, nor before it was made.
    """
    keys = pd.concat(
        [purchases[[L.BUYER, L.STOCK_CODE]], returns[[L.BUYER, L.STOCK_CODE]]], ignore_index=True
    )
    group = keys.groupby([L.BUYER, L.STOCK_CODE], sort=False, dropna=False).ngroup().to_numpy()
    p_group, r_group = group[: len(purchases)], group[len(purchases) :]

    wanted = np.isin(p_group, r_group)
    p_pos = np.flatnonzero(wanted)
    p_ts = _ns(purchases[L.TS])[p_pos]
    p_row = purchases[L.ROW].to_numpy()[p_pos]
    order = np.lexsort((p_row, p_ts, p_group[p_pos]))
    p_pos, p_ts = p_pos[order], p_ts[order]
    # Positions (within the sorted candidates) of each (buyer, product) pair, oldest first.
    bounds = pd.Series(np.arange(len(p_pos))).groupby(p_group[p_pos]).indices
    remaining = purchases[L.QUANTITY].to_numpy()[p_pos].astype(np.int64)

    r_ts = _ns(returns[L.TS])
    r_qty = np.abs(returns[L.QUANTITY].to_numpy()).astype(np.int64)
    r_order = np.lexsort((returns[L.ROW].to_numpy(), r_ts))

    matched: list[tuple[int, int, int, int]] = []
    unmatched: list[tuple[int, int, int]] = []
    for r in r_order:
        want = int(r_qty[r])
        left = want
        piece = 0
        candidates = bounds.get(r_group[r])
        if candidates is not None:
            n_earlier = int(np.searchsorted(p_ts[candidates], r_ts[r], side="right"))
            for c in candidates[:n_earlier][::-1]:
                take = min(left, int(remaining[c]))
                if take <= 0:
                    continue
                piece += 1
                remaining[c] -= take
                left -= take
                matched.append((int(r), int(p_pos[c]), piece, take))
                if left == 0:
                    break
        if left > 0:
            unmatched.append((int(r), want - left, left))

    return ReturnMatch(
        matched=pd.DataFrame(
            np.array(matched, dtype=np.int64).reshape(-1, 4),
            columns=[RETURN_POS, PURCHASE_POS, PIECE, MATCHED_QTY],
        ),
        unmatched=pd.DataFrame(
            np.array(unmatched, dtype=np.int64).reshape(-1, 3),
            columns=[RETURN_POS, MATCHED_QTY, UNMATCHED_QTY],
        ),
    )


def _ns(ts: pd.Series) -> np.ndarray:
    """Timestamps as int64 nanoseconds since the epoch (UTC), for fast comparison."""
    if isinstance(ts.dtype, pd.DatetimeTZDtype):
        ts = ts.dt.tz_convert("UTC").dt.tz_localize(None)
    return ts.to_numpy(dtype="datetime64[ns]").astype(np.int64)
