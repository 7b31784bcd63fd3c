"""Candidate SKUs per agent: the union of a few cheap sources, about 110 per agent (issue 5, 1).

Sources (each its top-n, n set by `CandidateConfig`): her ALS scores (and, on request, her BPR
scores: `n_bpr` > 0 fits a BPR model in the state), her own repeat sales, the audience score
(audience.py), what her customers bought before, popularity in her region and in
her tier, and new SKUs (launched in the last `new_days`) that fit her by side features; item-kNN
from what sold through her is a source only on request (`n_knn` > 0): as a source it changed no
measured metric and cost a dense product, so by default its score is computed for the candidate
pairs only, as a feature. Each pair keeps a bit mask of the sources that proposed it.

ALS and audience tops go through implicit's C++ top-k selection (the one behind its ALS
`recommend`) over the allowed SKUs' factors; what all batches share (those factors, the region
and tier tops, the new SKUs) is built once per scoring run (`source_tables`). Blocks are batch ×
SKUs at most, one at a time, so memory is bounded by the batch size.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp

from recsys.ranking.lookup import product_at, top_n_dense, top_n_factors, top_n_sparse
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
    "bpr": 256,
}


@dataclass(frozen=True)
class CandidateConfig:
    """How many candidates each source proposes per agent (0 turns a source off)."""

    n_als: int = 60
    n_knn: int = 0
    n_repeat: int = 40
    n_audience: int = 40
    n_customers: int = 30
    n_region: int = 20
    n_tier: int = 10
    n_new: int = 10
    n_bpr: int = 0  # > 0: the state fits a BPR model and its top-n join the candidates
    new_days: float = 30.0
    knn_scores: bool = True  # compute each candidate's item-kNN score (a feature); False: 0

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


@dataclass(frozen=True)
class SourceTables:
    """What every batch of one scoring run shares: built once by `source_tables`, not per batch.

    `als_skus` / `audience_skus` are the SKUs those sources may propose (allowed and learnt by
    the model), with their factors gathered once into contiguous blocks.
    """

    allowed: np.ndarray
    als_skus: np.ndarray
    als_factors: np.ndarray
    audience_skus: np.ndarray
    audience_factors: np.ndarray
    region_tops: np.ndarray  # n_regions × n_region SKU indices, -1 padded
    tier_tops: np.ndarray  # n_tiers × n_tier
    new_skus: np.ndarray  # allowed SKUs launched in the last `new_days`
    num_threads: int = 1
    bpr_skus: np.ndarray | None = None  # as `als_skus`, when the state has a BPR model
    bpr_factors: np.ndarray | None = None


def source_tables(
    state: RankingState,
    allowed: np.ndarray,
    config: CandidateConfig | None = None,
    num_threads: int = 1,
) -> SourceTables:
    """The shared tables of the candidate sources for the SKUs in `allowed` (n_skus bool)."""
    cfg = config or CandidateConfig()
    allowed = np.asarray(allowed, dtype=bool)
    als_skus = np.flatnonzero(allowed & state.als.warm_skus_)
    aud = state.audience
    audience_skus = np.flatnonzero(allowed & aud.warm_skus)
    age = (state.cutoff.value - state.sku.launched_ns) / NS_PER_DAY
    bpr_skus = bpr_factors = None
    if cfg.n_bpr and state.bpr is not None:
        bpr_skus = np.flatnonzero(allowed & state.bpr.warm_skus_)
        bpr_factors = np.ascontiguousarray(state.bpr.model_.item_factors[bpr_skus], np.float32)
    return SourceTables(
        allowed=allowed,
        als_skus=als_skus,
        als_factors=np.ascontiguousarray(state.als.model_.item_factors[als_skus], np.float32),
        audience_skus=audience_skus,
        audience_factors=np.ascontiguousarray(aud.item_factors[audience_skus], np.float32),
        region_tops=_group_tops(state.popularity.region, allowed, cfg.n_region),
        tier_tops=_group_tops(state.popularity.tier, allowed, cfg.n_tier),
        new_skus=np.flatnonzero(allowed & (age >= 0) & (age < cfg.new_days)),
        num_threads=int(num_threads),
        bpr_skus=bpr_skus,
        bpr_factors=bpr_factors,
    )


def knn_block(state: RankingState, agents: np.ndarray) -> sp.csr_matrix:
    """Item-kNN scores of a batch (her row of the interactions times the similarity), sparse."""
    knn = state.knn
    return sp.csr_matrix(knn.user_items_[agents] @ knn.similarity_)


def knn_pair_scores(
    state: RankingState, agents: np.ndarray, rows: np.ndarray, skus: np.ndarray
) -> np.ndarray:
    """Item-kNN scores of a batch's (row, SKU) pairs, computed at those pairs only.

    The same numbers as `knn_block` looked up at the pairs (tested), in about half the time
    of a product restricted to the batch's candidate SKUs (0.8 s against 1.65 s on `medium`).
    """
    knn = state.knn
    return product_at(knn.user_items_, state.knn_similarity_to, agents, rows, skus)


def _only_allowed(block: sp.csr_matrix, allowed: np.ndarray) -> sp.csr_matrix:
    """The block with the values of SKUs outside `allowed` set to 0 (top-n drops them)."""
    out = block.copy()
    out.data = np.where(allowed[out.indices], out.data, 0).astype(out.data.dtype)
    return out


def _dense_lookup(block: sp.csr_matrix, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """Values of a batch's sparse block at (row, col) pairs, 0 where nothing is stored."""
    dense = np.zeros(block.shape, dtype=np.float32)  # batch × SKUs: bounded by the batch size
    coo = block.tocoo()
    dense[coo.row, coo.col] = coo.data
    return dense[rows, cols].astype(np.float64)


def generate(
    state: RankingState,
    agents: np.ndarray,
    allowed: np.ndarray,
    config: CandidateConfig | None = None,
    tables: SourceTables | None = None,
) -> Candidates:
    """Candidates of a batch of agent indices; SKUs outside `allowed` (n_skus bool) never appear.

    Region availability is applied per agent: a SKU not sold in her region is dropped. `tables`
    (from `source_tables` with the same `allowed` and config) saves rebuilding them per batch.
    """
    cfg = config or CandidateConfig()
    tabs = tables if tables is not None else source_tables(state, allowed, cfg)
    allowed = tabs.allowed
    agents = np.asarray(agents, dtype=np.int64)
    parts: list[tuple[np.ndarray, np.ndarray, int]] = []

    if cfg.n_als:
        r, s = _factor_top(state.als, agents, tabs.als_skus, tabs.als_factors, cfg.n_als, tabs)
        parts.append((r, s, SOURCES["als"]))
    if cfg.n_bpr and tabs.bpr_factors is not None:  # the tables hold them when the state has BPR
        r, s = _factor_top(state.bpr, agents, tabs.bpr_skus, tabs.bpr_factors, cfg.n_bpr, tabs)
        parts.append((r, s, SOURCES["bpr"]))
    knn = knn_block(state, agents) if cfg.n_knn else None
    if knn is not None:
        r, s = top_n_sparse(_only_allowed(knn, allowed), cfg.n_knn)
        parts.append((r, s, SOURCES["knn"]))
    if cfg.n_audience:
        vectors = state.audience.vectors[agents]
        # no customer signal (no active customer): no audience candidates, not 40 ties at 0
        heard = np.flatnonzero(np.any(vectors != 0, axis=1))
        n, threads = cfg.n_audience, tabs.num_threads
        r, c = top_n_factors(vectors[heard], tabs.audience_factors, n, threads)
        parts.append((heard[r], tabs.audience_skus[c], SOURCES["audience"]))
    for name, matrix, n in (
        ("repeat", state.repeat, cfg.n_repeat),
        ("customers", state.audience.bought_matrix, cfg.n_customers),
    ):
        if n:
            r, s = top_n_sparse(_only_allowed(sp.csr_matrix(matrix[agents]), allowed), n)
            parts.append((r, s, SOURCES[name]))
    if cfg.n_region:
        region = state.agent.region[agents]
        known = np.flatnonzero(region >= 0)
        r, s = _expand(region[known], tabs.region_tops)
        parts.append((known[r], s, SOURCES["region"]))
    if cfg.n_tier:
        tier = np.clip(state.agent.tier[agents] - 1, 0, len(tabs.tier_tops) - 1)
        r, s = _expand(tier, tabs.tier_tops)
        parts.append((r, s, SOURCES["tier"]))
    if cfg.n_new and len(tabs.new_skus):
        block = state.agent_content[agents] @ state.content[tabs.new_skus].T
        r, c = top_n_dense(np.asarray(block, dtype=np.float32), cfg.n_new)
        parts.append((r, tabs.new_skus[c], SOURCES["new"]))
    cands = _union(state, agents, parts)
    # unreachable from her SKUs: no kNN evidence, score 0 as in the pair features
    if knn is not None:
        knn_scores = _dense_lookup(knn, cands.rows, cands.skus)
    elif cfg.knn_scores:
        knn_scores = knn_pair_scores(state, agents, cands.rows, cands.skus)
    else:
        knn_scores = np.zeros(len(cands))
    return Candidates(cands.rows, cands.skus, cands.sources, knn_scores)


def _factor_top(
    model: Any,
    agents: np.ndarray,
    skus: np.ndarray,
    factors: np.ndarray,
    n: int,
    tabs: SourceTables,
) -> tuple[np.ndarray, np.ndarray]:
    """(row, SKU) of her n best `skus` (rows of item `factors`) by a factor model (ALS, BPR),
    for the agents it knows: implicit's top-k selection."""
    warm = np.flatnonzero(model.warm_users_[agents])
    r, c = top_n_factors(model.model_.user_factors[agents[warm]], factors, n, tabs.num_threads)
    return warm[r], skus[c]


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
