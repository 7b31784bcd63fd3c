"""The fast scoring paths equal their slow references (docs/sell-with-confidence.md, Speed)."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys

import numpy as np
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.testing import assert_allclose, assert_array_equal

from recsys.ranking.candidates import (
    SOURCES,
    CandidateConfig,
    generate,
    knn_block,
    knn_pair_scores,
    source_tables,
)
from recsys.ranking.features import FEATURES, feature_columns, pair_features
from recsys.ranking.lookup import first_per_row, top_n_dense, top_n_factors, top_n_sparse
from recsys.ranking.ranker import RANKER_FEATURES, ranker_matrix
from recsys.ranking.state import RankingState
from tests.ranking.conftest import Fitted

ONLY = dict.fromkeys(
    ("n_als", "n_knn", "n_repeat", "n_audience", "n_customers", "n_region", "n_tier", "n_new"), 0
)


def pairs_of(rows: np.ndarray, cols: np.ndarray) -> set[tuple[int, int]]:
    return set(zip(rows.tolist(), cols.tolist(), strict=True))


@settings(max_examples=40, deadline=None)
@given(
    st.integers(min_value=1, max_value=7),
    st.integers(min_value=1, max_value=40),
    st.integers(min_value=1, max_value=45),
    st.integers(min_value=0, max_value=2**31 - 1),
)
def test_top_n_factors_equals_the_dense_reference(rows: int, items: int, n: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    query = rng.normal(size=(rows, 4)).astype(np.float32)
    factors = rng.normal(size=(items, 4)).astype(np.float32)
    got = top_n_factors(query, factors, n)
    want = top_n_dense(query @ factors.T, n)
    assert pairs_of(*got) == pairs_of(*want)
    assert len(got[0]) == rows * min(n, items)


def test_top_n_sparse_breaks_ties_towards_lower_columns() -> None:
    matrix = sp.csr_matrix(
        np.array([[0, 2, 1, 2, 2, 0], [3, 0, 0, 0, 0, -1], [1, 1, 1, 1, 0, 0]], dtype=np.float32)
    )
    rows, cols = top_n_sparse(matrix, 2)
    assert pairs_of(rows, cols) == {(0, 1), (0, 3), (1, 0), (2, 0), (2, 1)}


def test_first_per_row_keeps_the_best_of_each_row() -> None:
    rows = np.array([0, 0, 0, 1, 1, 0, 2])
    scores = np.array([0.5, 0.9, 0.5, 0.1, 0.2, 0.7, 0.3])
    cols = np.array([9, 1, 3, 4, 5, 6, 7])
    keep = first_per_row(rows, scores, cols, 2)
    # row 0: 0.9 (col 1) and 0.7 (col 6); row 1 keeps both; row 2 its one
    assert keep.tolist() == [False, True, False, True, True, True, True]
    assert first_per_row(rows, scores, cols, 3).tolist() == [False, True, True] + [True] * 4


def test_candidate_sources_equal_the_dense_reference(tiny_ranked: Fitted) -> None:
    model = tiny_ranked.model
    state, allowed = model.state_, model.allowed_
    agents = np.arange(state.n_agents)
    als = generate(state, agents, allowed, CandidateConfig(**{**ONLY, "n_als": 25}))
    block = state.als.model_.user_factors[agents] @ state.als.model_.item_factors.T
    block[~state.als.warm_users_[agents]] = -np.inf
    block[:, ~(state.als.warm_skus_ & allowed)] = -np.inf
    r, s = top_n_dense(np.asarray(block, np.float32), 25)
    assert _in_region(state, agents, r, s) == pairs_of(als.rows, als.skus)
    aud = generate(state, agents, allowed, CandidateConfig(**{**ONLY, "n_audience": 12}))
    block = state.audience.scores(agents)
    block[:, ~allowed] = -np.inf
    heard = np.any(state.audience.vectors[agents] != 0, axis=1)
    block[~heard] = -np.inf  # no active customer: no audience candidates
    assert heard.any() and not heard.all()
    r, s = top_n_dense(block, 12)
    assert _in_region(state, agents, r, s) == pairs_of(aud.rows, aud.skus)
    knn = generate(state, agents, allowed, CandidateConfig(**{**ONLY, "n_knn": 15}))
    dense = knn_block(state, agents).toarray()
    dense[:, ~allowed] = 0
    dense = np.where(dense > 0, dense, -np.inf)
    r, s = top_n_dense(dense.astype(np.float32), 15)
    assert _in_region(state, agents, r, s) == pairs_of(knn.rows, knn.skus)
    assert (knn.sources == SOURCES["knn"]).all()


def _in_region(
    state: RankingState, agents: np.ndarray, rows: np.ndarray, skus: np.ndarray
) -> set[tuple[int, int]]:
    """The pairs whose SKU is sold in the agent's region (what `generate` keeps)."""
    region = state.agent.region[agents][rows]
    mask = state.sku.region_mask
    ok = np.where(region >= 0, mask[np.maximum(region, 0), skus], True)
    return pairs_of(rows[ok], skus[ok])


def test_shared_source_tables_change_nothing(tiny_ranked: Fitted) -> None:
    model = tiny_ranked.model
    config = dataclasses.replace(model.candidate_config_, n_knn=10)
    tables = source_tables(model.state_, model.allowed_, config)
    for lo in range(0, 60, 20):
        agents = np.arange(lo, lo + 20)
        once = generate(model.state_, agents, model.allowed_, config, tables)
        fresh = generate(model.state_, agents, model.allowed_, config)
        for field in ("rows", "skus", "sources", "knn"):
            assert_array_equal(getattr(once, field), getattr(fresh, field))


def test_candidate_knn_scores_are_the_whole_products_or_zero(tiny_ranked: Fitted) -> None:
    model = tiny_ranked.model
    agents = np.arange(50)
    cands = generate(model.state_, agents, model.allowed_, model.candidate_config_)
    whole = knn_block(model.state_, agents).toarray()
    assert_allclose(cands.knn, whole[cands.rows, cands.skus], rtol=1e-6)
    assert (cands.knn > 0).mean() > 0.3
    off = dataclasses.replace(model.candidate_config_, knn_scores=False)
    none = generate(model.state_, agents, model.allowed_, off)
    assert_array_equal(none.skus, cands.skus)
    assert not none.knn.any()


def test_pair_features_fast_paths_equal_their_definitions(tiny_ranked: Fitted) -> None:
    state = tiny_ranked.model.state_
    rng = np.random.default_rng(0)
    agents = rng.integers(0, state.n_agents, 3000)
    skus = rng.integers(0, state.n_skus, 3000)
    X = pair_features(state, agents, skus)
    col = dict(zip(FEATURES, feature_columns(FEATURES), strict=True))
    # item-kNN: her row of the interactions times the similarity, the whole product looked up
    whole = knn_block(state, np.arange(state.n_agents)).toarray()
    assert_allclose(X[:, col["knn_score"]], whole[agents, skus], rtol=1e-6)
    assert (X[:, col["knn_score"]] > 0).mean() > 0.2, "the sample must reach kNN evidence"
    rows, inverse = np.unique(agents, return_inverse=True)
    assert_allclose(knn_pair_scores(state, rows, inverse, skus), whole[agents, skus], rtol=1e-6)
    # content: the dense cosine
    dense = np.einsum("ij,ij->i", state.agent_content[agents], state.content[skus])
    assert_allclose(X[:, col["content_score"]], dense, rtol=1e-5, atol=1e-6)
    # nearest agents who sold it lately, counted one neighbour at a time
    sold = state.sold_recent.toarray() > 0
    nb = state.neighbours[agents]
    count = ((nb >= 0) & sold[np.maximum(nb, 0), skus[:, None]]).sum(axis=1)
    assert_array_equal(X[:, col["neighbours_sold"]], count)
    assert count.max() > 0, "the sample must reach agents who sold"


def test_refined_scores_are_the_full_scores_of_her_best_candidates(tiny_ranked: Fitted) -> None:
    model = tiny_ranked.model
    agents = np.arange(40)
    saved = model.refine_top
    try:
        model.refine_top = None
        rows, skus, score, parts = model.score_candidates(agents)
        model.refine_top = 10
        r10, s10, score10, _ = model.score_candidates(agents)
        model.refine_top = 10_000
        rows_all, _, score_all, _ = model.score_candidates(agents)
    finally:
        model.refine_top = saved
    assert_array_equal(rows_all, rows)
    assert_array_equal(score_all, score)
    # the refined path drops candidates and never changes a kept one's score
    full = dict(zip(zip(rows.tolist(), skus.tolist(), strict=True), score.tolist(), strict=True))
    assert all(full[(r, s)] == v for r, s, v in zip(r10, s10, score10.tolist(), strict=True))
    assert np.bincount(r10).max() == 10 < np.bincount(rows).max()
    # the ten kept are her best by the ranker and the return risk, before the share ranker
    cands = generate(model.state_, agents, model.allowed_, model.candidate_config_)
    assert_array_equal(cands.rows, rows)  # the default rules exclude nothing here
    p = model.ranker_.predict(ranker_matrix(model.state_, agents, cands))
    first = p * parts["value"] * (1 - (1 + model.return_cost) * parts["p_return"])
    best = first_per_row(rows, first, skus, 10)
    assert pairs_of(rows[best], skus[best]) == pairs_of(r10, s10)


def test_thread_limit_reaches_a_runtime_loaded_inside_it() -> None:
    # scikit-learn's own OpenMP runtime loads on its first import, which the model's fit does
    # inside the limit: a fresh interpreter shows whether the limit still reaches it
    code = (
        "import json\n"
        "from threadpoolctl import threadpool_info\n"
        "from recsys.ranking.threads import thread_limit\n"
        "with thread_limit(1):\n"
        "    from sklearn.ensemble import HistGradientBoostingRegressor\n"
        "    pools = [p for p in threadpool_info() if p['user_api'] == 'openmp']\n"
        "    print(json.dumps([p['num_threads'] for p in pools]))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    threads = json.loads(out.stdout.strip().splitlines()[-1])
    assert threads and all(n == 1 for n in threads)


def test_bpr_source_is_her_bpr_top_n_when_asked(tiny_ranked: Fitted) -> None:
    from recsys.models import make_model
    from tests.ranking.conftest import FAST

    assert tiny_ranked.model.state_.bpr is None  # off by default: no BPR fitted
    model = make_model("ranked", **FAST, candidates={"n_bpr": 15}).fit(tiny_ranked.dataset)
    state, allowed = model.state_, model.allowed_
    assert state.bpr is not None
    agents = np.arange(state.n_agents)
    got = generate(state, agents, allowed, CandidateConfig(**{**ONLY, "n_bpr": 15}))
    bpr = state.bpr
    block = bpr.model_.user_factors[agents] @ bpr.model_.item_factors.T
    block[~bpr.warm_users_[agents]] = -np.inf
    block[:, ~(bpr.warm_skus_ & allowed)] = -np.inf
    r, s = top_n_dense(np.asarray(block, np.float32), 15)
    assert _in_region(state, agents, r, s) == pairs_of(got.rows, got.skus) != set()
    assert (got.sources == SOURCES["bpr"]).all()
    # in the full candidate set the pairs it proposed carry its flag for the ranker
    full = generate(state, agents, allowed, model.candidate_config_)
    flagged = (full.sources & SOURCES["bpr"]) > 0
    assert pairs_of(full.rows[flagged], full.skus[flagged]) == pairs_of(got.rows, got.skus)
    X = ranker_matrix(state, agents, full)
    column = RANKER_FEATURES.index("from_bpr")
    assert_array_equal(X[:, column], flagged.astype(np.float32))
    reco = model.recommend(tiny_ranked.dataset.users.external_ids[:20], k=10)
    assert len(reco) == 200
