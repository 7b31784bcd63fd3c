"""The quality breaker on a real Redis Cluster: check, serve without the SKU, lift, serve again."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest
from typer.testing import CliRunner

from recsys.cache.keys import SUSPENDED
from recsys.cli import app
from recsys.quality.store import LIFTS, read_lifts, read_suspensions
from serving.auth import add_key
from tests.cluster.world import publish_world
from tests.quality.builders import build_tables, day, write_tables
from tests.serving.conftest import make_settings, serve, sku_ids, wait_for
from tests.serving.world import AGENTS, served

pytestmark = pytest.mark.cluster


def test_quality_check_suspends_and_a_lift_serves_the_sku_again(
    cluster_client: Any, cluster_url: str, tmp_path: Path
) -> None:
    data_dir = write_tables(build_tables(), tmp_path / "log")
    check = ["quality-check", "--data", str(data_dir), "--redis-url", cluster_url]
    check += ["--at", day(60).isoformat()]
    runner = CliRunner()
    publish_world(cluster_client, shift=0)
    key = add_key(cluster_client, ["platform"], name="platform")[0]
    # The two hashes of a lift share a slot, so one master holds both.
    assert cluster_client.keyslot(LIFTS) == cluster_client.keyslot(SUSPENDED)
    with serve(make_settings(cluster_url)) as c:
        c.headers["X-API-Key"] = key
        feed = lambda: sku_ids(c.get("/v1/agents/a00/picks", params={"k": 5}))  # noqa: E731
        full = served(AGENTS, "a00", 0, k=5)
        assert feed() == full and full[0] == "s00"
        result = runner.invoke(app, check)
        assert result.exit_code == 0, result.output
        assert "suspended 1 new SKUs" in result.output
        assert set(read_suspensions(cluster_client)) == {"s00"}
        wait_for(lambda: feed() == [*full[1:], served(AGENTS, "a00", 0, k=6)[5]])
        lifted = runner.invoke(
            app, ["suspensions", "lift", "s00", "--redis-url", cluster_url, "--by", "ops"]
        )
        assert lifted.exit_code == 0, lifted.output
        assert "lifted the suspension of s00" in lifted.output
        wait_for(lambda: feed() == full)
    assert read_suspensions(cluster_client) == {}
    assert set(read_lifts(cluster_client)) == {"s00"}
    assert orjson.loads(cluster_client.hget(LIFTS, "s00"))["by"] == "ops"
    # Evidence from before the lift does not suspend it again.
    again = runner.invoke(app, check)
    assert again.exit_code == 0, again.output
    assert "suspended 0 new SKUs" in again.output
    assert read_suspensions(cluster_client) == {}
