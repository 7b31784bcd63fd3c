"""Same input, same result: the Spark matrix, split, truth and segments equal the local ones."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from features.dataset import build_dataset
from recsys.columns import Tables
from recsys.contract.io import write_table
from recsys.data.dataset import Dataset
from recsys.evaluation.splitters import temporal_split
from recsys.models.popular import PopularRecommender
from training.spark import split as spark_split
from training.spark.dataset import build_spark_dataset
from training.spark.io import read_tables

pytestmark = pytest.mark.spark
HOLDOUT_DAYS = 14
WINDOW_DAYS = 28


def assert_same_matrix(spark_m: sp.csr_matrix, local_m: sp.csr_matrix) -> None:
    """Same shape, same stored pairs, weights equal within float32 rounding of a float64 sum."""
    assert spark_m.shape == local_m.shape
    assert spark_m.nnz == local_m.nnz > 0
    np.testing.assert_array_equal(spark_m.indptr, local_m.indptr)
    np.testing.assert_array_equal(spark_m.indices, local_m.indices)
    np.testing.assert_allclose(spark_m.data, local_m.data, rtol=1e-6, atol=1e-7)


def assert_same_dataset(got: Dataset, want: Dataset) -> None:
    """Every part the Spark dataset holds equals the local dataset's."""
    assert got.users == want.users and got.skus == want.skus
    assert got.cutoff == want.cutoff
    assert_same_matrix(got.interactions, want.interactions)
    pd.testing.assert_frame_equal(got.sku_table, want.sku_table)
    pd.testing.assert_frame_equal(got.user_table, want.user_table)
    np.testing.assert_array_equal(got.sku_available, want.sku_available)
    # the popularity window stays on the executors: aggregates, not lines, reach the driver
    assert got.events.empty and list(got.events.columns) == list(want.events.columns)
    assert got.window_stats is not None and got.window_stats.days == WINDOW_DAYS
    local = PopularRecommender(window_days=WINDOW_DAYS).fit(want)
    spark = PopularRecommender(window_days=WINDOW_DAYS).fit(got)
    assert np.isfinite(local.global_scores_).sum() > 10
    np.testing.assert_array_equal(spark.global_scores_, local.global_scores_)
    np.testing.assert_array_equal(spark.popularity_, local.popularity_)
    assert spark.group_scores_.keys() == local.group_scores_.keys() and local.group_scores_
    for kind, scores in local.group_scores_.items():
        np.testing.assert_array_equal(spark.group_scores_[kind], scores, err_msg=kind)
    with pytest.raises(ValueError, match="window_days=28"):
        PopularRecommender(window_days=7).fit(got)


@pytest.mark.parametrize("target", ["agent", "customer"])
def test_parity_split_matrix_truth_and_segments(
    spark: Any, spark_tables: dict[str, Any], local_tables: dict[str, pd.DataFrame], target: str
) -> None:
    split = temporal_split(local_tables, HOLDOUT_DAYS)
    got_split = spark_split.temporal_split(spark_tables, HOLDOUT_DAYS)
    assert (got_split.cutoff, got_split.end) == (split.cutoff, split.end)

    got = build_spark_dataset(
        spark, spark_tables, target, cutoff=got_split.cutoff, window_days=WINDOW_DAYS
    )
    want = build_dataset(local_tables, target, cutoff=split.cutoff, with_features=False)
    assert_same_dataset(got.dataset, want)
    ratings = got.ratings.toPandas()
    got.release()
    assert len(ratings) == want.interactions.nnz  # ALS reads exactly the collected pairs

    truth = spark_split.truth(spark_tables, got_split, target)
    pd.testing.assert_frame_equal(truth, split.truth(target))
    assert truth["is_new"].any() and not truth["is_new"].all()
    pd.testing.assert_frame_equal(
        spark_split.segments(spark_tables, got_split, target), split.segments(target)
    )


def test_parity_csv_input_with_decay_log_scale_and_negative_weights(
    spark: Any, local_tables: dict[str, pd.DataFrame], tmp_path: Path
) -> None:
    # The same log written as CSV (text timestamps and `|` lists), weighted with every option on.
    for name, frame in local_tables.items():
        write_table(frame, tmp_path / f"{name}.csv", name)
    weights = {"half_life_days": 20.0, "log_scale": True, "clip_negative": False}
    tables = read_tables(spark, str(tmp_path))
    cutoff = spark_split.temporal_split(tables, HOLDOUT_DAYS).cutoff
    got = build_spark_dataset(spark, tables, "agent", cutoff=cutoff, weights=weights)
    got.release()
    want = build_dataset(local_tables, "agent", cutoff=cutoff, weights=weights, with_features=False)
    assert (want.interactions.data < 0).any()  # net-negative pairs are kept and must match
    assert_same_dataset(got.dataset, want)


def test_parity_split_refuses_a_holdout_longer_than_the_log(spark_tables: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="holdout_days=5000 leaves no purchases before the cutoff"):
        spark_split.temporal_split(spark_tables, 5000)
    with pytest.raises(ValueError, match="holdout_days must be > 0"):
        spark_split.temporal_split(spark_tables, 0)


def test_parity_tables_typed_like_the_local_loader(
    spark_tables: dict[str, Any], local_tables: dict[str, pd.DataFrame]
) -> None:
    from training.spark.io import collect_table

    for name in (Tables.SKUS, Tables.AGENTS, Tables.RETURNS):
        got = collect_table(spark_tables[name], name)
        want = local_tables[name]
        key = want.columns[0]
        pd.testing.assert_frame_equal(
            got.sort_values(key).reset_index(drop=True),
            want.sort_values(key).reset_index(drop=True),
        )
