"""Training from the table cache: the same metrics, with the derived results reused."""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
import pytest

from recsys.contract.table_cache import CACHE_DIRNAME, ENV_SWITCH
from training.config import load_config
from training.train import ORACLE_CACHE_DIR, prepare, prepare_cached, run_training


@pytest.fixture()
def data(tiny_data: Path, tmp_path: Path) -> Path:
    """A private copy of the tiny simulated data, without any cache."""
    out = tmp_path / "data"
    shutil.copytree(tiny_data, out, ignore=shutil.ignore_patterns(CACHE_DIRNAME))
    return out


def test_cached_runs_report_the_same_metrics(data: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = load_config(None, data=data, model="als", params={"iterations": 3, "factors": 8})
    cold = run_training(cfg, log_to_mlflow=False)
    entry = prepare_cached(cfg).cache_entry
    assert entry is not None
    derived = sorted(p.name.split("-")[0] for p in (entry.path / "derived").iterdir())
    assert derived == ["fingerprint", "popular", "segments", "truth"]
    assert len(list((data / CACHE_DIRNAME / ORACLE_CACHE_DIR).glob("picks-*.parquet"))) == 1
    warm = run_training(cfg, log_to_mlflow=False)
    assert warm.metrics == cold.metrics
    pd.testing.assert_frame_equal(warm.per_user, cold.per_user)
    monkeypatch.setenv(ENV_SWITCH, "off")
    uncached = run_training(cfg, log_to_mlflow=False)
    assert uncached.metrics == cold.metrics
    pd.testing.assert_frame_equal(uncached.per_user, cold.per_user)
    assert "oracle_share_at_20" in cold.metrics


def test_other_settings_do_not_reuse_the_baseline(data: Path) -> None:
    base = dict(data=data, model="als", params={"iterations": 2, "factors": 4})
    first = run_training(load_config(None, **base), log_to_mlflow=False)
    other = run_training(load_config(None, **base, holdout_days=7), log_to_mlflow=False)
    entry = prepare_cached(load_config(None, **base)).cache_entry
    assert entry is not None
    assert len(list((entry.path / "derived").glob("popular-per-user-*.parquet"))) == 2
    assert first.per_user.index.tolist() != other.per_user.index.tolist()


def test_the_holdout_is_kept_per_target_and_length_and_read_back_equal(data: Path) -> None:
    from training.train import holdout_tables

    for target, days in (("agent", 14), ("customer", 14), ("agent", 7)):
        cfg = load_config(None, data=data, model="als", target=target, holdout_days=days)
        prepared = prepare_cached(cfg)
        split, entry = prepared.split, prepared.cache_entry
        first = holdout_tables(cfg, split, entry)
        again = holdout_tables(cfg, split, entry)
        for kept, fresh in zip(again, (split.truth(target), split.segments(target)), strict=True):
            pd.testing.assert_frame_equal(kept, fresh)
        pd.testing.assert_frame_equal(first[0], again[0])
    assert entry is not None
    folder = entry.path / "derived"
    assert len(list(folder.glob("truth-*.parquet"))) == 3
    assert len(list(folder.glob("segments-*.parquet"))) == 3
    # a damaged file is computed again, not trusted
    for path in folder.glob("truth-*.parquet"):
        path.write_bytes(b"not parquet")
    truth, _ = holdout_tables(cfg, split, entry)
    pd.testing.assert_frame_equal(truth, split.truth("agent"))


def test_no_cache_option_trains_without_touching_the_cache(data: Path) -> None:
    from mlflow import MlflowClient
    from typer.testing import CliRunner

    from recsys.cli import app

    args = ["train", "--data", str(data), "--model", "popular", "--no-register"]
    args += ["--experiment", "test-no-cache"]
    uncached = CliRunner().invoke(app, [*args, "--no-cache"])
    assert uncached.exit_code == 0, uncached.output
    assert not (data / CACHE_DIRNAME).exists()
    cached = CliRunner().invoke(app, args)
    assert cached.exit_code == 0, cached.output
    assert (data / CACHE_DIRNAME).is_dir()
    # the same metrics either way, as logged with each run
    client = MlflowClient()
    runs = client.search_runs(
        [client.get_experiment_by_name("test-no-cache").experiment_id],
        order_by=["attributes.start_time ASC"],
    )
    assert len(runs) == 2
    first, second = (
        {k: v for k, v in run.data.metrics.items() if not k.startswith("time.")} for run in runs
    )
    assert first == second and "kept_ndcg_at_20" in first
    assert "--no-cache" in CliRunner().invoke(app, ["train", "--help"]).output


@pytest.mark.parametrize(
    ("model", "params", "built"),
    [
        ("als", {}, False),
        ("popular", {}, False),
        ("lightfm", {}, True),
        ("lightfm", {"use_features": False}, False),
        ("blend", {"cf_model": "lightfm"}, True),
        ("blend", {}, False),
        ("ranked", {}, True),
    ],
)
def test_side_features_are_built_only_for_models_that_read_them(
    data: Path, model: str, params: dict, built: bool
) -> None:
    dataset = prepare_cached(load_config(None, data=data, model=model, params=params)).dataset
    assert (dataset.sku_features is not None) is built
    assert (dataset.user_features is not None) is built
    assert dataset.interactions.nnz > 0


def test_an_als_run_does_not_depend_on_the_side_features(data: Path) -> None:
    from features.dataset import build_dataset
    from recsys.models import make_model

    _, split, lean = prepare(load_config(None, data=data, model="als"))
    full = build_dataset(split.tables, "agent", cutoff=split.cutoff, fingerprint="x")
    assert lean.sku_features is None and full.sku_features is not None
    users = lean.users.external_ids[:50]
    picks = [
        make_model("als", factors=8, iterations=3, random_state=0).fit(ds).recommend(users, k=10)
        for ds in (lean, full)
    ]
    pd.testing.assert_frame_equal(picks[0], picks[1])
