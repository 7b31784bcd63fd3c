"""Suspension records in a real Redis, the CLI, and serving dropping a suspended SKU at once."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import orjson
import pandas as pd
import pytest
from redis.crc import key_slot
from typer.testing import CliRunner

from recsys.cache.keys import SUSPENDED
from recsys.cache.snapshot import suspend_sku
from recsys.cli import app
from recsys.columns import Columns
from recsys.quality.breaker import BreakerConfig, QualityLog, check_quality, suspensions
from recsys.quality.store import (
    LEGACY_LIFTS,
    LIFTS,
    lift_suspension,
    read_lifts,
    read_suspensions,
    write_suspensions,
)
from tests.quality.builders import build_tables, day, write_tables

C = Columns


@pytest.fixture(scope="module")
def found() -> pd.DataFrame:
    log = QualityLog.from_tables(build_tables(), BreakerConfig().fault_reasons)
    return suspensions(check_quality(log, day(60)))


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tables(build_tables(), tmp_path_factory.mktemp("quality-log"))


def test_write_suspensions_records_the_numbers(redis_client: Any, found: pd.DataFrame) -> None:
    new, old = write_suspensions(redis_client, found, BreakerConfig())
    assert (new, old) == (["s00"], [])
    record = read_suspensions(redis_client)["s00"]
    row = found.iloc[0]
    assert record["numbers"]["units"] == 14 and record["numbers"]["fault_returns"] == 13
    assert record["numbers"]["category_rate"] == pytest.approx(row["category_rate"])
    assert record["numbers"]["bound"] == pytest.approx(row["bound"])
    assert record["numbers"]["window_days"] == 14
    assert record["detected_at"] == day(60).isoformat()
    assert record["window_start"] == day(46).isoformat()
    assert record["by"] == "quality-check" and "13 of 14 units" in record["reason"]


def test_write_suspensions_keeps_an_existing_record(redis_client: Any, found: pd.DataFrame) -> None:
    suspend_sku(redis_client, "s00", {"reason": "complaints", "by": "ops"})
    new, old = write_suspensions(redis_client, found, BreakerConfig())
    assert (new, old) == ([], ["s00"])
    assert read_suspensions(redis_client)["s00"]["reason"] == "complaints"


def test_lift_removes_and_remembers(redis_client: Any, found: pd.DataFrame) -> None:
    write_suspensions(redis_client, found, BreakerConfig())
    assert lift_suspension(redis_client, "s00", at=day(52), by="ops") is True
    assert "s00" not in read_suspensions(redis_client)
    assert read_lifts(redis_client) == {"s00": day(52)}
    assert orjson.loads(redis_client.hget(LIFTS, "s00"))["by"] == "ops"
    assert lift_suspension(redis_client, "s00") is False
    # the next check counts only what was bought since the lift: not enough to suspend again
    log = QualityLog.from_tables(build_tables(), BreakerConfig().fault_reasons)
    again = suspensions(check_quality(log, day(60), lifted=read_lifts(redis_client)))
    assert again.empty


def test_lift_of_a_sku_not_suspended_is_recorded_anyway(redis_client: Any) -> None:
    assert lift_suspension(redis_client, "t3", at=day(30), by="ops") is False
    assert read_lifts(redis_client) == {"t3": day(30)}
    assert read_suspensions(redis_client) == {}


def test_lifts_share_the_cluster_slot_of_the_suspensions() -> None:
    # one slot, so the lift script may touch both hashes on a Redis Cluster
    assert key_slot(LIFTS.encode()) == key_slot(SUSPENDED.encode())
    assert key_slot(LEGACY_LIFTS.encode()) != key_slot(SUSPENDED.encode())


def test_lifts_kept_under_the_old_key_still_count(redis_client: Any) -> None:
    record = {"lifted_at": day(40).isoformat(), "by": "ops"}
    redis_client.hset(LEGACY_LIFTS, mapping={"s00": orjson.dumps(record), "s01": b"{}"})
    assert read_lifts(redis_client) == {"s00": day(40)}
    lift_suspension(redis_client, "s00", at=day(50))
    lift_suspension(redis_client, "s02", at=day(20))
    redis_client.hset(
        LEGACY_LIFTS, "s02", orjson.dumps({**record, "lifted_at": day(25).isoformat()})
    )
    assert read_lifts(redis_client) == {"s00": day(50), "s02": day(25)}  # the latest lift wins


def test_read_suspensions_tolerates_text_records(redis_client: Any) -> None:
    redis_client.hset(SUSPENDED, "s05", b"not json")
    assert read_suspensions(redis_client) == {"s05": {"reason": "not json"}}
    redis_client.hset(LIFTS, "s05", b"not json")
    assert read_lifts(redis_client) == {}


def test_lift_rejects_an_empty_id(redis_client: Any) -> None:
    with pytest.raises(ValueError, match="sku_id"):
        lift_suspension(redis_client, "")


def test_cli_quality_check_writes_lists_and_lifts(
    redis_client: Any, redis_url: str, data_dir: Path
) -> None:
    runner = CliRunner()
    args = ["quality-check", "--data", str(data_dir), "--redis-url", redis_url]
    result = runner.invoke(app, [*args, "--at", day(60).isoformat()])
    assert result.exit_code == 0, result.output
    assert "s00" in result.output and "suspended 1 new SKUs" in result.output
    assert set(read_suspensions(redis_client)) == {"s00"}
    listed = runner.invoke(app, ["suspensions", "list", "--redis-url", redis_url])
    assert listed.exit_code == 0 and "s00" in listed.output and "1 suspended" in listed.output
    lifted = runner.invoke(app, ["suspensions", "lift", "s00", "--redis-url", redis_url])
    assert lifted.exit_code == 0 and "lifted" in lifted.output
    assert read_suspensions(redis_client) == {}


def test_cli_quality_check_dry_run_writes_nothing(
    redis_client: Any, redis_url: str, data_dir: Path
) -> None:
    result = CliRunner().invoke(
        app,
        ["quality-check", "--data", str(data_dir), "--redis-url", redis_url, "--dry-run"],
    )
    assert result.exit_code == 0, result.output
    assert "s00" in result.output and "nothing written" in result.output
    assert read_suspensions(redis_client) == {}


def test_cli_quality_check_names_a_missing_directory(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["quality-check", "--data", str(tmp_path / "nope")])
    assert result.exit_code == 1 and "not found" in result.output


def test_suspended_sku_leaves_served_feeds_within_a_second(
    redis_client: Any, redis_url: str, data_dir: Path
) -> None:
    from serving.auth import add_key
    from tests.serving.conftest import make_settings, serve, sku_ids, wait_for
    from tests.serving.world import publish

    publish(redis_client)
    key = add_key(redis_client, ["platform"], name="platform")[0]
    with serve(make_settings(redis_url)) as client:
        client.headers["X-API-Key"] = key
        feed = lambda: sku_ids(client.get("/v1/agents/a00/picks", params={"k": 5}))  # noqa: E731
        assert "s00" in feed()
        result = CliRunner().invoke(
            app,
            [
                "quality-check",
                "--data",
                str(data_dir),
                "--redis-url",
                redis_url,
                "--at",
                day(60).isoformat(),
            ],
        )
        assert result.exit_code == 0, result.output
        started = time.monotonic()
        wait_for(lambda: "s00" not in feed(), timeout_s=1.0)
        assert time.monotonic() - started < 1.0
