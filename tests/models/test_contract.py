"""The contract every registered recommender keeps, run against each name in MODELS."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from pandas.testing import assert_frame_equal

from recsys.columns import Columns
from recsys.data.dataset import Dataset
from recsys.exceptions import NotFittedError
from recsys.models import MODELS, BaseRecommender, make_model
from tests.models.helpers import checkerboard_dataset

C = Columns
K = 5
# Small, fast settings for the tiny fixtures; models not listed use their defaults.
CONTRACT_PARAMS: dict[str, dict[str, Any]] = {
    "itemknn": {"k_neighbours": 20},
    # implicit's BPR defaults are tuned for large data; on 17 agents it needs more steps
    # (passes for 20 of 20 seeds with these)
    "bpr": {"factors": 8, "learning_rate": 0.05, "iterations": 200},
    "blend": {"cf_model": "itemknn", "cf_params": {"k_neighbours": 20}},
}
# Models that learn from co-occurrence and must find the withheld checkerboard SKU.
CF_MODELS = ("itemknn", "als", "bpr", "lightfm", "blend")


def build(name: str, **extra: Any) -> BaseRecommender:
    """A fresh model `name`, skipped while its module cannot be imported yet."""
    try:
        MODELS[name]
    except ImportError as exc:
        pytest.skip(f"model {name!r} not importable yet: {exc}")
    return make_model(name, **{**CONTRACT_PARAMS.get(name, {}), **extra})


@pytest.fixture(scope="module")
def data() -> Dataset:
    return checkerboard_dataset()


@pytest.fixture(scope="module", params=list(MODELS))
def fitted(request: pytest.FixtureRequest, data: Dataset) -> BaseRecommender:
    return build(request.param, random_state=3).fit(data)


def all_users(data: Dataset) -> list[str]:
    return list(data.users.external_ids)


def seen_pairs(data: Dataset) -> set[tuple[str, str]]:
    rows, cols = data.interactions.nonzero()
    return set(zip(data.users.to_external(rows), data.skus.to_external(cols), strict=True))


def test_contract_reco_shape_and_columns(fitted: BaseRecommender, data: Dataset) -> None:
    reco = fitted.recommend(all_users(data), k=K)
    assert list(reco.columns) == [C.AGENT_ID, C.SKU_ID, C.SCORE, C.RANK]
    assert (reco.groupby(C.AGENT_ID).size() == K).all()
    assert set(reco[C.AGENT_ID]) == set(all_users(data))
    assert not reco.duplicated([C.AGENT_ID, C.SKU_ID]).any()


@pytest.mark.parametrize("exclude_seen", [False, True])
def test_contract_ranks_and_scores_ordered(
    fitted: BaseRecommender, data: Dataset, exclude_seen: bool
) -> None:
    reco = fitted.recommend(all_users(data), k=K, exclude_seen=exclude_seen)
    for _, group in reco.groupby(C.AGENT_ID):
        assert group[C.RANK].tolist() == list(range(1, K + 1))
        assert (np.diff(group[C.SCORE].to_numpy()) <= 0).all()


def test_contract_batch_equals_single(fitted: BaseRecommender, data: Dataset) -> None:
    users = all_users(data)
    batch = fitted.recommend(users, k=K)
    for user in ["a0", "b3", "c0"]:
        single = fitted.recommend([user], k=K)
        # same SKUs and ranks; scores up to float32 rounding (BLAS sums depend on block shape)
        assert_frame_equal(
            batch[batch[C.AGENT_ID] == user].reset_index(drop=True),
            single.reset_index(drop=True),
            check_exact=False,
            rtol=1e-5,
            atol=1e-6,
        )


def test_contract_exclude_seen_is_a_per_call_choice(fitted: BaseRecommender, data: Dataset) -> None:
    seen = seen_pairs(data)
    users = all_users(data)
    excluded = fitted.recommend(users, k=K, exclude_seen=True)
    pairs = set(zip(excluded[C.AGENT_ID], excluded[C.SKU_ID], strict=True))
    assert not pairs & seen
    kept = fitted.recommend(users, k=K, exclude_seen=False)
    assert set(zip(kept[C.AGENT_ID], kept[C.SKU_ID], strict=True)) & seen


def test_contract_unknown_users_get_fallback(fitted: BaseRecommender) -> None:
    reco = fitted.recommend(["nobody", "a1"], k=K)
    assert (reco[C.AGENT_ID] == "nobody").sum() == K


@pytest.mark.parametrize("exclude_seen", [False, True])
def test_contract_unavailable_never_recommended(
    fitted: BaseRecommender, data: Dataset, exclude_seen: bool
) -> None:
    reco = fitted.recommend([*all_users(data), "nobody"], k=10, exclude_seen=exclude_seen)
    assert "s08" not in set(reco[C.SKU_ID])


def test_contract_save_load_round_trip(
    fitted: BaseRecommender, data: Dataset, tmp_path: Path
) -> None:
    loaded = BaseRecommender.load(fitted.save(tmp_path / "model"))
    assert type(loaded) is type(fitted)
    users = [*all_users(data), "nobody"]
    assert_frame_equal(loaded.recommend(users, k=K), fitted.recommend(users, k=K))


def test_contract_same_random_state_same_recos(fitted: BaseRecommender, data: Dataset) -> None:
    again = build(fitted.name, random_state=3).fit(data)
    users = all_users(data)
    assert_frame_equal(again.recommend(users, k=K), fitted.recommend(users, k=K))


def test_contract_similar_skus_excludes_self_or_is_unsupported(fitted: BaseRecommender) -> None:
    try:
        similar = fitted.similar_skus(["s00", "s05", "unknown"], k=3)
    except NotImplementedError:
        return
    assert list(similar.columns) == [C.SKU_ID, C.SIMILAR_SKU_ID, C.SCORE, C.RANK]
    assert set(similar[C.SKU_ID]) <= {"s00", "s05"}
    assert not (similar[C.SKU_ID] == similar[C.SIMILAR_SKU_ID]).any()
    assert "s08" not in set(similar[C.SIMILAR_SKU_ID])


def test_contract_recommend_before_fit_raises(fitted: BaseRecommender) -> None:
    with pytest.raises(NotFittedError, match="not fitted"):
        build(fitted.name).recommend(["a0"], k=K)


def test_contract_get_params_round_trip(fitted: BaseRecommender) -> None:
    params = fitted.get_params()
    assert params["random_state"] == 3
    assert make_model(fitted.name, **params).get_params() == params


@pytest.mark.parametrize("name", CF_MODELS)
def test_contract_checkerboard_withheld_sku_ranks_first(name: str, data: Dataset) -> None:
    model = build(name, random_state=0).fit(data)
    top = model.recommend(["a0"], k=1, exclude_seen=True)
    assert top[C.SKU_ID].tolist() == ["s03"]
    # popularity alone would pick a group-B SKU: the fixture really tests co-occurrence
    popular = build("popular").fit(data).recommend(["a0"], k=1, exclude_seen=True)
    assert popular[C.SKU_ID].tolist() != ["s03"]


def test_contract_registry_names_match_class_names() -> None:
    for name in MODELS:
        try:
            cls = MODELS[name]
        except ImportError:
            continue
        assert cls.name == name


def test_contract_reco_dtypes(fitted: BaseRecommender, data: Dataset) -> None:
    reco = fitted.recommend(all_users(data)[:3], k=K)
    assert reco[C.SCORE].dtype == np.float32
    assert reco[C.RANK].dtype == np.int32
    assert pd.api.types.is_object_dtype(reco[C.SKU_ID])
