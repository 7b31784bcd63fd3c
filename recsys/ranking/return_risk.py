"""Return risk: a calibrated P(return) of a pick or a purchase line, from what is known before.

Rows are purchase lines (attributed to an agent) bought in a window after a state's cutoff; the
features are the (agent, SKU) pair features of that state (features.py: the SKU's smoothed return
history, its category's base rate, its price against what sells through her, taste and audience
fit, its age...), so nothing about the line itself leaks in. The label is 1 when any unit of the
line came back by `label_end` (returns after it are unknown; lines of the last `label_lag_days`
before it are left out, their returns have not had time to arrive).

Two units of prediction (`unit`):

- `"pick"` (default): one row per (agent, SKU) pair bought in the window, 1 when any of its
  lines came back. A pick that her customers buy and then return is a failure (issue 5), and a
  pick sold to many customers has more chances to draw a return: this is the quantity
  `return_rate_at_k` counts;
- `"line"`: one row per purchase line, 1 when any unit of it came back.

The classifier is scikit-learn's HistGradientBoostingClassifier wrapped in CalibratedClassifierCV
(isotonic on 3-fold out-of-fold predictions, one booster refitted on all rows): boosted trees
rank well but their probabilities drift, and the ranker multiplies by 1 − P(return), so the
probability itself must be right.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from recsys.columns import Columns
from recsys.data.dataset import RETURNED_QTY
from recsys.ranking.features import RETURN_FEATURES, feature_columns, pair_features
from recsys.ranking.state import RankingState
from recsys.ranking.trees import FlatForest

C = Columns


Unit = Literal["pick", "line"]
UNITS: tuple[str, ...] = ("pick", "line")


@dataclass(frozen=True)
class ReturnLines:
    """Purchase lines (or picks) as (agent, SKU) index pairs with their label (any returned)."""

    agents: np.ndarray
    skus: np.ndarray
    returned: np.ndarray  # bool

    def __len__(self) -> int:
        return len(self.agents)


def return_lines(
    tables: Mapping[str, pd.DataFrame],
    state: RankingState,
    end: pd.Timestamp,
    *,
    label_end: pd.Timestamp | None = None,
    label_lag_days: float = 0.0,
    unit: Unit = "line",
) -> ReturnLines:
    """Lines bought in [state.cutoff, end − label_lag_days), labelled by returns before
    `label_end` (default `end`; pass the end of the log to count every return).

    With `unit="pick"` the lines of each (agent, SKU) pair are merged into one row, returned
    when any of them is. Lines of agents or SKUs unknown to the state are dropped.

    Raises
    ------
    ValueError
        If `unit` is neither "pick" nor "line".
    """
    if unit not in UNITS:
        raise ValueError(f"unit must be one of {UNITS}, got {unit!r}")
    from features.logs import purchase_lines

    lines = purchase_lines(tables, label_end if label_end is not None else end)
    last = end - pd.Timedelta(days=label_lag_days)
    keep = ((lines[C.TS] >= state.cutoff) & (lines[C.TS] < last)).to_numpy()
    lines = lines.loc[keep]
    a = state.agents.to_index(lines[C.AGENT_ID].to_numpy(dtype=object), "ignore")
    s = state.skus.to_index(lines[C.SKU_ID].to_numpy(dtype=object), "ignore")
    ok = (a >= 0) & (s >= 0)
    returned = lines[RETURNED_QTY].to_numpy(dtype=np.int64)[ok] > 0
    a, s = a[ok], s[ok]
    if unit == "pick":
        key = a * state.n_skus + s
        uniq, inverse = np.unique(key, return_inverse=True)
        any_returned = np.zeros(len(uniq), dtype=bool)
        np.logical_or.at(any_returned, inverse, returned)
        return ReturnLines(uniq // state.n_skus, uniq % state.n_skus, any_returned)
    return ReturnLines(a, s, returned)


@dataclass
class ReturnRiskModel:
    """Calibrated P(return) of a purchase line from its (agent, SKU) pair features.

    Parameters
    ----------
    max_iter, learning_rate, max_leaf_nodes, min_samples_leaf
        Passed to HistGradientBoostingClassifier.
    calibration
        "isotonic" or "sigmoid" (CalibratedClassifierCV, 3 folds).
    random_state
        Seed of the boosting and the folds.
    """

    max_iter: int = 25
    learning_rate: float = 0.16
    max_leaf_nodes: int = 7
    min_samples_leaf: int = 40
    calibration: str = "isotonic"
    random_state: int = 0
    features: tuple[str, ...] = RETURN_FEATURES
    base_rate_: float = field(default=0.0, init=False)
    model_: Any = field(default=None, init=False, repr=False)
    # (flattened booster, calibration map), False when it cannot be flattened, None: not yet
    scorer_: Any = field(default=None, init=False, repr=False, compare=False)

    def fit(self, X: np.ndarray, y: np.ndarray) -> ReturnRiskModel:
        """Fit on pair-feature rows (all of `FEATURES`) and 0/1 labels; a constant if one class.

        Raises
        ------
        ValueError
            If `X` and `y` differ in length or there are no rows.
        """
        if len(X) != len(y) or len(y) == 0:
            raise ValueError(f"X and y must be non-empty and align, got {len(X)} and {len(y)}")
        y = np.asarray(y, dtype=np.int64)
        self.base_rate_ = float(y.mean())
        n_minor = int(min(y.sum(), len(y) - y.sum()))
        self.scorer_ = None
        if n_minor < 10:
            # too few returns (or keeps) to learn from: the base rate for everyone
            self.model_ = None
            return self
        from sklearn.calibration import CalibratedClassifierCV
        from sklearn.ensemble import HistGradientBoostingClassifier

        booster = HistGradientBoostingClassifier(
            max_iter=self.max_iter,
            learning_rate=self.learning_rate,
            max_leaf_nodes=self.max_leaf_nodes,
            min_samples_leaf=self.min_samples_leaf,
            early_stopping=False,
            random_state=self.random_state,
        )
        # ensemble=False: the isotonic map is fitted on out-of-fold predictions and one booster
        # is refitted on all rows, so scoring runs one model, not three
        self.model_ = CalibratedClassifierCV(
            booster, method=self.calibration, cv=min(3, n_minor), ensemble=False
        ).fit(X[:, feature_columns(self.features)], y)
        return self

    def predict(self, X: np.ndarray) -> np.ndarray:
        """P(return) of each row of pair features (float64 in [0, 1]); columns after
        `FEATURES` (e.g. the ranker's source flags) are ignored."""
        if self.model_ is None:
            return np.full(len(X), self.base_rate_)
        if len(X) == 0:
            return np.zeros(0)
        scorer = self._scorer()
        if scorer is not None:
            forest, calibrator = scorer
            proba = calibrator.predict(forest.raw(X))
        else:
            proba = self.model_.predict_proba(X[:, feature_columns(self.features)])[:, 1]
        return np.clip(proba, 0.0, 1.0)

    def _scorer(self) -> tuple[FlatForest, Any] | None:
        """The booster flattened (reading the feature columns of X) and its calibration map, as
        scikit-learn's `predict_proba` applies them; None when it cannot be flattened."""
        if getattr(self, "scorer_", None) is None:  # models pickled before have no attribute
            self.scorer_ = False
            fitted = getattr(self.model_, "calibrated_classifiers_", [])
            if len(fitted) == 1 and fitted[0].method in ("isotonic", "sigmoid"):
                booster, calibrators = fitted[0].estimator, fitted[0].calibrators
                if len(calibrators) == 1 and FlatForest.supports(booster):
                    columns = feature_columns(self.features)
                    self.scorer_ = (FlatForest.from_sklearn(booster, columns), calibrators[0])
        return self.scorer_ or None


def fit_return_risk(
    tables: Mapping[str, pd.DataFrame],
    state: RankingState,
    end: pd.Timestamp,
    *,
    label_lag_days: float = 7.0,
    unit: Unit = "pick",
    max_iter: int = 25,
    random_state: int = 0,
) -> tuple[ReturnRiskModel, ReturnLines]:
    """Train the return-risk model on the picks (or lines) bought in [state.cutoff, end)."""
    lines = return_lines(tables, state, end, label_lag_days=label_lag_days, unit=unit)
    # total step max_iter × rate = 4: 25 trees of 7 leaves at 0.16 predicted as well as 100 of
    # 15 at 0.08 (AUC, calibration, picks' return rate) for an eighth of the scoring cost
    model = ReturnRiskModel(
        max_iter=max_iter, learning_rate=4.0 / max_iter, random_state=random_state
    )
    if len(lines) == 0:
        return model.fit(np.zeros((1, 0)), np.zeros(1)), lines
    X = pair_features(state, lines.agents, lines.skus)
    return model.fit(X, lines.returned.astype(np.int64)), lines


def calibration_report(y: np.ndarray, p: np.ndarray, n_bins: int = 10) -> dict[str, float]:
    """AUC, Brier score, log loss, expected calibration error and base rates of predictions.

    The ECE is the mean |observed rate − mean prediction| over equal-count bins, weighted by
    their size. AUC is NaN when `y` holds a single class.
    """
    from sklearn.metrics import brier_score_loss, log_loss, roc_auc_score

    y = np.asarray(y, dtype=np.int64)
    p = np.clip(np.asarray(p, dtype=np.float64), 1e-6, 1 - 1e-6)
    both = 0 < y.sum() < len(y)
    bins = reliability_table(y, p, n_bins)
    ece = float((bins["n"] * (bins["observed"] - bins["predicted"]).abs()).sum() / len(y))
    return {
        "auc": float(roc_auc_score(y, p)) if both else float("nan"),
        "brier": float(brier_score_loss(y, p)),
        "log_loss": float(log_loss(y, p, labels=[0, 1])),
        "ece": ece,
        "rate": float(y.mean()),
        "mean_prediction": float(p.mean()),
        "n": float(len(y)),
    }


def reliability_table(y: np.ndarray, p: np.ndarray, n_bins: int = 10) -> pd.DataFrame:
    """Equal-count bins of the predictions: size, mean prediction and observed rate per bin."""
    order = np.argsort(p, kind="stable")
    bins = np.array_split(order, min(n_bins, max(len(p), 1)))
    rows = [
        {"n": len(b), "predicted": float(p[b].mean()), "observed": float(y[b].mean())}
        for b in bins
        if len(b)
    ]
    return pd.DataFrame(rows, columns=["n", "predicted", "observed"])


def reliability_plot(y: np.ndarray, p: np.ndarray, path: Path, title: str = "") -> Path:
    """Write a reliability diagram (observed return rate vs predicted, equal-count bins) PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    table = reliability_table(np.asarray(y), np.asarray(p), 10)
    report = calibration_report(y, p)
    fig, ax = plt.subplots(figsize=(4.5, 4.5), dpi=110)
    top = max(float(table[["predicted", "observed"]].to_numpy().max(initial=0.0)) * 1.1, 0.05)
    ax.plot([0, top], [0, top], color="grey", linestyle="--", linewidth=1, label="perfect")
    ax.plot(table["predicted"], table["observed"], marker="o", label="return risk")
    ax.set_xlim(0, top)
    ax.set_ylim(0, top)
    ax.set_xlabel("predicted P(return)")
    ax.set_ylabel("observed return rate")
    ax.set_title(title or f"AUC {report['auc']:.3f}, ECE {report['ece']:.4f}")
    ax.legend(loc="upper left")
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path
