"""Candidate SKUs per agent: the union of a few cheap sources, 100-200 per agent (issue 5, 1).

Sources (each its top-n, n set by `CandidateConfig`): her ALS scores, item-kNN from what sold
through her, her own repeat sales, the audience score (audience.py), what her customers bought
before, popularity in her region and in her tier, and new SKUs (launched in the last `new_days`)
that fit her by side features. Each pair keeps a bit mask of the sources that proposed it.
Dense score blocks are batch × SKUs, one at a time, so memory is bounded by the batch size.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from recsys.ranking.lookup import top_n_dense, top_n_sparse
from recsys.ranking.state import NS_PER_DAY, RankingState

SOURCES: dict[str, int] = {
    "als": 1,
    "knn": 2,
    "repeat": 4,
    "audience": 8,
    "customers": 16,
    "region": 32,
    "tier": 64,
    "new": 128,
}


@dataclass(frozen=True)
class CandidateConfig:
    """How many candidates each source proposes per agent."""

    n_als: int = 60
    n_knn: int = 40
    n_repeat: int = 40
    n_audience: int = 40
    n_customers: int = 30
    n_region: int = 20
    n_tier: int = 10
    n_new: int = 10
    new_days: float = 30.0

    def __post_init__(self) -> None:
        for name, value in self.__dict__.items():
            if value < 0:
                raise ValueError(f"{name} must be >= 0, got {value!r}")


@dataclass(frozen=True)
class Candidates:
    """Pairs of a batch: `rows` index the batch's agents, `skus` the catalogue; `sources` bits.

    `knn` holds each pair's item-kNN score when the batch computed it (the features reuse it
    rather than multiplying the sparse matrices a second time); None = compute it again.
    """

    rows: np.ndarray
    skus: np.ndarray
    sources: np.ndarray
    knn: np.ndarray | None = None

    def subset(self, keep: np.ndarray) -> Candidates:
        """The pairs where `keep` is true."""
        knn = None if self.knn is None else self.knn[keep]
        return Candidates(self.rows[keep], self.skus[keep], self.sources[keep], knn)

    def __len__(self) -> int:
        return len(self.rows)


def _group_tops(scores: np.ndarray, allowed: np.ndarray, n: int) -> np.ndarray:
    """Top-n allowed SKU indices of each row of a small dense table (e.g. regions × SKUs)."""
    masked = np.where(allowed[None, :] & (scores > 0), scores, -np.inf)
    n = min(n, masked.shape[1])
    if n == 0:
        return np.zeros((len(masked), 0), dtype=np.int64)
    order = np.argsort(-masked, axis=1, kind="stable")[:, :n]
    return np.where(np.take_along_axis(np.isfinite(masked), order, axis=1), order, -1)


def _expand(rows_groups: np.ndarray, table: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(row, sku) pairs giving each row the list of its group (-1 entries dropped)."""
    lists = table[rows_groups]
    rows = np.repeat(np.arange(len(rows_groups)), lists.shape[1])
    skus = lists.ravel()
    ok = skus >= 0
    return rows[ok], skus[ok].astype(np.int64)


def generate(
    state: RankingState,
    agents: np.ndarray,
    allowed: np.ndarray,
    config: CandidateConfig | None = None,
) -> Candidates:
    """Candidates of a batch of agent indices; SKUs outside `allowed` (n_skus bool) never appear.

    Region availability is applied per agent: a SKU not sold in her region is dropped.
    """
    cfg = config or CandidateConfig()
    agents = np.asarray(agents, dtype=np.int64)
    parts: list[tuple[np.ndarray, np.ndarray, int]] = []

    def dense(name: str, scores: np.ndarray, n: int) -> None:
        if n > 0:
            scores[:, ~allowed] = -np.inf
            r, s = top_n_dense(scores, n)
            parts.append((r, s, SOURCES[name]))

    als = state.als
    if cfg.n_als and als.warm_users_[agents].any():
        block = np.asarray(
            als.model_.user_factors[agents] @ als.model_.item_factors.T, dtype=np.float32
        )
        block[~als.warm_users_[agents]] = -np.inf
        block[:, ~als.warm_skus_] = -np.inf
        dense("als", block, cfg.n_als)
    knn_block = state.knn._score(agents)
    if cfg.n_knn:
        dense("knn", knn_block, cfg.n_knn)
    if cfg.n_audience:
        dense("audience", state.audience.scores(agents), cfg.n_audience)
    for name, matrix, n in (
        ("repeat", state.repeat, cfg.n_repeat),
        ("customers", state.audience.bought_matrix, cfg.n_customers),
    ):
        if n:
            sub = matrix[agents].tocsr()
            sub = sub.multiply(allowed[None, :].astype(np.float32)).tocsr()
            r, s = top_n_sparse(sub, n)
            parts.append((r, s, SOURCES[name]))
    pop = state.popularity
    if cfg.n_region:
        tops = _group_tops(pop.region, allowed, cfg.n_region)
        region = state.agent.region[agents]
        known = np.flatnonzero(region >= 0)
        r, s = _expand(region[known], tops)
        parts.append((known[r], s, SOURCES["region"]))
    if cfg.n_tier:
        tops = _group_tops(pop.tier, allowed, cfg.n_tier)
        tier = np.clip(state.agent.tier[agents] - 1, 0, len(tops) - 1)
        r, s = _expand(tier, tops)
        parts.append((r, s, SOURCES["tier"]))
    if cfg.n_new:
        age = (state.cutoff.value - state.sku.launched_ns) / NS_PER_DAY
        new = np.flatnonzero(allowed & (age >= 0) & (age < cfg.new_days))
        if len(new):
            block = state.agent_content[agents] @ state.content[new].T
            r, c = top_n_dense(np.asarray(block, dtype=np.float32), cfg.n_new)
            parts.append((r, new[c], SOURCES["new"]))
    cands = _union(state, agents, parts)
    knn = knn_block[cands.rows, cands.skus]
    # unreachable from her SKUs: no kNN evidence, score 0 as in the pair features
    return Candidates(cands.rows, cands.skus, cands.sources, np.where(np.isfinite(knn), knn, 0.0))


def _union(
    state: RankingState, agents: np.ndarray, parts: list[tuple[np.ndarray, np.ndarray, int]]
) -> Candidates:
    """Distinct (row, sku) pairs with OR-ed source bits, dropping SKUs not sold in her region."""
    n_skus = state.n_skus
    if not parts:
        empty = np.zeros(0, dtype=np.int64)
        return Candidates(empty, empty, empty)
    keys = np.concatenate([r.astype(np.int64) * n_skus + s for r, s, _ in parts])
    bits = np.concatenate([np.full(len(r), b, dtype=np.int64) for r, _, b in parts])
    uniq, inverse = np.unique(keys, return_inverse=True)
    sources = np.zeros(len(uniq), dtype=np.int64)
    np.bitwise_or.at(sources, inverse, bits)
    rows, skus = uniq // n_skus, uniq % n_skus
    region = state.agent.region[agents][rows]
    sold_there = np.where(region >= 0, state.sku.region_mask[np.maximum(region, 0), skus], True)
    return Candidates(rows[sold_there], skus[sold_there], sources[sold_there])


def sku_allowed(state: RankingState, suspended: np.ndarray | None = None) -> np.ndarray:
    """SKUs that may be proposed at the state's cutoff: active, launched, not suspended."""
    ok = state.sku.available & (state.sku.launched_ns < state.cutoff.value)
    if suspended is not None and len(suspended):
        ok = ok.copy()
        ok[np.asarray(suspended, dtype=np.int64)] = False
    return ok
