"""`recsys ab-report` end to end: files, the MLflow run, Redis experiments, and clear failures."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import mlflow
import pytest
import yaml
from mlflow import MlflowClient
from typer.testing import CliRunner

from recsys.cli import app
from serving.experiments import EXPERIMENTS_HASH


class Ran:
    """Exit code and output of one command, with the console's line wrapping undone."""

    def __init__(self, args: tuple[str, ...]) -> None:
        result = CliRunner().invoke(app, ["ab-report", *args])
        self.exit_code = result.exit_code
        self.output = " ".join(result.output.split())


def _run(*args: str) -> Ran:
    return Ran(args)


def test_cli_writes_html_json_and_an_mlflow_run(sim_effect_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "out" / "page.html"
    result = _run(
        "--experiment", "sim-effect", "--data", str(sim_effect_dir), "--out", str(out),
        "--experiments-file", str(sim_effect_dir / "experiments.yaml"),
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "sample ratio OK" in result.output and "MLflow run" in result.output
    report = json.loads(out.with_suffix(".json").read_text())
    assert report["experiment"]["name"] == "sim-effect" and report["trustworthy"] is True
    assert out.read_text().startswith("<!DOCTYPE html>")
    from training.tracking import configure_tracking

    configure_tracking()
    runs = mlflow.search_runs(
        experiment_names=["ab-reports"],
        filter_string="tags.`ab.experiment` = 'sim-effect'",
        output_format="list",
    )
    assert len(runs) == 1
    run = runs[0]
    assert run.data.tags["ab.variant.A.model_uri"] == "models:/item-to-agent/1"
    assert run.data.tags["ab.variant.B.model_versions"] == "2"
    assert run.data.params["window_days"] == "7.0"
    assert run.data.metrics["srm.pvalue"] == pytest.approx(report["srm"]["pvalue"])
    names = {a.path for a in MlflowClient().list_artifacts(run.info.run_id)}
    assert names == {"report.html", "report.json"}
    logged = MlflowClient().download_artifacts(run.info.run_id, "report.json", str(tmp_path))
    assert json.loads(Path(logged).read_text()) == report


def test_cli_reads_experiments_from_redis(
    sim_effect_dir: Path, sim_effect_tiny: Any, redis_client: Any, redis_url: str, tmp_path: Path
) -> None:
    redis_client.hset(EXPERIMENTS_HASH, "sim-effect", sim_effect_tiny.experiment.model_dump_json())
    redis_client.hset(
        EXPERIMENTS_HASH,
        "other",
        sim_effect_tiny.experiment.model_copy(update={"name": "other"}).model_dump_json(),
    )
    out = tmp_path / "r.html"
    result = _run(
        "--experiment", "sim-effect", "--data", str(sim_effect_dir), "--out", str(out),
        "--redis-url", redis_url, "--no-mlflow", "--json", str(tmp_path / "numbers.json"),
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert (tmp_path / "numbers.json").is_file() and out.is_file()
    assert "MLflow run" not in result.output
    missing = _run("--experiment", "gone", "--data", str(sim_effect_dir), "--redis-url", redis_url)
    assert missing.exit_code == 1
    assert "unknown experiment 'gone'" in missing.output
    assert "known: other, sim-effect" in missing.output


def test_cli_unknown_experiment_lists_the_known(sim_effect_dir: Path) -> None:
    result = _run(
        "--experiment", "nope", "--data", str(sim_effect_dir),
        "--experiments-file", str(sim_effect_dir / "experiments.yaml"),
    )  # fmt: skip
    assert result.exit_code == 1
    assert "unknown experiment 'nope'" in result.output and "known: sim-effect" in result.output
    assert "Traceback" not in result.output


def test_cli_without_an_experiment_source_says_how(
    sim_effect_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("REDIS_URL", raising=False)
    result = _run("--experiment", "sim-effect", "--data", str(sim_effect_dir))
    assert result.exit_code == 1
    assert "pass --experiments-file FILE" in result.output


def test_cli_empty_data_fails_clearly(sim_effect_dir: Path, tmp_path: Path) -> None:
    config = yaml.safe_load((sim_effect_dir / "experiments.yaml").read_text())
    other = dict(config["experiments"][0], name="quiet")
    customers = dict(config["experiments"][0], name="per-customer", target="customer")
    file = tmp_path / "experiments.yaml"
    file.write_text(yaml.safe_dump({"experiments": [*config["experiments"], other, customers]}))
    base = ["--experiments-file", str(file), "--no-mlflow", "--out", str(tmp_path / "r.html")]
    empty = tmp_path / "empty"
    empty.mkdir()
    result = _run("--experiment", "sim-effect", "--data", str(empty), *base)
    assert result.exit_code == 1 and "no exposures in" in result.output
    result = _run("--experiment", "sim-effect", "--data", str(tmp_path / "absent"), *base)
    assert result.exit_code == 1 and "data directory not found" in result.output
    result = _run("--experiment", "quiet", "--data", str(sim_effect_dir), *base)
    assert result.exit_code == 1 and "no exposures of experiment 'quiet'" in result.output
    result = _run("--experiment", "per-customer", "--data", str(sim_effect_dir), *base)
    assert result.exit_code == 1 and "agent experiments only" in result.output
    result = _run("--experiment", "sim-effect", "--data", str(sim_effect_dir), "--end", "x", *base)
    assert result.exit_code == 1 and "--end: cannot read 'x'" in result.output
    assert not (tmp_path / "r.html").exists()
