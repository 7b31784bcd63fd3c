"""Implicit-feedback ALS fitted by Spark MLlib, scored with numpy like the `implicit` models.

`pyspark.ml.recommendation.ALS(implicitPrefs=True)` fits on the positive pairs with confidence
c = 1 + alpha·w (Hu, Koren & Volinsky 2008), as `ALSRecommender` does. Only the factor matrices
come back to the driver; the fitted model is plain numpy and pickles without Spark, so MLflow's
pyfunc, `recsys publish` and serving use it without Java. Users with no positive pair get the
popularity fallback and SKUs with none are never recommended (their factors are noise), as in
recsys/models/implicit_models.py.

Two differences from `implicit` that change numbers, not meaning: Spark scales the L2 penalty of
each user (SKU) by its number of pairs (ALS-WR), and it solves with Cholesky, not conjugate
gradient; docs/spark.md states the measured NDCG gap.
"""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING, Any, ClassVar, Self

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

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

USER = "user_idx"
ITEM = "sku_idx"
RATING = "weight"


def fit_spark_als(
    ratings: DataFrame,
    n_users: int,
    n_skus: int,
    *,
    factors: int,
    regularization: float,
    alpha: float,
    iterations: int,
    random_state: int,
    num_blocks: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Fit Spark ALS on (user_idx, sku_idx, weight > 0) rows; float32 factors of every index.

    Rows of users (SKUs) without pairs are zeros. `num_blocks` None = the session's default
    parallelism (Spark's own default of 10 blocks only adds overhead on small clusters).
    """
    from pyspark.ml.recommendation import ALS

    spark = ratings.sparkSession
    blocks = num_blocks or max(1, spark.sparkContext.defaultParallelism)
    als = ALS(
        rank=factors,
        maxIter=iterations,
        regParam=regularization,
        alpha=alpha,
        implicitPrefs=True,
        seed=random_state,
        userCol=USER,
        itemCol=ITEM,
        ratingCol=RATING,
        numUserBlocks=blocks,
        numItemBlocks=blocks,
        nonnegative=False,
        intermediateStorageLevel="MEMORY_AND_DISK",
        finalStorageLevel="MEMORY_AND_DISK",
    )
    fitted = als.fit(ratings)
    return (
        _collect_factors(fitted.userFactors, n_users, factors),
        _collect_factors(fitted.itemFactors, n_skus, factors),
    )


def _collect_factors(frame: DataFrame, n_rows: int, rank: int) -> np.ndarray:
    """An (id, features) factor DataFrame as a dense float32 array indexed by id."""
    out = np.zeros((n_rows, rank), dtype=np.float32)
    pdf = frame.toPandas()
    if len(pdf):
        out[pdf["id"].to_numpy(dtype=np.int64)] = np.stack(pdf["features"].to_numpy())
    return out


class SparkALSRecommender(BaseRecommender):
    """Implicit ALS fitted by Spark MLlib on the positive interaction weights.

    Parameters
    ----------
    factors
        Latent dimensions (Spark's `rank`).
    regularization
        Spark's `regParam` (scaled per user and SKU by its number of pairs).
    alpha
        Confidence slope: a pair with weight w > 0 gets confidence 1 + alpha·w.
    iterations
        ALS sweeps (Spark's `maxIter`).
    random_state
        Seed of the initial factors.
    num_blocks
        User and SKU blocks of Spark's solver (None = the session's default parallelism).
    """

    name: ClassVar[str] = "spark-als"

    def __init__(
        self,
        factors: int = 64,
        regularization: float = 0.01,
        alpha: float = 1.0,
        iterations: int = 15,
        random_state: int = 0,
        num_blocks: int | None = None,
    ) -> None:
        self.factors = factors
        self.regularization = regularization
        self.alpha = alpha
        self.iterations = iterations
        self.random_state = random_state
        self.num_blocks = num_blocks

    def _check_params(self) -> None:
        check_count("factors", self.factors)
        check_number("regularization", self.regularization, minimum=0.0)
        check_number("alpha", self.alpha, minimum=0.0)
        check_count("iterations", self.iterations)
        if self.num_blocks is not None:
            check_count("num_blocks", self.num_blocks)

    # ---- fitting -------------------------------------------------------------------------
    def fit_spark(self, dataset: Dataset, ratings: DataFrame) -> Self:
        """Fit on `ratings`, the distributed (user_idx, sku_idx, weight) pairs of `dataset`.

        `dataset.interactions` must hold the same pairs (it gives the seen mask and the
        popularity fallback); the ALS solve itself reads only `ratings`, on the executors.
        """
        self._ratings = ratings
        try:
            return self.fit(dataset)
        finally:
            del self._ratings  # a DataFrame must not end up in the pickle

    def _fit(self, dataset: Dataset) -> None:
        self._check_params()
        positive = positive_interactions(dataset.interactions)
        if positive.nnz == 0:
            raise EmptyDataError(
                f"{type(self).__name__} needs positive interactions, the dataset for target "
                f"{dataset.target!r} has none"
            )
        ratings = getattr(self, "_ratings", None)
        if ratings is None:
            ratings = _ratings_from_matrix(positive)
        else:
            from pyspark.sql import functions as F

            ratings = ratings.where(F.col(RATING) > 0)
        user_f, item_f = fit_spark_als(
            ratings,
            positive.shape[0],
            positive.shape[1],
            factors=self.factors,
            regularization=self.regularization,
            alpha=self.alpha,
            iterations=self.iterations,
            random_state=self.random_state,
            num_blocks=self.num_blocks,
        )
        self._set_factors(user_f, item_f, positive)

    def _set_factors(
        self, user_factors: np.ndarray, item_factors: np.ndarray, positive: sp.csr_matrix
    ) -> None:
        """Keep the factors and which users and SKUs have positive pairs."""
        check_finite_factors(
            type(self).__name__, user_factors=user_factors, item_factors=item_factors
        )
        self.user_factors_: np.ndarray = np.ascontiguousarray(user_factors, dtype=np.float32)
        self.item_factors_: np.ndarray = np.ascontiguousarray(item_factors, dtype=np.float32)
        self.warm_users_: np.ndarray = np.diff(positive.indptr) > 0
        self.warm_skus_: np.ndarray = np.bincount(positive.indices, minlength=positive.shape[1]) > 0

    @classmethod
    def from_factor_model(cls, model: BaseRecommender) -> SparkALSRecommender:
        """The same picks from a fitted `implicit` model (als, bpr) as a SparkALSRecommender.

        Scores are the plain dot products (the `topk_reference` path of those models).

        Raises
        ------
        TypeError
            If `model` has no user and item factor matrices.
        """
        if isinstance(model, SparkALSRecommender):
            return model
        inner = getattr(model, "model_", None)
        if inner is None or not hasattr(inner, "user_factors") or not hasattr(model, "warm_skus_"):
            raise TypeError(
                f"{type(model).__name__} is not a factor model (spark-als, als or bpr): it has no "
                "user and item factors to score with"
            )
        out = cls.__new__(cls)
        out.__dict__.update({k: v for k, v in model.__dict__.items() if k != "model_"})
        out.num_blocks = None
        out.user_factors_ = np.asarray(inner.user_factors, dtype=np.float32)
        out.item_factors_ = np.asarray(inner.item_factors, dtype=np.float32)
        return out

    # ---- scoring -------------------------------------------------------------------------
    def _score(self, user_idx: np.ndarray) -> np.ndarray:
        scores = np.asarray(self.user_factors_[user_idx] @ self.item_factors_.T, dtype=np.float32)
        scores[:, ~self.warm_skus_] = -np.inf
        cold = ~self.warm_users_[user_idx]
        if cold.any():
            scores[cold] = self.popularity_
        return scores

    def _sku_vectors(self) -> np.ndarray:
        vectors = np.array(self.item_factors_, dtype=np.float32)
        vectors[~self.warm_skus_] = 0.0  # factors of SKUs nobody bought are noise
        return vectors

    # ---- pieces for distributed scoring --------------------------------------------------
    def item_side(self) -> SparkALSRecommender:
        """A copy without per-user state (no users, no seen mask): what executors receive."""
        self.check_fitted()
        out = copy.copy(self)
        out.users_ = IdMap(np.array([], dtype=object))
        out.user_factors_ = np.zeros((0, self.item_factors_.shape[1]), dtype=np.float32)
        out.warm_users_ = np.zeros(0, dtype=bool)
        out.has_history_ = np.zeros(0, dtype=bool)
        out.seen_ = sp.csr_matrix((0, len(self.skus_)), dtype=np.float32)
        return out

    def for_users(
        self, user_ids: np.ndarray, user_factors: np.ndarray, warm: np.ndarray
    ) -> SparkALSRecommender:
        """This model restricted to `user_ids` (with their factors and warm flags).

        `recommend(user_ids, k)` (without `exclude_seen`) then equals the full model's: the seen
        mask is not carried. Users with `warm` False get the popularity fallback.

        Raises
        ------
        ModelFitError
            If a factor is NaN or infinite (a corrupt model).
        """
        factors = np.asarray(user_factors, dtype=np.float32).reshape(len(user_ids), -1)
        if not np.isfinite(np.sum(factors, dtype=np.float64)):
            bad = np.asarray(user_ids, dtype=object)[~np.isfinite(factors).all(axis=1)]
            raise ModelFitError(
                f"non-finite user factors for {len(bad)} users, e.g. {bad[:3].tolist()}"
            )
        out = copy.copy(self)
        out.users_ = IdMap(np.asarray(user_ids, dtype=object))
        out.user_factors_ = factors
        out.warm_users_ = np.asarray(warm, dtype=bool)
        out.has_history_ = out.warm_users_
        out.seen_ = sp.csr_matrix((len(user_ids), len(self.skus_)), dtype=np.float32)
        return out

    def user_factor_frame(self) -> pd.DataFrame:
        """One row per known user: id, float32 factors as bytes, and whether she is warm."""
        self.check_fitted()
        raw = self.user_factors_.tobytes()
        width = self.user_factors_.shape[1] * 4
        return pd.DataFrame(
            {
                "user_id": self.users_.external_ids.astype(str),
                "factors": [raw[i * width : (i + 1) * width] for i in range(len(self.users_))],
                "warm": self.warm_users_,
            }
        )


def _ratings_from_matrix(positive: sp.csr_matrix) -> Any:
    """The positive pairs of a local matrix as a DataFrame on the active Spark session.

    Raises
    ------
    RuntimeError
        If no Spark session is active (start one with training.spark.session.spark_session).
    """
    from pyspark.sql import SparkSession

    spark = SparkSession.getActiveSession()
    if spark is None:
        raise RuntimeError(
            "SparkALSRecommender.fit needs an active Spark session: start one with "
            "training.spark.session.spark_session(), or train with `recsys train --engine spark`"
        )
    coo = positive.tocoo()
    pdf = pd.DataFrame(
        {
            USER: coo.row.astype(np.int32),
            ITEM: coo.col.astype(np.int32),
            RATING: coo.data.astype(np.float32),
        }
    )
    return spark.createDataFrame(pdf)
