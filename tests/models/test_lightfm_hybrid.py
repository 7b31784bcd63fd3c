"""LightFM hybrid on the two-block dataset with hand-built side features: CF, cold start, guards."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_allclose, assert_array_equal

from recsys.columns import Columns
from recsys.data.dataset import Dataset
from recsys.data.id_map import IdMap
from recsys.exceptions import ModelFitError
from recsys.models.base import BaseRecommender
from recsys.models.lightfm_hybrid import (
    LightFMRecommender,
    hybrid_features,
    side_feature_block,
    young_features,
)
from tests.models.helpers import make_dataset
from tests.models.test_implicit_models import (
    A_SKUS,
    A_USERS,
    B_SKUS,
    B_USERS,
    N_GROUP_SKUS,
    N_GROUP_USERS,
    SKUS,
    USERS,
    block_dataset,
    heldout,
)

C = Columns
# "cold" (no interactions) lives in region a, "neg" (no positive interaction) in region b
REGION_A = {*A_USERS, "cold"}
# "new_a" (never bought) is a group-A SKU by its features, and so is the suspended "gone"
CATEGORY_A = {*A_SKUS, "gone", "new_a"}


def with_features(dataset: Dataset) -> Dataset:
    """The block dataset plus one-hot region (users) and category + price (SKUs) features."""
    in_a = np.array([u in REGION_A for u in USERS], dtype=np.float32)
    dataset.user_features = pd.DataFrame({"region=a": in_a, "region=b": 1 - in_a})
    sku_a = np.array([s in CATEGORY_A for s in SKUS], dtype=np.float32)
    dataset.sku_features = pd.DataFrame(
        # price is scaled to [0, 1] and does not separate the groups
        {"category=a": sku_a, "category=b": 1 - sku_a, "price": np.linspace(0, 1, len(SKUS))}
    )
    return dataset


def lightfm(**params: object) -> LightFMRecommender:
    return LightFMRecommender(no_components=8, epochs=30, **params)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def dataset() -> Dataset:
    return with_features(block_dataset())


@pytest.fixture(scope="module")
def model(dataset: Dataset) -> LightFMRecommender:
    return lightfm().fit(dataset)


def test_lightfm_heldout_sku_ranks_above_other_group(model: LightFMRecommender) -> None:
    reco = model.recommend(A_USERS + B_USERS, k=1, exclude_seen=True)
    top = dict(zip(reco[C.AGENT_ID], reco[C.SKU_ID], strict=True))
    # new_a is a candidate too (scored from features), so the pick is the held-out SKU or new_a
    for user in A_USERS + B_USERS:
        assert top[user] in {heldout(user), "new_a"}
    scores = model._score(np.arange(2 * N_GROUP_USERS))
    for row, user in enumerate(A_USERS + B_USERS):
        other = B_SKUS if user in A_USERS else A_SKUS
        assert (
            scores[row, SKUS.index(heldout(user))]
            > scores[row, [SKUS.index(s) for s in other]].max()
        )


def test_lightfm_scores_cold_sku_from_features(model: LightFMRecommender) -> None:
    scores = model._score(np.arange(2 * N_GROUP_USERS))
    new_a = scores[:, SKUS.index("new_a")]
    b_cols = [SKUS.index(s) for s in B_SKUS]
    # group A users rank the new group-A SKU above every B SKU, group B users below every one
    assert (new_a[:N_GROUP_USERS] > scores[:N_GROUP_USERS, b_cols].max(axis=1)).all()
    assert (new_a[N_GROUP_USERS:] < scores[N_GROUP_USERS:, b_cols].min(axis=1)).all()


def test_lightfm_new_sku_only_feature_is_not_learned_as_negative() -> None:
    # Trained over the whole catalogue, "not_launched" would only ever be seen on sampled
    # negatives and sink new_a below every group-A SKU; trained on bought SKUs it stays neutral.
    flagged = with_features(block_dataset())
    flagged.sku_features["not_launched"] = np.array([s == "new_a" for s in SKUS], np.float32)
    scores = lightfm().fit(flagged)._score(np.arange(N_GROUP_USERS))
    a_cols = [SKUS.index(s) for s in A_SKUS]
    assert (scores[:, SKUS.index("new_a")] > scores[:, a_cols].min(axis=1)).all()


def test_lightfm_scores_cold_user_from_features(model: LightFMRecommender) -> None:
    reco = model.recommend(["cold"], k=N_GROUP_SKUS)
    assert set(reco[C.SKU_ID]) <= set(A_SKUS) | {"new_a"}
    assert len(reco) == N_GROUP_SKUS


def test_lightfm_without_features_falls_back_for_cold(dataset: Dataset) -> None:
    model = lightfm(use_features=False).fit(dataset)
    assert not model.scorable_skus_[SKUS.index("new_a")]
    assert not model.scorable_users_[USERS.index("cold")]
    reco = model.recommend(A_USERS, k=2 * N_GROUP_SKUS)
    assert not reco[C.SKU_ID].isin(["new_a", "gone"]).any()
    # "cold" and "neg" get the popularity ranking: sa0 (10 buyers with "neg") comes first
    cold = model.recommend(["cold", "neg"], k=1)
    assert_array_equal(cold[C.SKU_ID], ["sa0", "sa0"])


def test_lightfm_same_random_state_same_embeddings(dataset: Dataset) -> None:
    first, second, other = lightfm().fit(dataset), lightfm().fit(dataset), lightfm(random_state=1)
    other.fit(dataset)
    assert_array_equal(first.sku_embeddings_, second.sku_embeddings_)
    assert_array_equal(first.user_embeddings_, second.user_embeddings_)
    assert not np.allclose(first.sku_embeddings_, other.sku_embeddings_)


def test_lightfm_factor_scores_match_predict(model: LightFMRecommender) -> None:
    users = np.arange(len(USERS))
    fast, slow = model._score(users), model.score_with_predict(users)
    assert_array_equal(np.isfinite(fast), np.isfinite(slow))
    finite = np.isfinite(fast)
    assert_allclose(fast[finite], slow[finite], atol=1e-5, rtol=1e-5)


def test_lightfm_max_sampled_reaches_warp(dataset: Dataset) -> None:
    few, many = lightfm(max_sampled=1).fit(dataset), lightfm(max_sampled=50).fit(dataset)
    assert (few.model_.max_sampled, many.model_.max_sampled) == (1, 50)
    assert not np.allclose(few.sku_embeddings_, many.sku_embeddings_)


def test_lightfm_sample_weights_change_the_fit(dataset: Dataset) -> None:
    weighted = lightfm(use_weights=True).fit(dataset)
    plain = lightfm().fit(dataset)
    assert not np.allclose(weighted.sku_embeddings_, plain.sku_embeddings_)
    reco = weighted.recommend(A_USERS, k=1, exclude_seen=True)
    assert set(reco[C.SKU_ID]) <= set(A_SKUS) | {"new_a"}


def test_lightfm_similar_skus_are_same_group(model: LightFMRecommender) -> None:
    similar = model.similar_skus(["sa0", "sb3", "new_a"], k=N_GROUP_SKUS - 1)
    for sku, group in (("sa0", A_SKUS), ("sb3", B_SKUS), ("new_a", A_SKUS)):
        got = similar[similar[C.SKU_ID] == sku]["similar_sku_id"]
        assert set(got) <= (set(group) | {"new_a"}) - {sku}


def test_lightfm_save_load_round_trip(model: LightFMRecommender, tmp_path: Path) -> None:
    loaded = BaseRecommender.load(model.save(tmp_path / "model"))
    assert isinstance(loaded, LightFMRecommender)
    assert loaded.get_params() == model.get_params()
    assert model.recommend(USERS, k=5).equals(loaded.recommend(USERS, k=5))


@pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning")
def test_lightfm_divergence_raises_model_fit_error(dataset: Dataset) -> None:
    with pytest.raises(ModelFitError, match="LightFMRecommender diverged"):
        lightfm(learning_rate=1e30).fit(dataset)


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"loss": "hinge"}, "loss must be one of .*, got 'hinge'"),
        ({"no_components": 0}, "no_components must be an integer >= 1, got 0"),
        ({"learning_rate": -0.1}, "learning_rate must be a finite number > 0.0, got -0.1"),
        ({"max_sampled": 0}, "max_sampled must be an integer >= 1, got 0"),
        ({"loss": "warp-kos", "use_weights": True}, "use_weights=True is not supported"),
    ],
)
def test_lightfm_bad_params_raise(params: dict, message: str, dataset: Dataset) -> None:
    with pytest.raises(ValueError, match=message):
        LightFMRecommender(**params).fit(dataset)


def test_hybrid_features_identity_only_for_warm_rows_and_rows_sum_to_one() -> None:
    side = side_feature_block(
        pd.DataFrame({"x": [1.0, 0.0, 0.0], "y": [1.0, 0.5, 0.0]}), IdMap(["a", "b", "c"]), "f"
    )
    matrix = hybrid_features(side, np.array([True, False, False])).toarray()
    assert_allclose(
        matrix,
        [[1 / 3, 0, 0, 1 / 3, 1 / 3], [0, 0, 0, 0, 1.0], [0, 0, 0, 0, 0]],
        rtol=1e-6,
    )


def test_side_feature_block_reorders_by_external_id() -> None:
    frame = pd.DataFrame({"x": [2.0, 1.0]}, index=pd.Index(["b", "a"]))
    assert_array_equal(side_feature_block(frame, IdMap(["a", "b"]), "f").toarray(), [[1.0], [2.0]])


def test_side_feature_block_rejects_bad_tables() -> None:
    ids = IdMap(["a", "b"])
    with pytest.raises(ValueError, match="user_features has 1 rows, want 2"):
        side_feature_block(pd.DataFrame({"x": [1.0]}), ids, "user_features")
    with pytest.raises(TypeError, match=r"sku_features columns must be numeric, .*\['c'\]"):
        side_feature_block(pd.DataFrame({"c": ["x", "y"]}), ids, "sku_features")
    with pytest.raises(ValueError, match=r"sku_features must be finite, got NaN/inf in .*\['x'\]"):
        side_feature_block(pd.DataFrame({"x": [1.0, np.nan]}), ids, "sku_features")


def young_sa1_dataset() -> Dataset:
    """The featured block dataset with sa1 launched 5 days before the cutoff, the rest long ago."""
    ds = with_features(block_dataset())
    launched = [ds.cutoff - pd.Timedelta(days=5 if s == "sa1" else 200) for s in SKUS]
    ds.sku_table = ds.sku_table.assign(**{C.LAUNCHED_AT: launched})
    return ds


@pytest.mark.parametrize("young_identity", [True, False])
def test_lightfm_young_skus_get_full_weight_side_features(young_identity: bool) -> None:
    # sa1 is young: with cold_sku_days=30 its side features weigh as for a SKU never sold, with
    # (young_identity) or without its identity; without cold_sku_days it is scored as trained.
    ds = young_sa1_dataset()
    young, old = SKUS.index("sa1"), SKUS.index("sa2")
    with_cold = lightfm(cold_sku_days=30, young_identity=young_identity).fit(ds)
    side = side_feature_block(ds.sku_features, ds.skus, "sku_features")
    trained_rows = hybrid_features(side, np.ones(len(SKUS), dtype=bool), with_cold.identity_share)
    cold_rows = hybrid_features(side, np.zeros(len(SKUS), dtype=bool), None)
    want = young_features(trained_rows, side) if young_identity else cold_rows
    bias, emb = with_cold.model_.get_item_representations(want[[young, old]])
    assert_allclose(with_cold.sku_embeddings_[young], emb[0], rtol=1e-6)
    assert_allclose(with_cold.sku_biases_[young], bias[0], rtol=1e-6)
    # an old SKU keeps its trained row
    assert not np.allclose(with_cold.sku_embeddings_[old], emb[1])
    plain = lightfm(cold_sku_days=None).fit(ds)
    assert not np.allclose(plain.sku_embeddings_[young], emb[0])
    # same seed, same training: only the young SKU's representation differs
    assert_allclose(plain.sku_embeddings_[old], with_cold.sku_embeddings_[old], rtol=1e-6)
    # the scoring rows are the ones `predict` sees, so the slow reference agrees
    users = np.arange(len(USERS))
    fast, slow = with_cold._score(users), with_cold.score_with_predict(users)
    finite = np.isfinite(fast)
    assert_allclose(fast[finite], slow[finite], atol=1e-5, rtol=1e-5)


def test_lightfm_young_identity_knows_who_bought_a_young_sku() -> None:
    # "sy", launched 5 days ago, looks like a B SKU by its features but every group-A user bought
    # it: with its identity they rank it above every B SKU, from its features alone below every
    # A SKU.
    skus = [*SKUS, "sy"]
    dense = np.zeros((len(USERS), len(skus)), dtype=np.float32)
    dense[:, : len(SKUS)] = block_dataset().interactions.toarray()
    a_users = [USERS.index(u) for u in A_USERS]
    dense[a_users, skus.index("sy")] = 1.0
    ds = make_dataset([], USERS, skus, unavailable=["gone"], interactions=dense)
    in_a = np.array([u in REGION_A for u in USERS], dtype=np.float32)
    ds.user_features = pd.DataFrame({"region=a": in_a, "region=b": 1 - in_a})
    sku_a = np.array([s in CATEGORY_A for s in skus], dtype=np.float32)
    ds.sku_features = pd.DataFrame({"category=a": sku_a, "category=b": 1 - sku_a})
    launched = [ds.cutoff - pd.Timedelta(days=5 if s == "sy" else 200) for s in skus]
    ds.sku_table = ds.sku_table.assign(**{C.LAUNCHED_AT: launched})
    a_cols = [skus.index(s) for s in A_SKUS]
    b_cols = [skus.index(s) for s in B_SKUS]

    kept = lightfm(young_identity=True).fit(ds)._score(np.array(a_users))
    assert (kept[:, skus.index("sy")] > kept[:, b_cols].max(axis=1)).all()
    dropped = lightfm(young_identity=False).fit(ds)._score(np.array(a_users))
    assert (dropped[:, skus.index("sy")] < dropped[:, a_cols].min(axis=1)).all()


def test_young_features_keep_identity_weight_and_full_side_weight() -> None:
    side = side_feature_block(
        pd.DataFrame({"x": [1.0, 0.0], "y": [1.0, 0.5]}), IdMap(["a", "b"]), "f"
    )
    warm = np.array([True, False])
    rows = young_features(hybrid_features(side, warm, 0.6), side).toarray()
    # a: identity 0.6 as trained, side features 0.5 + 0.5 (not 0.2 + 0.2); b: side only
    assert_allclose(rows, [[0.6, 0, 0.5, 0.5], [0, 0, 0, 1.0]], rtol=1e-6)


def test_lightfm_cold_sku_days_must_be_non_negative() -> None:
    with pytest.raises(ValueError, match="cold_sku_days must be"):
        LightFMRecommender(cold_sku_days=-1).fit(young_sa1_dataset())
