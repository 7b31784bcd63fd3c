"""`recsys train --engine spark`: MLlib ALS, the local metric code, MLflow run and registry."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pandas as pd
import pytest
from mlflow import MlflowClient
from typer.testing import CliRunner

from features.dataset import build_dataset
from recsys.cli import app
from recsys.evaluation.splitters import temporal_split
from recsys.models.implicit_models import ALSRecommender
from recsys.models.spark_als import SparkALSRecommender
from tests.spark.conftest import ALS_PARAMS
from training.config import load_config
from training.registry import CHALLENGER, get_version, load_pyfunc_recommender
from training.train import evaluate_model

pytestmark = pytest.mark.spark
runner = CliRunner()
# Kept NDCG@20 of Spark's ALS may differ from implicit's by at most this on the same data
# (docs/spark.md reports both engines' figures).
NDCG_TOLERANCE = 0.05


def _local_evaluation(model: Any, data: Path) -> dict[str, float]:
    """The model evaluated by the local engine on its own split of the same data."""
    config = load_config(None, data=data, model="als", params=ALS_PARAMS)
    from recsys.contract.loader import load_tables

    tables = load_tables(data)
    split = temporal_split(tables, config.holdout_days)
    dataset = build_dataset(tables, "agent", cutoff=split.cutoff, with_features=False)
    metrics, _, _ = evaluate_model(
        model, dataset, split.truth("agent"), split.segments("agent"), config
    )
    return metrics


def test_train_spark_metrics_are_the_local_metric_code_on_the_same_split(
    spark_trained: Any, sim_tiny_dir: Path
) -> None:
    model = spark_trained.model
    assert isinstance(model, SparkALSRecommender)
    assert model.user_factors_.shape == (len(model.users_), ALS_PARAMS["factors"])
    assert np.isfinite(model.item_factors_).all()
    local = _local_evaluation(model, sim_tiny_dir)
    for key, value in local.items():
        assert spark_trained.metrics[key] == pytest.approx(value, abs=1e-12), key
    assert 0.0 < spark_trained.metrics["kept_ndcg_at_20"] < 1.0
    # the popularity baseline was evaluated on the same holdout, for a first promotion
    per_user = spark_trained.per_user
    assert {"kept_ndcg_at_20", "popular.kept_ndcg_at_20"} <= set(per_user.columns)
    assert per_user["popular.kept_ndcg_at_20"].mean() > 0


def test_train_spark_kept_ndcg_is_within_tolerance_of_implicit_als(
    spark_trained: Any, sim_tiny_dir: Path
) -> None:
    config = load_config(None, data=sim_tiny_dir, model="als", params=ALS_PARAMS)
    from training.train import run_training

    local = run_training(config, log_to_mlflow=False)
    assert isinstance(local.model, ALSRecommender)
    gap = spark_trained.metrics["kept_ndcg_at_20"] - local.metrics["kept_ndcg_at_20"]
    assert abs(gap) <= NDCG_TOLERANCE, (spark_trained.metrics, local.metrics)


def test_train_spark_logs_and_registers_like_the_local_engine(
    spark_trained: Any, sim_tiny_dir: Path
) -> None:
    result = spark_trained
    assert result.run_id and result.model_version
    run = mlflow.get_run(result.run_id)
    assert run.data.params["engine"] == "spark" and run.data.params["model"] == "als"
    assert run.data.tags["engine"] == "spark"
    assert run.data.params["data.engine"] == "spark"
    assert int(run.data.params["data.purchases.rows"]) > 0
    assert run.data.metrics["kept_ndcg_at_20"] == pytest.approx(result.metrics["kept_ndcg_at_20"])
    version = get_version("item-to-agent", CHALLENGER)
    assert version is not None and str(version.version) == result.model_version
    assert version.tags["engine"] == "spark"
    # The registered model serves through the pyfunc interface without Spark.
    loaded = mlflow.pyfunc.load_model(f"models:/item-to-agent/{result.model_version}")
    agents = pd.read_parquet(sim_tiny_dir / "agents.parquet")["agent_id"].head(3)
    out = loaded.predict(pd.DataFrame({"agent_id": agents}), params={"k": 5})
    want = result.model.recommend(agents, k=5)
    pd.testing.assert_frame_equal(out.reset_index(drop=True), want)
    restored = load_pyfunc_recommender(f"models:/item-to-agent/{result.model_version}")
    np.testing.assert_array_equal(restored.item_factors_, result.model.item_factors_)


def test_train_cli_spark_refit_full_logs_the_full_model(sim_tiny_dir: Path, spark: Any) -> None:
    result = runner.invoke(
        app,
        [
            "train",
            "--engine",
            "spark",
            "--spark-master",
            "local[2]",
            "--data",
            str(sim_tiny_dir),
            "--target",
            "customer",
            "-p",
            "factors=4",
            "-p",
            "iterations=2",
            "-p",
            "num_threads=2",  # a local-engine knob: ignored by Spark
            "--refit-full",
            "--experiment",
            "spark-cli",
        ],
    )
    assert result.exit_code == 0, result.output
    text = re.sub(r"\s+", " ", result.output)
    assert "with Spark (local[2])" in text and "kept_ndcg" in text
    run_id = re.search(r"MLflow run (\w+);", result.output).group(1)  # type: ignore[union-attr]
    artifacts = {a.path for a in MlflowClient().list_artifacts(run_id)}
    assert "model_full" in artifacts
    assert mlflow.get_run(run_id).data.params["target"] == "customer"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--model", "lightfm"], "--engine spark trains als (MLlib ALS), not 'lightfm'"),
        (["-p", "factorz=3"], "bad parameters for --engine spark model 'als'"),
        (["--engine", "flink"], "--engine must be one of local, spark, got 'flink'"),
    ],
)
def test_train_cli_spark_refuses_bad_input_before_starting(
    sim_tiny_dir: Path, args: list[str], message: str
) -> None:
    base = ["train", "--data", str(sim_tiny_dir)]
    if "--engine" not in args:
        base += ["--engine", "spark"]
    result = runner.invoke(app, base + args)
    assert result.exit_code != 0
    text = re.sub(r"\s+", " ", result.output + (result.stderr or ""))
    assert message in text and "Traceback" not in text


def test_train_cli_local_engine_refuses_a_uri() -> None:
    result = runner.invoke(app, ["train", "--data", "s3a://bucket/logs"])
    assert result.exit_code == 2
    assert "is a URI: read it with --engine spark" in re.sub(r"\s+", " ", result.output)


def test_train_cli_spark_names_missing_tables_and_columns(tmp_path: Path, spark: Any) -> None:
    result = runner.invoke(app, ["train", "--engine", "spark", "--data", str(tmp_path)])
    text = re.sub(r"\s+", " ", result.output)
    assert result.exit_code == 2
    assert f"table 'skus' not found in {tmp_path} (expected skus.parquet, skus.csv" in text
    (tmp_path / "skus.csv").write_text("sku_id,title\ns1,tea\n")
    result = runner.invoke(app, ["train", "--engine", "spark", "--data", str(tmp_path)])
    text = re.sub(r"\s+", " ", result.output)
    assert result.exit_code == 2
    assert "skus.csv: missing required column(s) 'category'" in text and "Traceback" not in text
