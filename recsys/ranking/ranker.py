"""The learned ranker: how much a candidate will sell through her, from the pair features.

Trained on an inner temporal split of the training log (issue 5, 1): the state is built at an
inner cutoff, candidates are drawn for the agents who sold something after it, and labelled by
what her customers bought in [inner cutoff, cutoff). Nothing after the model's own cutoff is
read, so the real holdout stays unseen. Labels (`label`):

- `"bought"`: 1 when bought through her (HistGradientBoostingClassifier, log loss): P(bought);
- `"kept"`: 1 when a unit was kept (same classifier);
- `"purchases"`: purchase lines (HistGradientBoostingRegressor, Poisson loss): E[purchases],
  which weighs a SKU that many of her customers buy above one that a single customer buys;
- `"units"`: the same with units bought: E[units] (heavy-tailed where buyers buy in bulk, as
  wholesale buyers do on the real data: a few bulk lines then outweigh many small ones);
- `"shared_purchases"` / `"shared_units"`: learnt only from the SKUs she shared in the window,
  the purchases (units) through her from her first share on: E[· | she shares it], the value of
  a pick if she acts on it, which is what the simulator's oracle scores. Her customers'
  repurchases that come without a share are not credited to the pick.

LightGBM's lambdarank would need a new dependency and is not used (docs/sell-with-confidence.md).

Only agents with at least one positive are trained on: the score is compared within an agent's
candidates, and agents without purchases add only negatives.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd
from scipy.special import expit

from recsys.columns import Columns, Tables
from recsys.data.dataset import RETURNED_QTY
from recsys.ranking.candidates import (
    SOURCES,
    CandidateConfig,
    Candidates,
    generate,
    source_tables,
)
from recsys.ranking.features import FEATURES, pair_features
from recsys.ranking.state import RankingState
from recsys.ranking.trees import FlatForest

C = Columns
Label = Literal["bought", "kept", "purchases", "units", "shared_purchases", "shared_units"]
LABELS: tuple[str, ...] = (
    "bought",
    "kept",
    "purchases",
    "units",
    "shared_purchases",
    "shared_units",
)
REGRESSION_LABELS: tuple[str, ...] = ("purchases", "units", "shared_purchases", "shared_units")
SHARED_LABELS: tuple[str, ...] = ("shared_purchases", "shared_units")
RANKER_FEATURES: tuple[str, ...] = FEATURES + tuple(f"from_{s}" for s in SOURCES)


def ranker_matrix(state: RankingState, agents: np.ndarray, cands: Candidates) -> np.ndarray:
    """Pair features of a batch's candidates plus one 0/1 column per candidate source."""
    X = pair_features(state, agents[cands.rows], cands.skus, cands.knn)
    bits = np.array(list(SOURCES.values()), dtype=np.int64)
    flags = ((cands.sources[:, None] & bits[None, :]) > 0).astype(np.float32)
    return np.hstack([X, flags])


def window_pairs(
    tables: Mapping[str, pd.DataFrame],
    state: RankingState,
    end: pd.Timestamp,
    label: Label = "bought",
) -> pd.DataFrame:
    """(agent, SKU) index pairs bought through her in [state.cutoff, end) with `units` (bought),
    `purchases` (lines) and `kept` (kept units, returns filed before `end`); with
    `label="kept"` only pairs with a kept unit.
    """
    from features.logs import purchase_lines

    lines = purchase_lines(tables, end)
    lines = lines.loc[(lines[C.TS] >= state.cutoff).to_numpy()]
    a = state.agents.to_index(lines[C.AGENT_ID].to_numpy(dtype=object), "ignore")
    s = state.skus.to_index(lines[C.SKU_ID].to_numpy(dtype=object), "ignore")
    qty = lines[C.QTY].to_numpy(dtype=np.int64)
    kept = qty - lines[RETURNED_QTY].to_numpy(dtype=np.int64)
    frame = pd.DataFrame({"agent": a, "sku": s, "units": qty, "purchases": 1, "kept": kept})
    frame = frame[(frame["agent"] >= 0) & (frame["sku"] >= 0)]
    pairs = frame.groupby(["agent", "sku"], as_index=False)[["units", "purchases", "kept"]].sum()
    if label == "kept":
        pairs = pairs[pairs["kept"] > 0]
    return pairs.reset_index(drop=True)


def shared_pairs(
    tables: Mapping[str, pd.DataFrame], state: RankingState, end: pd.Timestamp
) -> pd.DataFrame:
    """(agent, SKU) index pairs she shared in [state.cutoff, end), with the `units` and
    `purchases` (lines) bought through her from her first share of it in the window until `end`."""
    from features.logs import purchase_lines

    shares = tables[Tables.SHARES]
    ts = pd.to_datetime(shares[C.TS], utc=True)
    inside = ((ts >= state.cutoff) & (ts < end)).to_numpy()
    a = state.agents.to_index(shares.loc[inside, C.AGENT_ID].to_numpy(dtype=object), "ignore")
    s = state.skus.to_index(shares.loc[inside, C.SKU_ID].to_numpy(dtype=object), "ignore")
    frame = pd.DataFrame({"agent": a, "sku": s, "first": ts[inside].to_numpy()})
    frame = frame[(frame["agent"] >= 0) & (frame["sku"] >= 0)]
    first = frame.groupby(["agent", "sku"], as_index=False)["first"].min()
    lines = purchase_lines(tables, end)
    lines = lines.loc[(lines[C.TS] >= state.cutoff).to_numpy()]
    la = state.agents.to_index(lines[C.AGENT_ID].to_numpy(dtype=object), "ignore")
    ls = state.skus.to_index(lines[C.SKU_ID].to_numpy(dtype=object), "ignore")
    bought = pd.DataFrame(
        {"agent": la, "sku": ls, "ts": lines[C.TS].to_numpy(), "qty": lines[C.QTY].to_numpy()}
    )
    joined = bought.merge(first, on=["agent", "sku"], how="inner")
    after = joined[joined["ts"] >= joined["first"]]
    sold = after.groupby(["agent", "sku"])["qty"].agg(["sum", "size"])
    at = pd.MultiIndex.from_frame(first[["agent", "sku"]])
    first["units"] = sold["sum"].reindex(at).fillna(0.0).to_numpy()
    first["purchases"] = sold["size"].reindex(at).fillna(0.0).to_numpy()
    return first[["agent", "sku", "units", "purchases"]].reset_index(drop=True)


@dataclass
class TrainingRows:
    """The ranker's training set: features, labels (0/1, or units), and each row's agent."""

    X: np.ndarray
    y: np.ndarray
    agents: np.ndarray
    candidate_recall: float  # share of positive pairs that the candidates contain


def training_rows(
    tables: Mapping[str, pd.DataFrame],
    state: RankingState,
    end: pd.Timestamp,
    allowed: np.ndarray,
    *,
    config: CandidateConfig | None = None,
    label: Label = "bought",
    max_agents: int = 3000,
    batch_size: int = 256,
    random_state: int = 0,
) -> TrainingRows:
    """Candidates of agents with positives in [state.cutoff, end), labelled by those positives.

    With a `shared_*` label the rows are the pairs she shared instead (`shared_pairs`).
    At most `max_agents` agents are drawn (at random, seeded) so the set stays bounded.
    """
    if label in SHARED_LABELS:
        target = "units" if label == "shared_units" else "purchases"
        return _shared_rows(tables, state, end, allowed, config, max_agents, random_state, target)
    pos = window_pairs(tables, state, end, label)
    agents = np.unique(pos["agent"].to_numpy(dtype=np.int64))
    if len(agents) > max_agents:
        rng = np.random.default_rng(random_state)
        agents = np.sort(rng.choice(agents, size=max_agents, replace=False))
    pos = pos[pos["agent"].isin(agents)]
    pos_keys = pos["agent"].to_numpy(np.int64) * state.n_skus + pos["sku"].to_numpy(np.int64)
    order = np.argsort(pos_keys)
    pos_keys = pos_keys[order]
    counted = label if label in ("units", "purchases") else "units"
    pos_units = pos[counted].to_numpy(np.float64)[order]
    Xs, ys, owners, found = [], [], [], 0
    tables = source_tables(state, allowed, config)
    for lo in range(0, len(agents), batch_size):
        batch = agents[lo : lo + batch_size]
        cands = generate(state, batch, allowed, config, tables)
        keys = batch[cands.rows] * state.n_skus + cands.skus
        at = np.minimum(np.searchsorted(pos_keys, keys), max(len(pos_keys) - 1, 0))
        hit = (pos_keys[at] == keys) if len(pos_keys) else np.zeros(len(keys), dtype=bool)
        if len(keys):
            y = np.where(hit, pos_units[at] if label in REGRESSION_LABELS else 1.0, 0.0)
        else:
            y = hit.astype(np.float64)
        found += int(hit.sum())
        Xs.append(ranker_matrix(state, batch, cands))
        ys.append(y)
        owners.append(batch[cands.rows])
    if not Xs:
        return TrainingRows(
            np.zeros((0, len(RANKER_FEATURES)), np.float32), np.zeros(0), np.zeros(0), 0.0
        )
    return TrainingRows(
        X=np.vstack(Xs),
        y=np.concatenate(ys).astype(np.float64),
        agents=np.concatenate(owners),
        candidate_recall=found / max(len(pos_keys), 1),
    )


def _shared_rows(
    tables: Mapping[str, pd.DataFrame],
    state: RankingState,
    end: pd.Timestamp,
    allowed: np.ndarray,
    config: CandidateConfig | None,
    max_agents: int,
    random_state: int,
    target: str = "units",
) -> TrainingRows:
    """Rows of the pairs she shared, labelled by the units (or purchases) through her after it."""
    pairs = shared_pairs(tables, state, end)
    agents = np.unique(pairs["agent"].to_numpy(dtype=np.int64))
    if len(agents) > max_agents:
        rng = np.random.default_rng(random_state)
        agents = np.sort(rng.choice(agents, size=max_agents, replace=False))
    pairs = pairs[pairs["agent"].isin(agents)]
    a = pairs["agent"].to_numpy(np.int64)
    s = pairs["sku"].to_numpy(np.int64)
    # the source bits of a shared SKU are those of the candidates that proposed it (0 if none)
    cands = generate(state, agents, allowed, config)
    cand_keys = agents[cands.rows] * state.n_skus + cands.skus
    order = np.argsort(cand_keys)
    cand_keys, cand_bits = cand_keys[order], cands.sources[order]
    keys = a * state.n_skus + s
    at = np.minimum(np.searchsorted(cand_keys, keys), max(len(cand_keys) - 1, 0))
    found = (cand_keys[at] == keys) if len(cand_keys) else np.zeros(len(keys), dtype=bool)
    bits = np.where(found, cand_bits[at] if len(cand_keys) else 0, 0)
    rows = pd.Index(agents).get_indexer(a)
    X = ranker_matrix(state, agents, Candidates(rows, s, bits))
    return TrainingRows(
        X=X,
        y=pairs[target].to_numpy(np.float64),
        agents=a,
        candidate_recall=float(found.mean()) if len(found) else 0.0,
    )


@dataclass
class Ranker:
    """P(bought | candidate), or E[units], from `RANKER_FEATURES` (HistGradientBoosting).

    With fewer than 10 positives (or negatives) it falls back to a fixed blend of the candidate
    scores (`fallback_score`), so tiny logs still rank sensibly.
    """

    label: Label = "bought"
    max_iter: int = 100
    learning_rate: float = 0.1
    max_leaf_nodes: int = 31
    min_samples_leaf: int = 50
    # Poisson boosting takes Newton steps Σ(y - μ) / (Σμ + l2): a leaf whose rows were predicted
    # near 0 but hold a few bulk buyers jumps by hundreds and the model diverges (seen on two of
    # three `medium` worlds). A firmer l2 and labels capped at the positives' 99th percentile
    # keep every step bounded, and ranked better on held-out rows too.
    l2_regularization: float = 10.0
    label_cap_quantile: float | None = 0.99
    random_state: int = 0
    model_: Any = field(default=None, init=False, repr=False)
    # the flattened booster, False when it cannot be flattened, None: not built yet
    forest_: Any = field(default=None, init=False, repr=False, compare=False)

    def fit(self, rows: TrainingRows) -> Ranker:
        """Fit on the training rows (or keep the fallback when they are too few).

        Raises
        ------
        ValueError
            If `label` is not one of `LABELS`.
        """
        if self.label not in LABELS:
            raise ValueError(f"label must be one of {LABELS}, got {self.label!r}")
        self.forest_ = None
        n_pos = int((rows.y > 0).sum())
        if min(n_pos, len(rows.y) - n_pos) < 10:
            self.model_ = None
            return self
        from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor

        params = {
            "max_iter": self.max_iter,
            "learning_rate": self.learning_rate,
            "max_leaf_nodes": self.max_leaf_nodes,
            "min_samples_leaf": self.min_samples_leaf,
            "l2_regularization": self.l2_regularization,
            "early_stopping": False,
            "random_state": self.random_state,
        }
        if self.label in REGRESSION_LABELS:
            self.model_ = HistGradientBoostingRegressor(loss="poisson", **params)
            self.model_.fit(rows.X, self.capped(rows.y))
        else:
            self.model_ = HistGradientBoostingClassifier(**params)
            self.model_.fit(rows.X, (rows.y > 0).astype(np.int64))
        return self

    def capped(self, y: np.ndarray) -> np.ndarray:
        """Regression labels capped at `label_cap_quantile` of the positive ones (None: as is)."""
        y = np.asarray(y, dtype=np.float64)
        positive = y[y > 0]
        if self.label_cap_quantile is None or len(positive) == 0:
            return y
        return np.minimum(y, np.quantile(positive, self.label_cap_quantile))

    def predict(self, X: np.ndarray) -> np.ndarray:
        """P(bought) (or E[units]) per candidate row; the fallback blend when unfitted."""
        if len(X) == 0:
            return np.zeros(0)
        if self.model_ is None:
            return fallback_score(X)
        forest = self._forest()
        if forest is not None:
            # the inverse links of scikit-learn's Poisson and log losses, applied as it does
            raw = forest.raw(X)
            return np.exp(raw) if self.label in REGRESSION_LABELS else expit(raw)
        if self.label in REGRESSION_LABELS:
            return np.asarray(self.model_.predict(X), dtype=np.float64)
        return np.asarray(self.model_.predict_proba(X)[:, 1], dtype=np.float64)

    def _forest(self) -> FlatForest | None:
        """The booster flattened for fast scoring, built once; None if it cannot be."""
        if getattr(self, "forest_", None) is None:  # models pickled before have no attribute
            flat = FlatForest.supports(self.model_)
            self.forest_ = FlatForest.from_sklearn(self.model_) if flat else False
        return self.forest_ or None


def fallback_score(X: np.ndarray) -> np.ndarray:
    """A hand-set blend of repeat, customers, audience, ALS and popularity, squashed to (0, 1)."""
    col = {name: i for i, name in enumerate(RANKER_FEATURES)}
    z = (
        1.0 * X[:, col["repeat_score"]]
        + 0.5 * X[:, col["customers_bought"]]
        + 1.0 * X[:, col["als_score"]]
        + 1.0 * X[:, col["audience_score"]]
        + 0.3 * X[:, col["region_popularity"]]
        + 0.1 * X[:, col["popularity"]]
    )
    return 1.0 / (1.0 + np.exp(-(z - 2.0)))
