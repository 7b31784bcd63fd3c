"""`recsys publish` and `recsys rollback`: end to end; every error exits non-zero with a message."""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
from pathlib import Path

import pytest
import redis
from typer.testing import CliRunner

from recsys.cache.server import free_port
from recsys.cache.snapshot import load_snapshot, read_current
from recsys.cli import app
from tests.publish.conftest import World
from tests.publish.helpers import tiny_tables

runner = CliRunner()


def _text(result) -> str:  # type: ignore[no-untyped-def]
    """Everything the command printed, with rich's line wrapping undone."""
    return re.sub(r"\s+", " ", result.output + (result.stderr or ""))


@pytest.fixture()
def data_dir(tmp_path: Path) -> Path:
    """The tiny world written as a contract data directory."""
    from recsys.contract.io import write_table

    for name, frame in tiny_tables().items():
        write_table(frame, tmp_path / "data" / f"{name}.parquet", name)
    return tmp_path / "data"


@pytest.fixture()
def model_dir(tmp_path: Path, world: World) -> Path:
    """The tiny world's FixedRecommender saved as a model folder."""
    return world.model.save(tmp_path / "model")


def test_publish_cli_without_redis_url_says_how_to_start_one(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("REDIS_URL", raising=False)
    result = runner.invoke(app, ["publish", "--target", "agent"])
    assert result.exit_code == 1
    text = _text(result)
    assert "no Redis to publish to" in text and "REDIS_URL" in text and "redis-server" in text
    assert "Traceback" not in text


def test_publish_cli_unreachable_redis_names_the_url() -> None:
    url = f"redis://:secret@127.0.0.1:{free_port()}/0"
    result = runner.invoke(app, ["publish", "--redis-url", url])
    assert result.exit_code == 1
    text = _text(result)
    assert "cannot reach Redis at redis://:***@127.0.0.1" in text and "secret" not in text


def test_publish_cli_rejects_unknown_model_uri_and_target(redis_url: str) -> None:
    result = runner.invoke(app, ["publish", "--redis-url", redis_url, "--model", "s3://m"])
    assert result.exit_code == 1
    assert "unknown model URI 's3://m'; use models:/<name>@<alias>" in _text(result)
    result = runner.invoke(app, ["publish", "--redis-url", redis_url, "--target", "shop"])
    assert result.exit_code == 2
    assert "--target must be one of agent, customer, got 'shop'" in _text(result)


def test_rollback_cli_with_nothing_published(redis_client: redis.Redis, redis_url: str) -> None:
    result = runner.invoke(app, ["rollback", "--target", "agent", "--redis-url", redis_url])
    assert result.exit_code == 1
    assert "no previous agent snapshot to roll back to (current: none)" in _text(result)


def test_publish_cli_with_a_model_folder_then_rollback(
    redis_client: redis.Redis, redis_url: str, data_dir: Path, model_dir: Path
) -> None:
    args = ["publish", "--redis-url", redis_url, "--model", str(model_dir)]
    args += ["--data", str(data_dir), "--top-n", "5", "--batch-size", "7", "--no-progress"]
    first = runner.invoke(app, args)
    assert first.exit_code == 0, _text(first)
    assert "24 users (0 without picks), 120 picks" in _text(first)
    timings = re.search(r"timings: (.*)", _text(first))
    assert timings is not None and "prepare_s" in timings.group(1), _text(first)
    snapshot = read_current(redis_client, "agent")
    assert snapshot is not None and snapshot in _text(first)
    meta = load_snapshot(redis_client, "agent").meta
    assert (meta["model_fit"], meta["model_name"], meta["top_n"]) == ("folder", "fixed", 5)
    assert meta["counts"]["fallback_lists"] == 6 and meta["counts"]["similar"] == 20
    assert meta["counts"]["profiles"] == 24 and meta["counts"]["sku_stats"] > 0
    assert redis_client.keys(f"*{snapshot}*:profiles")
    second = runner.invoke(app, [*args, "--no-profiles"])
    assert second.exit_code == 0, _text(second)
    assert f"(replaced {snapshot})" in _text(second)
    lean = read_current(redis_client, "agent")
    assert "profiles" not in load_snapshot(redis_client, "agent").meta["counts"]
    assert not redis_client.keys(f"*{lean}*:profiles")
    assert not redis_client.keys(f"*{lean}*:stats")
    back = runner.invoke(app, ["rollback", "--redis-url", redis_url])
    assert back.exit_code == 0
    assert f"live snapshot is now {snapshot}" in _text(back)
    assert read_current(redis_client, "agent") == snapshot


def test_publish_cli_refuses_a_model_of_the_other_target(
    redis_client: redis.Redis, redis_url: str, data_dir: Path, model_dir: Path
) -> None:
    args = ["publish", "--target", "customer", "--redis-url", redis_url]
    result = runner.invoke(app, [*args, "--model", str(model_dir), "--data", str(data_dir)])
    assert result.exit_code == 2
    assert "was trained for target 'agent', not 'customer'" in _text(result)
    assert read_current(redis_client, "customer") is None


_TRAINING_READY = all(
    importlib.util.find_spec(m) is not None
    for m in ("features.dataset", "recsys.contract.loader", "recsys.evaluation.splitters")
)


@pytest.mark.slow
@pytest.mark.skipif(not _TRAINING_READY, reason="features/, the loader or splitters not in yet")
def test_publish_cli_end_to_end_from_a_registered_model(
    redis_client: redis.Redis,
    redis_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from training.config import load_config
    from training.train import run_training

    # MLflow puts artifacts of new experiments under ./mlruns once MLFLOW_TRACKING_URI is set
    # (set_tracking_uri sets it), so run from tmp_path to keep the project's mlruns/ clean.
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("RECSYS_MLRUNS", str(tmp_path / "mlruns"))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("MLFLOW_REGISTRY_URI", raising=False)
    data = tmp_path / "sim"
    subprocess.run(
        [sys.executable, "-m", "recsys", "simulate", "--scale", "tiny", "--out", str(data)]
        + ["--seed", "1", "--quiet"],
        check=True,
        capture_output=True,
    )
    config = load_config(None, data=data, target="agent", model="popular", refit_full=True)
    trained = run_training(config)
    base = ["publish", "--redis-url", redis_url, "--top-n", "20", "--no-progress"]
    missing = runner.invoke(app, base)  # nothing promoted to @champion yet
    assert missing.exit_code == 1
    assert "no version of model 'item-to-agent' has alias @champion" in _text(missing)
    result = runner.invoke(app, [*base, "--model", "models:/item-to-agent@challenger"])
    assert result.exit_code == 0, _text(result)
    assert "(full fit)" in _text(result)
    meta = load_snapshot(redis_client, "agent").meta
    assert meta["run_id"] == trained.run_id
    assert meta["model_version"] == trained.model_version
    assert meta["config_digest"] == config.digest()
    assert meta["data_dir"] == str(data)
    assert meta["counts"]["users"] == 130  # every agent of the tiny simulation
