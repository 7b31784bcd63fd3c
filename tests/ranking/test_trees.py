"""Flattened boosted trees score exactly as scikit-learn does, much faster."""

from __future__ import annotations

import pickle
from types import SimpleNamespace

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.special import expit
from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor

from recsys.ranking.ranker import Ranker, TrainingRows
from recsys.ranking.return_risk import ReturnRiskModel
from recsys.ranking.trees import FlatForest


def _rows(n: int = 3000, d: int = 6, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """float32 rows with missing values and a label that depends on a few columns."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d)).astype(np.float32)
    X[rng.random(X.shape) < 0.1] = np.nan
    signal = np.nan_to_num(X[:, 0]) + np.nan_to_num(X[:, 1]) * np.nan_to_num(X[:, 2])
    y = (signal + rng.normal(size=n) > 0.3).astype(np.int64)
    return X, y


def _booster(kind: str, X: np.ndarray, y: np.ndarray, **params: object) -> object:
    base = {"max_iter": 30, "max_leaf_nodes": 15, "early_stopping": False, "random_state": 0}
    if kind == "poisson":
        return HistGradientBoostingRegressor(loss="poisson", **{**base, **params}).fit(X, 2.0 * y)
    return HistGradientBoostingClassifier(**{**base, **params}).fit(X, y)


def test_classifier_scores_equal_scikit_learn_bit_for_bit() -> None:
    X, y = _rows()
    model = _booster("binary", X, y)
    forest = FlatForest.from_sklearn(model)
    fresh, _ = _rows(seed=1)
    assert np.array_equal(expit(forest.raw(fresh)), model.predict_proba(fresh)[:, 1])
    # float64 rows too, and the raw score is the decision function
    assert np.array_equal(forest.raw(fresh.astype(np.float64)), model.decision_function(fresh))


def test_poisson_scores_equal_scikit_learn_bit_for_bit() -> None:
    X, y = _rows()
    model = _booster("poisson", X, y)
    fresh, _ = _rows(seed=2)
    assert np.array_equal(np.exp(FlatForest.from_sklearn(model).raw(fresh)), model.predict(fresh))


def test_nan_follows_the_side_the_split_learnt() -> None:
    # column 0 missing means "positive": NaNs must go where the training sent them
    rng = np.random.default_rng(3)
    X = rng.normal(size=(2000, 2)).astype(np.float32)
    missing = rng.random(2000) < 0.3
    X[missing, 0] = np.nan
    y = missing.astype(np.int64)
    model = _booster("binary", X, y)
    probe = np.array([[np.nan, 0.0], [0.0, 0.0], [-5.0, 1.0]], dtype=np.float32)
    p = expit(FlatForest.from_sklearn(model).raw(probe))
    assert p[0] > 0.9 and p[1] < 0.1 and p[2] < 0.1
    assert np.array_equal(p, model.predict_proba(probe)[:, 1])


def test_columns_map_the_model_features_onto_wider_rows() -> None:
    X, y = _rows()
    columns = [4, 0, 5]  # the model saw these columns of the wide rows, in this order
    model = _booster("binary", X[:, columns], y)
    forest = FlatForest.from_sklearn(model, columns)
    fresh, _ = _rows(seed=4)
    assert forest.n_features_read <= 6
    assert np.array_equal(forest.raw(fresh), model.decision_function(fresh[:, columns]))


def test_empty_rows_and_bad_shapes() -> None:
    X, y = _rows()
    forest = FlatForest.from_sklearn(_booster("binary", X, y))
    assert forest.raw(np.zeros((0, 6), np.float32)).shape == (0,)
    with pytest.raises(ValueError, match="at least"):
        forest.raw(np.zeros((5, 1), np.float32))
    with pytest.raises(ValueError, match="2-D"):
        forest.raw(np.zeros(6, np.float32))


def test_unsupported_models_are_refused() -> None:
    X, y = _rows()
    three = np.asarray(y + (np.nan_to_num(X[:, 3]) > 1), dtype=np.int64)
    multiclass = _booster("binary", X, three)
    assert not FlatForest.supports(multiclass)
    with pytest.raises(ValueError, match="one tree per iteration"):
        FlatForest.from_sklearn(multiclass)
    cats = X.copy()
    cats[:, 5] = np.random.default_rng(5).integers(0, 4, len(X))
    categorical = _booster("binary", cats, y, categorical_features=[5])
    uses_cats = bool(np.any([p[0].nodes["is_categorical"].any() for p in categorical._predictors]))
    assert FlatForest.supports(categorical) is not uses_cats
    assert not FlatForest.supports(object())
    assert not FlatForest.supports(HistGradientBoostingClassifier())  # not fitted
    no_trees = SimpleNamespace(_predictors=[], _baseline_prediction=np.zeros((1, 1)))
    assert not FlatForest.supports(no_trees)


@settings(max_examples=12, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    leaves=st.integers(2, 31),
    trees=st.integers(1, 20),
    kind=st.sampled_from(["binary", "poisson"]),
)
def test_any_fitted_booster_scores_as_scikit_learn(
    seed: int, leaves: int, trees: int, kind: str
) -> None:
    X, y = _rows(n=400, seed=seed)
    model = _booster(kind, X, y, max_leaf_nodes=leaves, max_iter=trees, min_samples_leaf=5)
    fresh, _ = _rows(n=200, seed=seed + 1)
    fresh[::7] = np.nan  # whole rows missing
    raw = FlatForest.from_sklearn(model).raw(fresh)
    expected = model.predict(fresh) if kind == "poisson" else model.predict_proba(fresh)[:, 1]
    assert np.array_equal(np.exp(raw) if kind == "poisson" else expit(raw), expected)


@pytest.mark.parametrize("label", ["bought", "purchases"])
def test_ranker_predicts_as_its_booster(label: str) -> None:
    X, y = _rows(d=8)
    ranker = Ranker(label=label, max_iter=20).fit(TrainingRows(X, y * 3.0, np.zeros(len(y)), 1.0))
    fresh, _ = _rows(d=8, seed=6)
    booster = ranker.model_
    expected = booster.predict(fresh) if label == "purchases" else booster.predict_proba(fresh)
    expected = expected if label == "purchases" else expected[:, 1]
    assert ranker.forest_ is None  # built on first use
    assert np.array_equal(ranker.predict(fresh), expected)
    assert isinstance(ranker.forest_, FlatForest)
    # a ranker pickled before the flattening existed has no such attribute
    old = pickle.loads(pickle.dumps(ranker))
    del old.__dict__["forest_"]
    assert np.array_equal(old.predict(fresh), expected)


def test_return_risk_predicts_as_its_calibrated_booster() -> None:
    from recsys.ranking.features import FEATURES, feature_columns

    rng = np.random.default_rng(7)
    n = 4000
    X = rng.normal(size=(n, len(FEATURES) + 3)).astype(np.float32)  # + source flags
    cols = feature_columns(ReturnRiskModel().features)
    risk = expit(X[:, cols[0]] - 2.0)
    y = (rng.random(n) < risk).astype(np.int64)
    model = ReturnRiskModel().fit(X[:, : len(FEATURES)], y)
    fresh = rng.normal(size=(500, len(FEATURES) + 3)).astype(np.float32)
    expected = np.clip(model.model_.predict_proba(fresh[:, cols])[:, 1], 0.0, 1.0)
    assert np.array_equal(model.predict(fresh), expected)
    assert model.scorer_ is not None and model.scorer_ is not False
    # refitting drops the flattened booster of the previous fit
    model.fit(X[:, : len(FEATURES)], 1 - y)
    assert model.scorer_ is None
    assert np.array_equal(
        model.predict(fresh), np.clip(model.model_.predict_proba(fresh[:, cols])[:, 1], 0, 1)
    )


def test_kernels_compile_where_no_cache_can_be_written(monkeypatch: pytest.MonkeyPatch) -> None:
    from recsys.ranking import jit

    real = jit.numba.njit
    asked: list[bool] = []

    def no_cache(*args: object, **kwargs: object) -> object:
        asked.append(bool(kwargs.get("cache")))
        if kwargs.get("cache"):  # what numba raises when no cache directory is writable
            raise RuntimeError("cannot cache function 'add': no locator available for file 'x'")
        return real(*args, **kwargs)

    monkeypatch.setattr(jit.numba, "njit", no_cache)

    def add(a: float, b: float) -> float:
        return a + b

    compiled = jit.kernel(add)
    assert asked == [True, False] and compiled(2.0, 3.0) == 5.0
    assert compiled is not add and hasattr(compiled, "py_func")  # compiled, not the Python one
