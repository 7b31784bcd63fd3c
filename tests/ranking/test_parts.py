"""The parts of the ranker: lookups, audience, candidates, rules, on known inputs."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.testing import assert_allclose

from recsys.ranking.candidates import SOURCES, CandidateConfig, generate
from recsys.ranking.features import FEATURES, feature_columns, pair_features
from recsys.ranking.lookup import PairLookup, top_n_dense, top_n_sparse
from recsys.ranking.rules import RuleConfig, exclusion_mask, select_top_k
from recsys.ranking.state import NS_PER_DAY
from tests.ranking.conftest import Fitted

matrices = st.integers(min_value=1, max_value=8).flatmap(
    lambda r: st.integers(min_value=1, max_value=8).flatmap(
        lambda c: st.lists(
            st.integers(min_value=0, max_value=5), min_size=r * c, max_size=r * c
        ).map(lambda v: np.array(v, dtype=float).reshape(r, c))
    )
)


@given(matrices)
def test_pair_lookup_matches_the_dense_matrix(dense: np.ndarray) -> None:
    lookup = PairLookup(sp.csr_matrix(dense))
    rows, cols = np.indices(dense.shape)
    assert_allclose(lookup(rows.ravel(), cols.ravel()), dense.ravel())


@settings(max_examples=50)
@given(matrices, st.integers(min_value=1, max_value=4))
def test_top_n_helpers_take_the_largest_of_each_row(dense: np.ndarray, n: int) -> None:
    rows, cols = top_n_sparse(sp.csr_matrix(dense), n)
    for r in range(dense.shape[0]):
        positive = np.sort(dense[r][dense[r] > 0])[::-1]
        got = np.sort(dense[r, cols[rows == r]])[::-1]
        assert_allclose(got, positive[: min(n, len(positive))])
    scores = np.where(dense > 0, dense, -np.inf)
    rows, cols = top_n_dense(scores, n)
    for r in range(dense.shape[0]):
        finite = np.sort(scores[r][np.isfinite(scores[r])])[::-1]
        assert_allclose(np.sort(scores[r, cols[rows == r]])[::-1], finite[: min(n, len(finite))])


def test_audience_score_is_the_weighted_mean_of_her_customers_scores(tiny_ranked: Fitted) -> None:
    aud = tiny_ranked.model.state_.audience
    agent = int(np.argmax(aud.n_active))
    mine = np.flatnonzero(aud.customer_agent == agent)
    w = aud.customer_weight[mine].astype(np.float64)
    skus = np.arange(50)
    per_customer = aud.customer_factors[mine] @ aud.item_factors[skus].T
    want = (w[:, None] * per_customer).sum(axis=0) / w.sum()
    got = aud.pair_scores(np.full(len(skus), agent), skus)
    warm = aud.warm_skus[skus]
    assert_allclose(got[warm], want[warm], rtol=1e-4, atol=1e-6)
    assert_allclose(aud.scores(np.array([agent]))[0][skus][warm], got[warm], rtol=1e-5, atol=1e-6)
    assert aud.n_customers[agent] >= aud.n_active[agent] > 0


def test_candidates_respect_allowed_skus_and_sources(tiny_ranked: Fitted) -> None:
    state = tiny_ranked.model.state_
    allowed = tiny_ranked.model.allowed_.copy()
    banned = np.flatnonzero(allowed)[:100]
    allowed[banned] = False
    agents = np.arange(30)
    cands = generate(state, agents, allowed, CandidateConfig())
    assert not np.isin(cands.skus, banned).any()
    assert allowed[cands.skus].all()
    keys = cands.rows * state.n_skus + cands.skus
    assert len(np.unique(keys)) == len(keys)
    assert (cands.sources > 0).all() and (cands.sources < 2 * max(SOURCES.values())).all()
    only_repeat = generate(state, agents, allowed, CandidateConfig(**dict.fromkeys(
        ("n_als", "n_knn", "n_audience", "n_customers", "n_region", "n_tier", "n_new"), 0
    )))  # fmt: skip
    assert (only_repeat.sources == SOURCES["repeat"]).all()
    assert (np.bincount(only_repeat.rows) <= 50).all()


def test_candidate_config_rejects_negative_sizes() -> None:
    with pytest.raises(ValueError, match="n_als must be >= 0"):
        CandidateConfig(n_als=-1)


def test_pair_features_are_finite_and_aligned(tiny_ranked: Fitted) -> None:
    state = tiny_ranked.model.state_
    agents, skus = np.arange(40), np.arange(40) * 7
    X = pair_features(state, agents, skus)
    assert X.shape == (40, len(FEATURES)) and np.isfinite(X).all()
    one = pair_features(state, agents[5:6], skus[5:6])
    assert_allclose(one[0], X[5], rtol=1e-6)
    col = feature_columns(("sku_return_rate", "tier"))
    assert_allclose(X[:, col[0]], state.sku.return_rate[skus], rtol=1e-6)
    with pytest.raises(KeyError, match="unknown feature 'nope'"):
        feature_columns(("nope",))
    with pytest.raises(ValueError, match="must align"):
        pair_features(state, agents, skus[:3])


def fake_state(series: list[int], category: list[int]) -> SimpleNamespace:
    n = len(series)
    return SimpleNamespace(
        sku=SimpleNamespace(series=np.array(series), category=np.array(category)),
        als=SimpleNamespace(
            model_=SimpleNamespace(item_factors=np.eye(n, dtype=np.float32)[:, : max(n, 1)])
        ),
    )


def test_select_top_k_caps_series_and_categories() -> None:
    # SKUs 0-5: series 0,0,0,1,-1,-1; categories 0,0,1,1,0,0; scores descending by index
    state = fake_state([0, 0, 0, 1, -1, -1], [0, 0, 1, 1, 0, 0])
    rows = np.zeros(6, dtype=np.int64)
    skus = np.arange(6)
    scores = np.array([6, 5, 4, 3, 2, 1], dtype=np.float32)
    idx, val = select_top_k(state, rows, skus, scores, 1, 4, RuleConfig(max_per_series=2))
    assert idx[0].tolist() == [0, 1, 3, 4]  # SKU 2 is the third of series 0
    capped = RuleConfig(max_per_series=2, max_per_category=2)
    idx, _ = select_top_k(state, rows, skus, scores, 1, 4, capped)
    assert idx[0].tolist() == [0, 1, 3, -1]  # category 0 is full after SKUs 0 and 1
    idx, val = select_top_k(state, rows, skus, scores, 2, 3, RuleConfig(diversity="none"))
    assert idx.tolist() == [[0, 1, 2], [-1, -1, -1]] and np.isneginf(val[1]).all()


def test_select_top_k_mmr_spreads_near_duplicates() -> None:
    state = fake_state([-1] * 4, [0] * 4)
    # SKUs 0 and 1 point the same way; 2 and 3 elsewhere
    state.als.model_.item_factors = np.array(
        [[1, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 1]], dtype=np.float32
    )
    scores = np.array([1.0, 0.99, 0.9, 0.5], dtype=np.float32)
    rows = np.zeros(4, dtype=np.int64)
    idx, val = select_top_k(
        state, rows, np.arange(4), scores, 1, 3, RuleConfig(diversity="mmr", mmr_lambda=0.5)
    )
    assert idx[0].tolist() == [0, 2, 3]
    assert (np.diff(val[0]) <= 0).all()


def test_exclusion_mask_recent_shares_and_privileges() -> None:
    cutoff = pd.Timestamp("2025-03-01", tz="UTC")
    day = NS_PER_DAY
    shares = sp.csr_matrix(
        np.array([[cutoff.value - 2 * day, cutoff.value - 10 * day], [0, 0]], dtype=np.float64)
    )
    state = SimpleNamespace(
        cutoff=cutoff,
        last_share_ns=PairLookup(shares),
        sku=SimpleNamespace(
            launched_ns=np.array([cutoff.value - 5 * day, cutoff.value - 90 * day])
        ),
        agent=SimpleNamespace(tier=np.array([1, 4])),
    )
    agents, skus = np.array([0, 0, 1, 1]), np.array([0, 1, 0, 1])
    assert exclusion_mask(state, agents, skus, RuleConfig()).all()
    recent = exclusion_mask(state, agents, skus, RuleConfig(exclude_shared_days=7))
    assert recent.tolist() == [False, True, True, True]
    tiers = exclusion_mask(state, agents, skus, RuleConfig(privilege_days=30))
    assert tiers.tolist() == [False, True, True, True]  # SKU 0 is new; agent 0 is tier 1


def test_rule_config_rejects_bad_values() -> None:
    with pytest.raises(ValueError, match="diversity must be one of"):
        RuleConfig(diversity="random")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="max_per_series must be >= 1"):
        RuleConfig(max_per_series=0)
    with pytest.raises(ValueError, match="mmr_lambda"):
        RuleConfig(mmr_lambda=2.0)
