"""Training sets, the return-risk model and the ranker, against the log and known inputs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_allclose

from recsys.columns import Columns
from recsys.ranking.features import FEATURES, RETURN_FEATURES, feature_columns
from recsys.ranking.ranker import (
    RANKER_FEATURES,
    Ranker,
    TrainingRows,
    shared_pairs,
    training_rows,
    window_pairs,
)
from recsys.ranking.return_risk import (
    ReturnRiskModel,
    calibration_report,
    reliability_plot,
    reliability_table,
    return_lines,
)
from recsys.ranking.state import RankingState
from tests.ranking.conftest import Fitted

C = Columns


@pytest.fixture(scope="module")
def inner(tiny_ranked: Fitted) -> RankingState:
    """A state 21 days before the cutoff, like the model's inner split."""
    cutoff = tiny_ranked.split.cutoff - pd.Timedelta(days=21)
    return RankingState.build(
        tiny_ranked.split.tables, cutoff, als_params={"factors": 8}, audience_params={"factors": 4}
    )


def _lines(fitted: Fitted, start: pd.Timestamp, end: pd.Timestamp) -> pd.DataFrame:
    p = fitted.tables["purchases"]
    ts = pd.to_datetime(p[C.TS], utc=True)
    return p[(ts >= start) & (ts < end)]


def test_return_lines_label_lines_and_picks_from_the_log(
    tiny_ranked: Fitted, inner: RankingState
) -> None:
    end = tiny_ranked.split.cutoff
    lag = pd.Timedelta(days=7)
    lines = _lines(tiny_ranked, inner.cutoff, end - lag)
    rets = tiny_ranked.tables["returns"]
    filed = rets[pd.to_datetime(rets[C.TS], utc=True) < end]
    returned = lines[C.PURCHASE_ID].isin(filed[C.PURCHASE_ID]).to_numpy()
    got = return_lines(tiny_ranked.tables, inner, end, label_lag_days=7)
    assert len(got) == len(lines) and got.returned.sum() == returned.sum()
    picks = return_lines(tiny_ranked.tables, inner, end, label_lag_days=7, unit="pick")
    per_pair = pd.Series(returned).groupby(
        [lines[C.AGENT_ID].to_numpy(), lines[C.SKU_ID].to_numpy()]
    )
    assert len(picks) == per_pair.ngroups and picks.returned.sum() == per_pair.any().sum()
    with pytest.raises(ValueError, match="unit must be one of"):
        return_lines(tiny_ranked.tables, inner, end, unit="order")  # type: ignore[arg-type]


def test_window_and_shared_pairs_count_units_from_the_log(
    tiny_ranked: Fitted, inner: RankingState
) -> None:
    end = tiny_ranked.split.cutoff
    lines = _lines(tiny_ranked, inner.cutoff, end)
    want = lines.groupby([C.AGENT_ID, C.SKU_ID])[C.QTY].sum()
    got = window_pairs(tiny_ranked.tables, inner, end)
    assert len(got) == len(want) and got["units"].sum() == want.sum()
    assert got["purchases"].sum() == len(lines)

    shares = tiny_ranked.tables["shares"]
    ts = pd.to_datetime(shares[C.TS], utc=True)
    first = shares[(ts >= inner.cutoff) & (ts < end)].groupby([C.AGENT_ID, C.SKU_ID])[C.TS].min()
    pairs = shared_pairs(tiny_ranked.tables, inner, end)
    assert len(pairs) == len(first)
    row = pairs.sort_values("units").iloc[-1]
    agent, sku = (
        inner.agents.to_external([row["agent"]])[0],
        inner.skus.to_external([row["sku"]])[0],
    )
    mine = lines[(lines[C.AGENT_ID] == agent) & (lines[C.SKU_ID] == sku)]
    after = mine[pd.to_datetime(mine[C.TS], utc=True) >= first.loc[(agent, sku)]]
    assert row["units"] == after[C.QTY].sum() > 0
    assert row["purchases"] == len(after)


def test_training_rows_label_candidates_with_the_window(
    tiny_ranked: Fitted, inner: RankingState
) -> None:
    end = tiny_ranked.split.cutoff
    allowed = np.ones(inner.n_skus, dtype=bool)
    rows = training_rows(tiny_ranked.tables, inner, end, allowed, label="bought", max_agents=30)
    assert rows.X.shape == (len(rows.y), len(RANKER_FEATURES))
    assert set(np.unique(rows.y)) == {0.0, 1.0} and len(np.unique(rows.agents)) == 30
    assert 0 < rows.candidate_recall <= 1
    units = training_rows(tiny_ranked.tables, inner, end, allowed, label="units", max_agents=30)
    assert_allclose(units.y > 0, rows.y > 0)
    assert units.y.max() > 1
    lines = training_rows(tiny_ranked.tables, inner, end, allowed, label="purchases", max_agents=30)
    assert_allclose(lines.y > 0, rows.y > 0)
    assert (lines.y <= units.y).all() and lines.y.sum() < units.y.sum()
    shared = training_rows(
        tiny_ranked.tables, inner, end, allowed, label="shared_purchases", max_agents=30
    )
    assert len(shared.y) and shared.X.shape[1] == len(RANKER_FEATURES)


def test_ranker_falls_back_without_enough_positives() -> None:
    X = np.zeros((30, len(RANKER_FEATURES)), dtype=np.float32)
    X[:, RANKER_FEATURES.index("repeat_score")] = np.linspace(0, 3, 30)
    rows = TrainingRows(X, np.r_[np.ones(3), np.zeros(27)], np.zeros(30), 1.0)
    ranker = Ranker().fit(rows)
    assert ranker.model_ is None
    p = ranker.predict(X)
    assert ((p > 0) & (p < 1)).all() and (np.diff(p) > 0).all()
    with pytest.raises(ValueError, match="label must be one of"):
        Ranker(label="clicks").fit(rows)  # type: ignore[arg-type]


def test_ranker_learns_a_planted_signal() -> None:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(3000, len(RANKER_FEATURES))).astype(np.float32)
    signal = X[:, RANKER_FEATURES.index("audience_score")]
    y = (rng.random(3000) < 1 / (1 + np.exp(-3 * signal))).astype(float)
    p = Ranker(max_iter=50).fit(TrainingRows(X, y, np.zeros(3000), 1.0)).predict(X)
    assert np.corrcoef(p, signal)[0, 1] > 0.8
    units = rng.poisson(np.exp(signal)).astype(float)
    e = Ranker(label="units", max_iter=50).fit(TrainingRows(X, units, np.zeros(3000), 1.0))
    assert e.predict(X).mean() == pytest.approx(units.mean(), rel=0.1)


@pytest.mark.parametrize("seed", [0, 3, 5])
def test_poisson_ranker_stays_bounded_with_bulk_buyers(seed: int) -> None:
    # a few rows with huge counts where everything else predicts near 0: the uncapped,
    # lightly regularised Newton steps overshoot past the largest label ever seen
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(20_000, 41)).astype(np.float32)  # any width: these rows are drawn once
    signal = X[:, 0]
    y = rng.poisson(np.exp(2 * signal - 4)).astype(float)
    y[rng.choice(np.flatnonzero(signal < -2), 3, replace=False)] = 400.0
    rows = TrainingRows(X, y, np.zeros(len(y)), 1.0)
    kwargs = {"label": "purchases", "max_iter": 50, "learning_rate": 0.15, "random_state": seed}
    loose = Ranker(**kwargs, l2_regularization=1.0, label_cap_quantile=None).fit(rows)  # type: ignore[arg-type]
    assert loose.predict(X).max() > y.max()
    ranker = Ranker(**kwargs).fit(rows)  # type: ignore[arg-type]
    cap = np.quantile(y[y > 0], 0.99)
    assert ranker.capped(y).max() == cap < 400
    p = ranker.predict(X)
    assert np.isfinite(p).all() and p.max() <= 2 * cap  # the loose fit: past 400
    assert np.corrcoef(np.log(p), signal)[0, 1] > 0.8


def test_return_risk_model_is_calibrated_on_a_planted_signal() -> None:
    rng = np.random.default_rng(1)
    X = rng.normal(size=(8000, len(FEATURES))).astype(np.float32)
    rate = X[:, FEATURES.index("sku_return_rate")]
    p_true = 1 / (1 + np.exp(-(1.5 * rate - 2.5)))
    y = (rng.random(8000) < p_true).astype(int)
    model = ReturnRiskModel(max_iter=60).fit(X[:6000], y[:6000])
    report = calibration_report(y[6000:], model.predict(X[6000:]))
    truth = calibration_report(y[6000:], p_true[6000:])
    assert report["auc"] > truth["auc"] - 0.03
    assert report["ece"] < 0.03
    assert feature_columns(RETURN_FEATURES).max() < len(FEATURES)
    # one class only: the base rate for everyone
    flat = ReturnRiskModel().fit(X[:50], np.zeros(50))
    assert (flat.predict(X[:5]) == 0).all()
    with pytest.raises(ValueError, match="must be non-empty and align"):
        ReturnRiskModel().fit(X[:5], np.zeros(4))


def test_calibration_report_on_known_values(tmp_path: Path) -> None:
    y = np.array([0, 0, 1, 1])
    p = np.array([0.1, 0.2, 0.8, 0.9])
    report = calibration_report(y, p, n_bins=2)
    assert report["auc"] == 1.0
    assert report["ece"] == pytest.approx((2 * 0.15 + 2 * 0.15) / 4)
    assert report["brier"] == pytest.approx((0.01 + 0.04 + 0.04 + 0.01) / 4)
    table = reliability_table(y, p, 2)
    assert table["n"].tolist() == [2, 2] and table["observed"].tolist() == [0.0, 1.0]
    assert np.isnan(calibration_report(np.zeros(3), np.full(3, 0.1))["auc"])
    png = reliability_plot(y, p, tmp_path / "plot" / "reliability.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
