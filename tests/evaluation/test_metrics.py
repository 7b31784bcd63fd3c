"""Metrics@k against hand-computed values, a slow reference, and invariants."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.testing import assert_allclose

from recsys.columns import Columns as C
from recsys.evaluation import metrics
from recsys.evaluation.metrics import (
    RANKING_METRICS,
    coverage_at_k,
    evaluate,
    evaluate_per_user,
    hit_rate_at_k,
    kept_ndcg_at_k,
    kept_recall_at_k,
    map_at_k,
    ndcg_at_k,
    novelty_at_k,
    oracle_share,
    precision_at_k,
    recall_at_k,
    return_rate_at_k,
)
from recsys.exceptions import EmptyDataError

L2, L3, L4 = np.log2(2), np.log2(3), np.log2(4)


def make_truth(rows: list[tuple[str, str, int, int, bool]], user_col: str = C.AGENT_ID):
    """Truth table from (user, sku, qty, returned_qty, is_new) rows."""
    frame = pd.DataFrame(rows, columns=[user_col, C.SKU_ID, C.QTY, "returned_qty", "is_new"])
    frame["kept_qty"] = frame[C.QTY] - frame["returned_qty"]
    return frame


def make_reco(lists: dict[str, list[str]], user_col: str = C.AGENT_ID) -> pd.DataFrame:
    """Reco table with ranks 1..n in list order."""
    rows = [
        (u, s, float(len(skus) - i), i + 1) for u, skus in lists.items() for i, s in enumerate(skus)
    ]
    return pd.DataFrame(rows, columns=[user_col, C.SKU_ID, C.SCORE, C.RANK])


@pytest.fixture()
def truth() -> pd.DataFrame:
    # a bought s1 (kept), s2 (2 units, both returned, new) and s3 (kept, new); b bought s4;
    # c bought s1 and returned it, and gets no picks.
    return make_truth(
        [
            ("a", "s1", 1, 0, False),
            ("a", "s2", 2, 2, True),
            ("a", "s3", 1, 0, True),
            ("b", "s4", 1, 0, False),
            ("c", "s1", 1, 1, False),
        ]
    )


@pytest.fixture()
def reco() -> pd.DataFrame:
    # d has picks but no truth: never scored
    return make_reco({"a": ["s2", "s5", "s1"], "b": ["s1", "s4"], "d": ["s9"]})


POPULARITY = pd.Series({"s1": 6, "s2": 1, "s4": 1})  # total 8; s5, s9 unseen count 1

# per user a, b, c
EXPECTED = {
    ("precision", 2): [1 / 2, 1 / 2, 0],
    ("recall", 2): [1 / 3, 1 / 1, 0],
    ("ndcg", 2): [1 / (1 + 1 / L3), (1 / L3) / 1, 0],
    ("map", 2): [(1 / 1) / 2, (1 / 2) / 1, 0],
    ("hit_rate", 2): [1, 1, 0],
    ("kept_recall", 2): [0 / 2, 1 / 1, 0],
    ("kept_ndcg", 2): [0, (1 / L3) / 1, 0],
    ("precision", 3): [2 / 3, 1 / 3, 0],
    ("recall", 3): [2 / 3, 1 / 1, 0],
    ("ndcg", 3): [(1 + 1 / L4) / (1 + 1 / L3 + 1 / L4), (1 / L3) / 1, 0],
    ("map", 3): [(1 / 1 + 2 / 3) / 3, (1 / 2) / 1, 0],
    ("hit_rate", 3): [1, 1, 0],
    ("kept_recall", 3): [1 / 2, 1 / 1, 0],
    ("kept_ndcg", 3): [(1 / L4) / (1 + 1 / L3), (1 / L3) / 1, 0],
}
FUNCTIONS = {
    "precision": precision_at_k,
    "recall": recall_at_k,
    "ndcg": ndcg_at_k,
    "map": map_at_k,
    "hit_rate": hit_rate_at_k,
    "kept_recall": kept_recall_at_k,
    "kept_ndcg": kept_ndcg_at_k,
}


@pytest.mark.parametrize(("metric", "k"), list(EXPECTED))
def test_metric_at_k_matches_hand_computed_values(reco, truth, metric, k):
    got = FUNCTIONS[metric](reco, truth, k)
    assert list(got.index) == ["a", "b", "c"]
    assert got.index.name == C.AGENT_ID
    assert_allclose(got.to_numpy(), EXPECTED[metric, k])


def test_evaluate_means_the_per_user_values(reco, truth):
    result = evaluate(reco, truth, ks=(2, 3))
    assert result["n_users"] == 3
    for (metric, k), values in EXPECTED.items():
        assert_allclose(result[f"{metric}_at_{k}"], np.mean(values), err_msg=f"{metric}@{k}")


def test_return_rate_pools_recommended_and_bought_pairs(reco, truth):
    result = evaluate(reco, truth, ks=(1, 2, 3))
    # top 1: a-s2 (returned); top 2 adds b-s4 (kept); top 3 adds a-s1 (kept)
    assert result["n_hits_at_1"] == 1 and result["return_rate_at_1"] == 1 / 1
    assert result["n_hits_at_2"] == 2 and result["return_rate_at_2"] == 1 / 2
    assert result["n_hits_at_3"] == 3 and result["return_rate_at_3"] == 1 / 3
    assert return_rate_at_k(reco, truth, 3) == 1 / 3


def test_return_rate_without_hits_is_zero_with_a_zero_count(truth):
    result = evaluate(make_reco({"a": ["s9"]}), truth, ks=(5,))
    assert result["return_rate_at_5"] == 0.0
    assert result["n_hits_at_5"] == 0.0


def test_new_metrics_score_only_users_with_new_truth_rows(reco, truth):
    result = evaluate(reco, truth, ks=(2, 3))
    # only a has new rows (s2 returned, s3 kept); her list [s2, s5, s1] hits s2 at rank 1
    assert result["new_n_users"] == 1
    assert_allclose(result["new_precision_at_2"], 1 / 2)
    assert_allclose(result["new_recall_at_2"], 1 / 2)
    assert_allclose(result["new_ndcg_at_2"], 1 / (1 + 1 / L3))
    assert_allclose(result["new_map_at_2"], (1 / 1) / 2)
    assert_allclose(result["new_precision_at_3"], 1 / 3)
    assert_allclose(result["new_ndcg_at_3"], 1 / (1 + 1 / L3))
    assert result["new_hit_rate_at_2"] == 1.0
    assert result["new_kept_recall_at_3"] == 0.0  # s3 is her only new kept SKU, never picked
    assert result["new_return_rate_at_2"] == 1 / 1
    per_user = evaluate_per_user(reco, truth, "new_ndcg", 2)
    assert list(per_user.index) == ["a"] and per_user.name == "new_ndcg_at_2"


def test_new_metrics_over_no_user_are_zero(reco, truth):
    result = evaluate(reco, truth.assign(is_new=False), ks=(2,))
    assert result["new_n_users"] == 0
    assert result["new_ndcg_at_2"] == 0.0 and result["new_return_rate_at_2"] == 0.0


def test_kept_metrics_differ_from_all_when_a_hit_was_returned(truth):
    # a's only pick is s2, bought and fully returned: a hit for ndcg, a miss for kept_ndcg
    reco = make_reco({"a": ["s2"]})
    assert ndcg_at_k(reco, truth, 1)["a"] == 1.0
    assert kept_ndcg_at_k(reco, truth, 1)["a"] == 0.0
    # c bought nothing she kept: counted, scoring 0
    assert kept_recall_at_k(reco, truth, 1)["c"] == 0.0


def test_k_larger_than_the_lists(reco, truth):
    result = evaluate(reco, truth, ks=(10,))
    assert_allclose(result["precision_at_10"], (2 / 10 + 1 / 10 + 0) / 3)
    assert_allclose(result["recall_at_10"], (2 / 3 + 1 + 0) / 3)
    ideal_a = 1 + 1 / L3 + 1 / L4  # three relevant SKUs, fewer than k
    assert_allclose(result["ndcg_at_10"], ((1 + 1 / L4) / ideal_a + 1 / L3 + 0) / 3)
    assert_allclose(result["map_at_10"], ((1 + 2 / 3) / 3 + 1 / 2 + 0) / 3)


def test_users_without_truth_are_not_scored_and_users_without_picks_score_zero(reco, truth):
    got = recall_at_k(reco, truth, 3)
    assert "d" not in got.index
    assert got["c"] == 0.0


def test_coverage_counts_distinct_skus_of_scored_users(reco, truth):
    result = evaluate(reco, truth, ks=(1, 2, 3), catalog_size=10)
    assert result["coverage_at_1"] == 2 / 10  # s2, s1
    assert result["coverage_at_2"] == 4 / 10  # + s5, s4
    assert result["coverage_at_3"] == 4 / 10  # s1 again
    # the standalone function counts every list of the table, d's s9 included
    assert coverage_at_k(reco, 2, 10) == 5 / 10
    assert "coverage_at_2" not in evaluate(reco, truth, ks=(2,))


def test_novelty_is_mean_information_of_picks(reco, truth):
    result = evaluate(reco, truth, ks=(2, 3), train_popularity=POPULARITY)
    a2, b2 = (3 + 3) / 2, (np.log2(8 / 6) + 3) / 2
    assert_allclose(result["novelty_at_2"], (a2 + b2) / 2)  # c has no picks: not averaged
    assert_allclose(result["novelty_at_3"], ((3 + 3 + np.log2(8 / 6)) / 3 + b2) / 2)
    per_user = novelty_at_k(reco, 2, POPULARITY)
    assert_allclose(per_user.loc[["a", "b", "d"]].to_numpy(), [a2, b2, 3])
    assert "novelty_at_2" not in evaluate(reco, truth, ks=(2,))


def test_user_segments_break_every_metric_down(reco, truth):
    segments = pd.DataFrame({C.AGENT_ID: ["a", "b", "c", "d"], C.TIER: [1, 2, 1, 1]})
    result = evaluate(reco, truth, ks=(2,), segments=segments, catalog_size=10)
    assert result["segment.tier_1.n_users"] == 2  # a and c; d has no truth
    assert_allclose(result["segment.tier_1.ndcg_at_2"], (1 / (1 + 1 / L3) + 0) / 2)
    assert_allclose(result["segment.tier_2.ndcg_at_2"], 1 / L3)
    assert result["segment.tier_1.coverage_at_2"] == 2 / 10
    assert result["segment.tier_2.new_n_users"] == 0
    assert result["segment.tier_1.return_rate_at_2"] == 1 / 1
    # the same frame keyed by its index gives the same keys
    assert result == evaluate(
        reco, truth, ks=(2,), segments=segments.set_index(C.AGENT_ID), catalog_size=10
    )


def test_sku_segments_restrict_the_truth_pairs(reco, truth):
    result = evaluate(reco, truth, ks=(2,), sku_segments={"new_sku": ["s3", "s4"]})
    # relevant pairs: a-s3 (not picked), b-s4 (rank 2)
    assert result["segment.new_sku.n_users"] == 2
    assert_allclose(result["segment.new_sku.recall_at_2"], (0 + 1) / 2)
    assert_allclose(result["segment.new_sku.precision_at_2"], (0 + 1 / 2) / 2)
    assert_allclose(result["segment.new_sku.ndcg_at_2"], (0 + 1 / L3) / 2)


def test_a_repeated_sku_counts_once_at_its_best_rank(truth):
    reco = make_reco({"b": ["s4", "s4", "s9"]})
    assert precision_at_k(reco, truth, 3)["b"] == 1 / 3
    assert map_at_k(reco, truth, 3)["b"] == 1.0


def test_a_missing_sku_id_is_a_miss_in_its_slot(truth):
    reco = make_reco({"b": ["s9", "s4"]})
    reco.loc[0, C.SKU_ID] = None
    assert_allclose(ndcg_at_k(reco, truth, 2)["b"], 1 / L3)


def test_rank_gaps_leave_empty_positions(truth):
    reco = make_reco({"b": ["s9", "s4"]}).assign(rank=[1, 3])
    assert recall_at_k(reco, truth, 2)["b"] == 0.0
    assert_allclose(ndcg_at_k(reco, truth, 3)["b"], 1 / L4)


def test_customer_target_is_detected():
    truth = make_truth([("u1", "s1", 1, 0, True)], user_col=C.CUSTOMER_ID)
    reco = make_reco({"u1": ["s1"]}, user_col=C.CUSTOMER_ID)
    got = ndcg_at_k(reco, truth, 5)
    assert got.index.name == C.CUSTOMER_ID and got["u1"] == 1.0


def test_chunked_reading_gives_the_same_result(reco, truth, monkeypatch):
    expected = evaluate(reco, truth, ks=(1, 3), catalog_size=10, train_popularity=POPULARITY)
    monkeypatch.setattr(metrics, "CHUNK_ROWS", 2)
    assert evaluate(reco, truth, ks=(1, 3), catalog_size=10, train_popularity=POPULARITY) == (
        expected
    )


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"ks": (0,)}, ValueError, "k must be an integer >= 1, got 0"),
        ({"ks": ()}, ValueError, "at least one k"),
        ({"catalog_size": 0}, ValueError, "catalog_size must be an integer >= 1, got 0"),
        ({"user_col": "shop_id"}, ValueError, "user_col 'shop_id' is not a column of reco"),
        ({"sku_segments": {"s3"}}, TypeError, "sku_segments must map a name"),
        (
            {"train_popularity": pd.Series({"s1": -1})},
            ValueError,
            "counts must be >= 0, got -1",
        ),
    ],
)
def test_evaluate_rejects_bad_arguments(reco, truth, kwargs, error, match):
    with pytest.raises(error, match=match):
        evaluate(reco, truth, **kwargs)


def test_evaluate_rejects_bad_tables(reco, truth):
    with pytest.raises(ValueError, match=r"truth lacks columns \['kept_qty'\]"):
        evaluate(reco, truth.drop(columns="kept_qty"))
    with pytest.raises(ValueError, match="ranks must be unique per user: 1 rows"):
        evaluate(reco.assign(rank=[1, 1, 2, 1, 2, 1]), truth)
    with pytest.raises(ValueError, match="reco rank must be an integer >= 1, got 0"):
        evaluate(reco.assign(rank=[0, 1, 2, 1, 2, 1]), truth)
    with pytest.raises(ValueError, match=r"one row per \(user, sku\), got \('a', 's1'\)"):
        evaluate(reco, pd.concat([truth, truth.iloc[:1]]))
    with pytest.raises(EmptyDataError, match="truth has no rows"):
        evaluate(reco, truth.iloc[:0])
    both = reco.assign(customer_id=reco[C.AGENT_ID])
    with pytest.raises(ValueError, match="cannot tell the user column"):
        evaluate(both, truth.assign(customer_id=truth[C.AGENT_ID]))
    with pytest.raises(ValueError, match="metric must be one of .* got 'auc'"):
        evaluate_per_user(reco, truth, "auc", 5)


def test_oracle_share_is_a_ratio_of_totals():
    model = pd.Series({"a": 1.0, "b": 0.5})
    oracle = pd.Series({"a": 2.0, "b": 1.0, "c": 1.0})
    assert oracle_share(model, oracle) == (1.0 + 0.5) / (2.0 + 1.0 + 1.0)
    with pytest.raises(ValueError, match="oracle_value must sum to > 0, got 0.0"):
        oracle_share(model, oracle * 0)
    with pytest.raises(ValueError, match="model_value must hold values >= 0"):
        oracle_share(model * -1, oracle)


# ---- reference implementation and invariants ----------------------------------------------


def reference(reco: pd.DataFrame, truth: pd.DataFrame, k: int, user: str) -> dict[str, float]:
    """Each ranking metric of one user straight from its definition (slow, obvious)."""
    mine = truth[truth[C.AGENT_ID] == user]
    bought, kept = set(mine[C.SKU_ID]), set(mine.loc[mine["kept_qty"] > 0, C.SKU_ID])
    picks = reco[(reco[C.AGENT_ID] == user) & (reco[C.RANK] <= k)].sort_values(C.RANK)
    seen: set[str] = set()
    listed = []  # (rank, sku) with repeats of a SKU dropped
    for rank, sku in zip(picks[C.RANK], picks[C.SKU_ID], strict=True):
        if sku not in seen:
            listed.append((rank, sku))
            seen.add(sku)

    def scores(relevant: set[str]) -> tuple[float, float, float, int]:
        hits = [rank for rank, sku in listed if sku in relevant]
        dcg = sum(1 / np.log2(r + 1) for r in hits)
        ideal = sum(1 / np.log2(i + 1) for i in range(1, min(k, len(relevant)) + 1))
        ap = sum((i + 1) / r for i, r in enumerate(hits))
        return dcg / ideal if ideal else 0.0, ap, len(hits), len(relevant)

    ndcg, ap, n_hits, n_rel = scores(bought)
    kept_ndcg, _, n_kept_hits, n_kept = scores(kept)
    return {
        "precision": n_hits / k,
        "recall": n_hits / n_rel,
        "ndcg": ndcg,
        "map": ap / min(k, n_rel),
        "hit_rate": float(n_hits > 0),
        "kept_recall": n_kept_hits / n_kept if n_kept else 0.0,
        "kept_ndcg": kept_ndcg,
    }


@st.composite
def tables(draw: st.DrawFn) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A random truth table and a reco table over a few users and SKUs."""
    n_users = draw(st.integers(1, 5))
    skus = [f"s{i}" for i in range(draw(st.integers(1, 9)))]
    truth_rows, lists = [], {}
    for u in range(n_users):
        bought = draw(st.lists(st.sampled_from(skus), unique=True, max_size=len(skus)))
        for sku in bought:
            qty = draw(st.integers(1, 3))
            truth_rows.append((f"u{u}", sku, qty, draw(st.integers(0, qty)), draw(st.booleans())))
        if draw(st.booleans()) or not bought:
            lists[f"u{u}"] = draw(st.lists(st.sampled_from(skus), max_size=8))
    if not truth_rows:
        truth_rows.append(("u0", skus[0], 1, 0, True))
    return make_reco(lists), make_truth(truth_rows)


KS = (1, 2, 3, 5, 10)


@settings(max_examples=50, deadline=None)
@given(tables(), st.sampled_from([1, 3, 10]))
def test_metrics_agree_with_the_reference(data, k):
    reco, truth = data
    users = sorted(truth[C.AGENT_ID].unique())
    want = {u: reference(reco, truth, k, u) for u in users}
    for metric in RANKING_METRICS:
        got = evaluate_per_user(reco, truth, metric, k)
        assert list(got.index) == users
        assert_allclose(
            got.to_numpy(), [want[u][metric] for u in users], atol=1e-12, err_msg=metric
        )


@settings(max_examples=60, deadline=None)
@given(tables(), st.randoms(use_true_random=False))
def test_metrics_are_bounded_monotone_and_order_free(data, rnd):
    reco, truth = data
    kwargs = {"catalog_size": 9, "train_popularity": pd.Series({"s0": 5, "s1": 2})}
    result = evaluate(reco, truth, KS, **kwargs)
    for key, value in result.items():
        if key.endswith("n_users") or "n_hits" in key or "novelty" in key:
            assert value >= 0, key
        else:
            assert 0 <= value <= 1 + 1e-12, key
    for prefix in ("", "kept_", "new_"):
        recalls = [result[f"{prefix}recall_at_{k}"] for k in KS]
        assert recalls == sorted(recalls)
    seed = rnd.randint(0, 1000)
    shuffled = evaluate(
        reco.sample(frac=1, random_state=seed),
        truth.sample(frac=1, random_state=seed),
        KS,
        **kwargs,
    )
    assert shuffled.keys() == result.keys()
    assert_allclose([shuffled[key] for key in result], list(result.values()), atol=1e-12)


@settings(max_examples=40, deadline=None)
@given(tables(), st.sampled_from(KS))
def test_a_perfect_reco_scores_ndcg_one(data, k):
    _, truth = data
    lists = {u: list(g[C.SKU_ID]) + ["other"] for u, g in truth.groupby(C.AGENT_ID)}
    reco = make_reco(lists)
    n_rel = truth.groupby(C.AGENT_ID).size()
    assert_allclose(ndcg_at_k(reco, truth, k).to_numpy(), 1.0)
    assert_allclose(map_at_k(reco, truth, k).to_numpy(), 1.0)
    assert_allclose(recall_at_k(reco, truth, k), np.minimum(k, n_rel) / n_rel)
    assert_allclose(precision_at_k(reco, truth, k), np.minimum(k, n_rel) / k)
