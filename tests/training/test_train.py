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
    # the model's effective settings, defaults included, not only the overrides
    effective = result.model.get_params()
    assert effective and all(run.data.params[f"model.{k}"] == str(v) for k, v in effective.items())
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


def test_logged_run_holds_everything_the_run_computed(tiny_data: Path, mlflow_store: Path) -> None:
    from training.registry import FULL_MODEL_ARTIFACT, load_per_user, load_recommender, mlflow_key

    cfg = load_config(
        None,
        data=tiny_data,
        model="als",
        params={"iterations": 2, "factors": 4},
        refit_full=True,
        experiment="test-run-content",
    )
    result = run_training(cfg)
    run = mlflow.get_run(result.run_id)
    # every metric (more than one batch's worth of keys would still all arrive) and timing
    logged = run.data.metrics
    assert {mlflow_key(k): v for k, v in result.metrics.items()}.items() <= logged.items()
    timings = {k.removeprefix("time."): v for k, v in logged.items() if k.startswith("time.")}
    assert set(timings) == set(result.timings) - {"log_s", "total_s"}
    assert run.data.params["model.factors"] == "4" and run.data.params["refit_full"] == "True"
    assert run.data.params["data.digest"] == run.data.tags["data_fingerprint"] != ""
    assert {"git_commit", "seed", "target", "model_name", "cutoff", "config_digest"} <= set(
        run.data.tags
    )
    client = MlflowClient()
    files = {
        a.path
        for top in ("evaluation", "plots")
        for a in client.list_artifacts(run.info.run_id, top)
    }
    assert files == {
        "evaluation/metrics.json",
        "evaluation/fingerprint.json",
        "evaluation/config.json",
        "evaluation/per_user.parquet",
        "plots/metrics_at_k.png",
        "plots/segments.png",
    }
    pd.testing.assert_frame_equal(load_per_user(run.info.run_id), result.per_user)
    full = {a.path for a in client.list_artifacts(run.info.run_id, FULL_MODEL_ARTIFACT)}
    assert full == {
        f"{FULL_MODEL_ARTIFACT}/{f}" for f in ("model.pkl", "users.parquet", "skus.parquet")
    }
    assert type(load_recommender(run.info.run_id, prefer_full=True)) is type(result.model)
    # the registered version carries its provenance, and @challenger points at it
    version = client.get_model_version("item-to-agent", result.model_version)
    assert version.run_id == result.run_id
    assert version.tags["run_id"] == result.run_id
    assert version.tags["primary_metric"] == cfg.primary_metric
    assert float(version.tags[cfg.primary_metric]) == pytest.approx(
        result.metrics[cfg.primary_metric], abs=1e-6
    )
    assert version.tags["cutoff"] == run.data.tags["cutoff"]
    assert version.tags["data_fingerprint"] == run.data.tags["data_fingerprint"]
    assert version.tags["holdout_days"] == str(cfg.holdout_days)
    assert str(get_version("item-to-agent", CHALLENGER).version) == result.model_version


def test_cli_run_in_a_fresh_interpreter_logs_the_run(tiny_data: Path, mlflow_store: Path) -> None:
    import os
    import subprocess
    import sys

    import recsys

    # Here MLflow is first imported by the warm-up thread, while the model fits.
    command = [sys.executable, "-m", "recsys", "train", "--data", str(tiny_data)]
    command += ["--model", "als", "-p", "iterations=2", "--experiment", "test-fresh"]
    command += ["--no-register"]
    env = {**os.environ, "RECSYS_MLRUNS": str(mlflow_store)}
    env.pop("MLFLOW_TRACKING_URI", None)
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    client = MlflowClient()
    experiment = client.get_experiment_by_name("test-fresh")
    (run,) = client.search_runs([experiment.experiment_id])
    assert run.info.run_id in done.stdout and "not registered" in done.stdout
    assert run.data.params["model"] == "als"
    assert run.data.params["model.iterations"] == "2"  # the override, as given
    assert run.data.params["model.factors"].isdigit()  # a default, logged too
    main_file = Path(recsys.__file__).with_name("__main__.py")
    assert run.data.tags["mlflow.source.name"] == str(main_file)
    assert run.data.metrics["kept_ndcg_at_20"] > 0
    assert {"time.prepare_s", "time.fit_s", "time.evaluate_s"} <= set(run.data.metrics)
    loaded = mlflow.pyfunc.load_model(f"runs:/{run.info.run_id}/model")
    agents = pd.read_parquet(tiny_data / "agents.parquet")["agent_id"].head(2)
    assert len(loaded.predict(pd.DataFrame({"agent_id": agents}), params={"k": 3})) == 6


def test_tracking_warmup_never_creates_a_store(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from training.tracking import DB_FILE, TrackingWarmup

    monkeypatch.setenv("RECSYS_MLRUNS", str(tmp_path / "mlruns"))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    warmup = TrackingWarmup("item-to-agent")
    warmup.start()
    warmup.wait()
    assert not (tmp_path / "mlruns" / DB_FILE).exists()
    warmup.wait()  # waiting again (or for one never started) returns at once
    TrackingWarmup("item-to-agent").wait()


def test_eval_users_scores_a_seeded_sample_of_the_holdout(tiny_data: Path) -> None:
    from training.train import prepare, sample_holdout

    base = dict(data=tiny_data, model="repeat")
    _, split, _ = prepare(load_config(None, **base))
    truth = split.truth("agent")
    everyone = truth["agent_id"].nunique()
    assert everyone > 40
    full = run_training(load_config(None, **base), log_to_mlflow=False)
    sampled = run_training(load_config(None, **base, eval_users=40), log_to_mlflow=False)
    again = run_training(load_config(None, **base, eval_users=40), log_to_mlflow=False)
    other = run_training(load_config(None, **base, eval_users=40, seed=1), log_to_mlflow=False)
    assert len(full.per_user) == everyone and len(sampled.per_user) == 40
    assert sampled.metrics == again.metrics
    assert sorted(sampled.per_user.index) == sorted(again.per_user.index)
    assert sorted(sampled.per_user.index) != sorted(other.per_user.index)
    # the sample's users are scored exactly as in the full evaluation, baseline included
    pd.testing.assert_frame_equal(sampled.per_user, full.per_user.loc[sampled.per_user.index])
    # the draw depends on the users, not on the truth's row order
    shuffled = truth.sample(frac=1.0, random_state=3)
    redrawn = sample_holdout(shuffled, "agent_id", 40, 0)
    assert set(redrawn["agent_id"]) == set(sampled.per_user.index)
    # asking for more users than there are leaves the holdout whole
    assert sample_holdout(truth, "agent_id", everyone + 1, 0) is truth
    with pytest.raises(ValueError, match="eval_users"):
        load_config(None, **base, eval_users=0)


def test_promote_rescores_the_champion_when_the_runs_sampled_differently(
    tiny_data: Path, mlflow_store: Path
) -> None:
    base = dict(data=tiny_data, model="popular", target="customer", experiment="test-sample")
    run_training(load_config(None, **base))
    assert promote("customer", force=True).promoted
    run_training(load_config(None, **{**base, "model": "repeat"}, eval_users=60))
    decision = promote("customer")
    # only the challenger's 60 users are compared: the champion was scored on them again,
    # not taken from its run over every user (which would count the others as 0 for the challenger)
    assert decision.n_users == 60, decision.reason
    assert decision.promoted, decision.reason
