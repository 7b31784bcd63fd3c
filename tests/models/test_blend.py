"""BlendRecommender: normalised repeat and CF scores mixed by repeat_weight."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from numpy.testing import assert_allclose

from recsys.columns import Columns
from recsys.data.dataset import Dataset
from recsys.models import make_model
from recsys.models.blend import (
    BlendRecommender,
    minmax_rows,
    rank_rows,
    scale_by_max,
    sparse_rank_rows,
)
from recsys.models.itemknn import ItemKNNRecommender
from recsys.models.repeat import RepeatRecommender
from tests.models.helpers import checkerboard_dataset

C = Columns
INF = np.inf
KNN = {"weighting": "cosine", "k_neighbours": 20}


@pytest.fixture(scope="module")
def data() -> Dataset:
    return checkerboard_dataset()


def blend(weight: float) -> BlendRecommender:
    return BlendRecommender(cf_model="itemknn", repeat_weight=weight, cf_params=KNN)


def test_blend_scale_by_max_hand_values() -> None:
    got = scale_by_max(np.array([[4.0, 1.0, -INF, 0.0], [-INF, -INF, -INF, -INF]]))
    assert_allclose(got, [[1.0, 0.25, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0]])


def test_blend_minmax_rows_hand_values() -> None:
    got = minmax_rows(np.array([[-1.0, 3.0, 1.0, -INF], [2.0, 2.0, -INF, -INF]]))
    assert_allclose(got, [[0.0, 1.0, 0.5, 0.0], [1.0, 1.0, 0.0, 0.0]])


def test_blend_rank_rows_hand_values() -> None:
    got = rank_rows(np.array([[3.0, -INF, 1.0, 1.0, 5.0], [-INF, -INF, -INF, -INF, -INF]]))
    # finite values 1, 1, 3, 5 take ranks 1.5, 1.5, 3, 4 of 4
    assert_allclose(got, [[3 / 4, 0.0, 1.5 / 4, 1.5 / 4, 1.0], [0.0] * 5])


finite_rows = arrays(
    np.float64,
    (3, 6),
    elements=st.one_of(st.floats(-1e6, 1e6, allow_subnormal=False), st.just(-INF)),
)


@settings(max_examples=100, deadline=None)
@given(finite_rows)
def test_blend_minmax_rows_keeps_order_within_zero_one(scores: np.ndarray) -> None:
    got = minmax_rows(scores)
    assert ((got >= 0) & (got <= 1)).all()
    for row, out in zip(scores, got, strict=True):
        finite = np.isfinite(row)
        if finite.any():
            assert out[finite].max() == 1.0
            order = np.argsort(row[finite], kind="stable")
            assert (np.diff(out[finite][order]) >= -1e-12).all()


@settings(max_examples=100, deadline=None)
@given(finite_rows)
def test_blend_rank_rows_keeps_order_within_zero_one(scores: np.ndarray) -> None:
    got = rank_rows(scores)
    assert ((got >= 0) & (got <= 1)).all()
    for row, out in zip(scores, got, strict=True):
        finite = np.isfinite(row)
        assert (out[~finite] == 0).all()
        if finite.any():
            assert out[finite].min() > 0
            if (row[finite] == row[finite].max()).sum() == 1:  # ties share an averaged rank
                assert out[finite].max() == 1.0
            i, j = np.meshgrid(row[finite], row[finite])
            oi, oj = np.meshgrid(out[finite], out[finite])
            assert ((oi < oj) == (i < j)).all()


@settings(max_examples=100, deadline=None)
@given(arrays(np.float64, (4, 7), elements=st.sampled_from([0.0, 0.5, 1.0, 2.0, 3.5])))
def test_blend_sparse_rank_rows_matches_dense(values: np.ndarray) -> None:
    got = sparse_rank_rows(sp.csr_matrix(values)).toarray()
    assert_allclose(got, rank_rows(np.where(values != 0, values, -INF)))


@settings(max_examples=100, deadline=None)
@given(finite_rows)
def test_blend_scale_by_max_is_proportional(scores: np.ndarray) -> None:
    got = scale_by_max(scores)
    for row, out in zip(scores, got, strict=True):
        positive = np.isfinite(row) & (row > 0)
        assert (out[~positive] == 0).all()
        if positive.any():
            assert_allclose(out[positive] * row[positive].max(), row[positive], rtol=1e-9)


@pytest.mark.parametrize("normalisation", ["rank", "minmax"])
def test_blend_score_is_the_weighted_sum(data: Dataset, normalisation: str) -> None:
    model = BlendRecommender(
        cf_model="itemknn", repeat_weight=0.3, cf_params=KNN, normalisation=normalisation
    ).fit(data)
    rows = data.users.to_index(["a0", "a4", "b2"])
    repeat = RepeatRecommender().fit(data)._score(rows)
    cf = ItemKNNRecommender(**KNN).fit(data)._score(rows)
    repeat[:, ~data.sku_available] = -INF
    cf[:, ~data.sku_available] = -INF
    if normalisation == "rank":
        want = 0.3 * rank_rows(repeat) + 0.7 * rank_rows(cf)
    else:
        want = 0.3 * scale_by_max(repeat) + 0.7 * minmax_rows(cf)
    want[~(np.isfinite(cf) | np.isfinite(repeat))] = -INF
    assert_allclose(model._score(rows), want, rtol=1e-6)


def test_blend_weight_one_is_personal_repeat(data: Dataset) -> None:
    users = ["a1", "a2", "b5"]
    got = blend(1.0).fit(data).recommend(users, k=4)
    want = RepeatRecommender().fit(data).recommend(users, k=4)
    assert got[C.SKU_ID].tolist() == want[C.SKU_ID].tolist()


def test_blend_weight_zero_is_the_cf_model(data: Dataset) -> None:
    users = ["a0", "a1", "b5"]
    got = blend(0.0).fit(data).recommend(users, k=4, exclude_seen=True)
    want = ItemKNNRecommender(**KNN).fit(data).recommend(users, k=4, exclude_seen=True)
    assert got[C.SKU_ID].tolist() == want[C.SKU_ID].tolist()


def test_blend_rebuys_and_discovers(data: Dataset) -> None:
    reco = blend(0.5).fit(data).recommend(["a0"], k=4)
    # a0's three SKUs (rebuy) and the withheld co-bought s03 (discovery)
    assert set(reco[C.SKU_ID]) == {"s00", "s01", "s02", "s03"}


def test_blend_similar_skus_come_from_the_cf_model(data: Dataset) -> None:
    got = blend(0.5).fit(data).similar_skus(["s00"], k=3)
    want = ItemKNNRecommender(**KNN).fit(data).similar_skus(["s00"], k=3)
    assert got.equals(want)


def test_blend_passes_random_state_to_the_cf_model(data: Dataset) -> None:
    model = BlendRecommender(cf_model="itemknn", random_state=11).fit(data)
    assert model.cf_.random_state == 11
    assert make_model("blend", cf_model="itemknn").get_params()["cf_model"] == "itemknn"


@pytest.mark.parametrize(
    ("params", "error", "message"),
    [
        ({"repeat_weight": 1.5}, ValueError, r"repeat_weight must be in \[0, 1\], got 1.5"),
        ({"cf_model": "blend"}, ValueError, "cf_model must be a CF model, not 'blend'"),
        ({"normalisation": "z"}, ValueError, "normalisation must be one of .*got 'z'"),
        ({"cf_model": "svd"}, ValueError, "unknown model 'svd'; valid names: popular"),
        ({"cf_params": {"nope": 1}}, TypeError, "bad parameters for model 'itemknn'"),
    ],
)
def test_blend_bad_params_raise(
    data: Dataset, params: dict, error: type[Exception], message: str
) -> None:
    params = {"cf_model": "itemknn", **params}
    with pytest.raises(error, match=message):
        BlendRecommender(**params).fit(data)
