"""Matrix factorisation on implicit feedback (ALS and BPR from `implicit`), one interface.

Both models fit on the positive part of `dataset.interactions` (users × SKUs): pair weights <= 0
(e.g. purchases outweighed by returns) are clipped to 0 and carry no signal, but the pair stays
"seen", so `exclude_seen` still drops it. ALS uses confidence c = 1 + alpha·w on the positive
pairs (Hu, Koren & Volinsky 2008); BPR treats them as binary likes.

What collaborative filtering cannot score falls back: users with no positive interaction get the
popularity ranking (as unknown users do), and SKUs with no positive interaction (new launches)
are never recommended, since their factors are noise; LightFM scores those from features.

Determinism: implicit's ALS solves each user (item) independently, so its factors are bitwise
identical for any `num_threads` (measured on implicit 0.7.3 with OpenBLAS limited to one thread);
BPR runs lock-free SGD (Hogwild), reproducible only with `num_threads=1`, its default.
"""

from __future__ import annotations

from abc import abstractmethod
from typing import Any, ClassVar

import numpy as np
import scipy.sparse as sp
from threadpoolctl import threadpool_limits

from recsys.data.dataset import Dataset
from recsys.exceptions import EmptyDataError, ModelFitError
from recsys.models.base import BaseRecommender


def positive_interactions(matrix: sp.spmatrix) -> sp.csr_matrix:
    """The float32 CSR matrix of the entries of `matrix` with weight > 0 (others dropped).

    Raises
    ------
    ValueError
        If `matrix` holds NaN or infinite weights.
    """
    csr = sp.csr_matrix(matrix, dtype=np.float32, copy=True)
    if not np.isfinite(csr.data).all():
        bad = int((~np.isfinite(csr.data)).sum())
        raise ValueError(f"interactions must be finite, got {bad} NaN/inf weights")
    csr.data = np.where(csr.data > 0, csr.data, 0).astype(np.float32)
    csr.eliminate_zeros()
    csr.sort_indices()
    return csr


def check_finite_factors(model_name: str, **arrays: np.ndarray) -> None:
    """Raise ModelFitError if any of the named fitted arrays holds NaN or infinite values."""
    for key, values in arrays.items():
        # a sum is non-finite iff some value is, without a big boolean temporary
        if not np.isfinite(np.sum(values, dtype=np.float64)):
            n_bad = int((~np.isfinite(values)).sum())
            raise ModelFitError(
                f"{model_name} diverged: {n_bad} non-finite values in {key}; "
                "lower the learning rate / alpha or raise the regularization"
            )


def check_number(name: str, value: Any, *, minimum: float, strict: bool = False) -> None:
    """Raise ValueError unless `value` is a finite number >= `minimum` (> if `strict`)."""
    ok = isinstance(value, (int, float, np.integer, np.floating)) and np.isfinite(value)
    ok = ok and (value > minimum if strict else value >= minimum)
    if not ok:
        op = ">" if strict else ">="
        raise ValueError(f"{name} must be a finite number {op} {minimum}, got {value!r}")


def check_count(name: str, value: Any, *, minimum: int = 1) -> None:
    """Raise ValueError unless `value` is an integer >= `minimum`."""
    if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")


class _ImplicitRecommender(BaseRecommender):
    """Shared fitting and scoring of implicit's CPU matrix-factorisation models."""

    # The number of trailing item-factor columns that are biases, not taste (BPR has one).
    n_bias_columns: ClassVar[int] = 0

    @abstractmethod
    def _make_model(self) -> Any:
        """A new, unfitted implicit CPU model built from the constructor parameters."""

    @abstractmethod
    def _train_matrix(self, positive: sp.csr_matrix) -> sp.csr_matrix:
        """The users × SKUs matrix implicit fits on, from the positive weights."""

    @abstractmethod
    def _check_params(self) -> None:
        """Raise ValueError naming the first invalid constructor parameter."""

    def _fit(self, dataset: Dataset) -> None:
        from implicit.recommender_base import ModelFitError as ImplicitFitError

        self._check_params()
        positive = positive_interactions(dataset.interactions)
        if positive.nnz == 0:
            raise EmptyDataError(
                f"{type(self).__name__} needs positive interactions, the dataset for target "
                f"{dataset.target!r} has none"
            )
        # implicit runs its own threads; OpenBLAS's would compete with them (perf-notes.md).
        with threadpool_limits(limits=1, user_api="blas"):
            model = self._make_model()
            try:
                model.fit(self._train_matrix(positive), show_progress=False)
            except ImplicitFitError as err:  # implicit's own check for NaN factors
                raise ModelFitError(f"{type(self).__name__} diverged: {err}") from err
        check_finite_factors(
            type(self).__name__, user_factors=model.user_factors, item_factors=model.item_factors
        )
        self.model_ = model
        self.warm_users_: np.ndarray = np.diff(positive.indptr) > 0
        self.warm_skus_: np.ndarray = np.bincount(positive.indices, minlength=positive.shape[1]) > 0
        self.candidates_: np.ndarray = np.flatnonzero(self.available_ & self.warm_skus_)

    def _score(self, user_idx: np.ndarray) -> np.ndarray:
        scores = np.asarray(
            self.model_.user_factors[user_idx] @ self.model_.item_factors.T, dtype=np.float32
        )
        scores[:, ~self.warm_skus_] = -np.inf
        cold = ~self.warm_users_[user_idx]
        if cold.any():
            scores[cold] = self.popularity_
        return scores

    def _topk(
        self, user_idx: np.ndarray, k: int, exclude_seen: bool
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top-k via implicit's threaded `recommend`; users without signal via `_score`."""
        out_idx = np.full((len(user_idx), k), -1, dtype=np.int64)
        out_val = np.full((len(user_idx), k), -np.inf, dtype=np.float32)
        warm = self.warm_users_[user_idx]
        if (~warm).any():
            out_idx[~warm], out_val[~warm] = super()._topk(user_idx[~warm], k, exclude_seen)
        if not warm.any() or len(self.candidates_) == 0:
            return out_idx, out_val
        rows = user_idx[warm]
        items = None if len(self.candidates_) == len(self.skus_) else self.candidates_
        with threadpool_limits(limits=1, user_api="blas"):
            ids, vals = self.model_.recommend(
                rows,
                self.seen_[rows],
                N=k,
                filter_already_liked_items=exclude_seen,
                items=items,
            )
        ids = np.asarray(ids, dtype=np.int64).reshape(len(rows), -1)
        vals = np.asarray(vals, dtype=np.float32).reshape(len(rows), -1)
        # implicit pads lists shorter than N (all candidates filtered) with ids -1 or -FLT_MAX
        # scores; the base class expects -1 / -inf there.
        invalid = (ids < 0) | ~np.isfinite(vals) | (vals <= np.finfo(np.float32).min)
        ids[invalid], vals[invalid] = -1, -np.inf
        width = ids.shape[1]
        out_idx[warm, :width], out_val[warm, :width] = ids, vals
        return out_idx, out_val

    def topk_reference(
        self, user_idx: np.ndarray, k: int, exclude_seen: bool = False
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top-k (sku_idx, score) by plain numpy scoring: the reference for the fast path."""
        self.check_fitted()
        return BaseRecommender._topk(self, np.asarray(user_idx, dtype=np.int64), k, exclude_seen)

    def _sku_vectors(self) -> np.ndarray:
        n_taste = self.model_.item_factors.shape[1] - self.n_bias_columns
        vectors = np.array(self.model_.item_factors[:, :n_taste], dtype=np.float32)
        # factors of SKUs nobody bought are random init, not taste: make them similar to nothing
        vectors[~self.warm_skus_] = 0.0
        return vectors


class ALSRecommender(_ImplicitRecommender):
    """Implicit-feedback ALS (conjugate-gradient solver) with confidence 1 + alpha·weight.

    Parameters
    ----------
    factors
        Latent dimensions.
    regularization
        L2 penalty on the factors.
    alpha
        Confidence slope: a pair with weight w > 0 gets confidence 1 + alpha·w.
    iterations
        ALS sweeps (users then items).
    random_state
        Seed of the initial factors.
    num_threads
        Threads for fit and recommend (0 = all cores); results do not depend on it.
    """

    name: ClassVar[str] = "als"

    def __init__(
        self,
        factors: int = 64,
        regularization: float = 0.01,
        alpha: float = 1.0,
        iterations: int = 15,
        random_state: int = 0,
        num_threads: int = 0,
    ) -> None:
        self.factors = factors
        self.regularization = regularization
        self.alpha = alpha
        self.iterations = iterations
        self.random_state = random_state
        self.num_threads = num_threads

    def _check_params(self) -> None:
        check_count("factors", self.factors)
        check_number("regularization", self.regularization, minimum=0.0)
        check_number("alpha", self.alpha, minimum=0.0)
        check_count("iterations", self.iterations)
        check_count("num_threads", self.num_threads, minimum=0)

    def _make_model(self) -> Any:
        from implicit.cpu.als import AlternatingLeastSquares

        # implicit's own `alpha` would scale the stored values into the confidence c = alpha·w;
        # we store c = 1 + alpha·w ourselves and keep implicit's alpha at 1.
        return AlternatingLeastSquares(
            factors=self.factors,
            regularization=self.regularization,
            alpha=1.0,
            iterations=self.iterations,
            use_cg=True,  # 3.2x faster than Cholesky here (perf-notes.md)
            num_threads=self.num_threads,
            random_state=self.random_state,
        )

    def _train_matrix(self, positive: sp.csr_matrix) -> sp.csr_matrix:
        confidence = positive.copy()
        confidence.data = (1.0 + self.alpha * confidence.data).astype(np.float32)
        return confidence


class BPRRecommender(_ImplicitRecommender):
    """Bayesian Personalised Ranking (SGD on sampled pairs) over binary positive pairs.

    implicit draws negatives from the stored pairs, i.e. in proportion to SKU popularity.

    Parameters
    ----------
    factors
        Latent dimensions (implicit adds one item-bias column).
    learning_rate
        SGD step size.
    regularization
        L2 penalty on the factors.
    iterations
        Epochs, each sampling as many pairs as there are positive interactions.
    random_state
        Seed of the initial factors and the samplers.
    num_threads
        SGD threads; only 1 is reproducible (lock-free updates race), so 1 is the default.
    """

    name: ClassVar[str] = "bpr"
    n_bias_columns: ClassVar[int] = 1

    def __init__(
        self,
        factors: int = 64,
        learning_rate: float = 0.01,
        regularization: float = 0.01,
        iterations: int = 50,
        random_state: int = 0,
        num_threads: int = 1,
    ) -> None:
        self.factors = factors
        self.learning_rate = learning_rate
        self.regularization = regularization
        self.iterations = iterations
        self.random_state = random_state
        self.num_threads = num_threads

    def _check_params(self) -> None:
        check_count("factors", self.factors)
        check_number("learning_rate", self.learning_rate, minimum=0.0, strict=True)
        check_number("regularization", self.regularization, minimum=0.0)
        check_count("iterations", self.iterations)
        check_count("num_threads", self.num_threads, minimum=0)

    def _make_model(self) -> Any:
        from implicit.cpu.bpr import BayesianPersonalizedRanking

        return BayesianPersonalizedRanking(
            factors=self.factors,
            learning_rate=self.learning_rate,
            regularization=self.regularization,
            iterations=self.iterations,
            num_threads=self.num_threads,
            random_state=self.random_state,
        )

    def _train_matrix(self, positive: sp.csr_matrix) -> sp.csr_matrix:
        # BPR reads only which pairs are stored, not their weights
        binary = positive.copy()
        binary.data = np.ones_like(binary.data)
        return binary
