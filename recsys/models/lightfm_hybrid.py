"""LightFM hybrid (WARP by default): CF for known users and SKUs, side features for new ones.

Each user (SKU) is the sum of the embeddings of its features (Kula 2015): an identity feature
when it has positive interactions, plus the columns of `dataset.user_features`
(`dataset.sku_features`), each row scaled to sum to 1 as LightFM's own `Dataset` does. Users and
SKUs with no positive interaction get no identity feature, because its embedding was never
trained: a new SKU is scored from its category, brand, tags..., a new agent from her region, tier
and so on. This is what lets LightFM recommend new launches, which pure CF cannot (issue 3).
Training sees only the SKUs someone bought, so new SKUs are never sampled as negatives.

A SKU launched within `cold_sku_days` of the cutoff that has sold is scored from its identity (at
its training weight: who its first sellers and buyers were) plus its side features at the full
weight a never-sold SKU gets (its few days of sales cannot yet say how much it will sell).

Only positive pairs (weight > 0) are fitted; negative weights (returns outweighing purchases)
are dropped, as for ALS and BPR. With `use_weights`, the weights are passed as LightFM sample
weights, divided by their mean so `learning_rate` keeps its meaning.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import pandas as pd
import scipy.sparse as sp

from recsys.data.dataset import Dataset
from recsys.data.id_map import IdMap
from recsys.exceptions import EmptyDataError, ModelFitError
from recsys.models.base import BaseRecommender
from recsys.models.implicit_models import (
    check_count,
    check_finite_factors,
    check_number,
    positive_interactions,
)

LOSSES: tuple[str, ...] = ("warp", "bpr", "warp-kos", "logistic")


def side_feature_block(frame: pd.DataFrame | None, ids: IdMap, name: str) -> sp.csr_matrix:
    """The numeric side-feature table `frame` as a float32 CSR block, rows in `ids` order.

    A frame indexed by external ids is reordered to the id map; otherwise row i is taken to be
    id i. None (or no columns) gives an empty n × 0 block.

    Raises
    ------
    ValueError
        If the row count differs from the id map, or a value is NaN or infinite.
    TypeError
        If a column is not numeric (one-hot encode categories first).
    """
    n = len(ids)
    if frame is None or frame.shape[1] == 0:
        return sp.csr_matrix((n, 0), dtype=np.float32)
    if len(frame) != n:
        raise ValueError(f"{name} has {len(frame)} rows, want {n} (one per id in the id map)")
    if not isinstance(frame.index, pd.RangeIndex) and frame.index.isin(ids.external_ids).all():
        frame = frame.reindex(ids.external_ids)
    not_numeric = [c for c in frame.columns if not pd.api.types.is_numeric_dtype(frame[c])]
    if not_numeric:
        raise TypeError(f"{name} columns must be numeric, got non-numeric {not_numeric[:5]}")
    values = frame.to_numpy(dtype=np.float32, na_value=np.nan)
    if not np.isfinite(values).all():
        bad = frame.columns[~np.isfinite(values).all(axis=0)].tolist()
        raise ValueError(f"{name} must be finite, got NaN/inf in columns {bad[:5]}")
    return sp.csr_matrix(values)


def hybrid_features(
    side: sp.csr_matrix, warm: np.ndarray, identity_share: float | None = None
) -> sp.csr_matrix:
    """[identity of warm rows | side features], each row's |values| summing to 1.

    With `identity_share` s, a warm row gives its identity weight s and its side features
    1 − s together (so a row with many side features is not drowned out by them); cold rows
    (no identity) give their side features all the weight. With None every non-zero counts alike.
    """
    identity = sp.diags(warm.astype(np.float32), format="csr", dtype=np.float32)
    if identity_share is not None:
        side = _row_normalised(side)
        side = sp.csr_matrix(
            sp.diags(np.where(warm, 1.0 - identity_share, 1.0).astype(np.float32)) @ side
        )
        identity = identity * np.float32(identity_share)
    matrix = sp.hstack([identity, side], format="csr", dtype=np.float32)
    matrix.eliminate_zeros()
    return _row_normalised(matrix)


def young_features(hybrid: sp.csr_matrix, side: sp.csr_matrix) -> sp.csr_matrix:
    """Rows of a young SKU: the identity block of `hybrid` plus `side` at the weight of a cold row.

    `hybrid` is `hybrid_features(side, warm, share)` (identity columns first, one per row); the
    side block is replaced by `side` normalised to sum 1, as `hybrid_features` weighs a row with no
    identity, so the row sums to 1 + the identity's weight.
    """
    n = hybrid.shape[0]
    cold = hybrid_features(side, np.zeros(n, dtype=bool), None)
    matrix = sp.hstack([hybrid[:, :n], cold[:, n:]], format="csr", dtype=np.float32)
    matrix.eliminate_zeros()
    return matrix


def _without(frame: pd.DataFrame | None, columns: tuple[str, ...]) -> pd.DataFrame | None:
    """`frame` without the named columns (those it has)."""
    if frame is None or not columns:
        return frame
    return frame.drop(columns=[c for c in columns if c in frame.columns])


def _replace_rows(matrix: sp.csr_matrix, rows: np.ndarray, values: sp.csr_matrix) -> sp.csr_matrix:
    """`matrix` with `rows` replaced by the rows of `values` (same column count)."""
    keep = np.ones(matrix.shape[0], dtype=np.float32)
    keep[rows] = 0.0
    placed = sp.csr_matrix(
        (np.ones(len(rows), dtype=np.float32), (rows, np.arange(len(rows)))),
        shape=(matrix.shape[0], len(rows)),
    )
    out = sp.csr_matrix(sp.diags(keep) @ matrix + placed @ values, dtype=np.float32)
    out.eliminate_zeros()
    return out


def _row_normalised(matrix: sp.csr_matrix) -> sp.csr_matrix:
    """Rows scaled so their absolute values sum to 1 (empty rows stay empty)."""
    sums = np.asarray(abs(matrix).sum(axis=1), dtype=np.float64).ravel()
    scale = np.divide(1.0, sums, out=np.zeros_like(sums), where=sums > 0)
    return sp.csr_matrix(sp.diags(scale.astype(np.float32)) @ matrix, dtype=np.float32)


class LightFMRecommender(BaseRecommender):
    """LightFM with identity + side features, so new users and new SKUs can be scored.

    Parameters
    ----------
    no_components
        Embedding dimensions.
    loss
        LightFM loss: "warp" (default), "bpr", "warp-kos" or "logistic".
    epochs
        Passes over the positive interactions (20 gave a lower kept NDCG@20 on `small`).
    learning_rate
        Initial adagrad step size.
    item_alpha, user_alpha
        L2 penalties on SKU and user feature embeddings.
    use_features
        Add `dataset.user_features` / `dataset.sku_features` to the identity features.
    random_state
        Seed of the initial embeddings and the negative sampler.
    use_weights
        Pass the interaction weights (divided by their mean) as sample weights.
    num_threads
        Training threads; only 1 is reproducible (lock-free updates race), so 1 is the default.
    drop_sku_features
        SKU feature columns left out. A SKU's age is measured at the cutoff, so in training a
        young SKU looks unpopular only because it had less time to sell: that bias would
        bury exactly the new launches the features are there to score.
    identity_share
        Weight of a known user's/SKU's own identity feature against all its side features
        (which share the rest); None weighs every non-zero feature alike. At 0.7 a new or young
        SKU's side features weigh 1 / 0.3 times what they weigh in training (`cold_sku_days`),
        enough to bring launches into a top 20; at 0.5 (twice) far fewer get there
        (docs/features.md has the figures).
    max_sampled
        WARP draws up to this many negatives per positive until one outranks it. With LightFM's
        10, a positive already near the top rarely finds one, so the head of a 3,000-SKU
        ranking is trained loosely; 30 raised kept NDCG@20 on `small` for ~15% more fit CPU.
    cold_sku_days
        SKUs launched within this many days of the cutoff (and later) are young: their side
        features are weighed as for a SKU not yet sold; None treats every sold SKU as established.
    young_identity
        A young SKU that has sold keeps its identity (at its training weight) on top of those
        side features. Its first sellers and buyers are the best evidence of who sells it next
        (an agent re-shares what sold for her), while its identity alone ranks it as unpopular
        for lack of selling days. False scores young SKUs from their side features only.
    """

    name: ClassVar[str] = "lightfm"
    scores_cold_users: ClassVar[bool] = True

    def __init__(
        self,
        no_components: int = 32,
        loss: str = "warp",
        epochs: int = 30,
        learning_rate: float = 0.05,
        item_alpha: float = 1e-6,
        user_alpha: float = 1e-6,
        use_features: bool = True,
        random_state: int = 0,
        use_weights: bool = False,
        num_threads: int = 1,
        identity_share: float | None = 0.7,
        drop_sku_features: tuple[str, ...] = ("age", "not_launched"),
        cold_sku_days: float | None = 30.0,
        young_identity: bool = True,
        max_sampled: int = 30,
    ) -> None:
        self.no_components = no_components
        self.loss = loss
        self.epochs = epochs
        self.learning_rate = learning_rate
        self.item_alpha = item_alpha
        self.user_alpha = user_alpha
        self.use_features = use_features
        self.random_state = random_state
        self.use_weights = use_weights
        self.num_threads = num_threads
        self.identity_share = identity_share
        self.drop_sku_features = tuple(drop_sku_features)
        self.cold_sku_days = cold_sku_days
        self.young_identity = young_identity
        self.max_sampled = max_sampled

    def _check_params(self) -> None:
        check_count("no_components", self.no_components)
        if self.loss not in LOSSES:
            raise ValueError(f"loss must be one of {LOSSES}, got {self.loss!r}")
        check_count("epochs", self.epochs)
        check_number("learning_rate", self.learning_rate, minimum=0.0, strict=True)
        check_number("item_alpha", self.item_alpha, minimum=0.0)
        check_number("user_alpha", self.user_alpha, minimum=0.0)
        check_count("num_threads", self.num_threads)
        check_count("max_sampled", self.max_sampled)
        if self.identity_share is not None and not 0.0 < self.identity_share <= 1.0:
            raise ValueError(f"identity_share must be in (0, 1] or None, got {self.identity_share}")
        if self.use_weights and self.loss == "warp-kos":
            raise ValueError("use_weights=True is not supported with loss='warp-kos'")
        if self.cold_sku_days is not None:
            check_number("cold_sku_days", self.cold_sku_days, minimum=0.0)

    @property
    def needs_side_features(self) -> bool:
        """LightFM reads the side-feature tables unless `use_features` is off."""
        return bool(self.use_features)

    def _fit(self, dataset: Dataset) -> None:
        from lightfm import LightFM

        self._check_params()
        positive = positive_interactions(dataset.interactions)
        if positive.nnz == 0:
            raise EmptyDataError(
                f"LightFMRecommender needs positive interactions, the dataset for target "
                f"{dataset.target!r} has none"
            )
        warm_users = np.diff(positive.indptr) > 0
        bought = np.bincount(positive.indices, minlength=positive.shape[1]) > 0
        warm_skus = bought.copy()
        user_side = side_feature_block(
            dataset.user_features if self.use_features else None, dataset.users, "user_features"
        )
        sku_side = side_feature_block(
            _without(dataset.sku_features, self.drop_sku_features) if self.use_features else None,
            dataset.skus,
            "sku_features",
        )
        self.user_feature_matrix_ = hybrid_features(user_side, warm_users, self.identity_share)
        self.sku_feature_matrix_ = hybrid_features(sku_side, warm_skus, self.identity_share)

        # Train on the SKUs someone bought: WARP samples negatives uniformly over the catalogue,
        # so never-bought SKUs would only ever be negatives and the features that only new SKUs
        # have (not yet launched, age 0) would learn "never bought" instead of staying neutral.
        warm_sku_idx = np.flatnonzero(bought)
        pairs = positive[:, warm_sku_idx].tocoo()
        sample_weight = None
        if self.use_weights:
            sample_weight = sp.coo_matrix(
                (pairs.data / pairs.data.mean(), (pairs.row, pairs.col)), shape=pairs.shape
            )
        pairs.data = np.ones_like(pairs.data)
        model = LightFM(
            no_components=self.no_components,
            loss=self.loss,
            learning_rate=self.learning_rate,
            item_alpha=self.item_alpha,
            user_alpha=self.user_alpha,
            max_sampled=self.max_sampled,
            random_state=np.random.RandomState(self.random_state),
        )
        try:
            model.fit(
                pairs,
                user_features=self.user_feature_matrix_,
                item_features=self.sku_feature_matrix_[warm_sku_idx],
                sample_weight=sample_weight,
                epochs=self.epochs,
                num_threads=self.num_threads,
            )
        except ValueError as err:
            if "not all estimated parameters are finite" in str(err).lower():
                raise ModelFitError(
                    f"LightFMRecommender diverged (learning_rate={self.learning_rate}): {err}"
                ) from err
            raise
        self.model_ = model
        if self.cold_sku_days is not None:
            # A SKU launched lately had little time to sell, so its own embedding ranks it as
            # unpopular while the platform is still pushing it: give its side features the full
            # weight of a new launch's, keeping (young_identity) or dropping its identity.
            young = np.flatnonzero(self._young(dataset) & warm_skus)
            rows = (
                young_features(self.sku_feature_matrix_, sku_side)
                if self.young_identity
                else hybrid_features(sku_side, np.zeros(len(warm_skus), dtype=bool), None)
            )
            self.sku_feature_matrix_ = _replace_rows(self.sku_feature_matrix_, young, rows[young])
        # the rows SKUs are scored with (young ones as above), so `score_with_predict` agrees
        self.user_biases_, self.user_embeddings_ = model.get_user_representations(
            self.user_feature_matrix_
        )
        self.sku_biases_, self.sku_embeddings_ = model.get_item_representations(
            self.sku_feature_matrix_
        )
        check_finite_factors(
            "LightFMRecommender",
            user_embeddings=self.user_embeddings_,
            sku_embeddings=self.sku_embeddings_,
            user_biases=self.user_biases_,
            sku_biases=self.sku_biases_,
        )
        # rows with no feature at all (cold and featureless) have nothing to be scored from
        self.scorable_users_: np.ndarray = np.diff(self.user_feature_matrix_.indptr) > 0
        self.scorable_skus_: np.ndarray = np.diff(self.sku_feature_matrix_.indptr) > 0

    def _young(self, dataset: Dataset) -> np.ndarray:
        """SKUs launched within `cold_sku_days` of the cutoff (all False without a SKU table)."""
        table = dataset.sku_table
        if table is None or "launched_at" not in table:
            return np.zeros(dataset.n_skus, dtype=bool)
        launched = pd.to_datetime(table["launched_at"], utc=True)
        since = dataset.cutoff - pd.Timedelta(days=float(self.cold_sku_days or 0))
        young = (launched >= since).to_numpy()
        idx = dataset.skus.to_index(table["sku_id"].to_numpy(dtype=object), on_unknown="ignore")
        out = np.zeros(dataset.n_skus, dtype=bool)
        out[idx[idx >= 0]] = young[idx >= 0]
        return out

    def _score(self, user_idx: np.ndarray) -> np.ndarray:
        scores = self.user_embeddings_[user_idx] @ self.sku_embeddings_.T
        scores += self.sku_biases_[None, :]
        scores += self.user_biases_[user_idx, None]
        scores = np.asarray(scores, dtype=np.float32)
        scores[:, ~self.scorable_skus_] = -np.inf
        featureless = ~self.scorable_users_[user_idx]
        if featureless.any():
            scores[featureless] = self.popularity_
        return scores

    def score_with_predict(self, user_idx: np.ndarray) -> np.ndarray:
        """Scores like `_score` but through `LightFM.predict` (the slow reference)."""
        self.check_fitted()
        user_idx = np.asarray(user_idx, dtype=np.int32)
        n_skus = len(self.skus_)
        raw = self.model_.predict(
            np.repeat(user_idx, n_skus),
            np.tile(np.arange(n_skus, dtype=np.int32), len(user_idx)),
            user_features=self.user_feature_matrix_,
            item_features=self.sku_feature_matrix_,
            num_threads=self.num_threads,
        )
        scores = raw.reshape(len(user_idx), n_skus).astype(np.float32)
        scores[:, ~self.scorable_skus_] = -np.inf
        featureless = ~self.scorable_users_[user_idx]
        if featureless.any():
            scores[featureless] = self.popularity_
        return scores

    def _sku_vectors(self) -> np.ndarray:
        return np.asarray(self.sku_embeddings_, dtype=np.float32)
