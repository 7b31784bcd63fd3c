"""ALS and BPR (implicit) on a two-block dataset: learning, fast path, determinism, guards."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from numpy.testing import assert_allclose, assert_array_equal

from recsys.columns import Columns
from recsys.data.dataset import Dataset
from recsys.exceptions import EmptyDataError, ModelFitError
from recsys.models.base import BaseRecommender
from recsys.models.implicit_models import (
    ALSRecommender,
    BPRRecommender,
    check_finite_factors,
    positive_interactions,
)
from tests.models.helpers import make_dataset

C = Columns
N_GROUP_USERS, N_GROUP_SKUS = 10, 6
A_USERS = [f"ua{i}" for i in range(N_GROUP_USERS)]
B_USERS = [f"ub{i}" for i in range(N_GROUP_USERS)]
A_SKUS = [f"sa{i}" for i in range(N_GROUP_SKUS)]
B_SKUS = [f"sb{i}" for i in range(N_GROUP_SKUS)]
# "cold" has no interactions, "neg" only a net-negative pair (a purchase returned and more)
USERS = [*A_USERS, *B_USERS, "cold", "neg"]
# "gone" is bought by all of group A but suspended; "new_a" is a launch nobody bought yet
SKUS = [*A_SKUS, *B_SKUS, "gone", "new_a"]


def heldout(user: str) -> str:
    """The one SKU of her own group a block user has not bought."""
    group, i = user[1], int(user[2:])
    return f"s{group}{i % N_GROUP_SKUS}"


def block_dataset() -> Dataset:
    """Two user groups × two SKU groups; each user bought all of her group's SKUs but one."""
    dense = np.zeros((len(USERS), len(SKUS)), dtype=np.float32)
    for users, skus in ((A_USERS, A_SKUS), (B_USERS, B_SKUS)):
        for u, user in enumerate(users):
            for s, sku in enumerate(skus):
                if sku != heldout(user):
                    dense[USERS.index(user), SKUS.index(sku)] = 1 + (u + s) % 3
    dense[: len(A_USERS), SKUS.index("gone")] = 1.0
    dense[USERS.index("neg"), SKUS.index("sa0")] = -2.0
    return make_dataset([], USERS, SKUS, unavailable=["gone"], interactions=dense)


def als() -> ALSRecommender:
    # one thread: OpenMP start-up costs more than this tiny fit on a busy 2-core machine
    return ALSRecommender(factors=4, regularization=1.0, alpha=5.0, iterations=15, num_threads=1)


def bpr() -> BPRRecommender:
    return BPRRecommender(factors=8, learning_rate=0.05, regularization=0.01, iterations=200)


MODELS = [pytest.param(als, id="als"), pytest.param(bpr, id="bpr")]


@pytest.fixture(scope="module")
def dataset() -> Dataset:
    return block_dataset()


@pytest.mark.parametrize("make", MODELS)
def test_implicit_heldout_sku_ranks_above_other_group(make, dataset: Dataset) -> None:
    model = make().fit(dataset)
    reco = model.recommend(A_USERS + B_USERS, k=1, exclude_seen=True)
    top = dict(zip(reco[C.AGENT_ID], reco[C.SKU_ID], strict=True))
    assert top == {u: heldout(u) for u in A_USERS + B_USERS}
    # and by score: the held-out SKU beats every SKU of the other group
    scores = model._score(np.arange(2 * N_GROUP_USERS))
    for row, user in enumerate(A_USERS + B_USERS):
        other = B_SKUS if user in A_USERS else A_SKUS
        assert (
            scores[row, SKUS.index(heldout(user))]
            > scores[row, [SKUS.index(s) for s in other]].max()
        )


@pytest.mark.parametrize("make", MODELS)
def test_implicit_same_random_state_same_factors(make, dataset: Dataset) -> None:
    first, second = make().fit(dataset), make().fit(dataset)
    other = make()
    other.random_state = 1
    other.fit(dataset)
    assert_array_equal(first.model_.item_factors, second.model_.item_factors)
    assert_array_equal(first.model_.user_factors, second.model_.user_factors)
    assert not np.allclose(first.model_.item_factors, other.model_.item_factors)


def test_als_factors_do_not_depend_on_num_threads(dataset: Dataset) -> None:
    one, two = als(), als()
    one.num_threads, two.num_threads = 1, 2
    assert_array_equal(one.fit(dataset).model_.item_factors, two.fit(dataset).model_.item_factors)


@pytest.mark.parametrize("exclude_seen", [False, True])
@pytest.mark.parametrize("k", [3, 15])
@pytest.mark.parametrize("make", MODELS)
def test_implicit_fast_topk_matches_numpy_reference(make, k, exclude_seen, dataset) -> None:
    model = make().fit(dataset)
    users = np.arange(len(USERS))  # includes "cold" and "neg", scored by popularity
    fast_idx, fast_val = model._topk(users, k, exclude_seen)
    ref_idx, ref_val = model.topk_reference(users, k, exclude_seen)
    assert_array_equal(fast_idx, ref_idx)
    assert_allclose(fast_val, ref_val, atol=1e-5, rtol=1e-5)
    # k=15 with exclude_seen leaves fewer candidates than k: padded with -1 / -inf
    assert ((fast_idx < 0) == ~np.isfinite(fast_val)).all()


@pytest.mark.parametrize("make", MODELS)
def test_implicit_never_recommends_cold_or_unavailable_skus(make, dataset: Dataset) -> None:
    model = make().fit(dataset)
    reco = model.recommend(A_USERS + B_USERS, k=2 * N_GROUP_SKUS)
    assert not reco[C.SKU_ID].isin(["gone", "new_a"]).any()
    # longer lists are filled up from popularity below the model's 12 picks, never with "gone"
    longer = model.recommend(A_USERS + B_USERS, k=len(SKUS))
    assert (longer.groupby(C.AGENT_ID).size() == len(SKUS) - 1).all()
    assert (longer[longer[C.SKU_ID] == "new_a"][C.RANK] == 2 * N_GROUP_SKUS + 1).all()


@pytest.mark.parametrize("make", MODELS)
def test_implicit_users_without_positive_signal_get_popularity(make, dataset) -> None:
    model = make().fit(dataset)
    reco = model.recommend(["neg", "cold"], k=3)
    # popularity = buyers per SKU: "gone" (10, suspended) is skipped, sa0 has 9 + "neg" = 10
    assert reco[reco[C.AGENT_ID] == "neg"][C.SKU_ID].iloc[0] == "sa0"
    assert_array_equal(
        reco[reco[C.AGENT_ID] == "neg"][C.SKU_ID], reco[reco[C.AGENT_ID] == "cold"][C.SKU_ID]
    )


@pytest.mark.parametrize("make", MODELS)
def test_implicit_similar_skus_are_same_group(make, dataset: Dataset) -> None:
    model = make().fit(dataset)
    similar = model.similar_skus(["sa0", "sb3"], k=N_GROUP_SKUS - 1)
    for sku, group in (("sa0", A_SKUS), ("sb3", B_SKUS)):
        got = similar[similar[C.SKU_ID] == sku]["similar_sku_id"]
        assert set(got) == set(group) - {sku}


@pytest.mark.parametrize("make", MODELS)
def test_implicit_save_load_round_trip(make, dataset: Dataset, tmp_path: Path) -> None:
    model = make().fit(dataset)
    loaded = BaseRecommender.load(model.save(tmp_path / "model"))
    assert type(loaded) is type(model)
    assert loaded.get_params() == model.get_params()
    before = model.recommend(USERS, k=5, exclude_seen=True)
    after = loaded.recommend(USERS, k=5, exclude_seen=True)
    assert before.equals(after)


def test_als_nan_factors_raise_model_fit_error(dataset: Dataset) -> None:
    model = ALSRecommender(factors=4, alpha=1e38, num_threads=1)  # confidence overflows to inf
    with pytest.raises(ModelFitError, match="ALSRecommender diverged: NaN"):
        model.fit(dataset)


def test_bpr_nan_factors_raise_model_fit_error(dataset: Dataset) -> None:
    model = BPRRecommender(factors=4, learning_rate=1e30, iterations=5)
    with pytest.raises(ModelFitError, match="BPRRecommender diverged: NaN"):
        model.fit(dataset)


def test_check_finite_factors_names_the_array() -> None:
    good = np.ones((2, 2), dtype=np.float32)
    check_finite_factors("M", user_factors=good)  # finite: no error
    bad = np.array([[1.0, np.inf], [np.nan, 0.0]], dtype=np.float32)
    with pytest.raises(ModelFitError, match="M diverged: 2 non-finite values in item_factors"):
        check_finite_factors("M", user_factors=good, item_factors=bad)


def test_als_confidence_is_one_plus_alpha_weight() -> None:
    weights = sp.csr_matrix(np.array([[2.0, 0.0, -1.0], [0.0, 0.5, 0.0]], dtype=np.float32))
    model = ALSRecommender(alpha=3.0)
    confidence = model._train_matrix(positive_interactions(weights))
    assert_allclose(confidence.toarray(), [[1 + 3 * 2.0, 0, 0], [0, 1 + 3 * 0.5, 0]])


def test_bpr_train_matrix_is_binary() -> None:
    weights = sp.csr_matrix(np.array([[2.0, 0.0, -1.0], [0.0, 0.5, 0.0]], dtype=np.float32))
    binary = BPRRecommender()._train_matrix(positive_interactions(weights))
    assert_array_equal(binary.toarray(), [[1, 0, 0], [0, 1, 0]])


@given(
    arrays(
        np.float32,
        (4, 5),
        elements=st.floats(-5, 5, width=32) | st.just(np.float32(0)),
    )
)
def test_positive_interactions_keeps_only_positive_weights(dense: np.ndarray) -> None:
    out = positive_interactions(sp.csr_matrix(dense))
    assert out.dtype == np.float32
    assert_array_equal(out.toarray(), np.where(dense > 0, dense, 0))
    assert (out.data > 0).all()  # no explicit zeros left


def test_positive_interactions_rejects_nan() -> None:
    with pytest.raises(ValueError, match="interactions must be finite, got 1 NaN/inf"):
        positive_interactions(sp.csr_matrix(np.array([[1.0, np.nan]], dtype=np.float32)))


@pytest.mark.parametrize(
    ("model", "message"),
    [
        (ALSRecommender(factors=0), "factors must be an integer >= 1, got 0"),
        (ALSRecommender(alpha=-1.0), "alpha must be a finite number >= 0.0, got -1.0"),
        (ALSRecommender(iterations=2.5), "iterations must be an integer >= 1, got 2.5"),
        (BPRRecommender(learning_rate=0.0), "learning_rate must be a finite number > 0.0"),
        (BPRRecommender(regularization=np.nan), "regularization must be a finite number"),
    ],
)
def test_implicit_bad_params_raise(model, message: str, dataset: Dataset) -> None:
    with pytest.raises(ValueError, match=message):
        model.fit(dataset)


@pytest.mark.parametrize("make", MODELS)
def test_implicit_no_positive_interactions_raises(make) -> None:
    dense = -np.ones((2, 3), dtype=np.float32)
    empty = make_dataset([], ["u0", "u1"], ["s0", "s1", "s2"], interactions=dense)
    with pytest.raises(EmptyDataError, match="needs positive interactions"):
        make().fit(empty)


def test_similar_skus_do_not_depend_on_how_the_skus_are_batched(sim_tiny_dir: Path) -> None:
    # publish asks for similar SKUs in batches whose size and order differ by engine; the
    # scores (hence the published bytes) must not
    from features.dataset import build_dataset
    from recsys.contract.loader import load_tables
    from recsys.models import make_model

    model = make_model("als", factors=24, iterations=4, random_state=0)
    model.fit(build_dataset(load_tables(sim_tiny_dir), "agent"))
    skus = np.asarray(model.skus_.to_external(np.arange(len(model.skus_))), dtype=object)
    whole = model.similar_skus(skus, k=10)
    parts = [model.similar_skus(skus[::-1][i : i + 7], k=10) for i in range(0, len(skus), 7)]
    chunked = pd.concat(parts, ignore_index=True)
    key = [C.SKU_ID, C.RANK]
    whole = whole.sort_values(key).reset_index(drop=True)
    chunked = chunked.sort_values(key).reset_index(drop=True)
    assert len(whole) > 1000
    pd.testing.assert_frame_equal(whole, chunked)
