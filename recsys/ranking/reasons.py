"""Why a pick is there: 1-3 reason codes that are true for that pick, with numbers from the logs.

Each reason (registered in `recsys.reasons`) has a rule that must hold for the (agent, SKU) pair
at the state's cutoff, and a parameter the agent reads (issue 5, 2):

- `customers_rebuy` (n): n >= 1 of her customers (bound to her, joined before the cutoff)
  bought it before;
- `new_in_series`: launched in the last `new_days` days and she sold that series before;
- `trending_region` (% growth, 0 when last week sold none): units sold through agents of her
  region this week >= `min_trend_units` and above the week before;
- `similar_agents_sell` (n): n >= `min_similar` of her nearest agents (ALS factors) sold it in
  the recent window;
- `low_return_rate` (% of its lines returned): it sold >= `min_lines` lines and that share is
  below its category's × `low_return_factor`;
- `fits_price_band`: its price relative to its category's median lies in her band (10th to 90th
  percentile over her >= `min_band_lines` lines);
- `popular_in_region` (n): n >= `min_region_buyers` customers living in her region bought it in
  the recent window.

The first three true reasons, in this order, are kept; a pick with none says
`picked_for_you` (always true: the model picked it for her).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from recsys.ranking.state import NS_PER_DAY, RankingState
from recsys.reasons import MAX_PARAM, reason_code, reason_id

MAX_PICK_REASONS = 3
ORDER: tuple[str, ...] = (
    "customers_rebuy",
    "new_in_series",
    "trending_region",
    "similar_agents_sell",
    "low_return_rate",
    "fits_price_band",
    "popular_in_region",
)


@dataclass(frozen=True)
class ReasonConfig:
    """Thresholds of the reason rules (see the module docstring)."""

    new_days: float = 30.0
    min_trend_units: int = 3
    min_similar: int = 2
    min_lines: int = 20
    low_return_factor: float = 0.75
    min_band_lines: int = 5
    min_region_buyers: int = 3


def reason_values(
    state: RankingState, agents: np.ndarray, skus: np.ndarray, config: ReasonConfig | None = None
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Per reason code: (true mask, parameter) for aligned (agent, SKU) index arrays.

    Agents given as -1 (unknown to the model) get only the SKU's own reasons.
    """
    cfg = config or ReasonConfig()
    agents = np.asarray(agents, dtype=np.int64)
    skus = np.asarray(skus, dtype=np.int64)
    known = agents >= 0
    a = np.maximum(agents, 0)
    sku, agent, pop, aud = state.sku, state.agent, state.popularity, state.audience
    out: dict[str, tuple[np.ndarray, np.ndarray]] = {}

    n_bought = np.where(known, aud.bought(a, skus), 0.0)
    out["customers_rebuy"] = (n_bought >= 1, n_bought)

    age = (state.cutoff.value - sku.launched_ns[skus]) / NS_PER_DAY
    series = sku.series[skus]
    sold_series = np.where(series >= 0, agent.series_share(a, np.maximum(series, 0)), 0.0)
    new_in_series = known & (age >= 0) & (age < cfg.new_days) & (sold_series > 0)
    out["new_in_series"] = (new_in_series, np.zeros(len(skus)))

    region = agent.region[a]
    in_region = known & (region >= 0)
    r = np.maximum(region, 0)
    week = np.where(in_region, pop.region_week[r, skus], 0.0)
    prev = np.where(in_region, pop.region_prev_week[r, skus], 0.0)
    growth = np.divide(100.0 * (week - prev), prev, out=np.zeros(len(skus)), where=prev > 0)
    trending = in_region & (week >= cfg.min_trend_units) & (week > prev)
    out["trending_region"] = (trending, np.where(prev > 0, np.rint(growth), 0.0))

    n_similar = _similar_sold(state, a, skus) * known
    out["similar_agents_sell"] = (n_similar >= cfg.min_similar, n_similar)

    lines = sku.n_lines[skus]
    line_rate = np.divide(sku.returned_lines[skus], lines, out=np.zeros(len(skus)), where=lines > 0)
    low = (lines >= cfg.min_lines) & (
        line_rate < sku.category_line_rate[skus] * cfg.low_return_factor
    )
    out["low_return_rate"] = (low, np.rint(100.0 * line_rate))

    rel = sku.rel_price[skus]
    lo, hi = agent.price_low[a], agent.price_high[a]
    in_band = known & (agent.n_lines[a] >= cfg.min_band_lines) & (rel >= lo) & (rel <= hi)
    out["fits_price_band"] = (np.nan_to_num(in_band, nan=False).astype(bool), np.zeros(len(skus)))

    buyers = np.where(in_region, aud.region_buyers[r, skus], 0.0) if len(aud.region_buyers) else 0
    buyers = np.broadcast_to(np.asarray(buyers, dtype=np.float64), (len(skus),))
    out["popular_in_region"] = (buyers >= cfg.min_region_buyers, buyers)
    return out


def _similar_sold(state: RankingState, agents: np.ndarray, skus: np.ndarray) -> np.ndarray:
    nb = state.neighbours[agents]
    if nb.shape[1] == 0:
        return np.zeros(len(agents))
    flat = state.sold_recent_at(np.maximum(nb, 0).ravel(), np.repeat(skus, nb.shape[1]))
    return ((flat > 0).reshape(nb.shape) & (nb >= 0)).sum(axis=1).astype(np.float64)


def pick_reasons(
    state: RankingState, agents: np.ndarray, skus: np.ndarray, config: ReasonConfig | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Reason ids (n × 3 uint8, left-packed, 0 = none) and parameters (n × 3 uint16) of picks."""
    values = reason_values(state, agents, skus, config)
    n = len(skus)
    ids = np.zeros((n, MAX_PICK_REASONS), dtype=np.uint8)
    params = np.zeros((n, MAX_PICK_REASONS), dtype=np.uint16)
    filled = np.zeros(n, dtype=np.int64)
    for code in ORDER:
        true, param = values[code]
        slot = true & (filled < MAX_PICK_REASONS)
        rows = np.flatnonzero(slot)
        ids[rows, filled[rows]] = reason_id(code)
        params[rows, filled[rows]] = np.clip(np.asarray(param)[rows], 0, MAX_PARAM)
        filled[rows] += 1
    none = filled == 0
    ids[none, 0] = reason_id("picked_for_you")
    return ids, params


def reasons_frame(ids: np.ndarray, params: np.ndarray) -> pd.DataFrame:
    """Reason ids and parameters as readable columns: reason_1, param_1, ... (codes, ints)."""
    out = {}
    for j in range(ids.shape[1]):
        out[f"reason_{j + 1}"] = [reason_code(int(r)) if r else None for r in ids[:, j]]
        out[f"param_{j + 1}"] = params[:, j].astype(np.int64)
    return pd.DataFrame(out)
