"""SparkALSRecommender: fits through Spark, scores without it, splits for distributed scoring."""

from __future__ import annotations

import pickle
import subprocess
import sys
from typing import Any

import numpy as np
import pandas as pd
import pytest

from recsys.columns import Columns
from recsys.exceptions import ModelFitError
from recsys.models.implicit_models import ALSRecommender
from recsys.models.spark_als import SparkALSRecommender
from tests.models.helpers import checkerboard_dataset

pytestmark = pytest.mark.spark
C = Columns


@pytest.fixture(scope="module")
def fitted(spark: Any) -> SparkALSRecommender:
    """Spark ALS fitted on the checkerboard from a local Dataset (the active session fits it)."""
    return SparkALSRecommender(factors=4, iterations=10, random_state=0).fit(checkerboard_dataset())


def test_model_finds_the_withheld_checkerboard_sku(fitted: SparkALSRecommender) -> None:
    top = fitted.recommend(["a0"], k=1, exclude_seen=True)
    assert top[C.SKU_ID].tolist() == ["s03"]
    assert np.isfinite(fitted.user_factors_).all() and fitted.item_factors_.shape[1] == 4


def test_model_pickles_without_spark_state(fitted: SparkALSRecommender) -> None:
    restored = pickle.loads(pickle.dumps(fitted))
    assert not hasattr(restored, "_ratings")
    ids = list(fitted.users_.external_ids)
    pd.testing.assert_frame_equal(restored.recommend(ids, k=5), fitted.recommend(ids, k=5))


def test_model_for_users_recommends_like_the_whole_model(fitted: SparkALSRecommender) -> None:
    ids = np.array([*fitted.users_.external_ids[::-1], "newcomer"], dtype=object)
    frame = fitted.user_factor_frame().set_index("user_id").reindex(ids)
    factors = np.stack(
        [
            np.frombuffer(b, dtype=np.float32) if isinstance(b, bytes) else np.zeros(4, np.float32)
            for b in frame["factors"]
        ]
    )
    part = fitted.item_side().for_users(
        ids, factors, frame["warm"].astype("boolean").fillna(False).to_numpy(bool)
    )
    pd.testing.assert_frame_equal(part.recommend(ids, k=6), fitted.recommend(ids, k=6))
    factors[0, 1] = np.inf
    with pytest.raises(
        ModelFitError, match=rf"non-finite user factors for 1 users, e.g. \['{ids[0]}'"
    ):
        fitted.item_side().for_users(ids, factors, np.ones(len(ids), dtype=bool))


def test_model_from_implicit_als_scores_with_its_factors() -> None:
    data = checkerboard_dataset()
    als = ALSRecommender(factors=4, iterations=5, random_state=0).fit(data)
    converted = SparkALSRecommender.from_factor_model(als)
    users = np.flatnonzero(als.warm_users_)  # the others get the popularity fallback
    assert len(users) > 10
    want_idx, want_val = als.topk_reference(users, 5)
    got = converted.recommend(als.users_.external_ids[users], k=5)
    np.testing.assert_array_equal(
        got[C.SKU_ID].to_numpy().reshape(len(users), 5), als.skus_.to_external(want_idx)
    )
    np.testing.assert_allclose(got[C.SCORE].to_numpy().reshape(len(users), 5), want_val, rtol=1e-6)
    with pytest.raises(TypeError, match="not a factor model"):
        SparkALSRecommender.from_factor_model(object())  # type: ignore[arg-type]


def test_model_fit_without_a_session_says_how_to_get_one() -> None:
    code = (
        "from recsys.models.spark_als import SparkALSRecommender\n"
        "from tests.models.helpers import checkerboard_dataset\n"
        "try:\n"
        "    SparkALSRecommender(factors=2, iterations=1).fit(checkerboard_dataset())\n"
        "except RuntimeError as e:\n"
        "    print(e)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "needs an active Spark session" in out.stdout


def test_model_local_paths_never_import_pyspark() -> None:
    code = (
        "import sys, recsys.cli, training.cli, training.publish_cli, training.train, "
        "recsys.models.spark_als, training.spark.session, training.spark.io\n"
        "print('pyspark' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
