"""Business rules on scored candidates: exclusions, tier privileges and diversity (issue 5, 2).

- **Recent shares**: optionally drop SKUs she shared in the last `exclude_shared_days` days (she
  has just posted them; her group has seen them).
- **Tier privileges** (off by default): for `privilege_days` after its launch a new SKU is shown
  only to agents of tier >= `privilege_min_tier`: early access is the cheapest privilege.
- **Diversity**: `diversity="cap"` keeps at most `max_per_series` SKUs of one series and
  `max_per_category` of one category in a list (first the series cap, then the category cap, each
  keeping the best-scored); `"mmr"` re-ranks greedily by maximal marginal relevance (Carbonell &
  Goldstein 1998) with the cosine of ALS SKU factors; `"none"` keeps the score order.

Region availability, status and suspensions are applied earlier, when candidates are drawn.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd

from recsys.ranking.state import NS_PER_DAY, RankingState

Diversity = Literal["cap", "mmr", "none"]
DIVERSITIES: tuple[str, ...] = ("cap", "mmr", "none")


@dataclass(frozen=True)
class RuleConfig:
    """Knobs of the rules (all off or lenient by default except the series cap)."""

    exclude_shared_days: float | None = None
    privilege_days: float = 0.0
    privilege_min_tier: int = 3
    diversity: Diversity = "cap"
    max_per_series: int | None = 4
    max_per_category: int | None = None
    mmr_lambda: float = 0.8

    def __post_init__(self) -> None:
        if self.diversity not in DIVERSITIES:
            raise ValueError(f"diversity must be one of {DIVERSITIES}, got {self.diversity!r}")
        for name in ("max_per_series", "max_per_category"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ValueError(f"{name} must be >= 1 or None, got {value!r}")
        if not 0.0 <= self.mmr_lambda <= 1.0:
            raise ValueError(f"mmr_lambda must be in [0, 1], got {self.mmr_lambda!r}")
        if self.privilege_days < 0:
            raise ValueError(f"privilege_days must be >= 0, got {self.privilege_days!r}")


def exclusion_mask(
    state: RankingState, agents: np.ndarray, skus: np.ndarray, config: RuleConfig
) -> np.ndarray:
    """True for the (agent, SKU) pairs the rules allow (aligned index arrays)."""
    keep = np.ones(len(agents), dtype=bool)
    now = state.cutoff.value
    if config.exclude_shared_days is not None:
        last = state.last_share_ns(agents, skus)
        recent = (last > 0) & (now - last < config.exclude_shared_days * NS_PER_DAY)
        keep &= ~recent
    if config.privilege_days > 0:
        age = (now - state.sku.launched_ns[skus]) / NS_PER_DAY
        early = (age >= 0) & (age < config.privilege_days)
        keep &= ~early | (state.agent.tier[agents] >= config.privilege_min_tier)
    return keep


def _first_per_group(rows: np.ndarray, group: np.ndarray, cap: int) -> np.ndarray:
    """Mask of items (already in score order within each row) ranked < cap within (row, group).

    Items with group -1 are each their own group.
    """
    key = np.where(group >= 0, group, -1 - np.arange(len(group)))
    frame = pd.DataFrame({"r": rows, "g": key})
    return (frame.groupby(["r", "g"], sort=False).cumcount() < cap).to_numpy()


def select_top_k(
    state: RankingState,
    rows: np.ndarray,
    skus: np.ndarray,
    scores: np.ndarray,
    n_rows: int,
    k: int,
    config: RuleConfig,
) -> tuple[np.ndarray, np.ndarray]:
    """The k best SKUs of each row under the diversity rule: (sku idx, score), -1 / -inf padded."""
    order = np.lexsort((skus, -scores, rows))
    rows, skus, scores = rows[order], skus[order], scores[order]
    if config.diversity == "cap":
        if config.max_per_series is not None:
            ok = _first_per_group(rows, state.sku.series[skus], config.max_per_series)
            rows, skus, scores = rows[ok], skus[ok], scores[ok]
        if config.max_per_category is not None:
            ok = _first_per_group(rows, state.sku.category[skus], config.max_per_category)
            rows, skus, scores = rows[ok], skus[ok], scores[ok]
    elif config.diversity == "mmr":
        rows, skus, scores = _mmr(state, rows, skus, scores, k, config.mmr_lambda)
    out_idx = np.full((n_rows, k), -1, dtype=np.int64)
    out_val = np.full((n_rows, k), -np.inf, dtype=np.float32)
    if len(rows) == 0:
        return out_idx, out_val
    start = np.searchsorted(rows, np.arange(n_rows))
    position = np.arange(len(rows)) - start[rows]
    take = position < k
    out_idx[rows[take], position[take]] = skus[take]
    out_val[rows[take], position[take]] = scores[take]
    return out_idx, out_val


def _mmr(
    state: RankingState,
    rows: np.ndarray,
    skus: np.ndarray,
    scores: np.ndarray,
    k: int,
    lam: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Greedy MMR re-ranking of each row's items (in score order) down to its first k.

    Each step takes argmax λ·rel − (1 − λ)·max cosine to the items already taken, with rel the
    score min-max scaled within the row. The output keeps the original scores, made
    non-increasing in the new order so the list still reads best first.
    """
    factors = np.asarray(state.als.model_.item_factors, dtype=np.float32)
    norms = np.linalg.norm(factors, axis=1, keepdims=True)
    unit = factors / np.where(norms > 0, norms, 1.0)
    out_r, out_s, out_v = [], [], []
    bounds = np.flatnonzero(np.diff(np.r_[-1, rows, -2]))
    for lo, hi in zip(bounds[:-1], bounds[1:], strict=True):
        s, v = skus[lo:hi], scores[lo:hi].astype(np.float64)
        span = v.max() - v.min()
        rel = (v - v.min()) / span if span > 0 else np.ones_like(v)
        vecs = unit[s]
        chosen: list[int] = []
        penalty = np.zeros(len(s))
        free = np.ones(len(s), dtype=bool)
        for _ in range(min(k, len(s))):
            gain = np.where(free, lam * rel - (1 - lam) * penalty, -np.inf)
            best = int(np.argmax(gain))
            chosen.append(best)
            free[best] = False
            penalty = np.maximum(penalty, vecs @ vecs[best])
        picked = np.array(chosen, dtype=np.int64)
        out_r.append(np.full(len(picked), rows[lo]))
        out_s.append(s[picked])
        out_v.append(np.minimum.accumulate(v[picked]))
    if not out_r:
        return rows[:0], skus[:0], scores[:0]
    return (
        np.concatenate(out_r),
        np.concatenate(out_s),
        np.concatenate(out_v).astype(scores.dtype),
    )
