"""One row of numbers per (agent, SKU) pair: what the ranker and the return-risk model read.

Every feature is known at the state's cutoff (nothing after it), is computed for aligned index
arrays of pairs in chunks (memory bounded by `CHUNK_PAIRS`, never agents × SKUs), and is a
float32 without NaN. Names and meaning: `FEATURES` (docs/sell-with-confidence.md lists them).
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from recsys.ranking.lookup import PairLookup
from recsys.ranking.state import NS_PER_DAY, RankingState

CHUNK_PAIRS = 200_000
NEW_SKU_DAYS = 30.0
NEVER_SHARED_DAYS = 365.0

FEATURES: tuple[str, ...] = (
    "als_score",  # agent ALS: her history of sales and shares
    "knn_score",  # item-kNN from what sold through her
    "audience_score",  # item-to-customer ALS averaged over her customers (audience.py)
    "content_score",  # side features of the SKU vs what sold through her
    "repeat_score",  # log1p recency-weighted kept units through her
    "customers_bought",  # log1p distinct customers of hers who bought it before
    "customers_bought_share",  # of her active customers
    "customers_kept",  # log1p distinct customers of hers who kept a unit
    "neighbours_sold",  # of her nearest agents (ALS), how many sold it lately
    "own_shares",  # log1p her shares of it
    "days_since_share",  # log1p days since she last shared it (365 if never)
    "price_gap",  # log price vs category median, minus her mean of the same
    "price_gap_z",  # |price_gap| / (her sd + 0.2)
    "category_affinity",  # share of her units in its category
    "series_affinity",  # share of her units in its series
    "region_popularity",  # log1p agents in her region who sold it lately
    "popularity",  # log1p agents who sold it lately
    "tier_popularity",  # log1p agents of her tier who sold it lately
    "region_trend",  # log1p this week - log1p last week, her region
    "sku_age",  # log1p days since launch
    "is_new",  # launched in the last 30 days
    "sku_return_rate",  # smoothed share of its units returned
    "sku_fault_rate",  # the same for quality / not-as-described
    "category_return_rate",
    "sku_units",  # log1p units sold
    "pair_units",  # log1p units of it sold through her
    "pair_return_share",  # of those, share returned (0 when none sold)
    "log_price",
    "agent_units",  # log1p units sold through her
    "agent_shares",  # log1p her shares
    "agent_customers",  # log1p her customers
    "agent_return_rate",
    "tier",
)
RETURN_FEATURES: tuple[str, ...] = (
    "als_score",
    "audience_score",
    "content_score",
    "repeat_score",
    "customers_kept",
    "price_gap",
    "price_gap_z",
    "category_affinity",
    "series_affinity",
    "sku_age",
    "sku_return_rate",
    "sku_fault_rate",
    "category_return_rate",
    "sku_units",
    "pair_units",
    "pair_return_share",
    "log_price",
    "agent_units",
    "agent_return_rate",
)
_INDEX = {name: i for i, name in enumerate(FEATURES)}


def feature_columns(names: tuple[str, ...]) -> np.ndarray:
    """Column positions of `names` in `FEATURES` (KeyError naming an unknown feature)."""
    try:
        return np.array([_INDEX[n] for n in names], dtype=np.int64)
    except KeyError as exc:
        raise KeyError(f"unknown feature {exc.args[0]!r}; known: {', '.join(FEATURES)}") from None


def _knn_pairs(state: RankingState, agents: np.ndarray, skus: np.ndarray) -> np.ndarray:
    """Item-kNN scores of pairs of any agents (memory: one dense row of SKUs)."""
    from recsys.ranking.candidates import knn_pair_scores

    return knn_pair_scores(state, np.arange(state.n_agents), agents, skus)


def _neighbours_sold(state: RankingState, agents: np.ndarray, skus: np.ndarray) -> np.ndarray:
    """How many of her nearest agents sold the SKU in the recent window.

    One sparse product per chunk: her nearest agents (a 0/1 row) times who sold what lately,
    looked up at the pairs (10 lookups per pair into the whole log cost 6x more).
    """
    rows, inverse = np.unique(agents, return_inverse=True)
    nb = state.neighbours[rows]
    if nb.shape[1] == 0:
        return np.zeros(len(agents))
    r, c = np.nonzero(nb >= 0)
    near = sp.csr_matrix(
        (np.ones(len(r), np.float32), (r, nb[r, c])), shape=(len(rows), state.n_agents)
    )
    return PairLookup(near @ state.sold_recent_any)(inverse, skus)


def _content_score(state: RankingState, agents: np.ndarray, skus: np.ndarray) -> np.ndarray:
    """Cosine of her content profile and the SKU's side features, from its 5-8 non-zero entries
    (3x faster than the dense dot product of some 150 columns; equal to float32 rounding)."""
    cols, vals = state.content_terms
    picked = state.agent_content[agents[:, None], cols[skus]]
    return (picked * vals[skus]).sum(axis=1, dtype=np.float64)


def _chunk(state: RankingState, a: np.ndarray, s: np.ndarray, knn: np.ndarray | None) -> np.ndarray:
    sku, agent, pop, aud = state.sku, state.agent, state.popularity, state.audience
    als = state.als.model_
    als_score = np.einsum("ij,ij->i", als.user_factors[a], als.item_factors[s])
    als_score = np.where(state.als.warm_skus_[s] & state.als.warm_users_[a], als_score, 0.0)
    content = _content_score(state, a, s)
    bought = aud.bought(a, s)
    last = state.last_share_ns(a, s)
    days_share = np.where(last > 0, (state.cutoff.value - last) / NS_PER_DAY, NEVER_SHARED_DAYS)
    gap = sku.rel_price[s] - agent.price_mean[a]
    region = np.maximum(agent.region[a], 0)
    in_region = agent.region[a] >= 0
    tier = np.clip(agent.tier[a] - 1, 0, pop.tier.shape[0] - 1)
    age_days = np.maximum((state.cutoff.value - sku.launched_ns[s]) / NS_PER_DAY, 0.0)
    series = sku.series[s]
    pair_units = agent.pair_units(a, s)
    cols = {
        "als_score": als_score,
        "knn_score": _knn_pairs(state, a, s) if knn is None else knn,
        "audience_score": aud.pair_scores(a, s),
        "content_score": content,
        "repeat_score": np.log1p(state.repeat_at(a, s)),
        "customers_bought": np.log1p(bought),
        "customers_bought_share": bought / np.maximum(aud.n_active[a], 1.0),
        "customers_kept": np.log1p(aud.kept(a, s)),
        "neighbours_sold": _neighbours_sold(state, a, s),
        "own_shares": np.log1p(state.shares(a, s)),
        "days_since_share": np.log1p(days_share),
        "price_gap": gap,
        "price_gap_z": np.abs(gap) / (agent.price_sd[a] + 0.2),
        "category_affinity": agent.category_mix[a, sku.category[s]],
        "series_affinity": np.where(series >= 0, agent.series_share(a, np.maximum(series, 0)), 0.0),
        "region_popularity": np.where(in_region, np.log1p(pop.region[region, s]), 0.0),
        "popularity": np.log1p(pop.recent[s]),
        "tier_popularity": np.log1p(pop.tier[tier, s]),
        "region_trend": np.where(
            in_region,
            np.log1p(pop.region_week[region, s]) - np.log1p(pop.region_prev_week[region, s]),
            0.0,
        ),
        "sku_age": np.log1p(age_days),
        "is_new": (age_days < NEW_SKU_DAYS).astype(np.float64),
        "sku_return_rate": sku.return_rate[s],
        "sku_fault_rate": sku.fault_rate[s],
        "category_return_rate": sku.category_return_rate[s],
        "sku_units": sku.log_units[s],
        "pair_units": np.log1p(pair_units),
        "pair_return_share": np.divide(
            agent.pair_returned(a, s),
            pair_units,
            out=np.zeros(len(a)),
            where=pair_units > 0,
        ),
        "log_price": np.log1p(sku.price[s]),
        "agent_units": agent.log_units[a],
        "agent_shares": agent.log_shares[a],
        "agent_customers": np.log1p(aud.n_customers[a]),
        "agent_return_rate": agent.return_rate[a],
        "tier": agent.tier[a].astype(np.float64),
    }
    out = np.empty((len(a), len(FEATURES)), dtype=np.float32)
    for i, name in enumerate(FEATURES):
        out[:, i] = cols[name]
    return np.nan_to_num(out, nan=0.0, posinf=0.0, neginf=0.0)


def pair_features(
    state: RankingState, agents: np.ndarray, skus: np.ndarray, knn: np.ndarray | None = None
) -> np.ndarray:
    """The float32 feature matrix (len(agents) × len(FEATURES)) of aligned (agent, SKU) pairs.

    `knn` may pass the pairs' item-kNN scores when already computed (candidate generation).

    Raises
    ------
    ValueError
        If the index arrays differ in length.
    """
    agents = np.asarray(agents, dtype=np.int64)
    skus = np.asarray(skus, dtype=np.int64)
    if len(agents) != len(skus):
        raise ValueError(f"agents and skus must align, got {len(agents)} and {len(skus)}")
    out = np.empty((len(agents), len(FEATURES)), dtype=np.float32)
    for lo in range(0, len(agents), CHUNK_PAIRS):
        hi = lo + CHUNK_PAIRS
        part = None if knn is None else np.asarray(knn, dtype=np.float64)[lo:hi]
        out[lo:hi] = _chunk(state, agents[lo:hi], skus[lo:hi], part)
    return out
