"""Fitted HistGradientBoosting ensembles scored by one compiled loop, with scikit-learn's results.

scikit-learn's predictor walks one tree over every row at a time, from Python, after copying
the rows to float64: about 30 ns per row and tree here, most of the ranked model's scoring
time. `FlatForest` lays every tree's nodes end to end and walks all the trees of one row before
the next, in a numba-compiled loop that reads float32 rows as they are: the same comparisons
(float32 widens to float64 exactly), the same leaves, summed in the same order from the same
baseline, so the raw scores equal scikit-learn's bit for bit (tested). Models with categorical
splits, or several trees per iteration, are left to scikit-learn (`FlatForest.supports`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from recsys.ranking.jit import kernel


@kernel
def _raw_scores(
    X: np.ndarray,
    feature: np.ndarray,
    threshold: np.ndarray,
    left: np.ndarray,
    right: np.ndarray,
    missing_left: np.ndarray,
    is_leaf: np.ndarray,
    value: np.ndarray,
    roots: np.ndarray,
    baseline: float,
    out: np.ndarray,
) -> None:  # pragma: no cover - compiled; its results are tested against scikit-learn
    for i in range(X.shape[0]):
        acc = 0.0
        acc += baseline
        for t in range(roots.shape[0]):
            node = roots[t]
            while not is_leaf[node]:
                x = X[i, feature[node]]
                if np.isnan(x):
                    node = left[node] if missing_left[node] else right[node]
                elif x <= threshold[node]:
                    node = left[node]
                else:
                    node = right[node]
            acc += value[node]
        out[i] = acc


@dataclass(frozen=True)
class FlatForest:
    """Every tree of one fitted ensemble as flat node arrays (child indices absolute)."""

    feature: np.ndarray  # int64: column of X each split reads
    threshold: np.ndarray  # float64: go left when x <= threshold
    left: np.ndarray  # int64
    right: np.ndarray  # int64
    missing_left: np.ndarray  # bool: where a NaN goes
    is_leaf: np.ndarray  # bool
    value: np.ndarray  # float64: a leaf's value
    roots: np.ndarray  # int64: first node of each tree, in fitting order
    baseline: float

    @staticmethod
    def supports(model: Any) -> bool:
        """Whether `model` is a fitted HistGradientBoosting model this class scores exactly."""
        predictors = getattr(model, "_predictors", None)
        baseline = getattr(model, "_baseline_prediction", None)
        if not predictors or baseline is None or np.size(baseline) != 1:
            return False
        if any(len(per_iteration) != 1 for per_iteration in predictors):
            return False
        nodes = [p.nodes for per_iteration in predictors for p in per_iteration]
        return not any(bool(np.any(n["is_categorical"])) for n in nodes)

    @classmethod
    def from_sklearn(cls, model: Any, columns: Sequence[int] | None = None) -> FlatForest:
        """Flatten a fitted HistGradientBoosting model; `columns[j]` is the column of the rows
        passed to `raw` that the model saw as its feature j (default: the same).

        Raises
        ------
        ValueError
            If the model is not one `supports` accepts.
        """
        if not cls.supports(model):
            raise ValueError(
                "only fitted HistGradientBoosting models with one tree per iteration and no "
                f"categorical splits can be flattened, got {type(model).__name__}"
            )
        trees = [per_iteration[0].nodes for per_iteration in model._predictors]
        sizes = np.array([len(nodes) for nodes in trees], dtype=np.int64)
        roots = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64)
        nodes = np.concatenate(trees)
        offsets = np.repeat(roots, sizes)
        feature = nodes["feature_idx"].astype(np.int64)
        if columns is not None:
            feature = np.asarray(columns, dtype=np.int64)[feature]
        is_leaf = nodes["is_leaf"].astype(bool)
        # a leaf's children are unused: point them at itself so no index leaves the arrays
        own = np.arange(len(nodes), dtype=np.int64)
        left = np.where(is_leaf, own, nodes["left"].astype(np.int64) + offsets)
        right = np.where(is_leaf, own, nodes["right"].astype(np.int64) + offsets)
        return cls(
            feature=np.where(is_leaf, 0, feature),
            threshold=nodes["num_threshold"].astype(np.float64),
            left=left,
            right=right,
            missing_left=nodes["missing_go_to_left"].astype(bool),
            is_leaf=is_leaf,
            value=nodes["value"].astype(np.float64),
            roots=roots,
            baseline=float(np.ravel(model._baseline_prediction)[0]),
        )

    @property
    def n_features_read(self) -> int:
        """One more than the highest column of X a split reads (0 for a forest of stumps)."""
        splits = self.feature[~self.is_leaf]
        return int(splits.max()) + 1 if len(splits) else 0

    def raw(self, X: np.ndarray) -> np.ndarray:
        """The ensemble's raw score per row (scikit-learn's `_raw_predict`), float64.

        Raises
        ------
        ValueError
            If `X` is not 2-D or has fewer columns than the splits read.
        """
        X = np.asarray(X)
        if X.ndim != 2 or X.shape[1] < self.n_features_read:
            raise ValueError(
                f"X must be 2-D with at least {self.n_features_read} columns, got shape {X.shape}"
            )
        if X.dtype != np.float32:
            X = X.astype(np.float64, copy=False)
        X = np.ascontiguousarray(X)
        out = np.empty(len(X), dtype=np.float64)
        if len(X):
            _raw_scores(
                X,
                self.feature,
                self.threshold,
                self.left,
                self.right,
                self.missing_left,
                self.is_leaf,
                self.value,
                self.roots,
                self.baseline,
                out,
            )
        return out
