"""ItemKNNRecommender: implicit's neighbour matrix, user row × similarity scores."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.sparse as sp
from numpy.testing import assert_allclose

from recsys.columns import Columns
from recsys.data.dataset import Dataset
from recsys.models.itemknn import ItemKNNRecommender, positive_part
from tests.models.helpers import make_dataset

C = Columns
USERS = ["u0", "u1", "u2", "u3"]
SKUS = ["s0", "s1", "s2", "s3"]
MATRIX = np.array([[1, 1, 0, 0], [1, 1, 1, 0], [0, 0, 1, 1], [0, 1, 1, 0]], dtype=np.float32)


def matrix_dataset(matrix: np.ndarray, unavailable: tuple[str, ...] = ()) -> Dataset:
    return make_dataset([], USERS, SKUS, interactions=matrix, unavailable=unavailable)


def cosine_reference(matrix: np.ndarray) -> np.ndarray:
    """Slow reference: cosine of SKU columns, then user row × similarity."""
    unit = matrix / np.linalg.norm(matrix, axis=0, keepdims=True)
    return matrix @ (unit.T @ unit)


def test_itemknn_cosine_similarity_values() -> None:
    model = ItemKNNRecommender(weighting="cosine").fit(matrix_dataset(MATRIX))
    similar = model.similar_skus(["s0"], k=3)
    # s0 is bought by u0, u1; s1 by u0, u1, u3; s2 by u1, u2, u3; s3 never with s0
    assert similar[C.SIMILAR_SKU_ID].tolist() == ["s1", "s2"]
    assert_allclose(similar[C.SCORE], [2 / math.sqrt(2 * 3), 1 / math.sqrt(2 * 3)], rtol=1e-6)
    assert similar[C.RANK].tolist() == [1, 2]


def test_itemknn_scores_match_numpy_reference() -> None:
    model = ItemKNNRecommender(weighting="cosine").fit(matrix_dataset(MATRIX))
    reference = cosine_reference(MATRIX)
    reco = model.recommend(USERS, k=2)
    for user, group in reco.groupby(C.AGENT_ID):
        row = reference[USERS.index(user)]
        assert_allclose(group[C.SCORE], np.sort(row)[::-1][:2], rtol=1e-5)
        assert_allclose(row[[SKUS.index(s) for s in group[C.SKU_ID]]], group[C.SCORE], rtol=1e-5)


def test_itemknn_unreachable_skus_fill_from_popularity() -> None:
    model = ItemKNNRecommender(weighting="cosine").fit(matrix_dataset(MATRIX))
    reco = model.recommend(["u0"], k=4)
    # u0's SKUs s0, s1 reach s2 but never s3 (no co-buyer): s3 is a popularity fill, last
    assert reco[C.SKU_ID].tolist()[-1] == "s3"
    assert reco[C.SCORE].iloc[-1] < reco[C.SCORE].iloc[-2]


def test_itemknn_k_neighbours_limits_the_neighbour_list() -> None:
    model = ItemKNNRecommender(weighting="cosine", k_neighbours=2).fit(matrix_dataset(MATRIX))
    # each SKU keeps itself and its single best neighbour
    assert (np.diff(model.similarity_.indptr) <= 2).all()
    assert model.similar_skus(["s0"], k=3)[C.SIMILAR_SKU_ID].tolist() == ["s1"]


def test_itemknn_shrink_discounts_rare_co_occurrence() -> None:
    model = ItemKNNRecommender(weighting="cosine", shrink=1.0).fit(matrix_dataset(MATRIX))
    similar = model.similar_skus(["s0"], k=3)
    # n(s0, s1) = 2 co-buyers, n(s0, s2) = 1: scaled by n / (n + 1)
    assert_allclose(
        similar[C.SCORE],
        [2 / math.sqrt(6) * 2 / 3, 1 / math.sqrt(6) * 1 / 2],
        rtol=1e-6,
    )


def test_itemknn_negative_pairs_do_not_link_skus() -> None:
    matrix = np.array([[1, 0, 0, 0], [0, 1, 0, 0], [-1, 0, 0, 1], [0, 0, 1, 1]], dtype=np.float32)
    model = ItemKNNRecommender(weighting="cosine").fit(matrix_dataset(matrix))
    # u2 returned s0 (negative weight): s0 and s3 must not be neighbours through her
    assert "s3" not in model.similar_skus(["s0"], k=3)[C.SIMILAR_SKU_ID].tolist()
    assert model.user_items_.data.min() > 0


def test_itemknn_positive_part_drops_negative_and_zero() -> None:
    got = positive_part(sp.csr_matrix(np.array([[1.5, -2.0, 0.0], [0.0, 3.0, -0.1]])))
    assert got.dtype == np.float32
    assert_allclose(got.toarray(), [[1.5, 0.0, 0.0], [0.0, 3.0, 0.0]])
    assert got.nnz == 2


@pytest.mark.parametrize("weighting", ["bm25", "cosine", "tfidf"])
def test_itemknn_every_weighting_recommends_co_bought(weighting: str) -> None:
    model = ItemKNNRecommender(weighting=weighting).fit(matrix_dataset(MATRIX))
    # u0 bought s0, s1; s2 is co-bought with both, s3 with neither
    reco = model.recommend(["u0"], k=1, exclude_seen=True)
    assert reco[C.SKU_ID].tolist() == ["s2"]


def test_itemknn_similar_skus_skips_unavailable_and_unknown() -> None:
    model = ItemKNNRecommender(weighting="cosine").fit(matrix_dataset(MATRIX, ("s1",)))
    similar = model.similar_skus(["s0", "nope"], k=3)
    assert similar[C.SIMILAR_SKU_ID].tolist() == ["s2"]
    assert model.similar_skus(["nope"], k=3).empty


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"k_neighbours": 0}, "k_neighbours must be an integer >= 1, got 0"),
        ({"weighting": "jaccard"}, "weighting must be one of .*got 'jaccard'"),
        ({"shrink": -1.0}, "shrink must be >= 0, got -1.0"),
    ],
)
def test_itemknn_bad_params_raise(params: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        ItemKNNRecommender(**params).fit(matrix_dataset(MATRIX))
