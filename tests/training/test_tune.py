"""`recsys tune`: trials are nested MLflow runs and the best config round-trips."""

from __future__ import annotations

from pathlib import Path

import mlflow
import pytest

from training.config import load_config
from training.tune import SEARCH_SPACES, tune


def test_tune_logs_nested_trials_and_writes_a_loadable_config(
    tiny_data: Path, mlflow_store: Path, tmp_path: Path
) -> None:
    cfg = load_config(None, data=tiny_data, model="repeat", experiment="test-tune", seed=1)
    out = tmp_path / "best.toml"
    result = tune(cfg, 3, out=out)
    assert result.n_trials == 3
    assert set(result.best_params) == {"half_life_days"}
    children = mlflow.search_runs(
        experiment_names=["test-tune"],
        filter_string=f"tags.mlflow.parentRunId = '{result.parent_run_id}'",
    )
    assert len(children) == 3
    assert result.best_value == pytest.approx(children["metrics.kept_ndcg_at_20"].max())
    best = load_config(out, data=tiny_data)
    assert best.model == "repeat" and best.params == result.best_params


def test_tune_rejects_models_without_a_search_space(tiny_data: Path) -> None:
    cfg = load_config(None, data=tiny_data, model="popular")
    assert "popular" in SEARCH_SPACES
    with pytest.raises(ValueError, match="trials must be >= 1"):
        tune(cfg, 0, log_to_mlflow=False)
    with pytest.raises(ValueError, match="no search space for model 'ranked'"):
        tune(cfg.model_copy(update={"model": "ranked"}), 1, log_to_mlflow=False)
