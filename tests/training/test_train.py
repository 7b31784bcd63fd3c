"""The training job end to end: metrics, MLflow run and registry, promotion, bad input."""

from __future__ import annotations

from pathlib import Path

import mlflow
import pandas as pd
import pytest
from mlflow import MlflowClient
from typer.testing import CliRunner

from recsys.cli import app
from recsys.columns import Tables
from recsys.exceptions import EmptyDataError
from training.config import load_config
from training.promote import promote
from training.registry import CHALLENGER, CHAMPION, get_version
from training.train import run_training, split_metric

runner = CliRunner()


def _train(data: Path, model: str, target: str = "agent", **params: object):
    cfg = load_config(
        None, data=data, model=model, target=target, params=params, experiment=f"test-{target}"
    )
    return run_training(cfg)


def test_split_metric_parses_and_rejects() -> None:
    assert split_metric("kept_ndcg_at_20") == ("kept_ndcg", 20)
    with pytest.raises(ValueError, match="<metric>_at_<k>"):
        split_metric("ndcg")


def test_run_training_is_reproducible(tiny_data: Path) -> None:
    cfg = load_config(None, data=tiny_data, model="als", params={"iterations": 3, "factors": 8})
    first = run_training(cfg, log_to_mlflow=False)
    second = run_training(cfg, log_to_mlflow=False)
    assert first.metrics == second.metrics
    for key in (
        "ndcg_at_20",
        "kept_ndcg_at_20",
        "new_ndcg_at_20",
        "return_rate_at_20",
        "coverage_at_20",
        "novelty_at_20",
        "oracle_share_at_20",
    ):
        assert key in first.metrics
    assert 0.0 < first.metrics["oracle_share_at_20"] <= 1.0


def test_run_training_logs_and_registers(tiny_data: Path, mlflow_store: Path) -> None:
    result = _train(tiny_data, "repeat")
    assert result.run_id and result.model_version
    run = mlflow.get_run(result.run_id)
    assert run.data.params["model"] == "repeat"
    assert run.data.params["data.purchases.rows"].isdigit()
    assert run.data.tags["git_commit"]
    assert run.data.metrics["kept_ndcg_at_20"] == pytest.approx(result.metrics["kept_ndcg_at_20"])
    artifacts = {a.path for a in MlflowClient().list_artifacts(result.run_id, "plots")}
    assert "plots/metrics_at_k.png" in artifacts
    version = get_version("item-to-agent", CHALLENGER)
    assert version is not None and str(version.version) == result.model_version
    # The registered model predicts top-k through the pyfunc interface, with k as a param.
    loaded = mlflow.pyfunc.load_model(f"models:/item-to-agent/{result.model_version}")
    agents = pd.read_parquet(tiny_data / "agents.parquet")["agent_id"].head(3)
    out = loaded.predict(pd.DataFrame({"agent_id": agents}), params={"k": 5})
    assert list(out.columns) == ["agent_id", "sku_id", "score", "rank"]
    assert out.groupby("agent_id")["rank"].max().tolist() == [5, 5, 5]


def test_promote_refuses_worse_and_accepts_better(tiny_data: Path, mlflow_store: Path) -> None:
    name = "item-to-customer"
    _train(tiny_data, "popular", target="customer")
    first = promote("customer")  # popularity cannot beat itself
    assert not first.promoted and first.reason.startswith("refused")
    forced = promote("customer", force=True)
    assert forced.promoted and forced.forced
    champion = get_version(name, CHAMPION).version

    better = _train(tiny_data, "repeat", target="customer")
    decision = promote("customer")
    assert decision.promoted, decision.reason
    assert decision.ci_low > 0
    assert str(get_version(name, CHAMPION).version) == better.model_version
    assert get_version(name, "previous").version == champion

    _train(tiny_data, "popular", target="customer")
    refused = promote("customer")
    assert not refused.promoted
    assert "does not beat @champion" in refused.reason and "CI" in refused.reason
    assert str(get_version(name, CHAMPION).version) == better.model_version


def test_train_fails_clearly_on_bad_input(
    tiny_data: Path, tmp_path: Path, mlflow_store: Path
) -> None:
    unknown = runner.invoke(app, ["train", "--data", str(tiny_data), "--model", "nope"])
    assert unknown.exit_code == 2
    assert "unknown model 'nope'" in unknown.output
    missing = runner.invoke(app, ["train", "--data", str(tmp_path / "none")])
    assert missing.exit_code == 2 and "not found" in missing.output

    empty = tmp_path / "empty"
    empty.mkdir()
    for table in Tables.ALL:
        frame = pd.read_parquet(tiny_data / f"{table}.parquet")
        if table in (Tables.SHARES, Tables.PURCHASES, Tables.RETURNS):
            frame = frame.iloc[0:0]
        frame.to_parquet(empty / f"{table}.parquet")
    result = runner.invoke(app, ["train", "--data", str(empty), "--model", "popular"])
    assert result.exit_code == 1
    assert "no purchases" in result.output
    assert "Traceback" not in result.output
    with pytest.raises(EmptyDataError, match="no purchases"):
        run_training(load_config(None, data=empty, model="popular"), log_to_mlflow=False)
