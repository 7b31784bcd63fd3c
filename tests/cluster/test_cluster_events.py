"""Events on a real Redis Cluster: POST /v1/events and served feeds → `recsys sink` → Parquet."""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from recsys.cli import app
from recsys.columns import Tables
from recsys.contract.loader import load_tables
from recsys.events.consumer import GroupReader
from recsys.events.stream import seen_key
from serving.auth import add_key
from tests.cluster.world import publish_world
from tests.events.conftest import click, expected_table, purchase, ret, share, write_catalogue
from tests.serving.conftest import make_settings, serve, wait_for

pytestmark = pytest.mark.cluster


def test_posted_events_and_served_feeds_reach_parquet_through_a_cluster(
    cluster_client: Any, cluster_url: str, tmp_path: Path
) -> None:
    settings = make_settings(cluster_url, sink_lag_interval_s=0.05)
    events, exposures = settings.event_stream, settings.exposure_stream
    # The two streams sit in different slots: one XREADGROUP over both would be refused.
    assert cluster_client.keyslot(events) != cluster_client.keyslot(exposures)
    assert not GroupReader(cluster_client, (events, exposures), "g", "c").one_read
    # The intake's script touches the stream and its markers: one slot.
    assert cluster_client.keyslot(seen_key(events, "pu-3")) == cluster_client.keyslot(events)
    data = write_catalogue(tmp_path / "live")
    publish_world(cluster_client, shift=0)
    keys = {s: add_key(cluster_client, [s], name=s)[0] for s in ("events", "platform")}
    items = [share(i) for i in range(6)] + [purchase(i) for i in range(6)]
    items += [ret(i) for i in range(0, 6, 2)] + [click(i) for i in range(3)]
    with serve(settings) as c:
        for start in range(0, len(items), 5):
            answer = c.post(
                "/v1/events",
                json={"events": items[start : start + 5]},
                headers={"X-API-Key": keys["events"]},
            )
            assert answer.status_code == 200, answer.text
            assert answer.json()["rejected"] == [] and answer.json()["duplicates"] == 0
        again = c.post(
            "/v1/events", json={"events": items[:5]}, headers={"X-API-Key": keys["events"]}
        )
        assert (again.json()["accepted"], again.json()["duplicates"]) == (5, 5)
        c.headers["X-API-Key"] = keys["platform"]
        served = [c.get(f"/v1/agents/a0{i}/picks", params={"k": 3}).json() for i in (1, 4)]
        wait_for(lambda: cluster_client.xlen(exposures) == 2)
        assert cluster_client.xlen(events) == len(items)
        result = CliRunner().invoke(
            app, ["sink", "--data", str(data), "--redis-url", cluster_url, "--once", "--batch", "4"]
        )
        assert result.exit_code == 0, result.output
        assert f"{len(items) + 2} entries" in result.output
        # The service reads the sink group's lag per stream from the cluster too.
        lag = re.compile(r'recsys_sink_lag_seconds\{stream="(events:v1:\w+)"\} 0\.0')
        wait_for(lambda: len(set(lag.findall(c.get("/metrics").text))) == 2)
    tables = load_tables(data, on_quarantine="raise")
    for kind, table, key in (
        ("share", Tables.SHARES, "share_id"),
        ("purchase", Tables.PURCHASES, "purchase_id"),
        ("return", Tables.RETURNS, "return_id"),
    ):
        loaded = tables[table].sort_values(key, key=lambda s: s.str[1:].astype(int))
        pd.testing.assert_frame_equal(
            loaded.reset_index(drop=True), expected_table(items, kind), check_dtype=True
        )
    clicks = pq.read_table(data / "clicks").to_pandas()
    assert sorted(clicks["event_id"]) == ["cl-0", "cl-1", "cl-2"]
    rows = pq.read_table(data / "exposures").to_pylist()
    assert sorted(r["request_id"] for r in rows) == sorted(a["request_id"] for a in served)
    by_request = {r["request_id"]: r for r in rows}
    for answer in served:
        assert by_request[answer["request_id"]]["sku_ids"] == [p["sku_id"] for p in answer["picks"]]
    # A second run finds nothing left and writes nothing twice.
    rerun = CliRunner().invoke(
        app, ["sink", "--data", str(data), "--redis-url", cluster_url, "--once"]
    )
    assert rerun.exit_code == 0 and "0 entries" in rerun.output, rerun.output


def test_a_reader_of_streams_in_two_slots_reads_each_and_waits_block_ms_in_all(
    cluster_client: Any,
) -> None:
    streams = ("sink-test:a", "sink-test:b")
    assert cluster_client.keyslot(streams[0]) != cluster_client.keyslot(streams[1])
    reader = GroupReader(cluster_client, streams, "g", "alive", count=10)
    reader.ensure_groups()
    started = time.monotonic()
    assert reader.read(new=True, block_ms=1000) == {}
    # block_ms is split between the streams, not spent on each
    assert 0.9 <= time.monotonic() - started < 1.9
    cluster_client.xadd(streams[1], {"n": "1"})
    cluster_client.xadd(streams[0], {"n": "2"})
    started = time.monotonic()
    got = reader.read(new=True, block_ms=1000)
    assert time.monotonic() - started < 0.5  # entries there: no wait
    assert {s: [f for _, f in e] for s, e in got.items()} == {
        streams[0]: [{"n": "2"}],
        streams[1]: [{"n": "1"}],
    }
    # A consumer that dies with entries pending: another takes them over (XAUTOCLAIM).
    cluster_client.xadd(streams[1], {"n": "3"})
    assert reader.read(new=True) != {}
    heir = GroupReader(cluster_client, streams, "g", "heir", count=1, claim_idle_ms=0)
    assert heir.claim_stale() == 3  # a cursor walk, one entry per call
    heir.count = 10
    pending = heir.read(new=False)
    assert sorted(f["n"] for e in pending.values() for _, f in e) == ["1", "2", "3"]
    heir.ack({s: [i for i, _ in e] for s, e in pending.items()})
    assert heir.read(new=False) == {} and reader.read(new=False) == {}
