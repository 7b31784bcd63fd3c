"""`recsys simulate-ab`: a short closed loop through the real HTTP service and the real Redis.

Simulated agents ask the live service for their feeds, share from them, their customers buy and
return; every event goes through `POST /v1/events`, `recsys sink` writes the Parquet and
`recsys ab-report` reads it. The checks: what was served, posted, sunk and reported agree.
"""

from __future__ import annotations

import json
import shutil
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
import yaml
from typer.testing import CliRunner

from recsys.ab import Experiment, assign_many
from recsys.abtest.data import read_events
from recsys.abtest.loop_clock import SERVED_AT, retime_exposures
from recsys.abtest.loop_world import resume_world
from recsys.cli import app
from recsys.contract.loader import load_tables
from recsys.simulation.config import SimConfig
from recsys.simulation.simulate import write_simulation

# A small world: 40 agents, 45 days of history; the loop plays 3 days and 2 more.
WORLD = {"n_agents": 40, "n_days": 45, "n_skus": 300, "max_customers_per_agent": 60}
SEED = 3
EVENT_TABLES = {"share": "shares", "purchase": "purchases", "return": "returns", "click": "clicks"}


class Ran:
    """Exit code and output of one `recsys` command, with the console's line wrapping undone."""

    def __init__(self, *args: str) -> None:
        result = CliRunner().invoke(app, list(args))
        self.exit_code = result.exit_code
        self.output = " ".join(result.output.split())
        self.exception = result.exception


@pytest.fixture(scope="module")
def history(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A simulated history, as `recsys simulate` writes it."""
    out = tmp_path_factory.mktemp("history")
    write_simulation(SimConfig.preset("tiny", **WORLD), SEED, out, progress=False)
    return out


@pytest.fixture(scope="module")
def arms(history: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str]:
    """Two fitted models saved as folders (popularity for A, ALS for B): model URIs of the arms."""
    from features.dataset import build_dataset
    from recsys.models import make_model

    dataset = build_dataset(load_tables(history), "agent")
    root = tmp_path_factory.mktemp("models")
    uris = []
    for name, params in (("popular", {}), ("als", {"factors": 16, "iterations": 5})):
        model = make_model(name, random_state=0, **params).fit(dataset)
        uris.append(str(model.save(root / name)))
    return uris[0], uris[1]


@pytest.fixture()
def clean_redis(redis_client: Any) -> Iterator[Any]:
    """The session's Redis, empty before and after (the loop leaves an experiment behind)."""
    yield redis_client
    redis_client.flushdb()


def _loop_args(out: Path, history: Path, arms: tuple[str, str], redis_url: str) -> list[str]:
    return [
        "simulate-ab", "--experiment", "loop-test", "--days", "3", "--tail-days", "2",
        "--seed", str(SEED), "--data", str(history), "--variant-a", arms[0],
        "--variant-b", arms[1], "--k", "10", "--redis-url", redis_url, "--out", str(out),
    ]  # fmt: skip


@pytest.fixture()
def loop_run(
    tmp_path: Path, history: Path, arms: tuple[str, str], redis_url: str, clean_redis: Any
) -> tuple[Path, Ran]:
    """One closed loop on embedded defaults (the service in this process, the session's Redis)."""
    out = tmp_path / "run"
    return out, Ran(*_loop_args(out, history, arms, redis_url))


def _sunk(data: Path, table: str) -> pd.DataFrame:
    """Rows the sink wrote for a table (its date partitions), with their event ids."""
    parts = sorted((data / table).glob("date=*/*.parquet"))
    return pd.concat([pq.read_table(p).to_pandas() for p in parts], ignore_index=True)


def test_closed_loop_serves_posts_sinks_and_reports_consistently(
    loop_run: tuple[Path, Ran],
) -> None:
    out, ran = loop_run
    assert ran.exit_code == 0, f"{ran.output}\n{ran.exception!r}"
    assert f"report: {(out / 'report.html').resolve()}" in ran.output
    assert "mlflow ui --backend-store-uri" in ran.output
    data = out / "data"
    requests = pd.read_parquet(out / "requests.parquet")
    posted = pd.read_parquet(out / "posted.parquet")
    loop = json.loads((out / "loop.json").read_text())
    report = json.loads((out / "report.json").read_text())
    experiment = Experiment.model_validate(
        yaml.safe_load((out / "experiments.yaml").read_text())["experiments"][0]
    )
    assert len(requests) > 20 and requests["request_id"].is_unique
    assert loop["n_rejected"] == 0
    retimed = loop["exposures_retimed"]
    assert (retimed["moved"], retimed["strays"], retimed["missing"]) == (len(requests), 0, 0)

    # every agent was served the variant the deterministic assignment gives her, always the same
    by_agent = requests.groupby("agent_id")["variant"].agg(set)
    assert (by_agent.map(len) == 1).all()
    assigned = dict(zip(by_agent.index, assign_many(experiment, list(by_agent.index)), strict=True))
    assert {a: next(iter(v)) for a, v in by_agent.items()} == assigned
    # ... from her arm's snapshot
    assert requests.groupby("variant")["snapshot"].nunique().to_dict() == {"A": 1, "B": 1}

    # the service logged one exposure per served feed, moved to the feed's simulated time
    exposures = read_events(data, "exposures")
    exposures = exposures[exposures["experiment"] == "loop-test"]
    assert len(exposures) == len(requests) and exposures["request_id"].is_unique
    merged = exposures.merge(requests, on="request_id", suffixes=("", "_served"))
    assert len(merged) == len(requests)
    assert (merged["variant"] == merged["variant_served"]).all()
    assert (merged["agent_id"] == merged["agent_id_served"]).all()
    assert (merged["ts"] == merged["ts_served"]).all()
    assert [list(s) for s in merged["sku_ids"]] == [list(s) for s in merged["sku_ids_served"]]
    days = {p.parent.name for p in (data / "exposures").rglob("*.parquet")}
    assert days == {f"date={d}" for d in requests["date"].unique()}
    assert SERVED_AT in pq.read_table(next((data / "exposures").rglob("*.parquet"))).column_names

    # every posted event is in the Parquet exactly once, and nothing else is
    for kind, table in EVENT_TABLES.items():
        ids = Counter(_sunk(data, table)["event_id"])
        mine = set(posted.loc[posted["kind"] == kind, "event_id"])
        assert len(mine) > 0, kind
        assert set(ids) == mine and set(ids.values()) == {1}, kind
    tables = load_tables(data)
    history_lines = pq.ParquetFile(data / "purchases" / "base" / "purchases.parquet").metadata
    n_posted = int((posted["kind"] == "purchase").sum())
    assert len(tables["purchases"]) == history_lines.num_rows + n_posted
    assert tables["purchases"]["purchase_id"].is_unique

    # the report counts what was served, per variant
    served = requests.groupby("variant").agg(
        feeds=("request_id", "size"), agents=("agent_id", "nunique")
    )
    counted = {row["variant"]: row for row in report["exposures"]}
    for variant, row in served.iterrows():
        assert counted[variant]["exposures"] == row["feeds"]
        assert counted[variant]["agents"] == row["agents"]
    assert report["integrity"]["agents_in_several_variants"] == 0
    assert report["integrity"]["agents_not_in_their_assigned_variant"] == 0
    assert (out / "report.html").read_text().startswith("<!DOCTYPE html>")
    assert set(loop["true_value_per_served_sku"]) == {"A", "B"}

    from training.tracking import configure_tracking

    configure_tracking()
    runs = mlflow.search_runs(
        experiment_names=["ab-reports"],
        filter_string="tags.`ab.experiment` = 'loop-test'",
        output_format="list",
    )
    assert [r.data.tags["ab.variant.B.model_uri"] for r in runs][-1:] == [
        experiment.variants[1].model_uri
    ]


def test_url_mode_drives_a_running_service(
    tmp_path: Path, history: Path, arms: tuple[str, str], redis_url: str, clean_redis: Any
) -> None:
    import uvicorn

    from recsys.cache.server import free_port
    from serving.auth import add_key
    from serving.main import create_app
    from serving.settings import Settings

    admin_key, _ = add_key(clean_redis, ["admin"], name="test")
    settings = Settings(redis_url=redis_url, access_log=False)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(settings), port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    try:
        out = tmp_path / "run"
        args = _loop_args(out, history, arms, redis_url)
        args[args.index("--days") + 1] = "2"
        ran = Ran(*args, "--url", f"http://127.0.0.1:{port}", "--admin-key", admin_key)
    finally:
        server.should_exit = True
        thread.join(timeout=10)
    assert ran.exit_code == 0, f"{ran.output}\n{ran.exception!r}"
    requests = pd.read_parquet(out / "requests.parquet")
    report = json.loads((out / "report.json").read_text())
    assert sum(r["exposures"] for r in report["exposures"]) == len(requests)
    stored = Experiment.model_validate_json(clean_redis.hget("ab:v1:experiments", "loop-test"))
    assert stored.enabled is False  # switched off again at the end
    assert clean_redis.xinfo_groups("events:v1:events") == []  # its sink group is gone


def test_cli_refuses_bad_options_before_any_work(tmp_path: Path, history: Path) -> None:
    ran = Ran("simulate-ab", "--experiment", "x", "--scale", "medium", "--out", str(tmp_path))
    assert ran.exit_code == 2 and "--scale must be tiny or small" in ran.output
    ran = Ran("simulate-ab", "--experiment", "a b", "--out", str(tmp_path))
    assert ran.exit_code == 2 and "--experiment must match" in ran.output
    ran = Ran("simulate-ab", "--experiment", "x", "--days", "0", "--out", str(tmp_path))
    assert ran.exit_code == 1 and "--days must be >= 1, got 0" in ran.output
    ran = Ran(
        "simulate-ab", "--experiment", "x", "--url", "http://127.0.0.1:9",
        "--redis-url", "redis://127.0.0.1:9/0", "--data", str(history), "--out", str(tmp_path),
        "--variant-a", "a", "--variant-b", "b",
    )  # fmt: skip
    assert ran.exit_code == 1 and "needs an admin key" in ran.output
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "skus.parquet").write_bytes(b"")
    ran = Ran("simulate-ab", "--experiment", "x", "--out", str(tmp_path))
    assert (
        ran.exit_code == 1 and "already holds a run" in ran.output and "--overwrite" in ran.output
    )


def test_resume_world_continues_the_written_history(history: Path, tmp_path: Path) -> None:
    sim = resume_world(history)
    written = load_tables(history)
    assert sim.next_day == WORLD["n_days"]
    assert sim.state.next_purchase - 1 == len(written["purchases"])
    events = sim.step(adoption=1.0)
    assert events.day == WORLD["n_days"]
    # new ids continue after the history's
    first = f"P{int(events.purchases.purchase_id.min()):010d}"
    assert first > written["purchases"]["purchase_id"].max()

    changed = tmp_path / "changed"
    shutil.copytree(history, changed)
    purchases = pd.read_parquet(changed / "purchases.parquet")
    purchases.iloc[:-1].to_parquet(changed / "purchases.parquet")
    with pytest.raises(ValueError, match="it was changed after `recsys simulate`"):
        resume_world(changed)


def test_agents_share_from_their_served_feed(history: Path) -> None:
    sim = resume_world(history)
    agents = np.arange(len(sim.world.agents))
    feed = sim.world.skus.ids[:5].tolist()
    for agent in agents:
        sim.serve(int(agent), f"r{agent}", sim.day_start(sim.next_day), feed)
    shares = sim.step(adoption=1.0).shares
    # with full adoption every share of an agent with a sellable served SKU is one of them
    assert len(shares) > 0
    from_feed = np.isin(sim.world.skus.ids[shares.sku], feed)
    assert from_feed.mean() > 0.8


def test_retime_moves_only_the_loops_exposures(tmp_path: Path) -> None:
    from recsys.abtest.data import write_partitioned

    served = pd.Timestamp("2026-11-28 05:00", tz="UTC")
    frame = pd.DataFrame(
        {
            "event_id": ["1-0", "2-0", "3-0"],
            "request_id": ["r1", "r2", "other"],
            "ts": [served, served, served],
            "target": "agent",
            "agent_id": ["A1", "A2", "A3"],
            "customer_id": None,
            "experiment": "e",
            "variant": ["A", "B", "A"],
            "snapshot": "s",
            "model_version": "1",
            "sku_ids": [["S1"], ["S2"], ["S3"]],
            "positions": [[1], [1], [1]],
            "source": "personal",
        }
    )
    write_partitioned(frame, tmp_path / "exposures")
    clock = {
        "r1": pd.Timestamp("2025-04-01 00:10", tz="UTC"),
        "r2": pd.Timestamp("2025-04-02 00:20", tz="UTC"),
        "missing": pd.Timestamp("2025-04-02 00:20", tz="UTC"),
    }
    done = retime_exposures(tmp_path, clock, experiment="e")
    assert (done.moved, done.others, done.strays, done.missing) == (2, 1, 1, 1)
    back = read_events(tmp_path, "exposures").set_index("request_id")
    assert back.loc["r1", "ts"] == clock["r1"] and back.loc["r2", "ts"] == clock["r2"]
    assert back.loc["other", "ts"] == served
    dates = sorted(p.parent.name for p in (tmp_path / "exposures").rglob("*.parquet"))
    assert dates == ["date=2025-04-01", "date=2025-04-02", "date=2026-11-28"]
    moved = pq.read_table(tmp_path / "exposures" / "date=2025-04-01" / "part-0.parquet")
    assert moved.column("served_at").to_pylist()[0] == served.to_pydatetime()
