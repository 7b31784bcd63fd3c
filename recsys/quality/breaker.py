"""The quality circuit breaker: which SKUs draw fault returns well above their category's level.

For each SKU, at a moment `at` (issue 5, 2):

- **window**: purchase lines bought in [at − window_days, at) (or since an admin lifted its last
  suspension, whichever is later); `units` = units bought, `fault_returns` = units of those lines
  returned for a fault reason (`quality`, `not_as_described`, and `damaged` if asked) by returns
  filed before `at`;
- **category rate**: the same ratio over the lines of the SKU's category bought in
  [at − history_days, at), leaving the SKU itself out (an incident must not raise its own bar),
  smoothed towards the rate of the whole catalogue with `prior_units` units;
- **rule**: suspend when units >= `min_units`, fault_returns >= `min_fault_returns` and the lower
  confidence bound of the SKU's rate (Wilson, or a Beta posterior centred on the category rate)
  exceeds the threshold max(category_rate × margin, category_rate + min_excess).

A lower bound (rather than the rate itself) keeps a SKU with 2 returns out of 5 units from
tripping; the minimum counts are a floor under that; the margin leaves room for SKUs that are
merely worse than average (the suspension is for waves of complaints, not for ranking, which the
return-risk model handles).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, model_validator

from features.logs import lookup
from recsys.columns import FAULT_RETURN_REASONS, Columns, Tables
from recsys.quality.bounds import beta_lower, wilson_lower

C = Columns
NS_PER_DAY = 86_400 * 10**9
TimeLike = pd.Timestamp | datetime | str

# Columns of the per-SKU check frame (beyond sku_id and category).
WINDOW_START = "window_start"
WINDOW_END = "window_end"
UNITS = "units"
FAULT_RETURNS = "fault_returns"
RATE = "rate"
BOUND = "bound"
CATEGORY_RATE = "category_rate"
THRESHOLD = "threshold"
SUSPEND = "suspend"
CHECK_COLUMNS: tuple[str, ...] = (
    C.SKU_ID,
    C.CATEGORY,
    WINDOW_START,
    WINDOW_END,
    UNITS,
    FAULT_RETURNS,
    RATE,
    BOUND,
    CATEGORY_RATE,
    THRESHOLD,
    SUSPEND,
)
# Rates given to the Beta prior are kept inside (0, 1).
_RATE_FLOOR, _RATE_CEIL = 1e-4, 0.5


class BreakerConfig(BaseModel):
    """Knobs of the circuit breaker (docs/sell-with-confidence.md gives the defaults' reasons)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    window_days: float = Field(14.0, gt=0)
    history_days: float = Field(90.0, gt=0)
    include_damaged: bool = False
    method: Literal["wilson", "beta"] = "beta"
    confidence: float = Field(0.99, ge=0.5, lt=1.0)
    margin: float = Field(2.0, ge=1.0)
    min_excess: float = Field(0.05, ge=0.0, lt=1.0)
    min_units: int = Field(10, ge=1)
    min_fault_returns: int = Field(4, ge=1)
    prior_units: float = Field(200.0, gt=0)
    prior_strength: float = Field(10.0, gt=0)

    @model_validator(mode="after")
    def _history_covers_window(self) -> BreakerConfig:
        if self.history_days < self.window_days:
            raise ValueError(
                f"history_days ({self.history_days}) must be >= window_days ({self.window_days})"
            )
        return self

    @property
    def fault_reasons(self) -> tuple[str, ...]:
        """Return reasons that count as the product's fault."""
        return FAULT_RETURN_REASONS + (("damaged",) if self.include_damaged else ())

    def flat(self) -> dict[str, str]:
        """Parameters as strings keyed `quality.<name>`, for logging."""
        return {f"quality.{k}": str(v) for k, v in self.model_dump().items()}


def to_utc(moment: TimeLike) -> pd.Timestamp:
    """`moment` as a UTC timestamp (a naive one is taken to be UTC); ValueError if invalid."""
    try:
        ts = pd.Timestamp(moment)
    except (TypeError, ValueError):
        raise ValueError(f"at must be a valid time, got {moment!r}") from None
    if ts is pd.NaT:
        raise ValueError(f"at must be a valid time, got {moment!r}")
    return ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")


def _ns(values: pd.Series) -> np.ndarray:
    return pd.to_datetime(values, utc=True).to_numpy(dtype="datetime64[ns]").view(np.int64)


@dataclass(frozen=True)
class QualityLog:
    """The purchase lines and fault returns of a log as index arrays, built once, checked often.

    Lines are in time order; `ret_units` are the fault units of each return, capped so that a
    line never returns more units than it sold.
    """

    sku_ids: np.ndarray
    categories: np.ndarray
    sku_category: np.ndarray
    line_ts: np.ndarray
    line_sku: np.ndarray
    line_qty: np.ndarray
    ret_ts: np.ndarray
    ret_line: np.ndarray
    ret_units: np.ndarray

    @classmethod
    def from_tables(
        cls, tables: Mapping[str, pd.DataFrame], fault_reasons: tuple[str, ...]
    ) -> QualityLog:
        """Index the skus, purchases and returns tables (typed contract tables).

        Raises
        ------
        ValueError
            If one of the three tables is missing.
        """
        missing = [t for t in (Tables.SKUS, Tables.PURCHASES, Tables.RETURNS) if t not in tables]
        if missing:
            raise ValueError(f"tables is missing table(s) {missing}; it has {sorted(tables)}")
        skus = tables[Tables.SKUS]
        sku_ids = skus[C.SKU_ID].to_numpy(dtype=object)
        categories, sku_category = np.unique(skus[C.CATEGORY].astype(str), return_inverse=True)

        purchases = tables[Tables.PURCHASES]
        line_sku = lookup(purchases[C.SKU_ID], sku_ids)
        known = np.flatnonzero(line_sku >= 0)
        line_ts = _ns(purchases[C.TS])[known]
        order = np.argsort(line_ts, kind="stable")
        rows = known[order]
        line_ts = line_ts[order]
        line_sku = line_sku[rows].astype(np.int64)
        line_qty = purchases[C.QTY].to_numpy(dtype=np.int64)[rows]
        line_ids = purchases[C.PURCHASE_ID].take(rows)

        returns = tables[Tables.RETURNS]
        fault = returns[C.REASON].isin(fault_reasons).to_numpy()
        rets = returns.loc[fault]
        ret_line = lookup(rets[C.PURCHASE_ID], line_ids)
        ok = ret_line >= 0
        ret_ts, ret_line = _ns(rets[C.TS])[ok], ret_line[ok].astype(np.int64)
        units = rets[C.QTY].to_numpy(dtype=np.int64)[ok]
        ret_units = _cap_per_line(ret_line, ret_ts, units, line_qty)
        order = np.argsort(ret_ts, kind="stable")
        ret_ts, ret_line, ret_units = ret_ts[order], ret_line[order], ret_units[order]
        return cls(
            sku_ids=sku_ids,
            categories=categories.astype(object),
            sku_category=sku_category.astype(np.int64),
            line_ts=line_ts,
            line_sku=line_sku,
            line_qty=line_qty,
            ret_ts=ret_ts,
            ret_line=ret_line,
            ret_units=ret_units,
        )

    @property
    def n_skus(self) -> int:
        """SKUs in the catalogue."""
        return len(self.sku_ids)

    def end(self) -> pd.Timestamp:
        """Just after the last purchase or return: "now" for a check of the whole log."""
        last = max(
            int(self.line_ts.max(initial=np.iinfo(np.int64).min)),
            int(self.ret_ts.max(initial=np.iinfo(np.int64).min)),
        )
        if last == np.iinfo(np.int64).min:
            raise ValueError("the log holds no purchases or returns")
        return pd.Timestamp(last + 1000, tz="UTC")  # 1 µs after the last event


def _cap_per_line(
    line: np.ndarray, ts: np.ndarray, units: np.ndarray, qty: np.ndarray
) -> np.ndarray:
    """Units of each return that fit under its line's quantity, the earliest returns first."""
    if len(line) == 0:
        return units.astype(np.int64)
    order = np.lexsort((ts, line))
    sorted_line, sorted_units = line[order], units[order]
    cum = np.cumsum(sorted_units)
    starts = np.r_[0, np.flatnonzero(np.diff(sorted_line)) + 1]
    group_start = np.repeat(starts, np.diff(np.r_[starts, len(line)]))
    before = cum - sorted_units - np.where(group_start > 0, cum[group_start - 1], 0)
    cap = qty[sorted_line]
    allowed = np.minimum(before + sorted_units, cap) - np.minimum(before, cap)
    out = np.empty_like(units, dtype=np.int64)
    out[order] = allowed
    return out


def _window_counts(
    log: QualityLog, start_ns: np.ndarray | int, end_ns: int
) -> tuple[np.ndarray, np.ndarray]:
    """Units bought in [start, end) per SKU and their fault units returned before `end`.

    `start_ns` is one moment or one per SKU (e.g. later for SKUs lifted by an admin).
    """
    n = log.n_skus
    lo = int(np.min(start_ns))
    a, b = np.searchsorted(log.line_ts, [lo, end_ns], side="left")
    sku = log.line_sku[a:b]
    keep = log.line_ts[a:b] >= np.broadcast_to(start_ns, (n,))[sku]
    units = np.bincount(sku[keep], weights=log.line_qty[a:b][keep], minlength=n)
    in_window = np.zeros(b - a, dtype=bool)
    in_window[keep] = True
    rel = log.ret_line - a
    hit = (rel >= 0) & (rel < b - a) & (log.ret_ts < end_ns)
    hit[hit] = in_window[rel[hit]]
    faults = np.bincount(log.line_sku[log.ret_line[hit]], weights=log.ret_units[hit], minlength=n)
    return units, faults


def category_rates(
    log: QualityLog, units: np.ndarray, faults: np.ndarray, prior_units: float
) -> np.ndarray:
    """Per SKU: its category's fault rate without the SKU itself, smoothed towards the global rate.

    `units` and `faults` are per-SKU counts over the history; the result is
    (F_cat − f + a·g) / (U_cat − u + a) with g the global rate and a = `prior_units`.
    """
    n_cat = len(log.categories)
    cat_units = np.bincount(log.sku_category, weights=units, minlength=n_cat)
    cat_faults = np.bincount(log.sku_category, weights=faults, minlength=n_cat)
    total = units.sum()
    glob = faults.sum() / total if total > 0 else 0.0
    own_u = cat_units[log.sku_category] - units
    own_f = cat_faults[log.sku_category] - faults
    return (own_f + prior_units * glob) / (own_u + prior_units)


def check_quality(
    log: QualityLog,
    at: TimeLike | None = None,
    config: BreakerConfig | None = None,
    *,
    lifted: Mapping[str, TimeLike] | None = None,
) -> pd.DataFrame:
    """The breaker's numbers for every SKU sold in the window, with its `suspend` verdict.

    Parameters
    ----------
    log
        The indexed log (`QualityLog.from_tables`).
    at
        "Now": only lines bought and returns filed before it count (default: end of the log).
    config
        The breaker's knobs (default: `BreakerConfig()`).
    lifted
        sku_id → when an admin lifted its suspension: its window starts no earlier than that, so
        it is suspended again only on evidence gathered since.

    Returns
    -------
    pd.DataFrame
        Columns `CHECK_COLUMNS`, one row per SKU with units in its window, worst first
        (largest bound − threshold).
    """
    cfg = config or BreakerConfig()
    at_ts = log.end() if at is None else to_utc(at)
    end = at_ts.value
    start = np.full(log.n_skus, end - int(cfg.window_days * NS_PER_DAY), dtype=np.int64)
    if lifted:
        pos = pd.Index(log.sku_ids).get_indexer(list(lifted))
        when = np.array([to_utc(t).value for t in lifted.values()], dtype=np.int64)
        ok = pos >= 0
        start[pos[ok]] = np.maximum(start[pos[ok]], when[ok])
    units, faults = _window_counts(log, start, end)
    hist_units, hist_faults = _window_counts(log, end - int(cfg.history_days * NS_PER_DAY), end)
    cat_rate = category_rates(log, hist_units, hist_faults, cfg.prior_units)

    sold = np.flatnonzero(units > 0)
    u, f, c = units[sold], faults[sold], cat_rate[sold]
    if cfg.method == "wilson":
        bound = wilson_lower(f, u, cfg.confidence)
    else:
        prior = np.clip(c, _RATE_FLOOR, _RATE_CEIL)
        bound = beta_lower(f, u, prior, cfg.prior_strength, cfg.confidence)
    threshold = np.maximum(c * cfg.margin, c + cfg.min_excess)
    suspend = (u >= cfg.min_units) & (f >= cfg.min_fault_returns) & (bound > threshold)
    frame = pd.DataFrame(
        {
            C.SKU_ID: log.sku_ids[sold],
            C.CATEGORY: log.categories[log.sku_category[sold]],
            WINDOW_START: pd.to_datetime(start[sold], utc=True),
            WINDOW_END: at_ts,
            UNITS: u.astype(np.int64),
            FAULT_RETURNS: f.astype(np.int64),
            RATE: f / u,
            BOUND: bound,
            CATEGORY_RATE: c,
            THRESHOLD: threshold,
            SUSPEND: suspend,
        }
    )
    order = np.argsort(-(bound - threshold), kind="stable")
    return frame.iloc[order].reset_index(drop=True)


def suspensions(check: pd.DataFrame) -> pd.DataFrame:
    """The rows of a `check_quality` frame whose verdict is to suspend."""
    return check.loc[check[SUSPEND].to_numpy(dtype=bool)].reset_index(drop=True)
