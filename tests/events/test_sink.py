"""The sink against the real Redis: POST → stream → Parquet → load_tables, redelivery, claims,
refusals, trimming, folding, the lock and the lag."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import orjson
import pandas as pd
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from recsys.cli import app
from recsys.columns import Tables
from recsys.contract.io import write_table
from recsys.contract.loader import load_tables
from recsys.events.check import check_events, to_records
from recsys.events.kinds import EXPOSURE_SCHEMA, TABLE_SCHEMAS
from recsys.events.lag import measure_lag
from recsys.events.layout import LayoutError, SinkLock, prepare_data_dir
from recsys.events.metrics import SinkMetrics
from recsys.events.sink import Sink
from recsys.events.stream import XADD_EVENTS, script_call
from serving.settings import Settings
from tests.events.conftest import DAY, click, expected_table, purchase, ret, share
from tests.serving.conftest import serve, wait_for
from tests.serving.world import publish

EVENTS = "events:v1:events"
EXPOSURES = "events:v1:exposures"


def _post(redis_client: Any, items: list[dict[str, Any]], ttl_s: int = 3600) -> list[int]:
    """Store checked events the way the route does (same script), without an app."""
    batch = check_events(items)
    assert batch.rejected == []
    records = sorted(
        (int(i), kind, row)
        for kind, typed in batch.typed.items()
        for i, row in zip(typed.positions, to_records(typed), strict=True)
    )
    keys, args = script_call(EVENTS, [(k, r) for _, k, r in records], maxlen=1_000_000, ttl_s=ttl_s)
    return redis_client.register_script(XADD_EVENTS)(keys=keys, args=args)


def _sink(redis_client: Any, data: Path, **options: Any) -> Sink:
    prepare_data_dir(data)
    sink = Sink(redis_client, data, **options)
    sink.start()
    return sink


def _table(data: Path, table: str) -> pd.DataFrame:
    parts = sorted((data / table).rglob("*.parquet"))
    return pd.concat([pq.read_table(p).to_pandas() for p in parts], ignore_index=True)


def test_round_trip_post_to_stream_to_parquet_loads_the_same_rows(
    settings: Settings, keys: dict[str, str], redis_client: Any, catalogue_dir: Path
) -> None:
    items = [share(i) for i in range(12)] + [purchase(i) for i in range(12)]
    items += [ret(i) for i in range(0, 12, 3)] + [click(i) for i in range(5)]
    with serve(settings) as client:
        for start in range(0, len(items), 10):
            answer = client.post(
                "/v1/events",
                json={"events": items[start : start + 10]},
                headers={"X-API-Key": keys["events"]},
            )
            assert answer.status_code == 200 and answer.json()["rejected"] == []
    result = CliRunner().invoke(
        app,
        ["sink", "--data", str(catalogue_dir), "--once", "--batch", "7"],
        env={"REDIS_URL": settings.redis_url},
    )
    assert result.exit_code == 0, result.output
    assert "33 entries" in result.output and "lag now" in result.output
    tables = load_tables(catalogue_dir, on_quarantine="raise")
    for kind, table, key in (
        ("share", Tables.SHARES, "share_id"),
        ("purchase", Tables.PURCHASES, "purchase_id"),
        ("return", Tables.RETURNS, "return_id"),
    ):
        loaded = tables[table].sort_values(key, key=lambda s: s.str[1:].astype(int))
        pd.testing.assert_frame_equal(
            loaded.reset_index(drop=True), expected_table(items, kind), check_dtype=True
        )
    clicks = _table(catalogue_dir, "clicks")
    assert clicks.columns.tolist() == TABLE_SCHEMAS["clicks"].names
    assert clicks["event_id"].tolist() == [f"cl-{i}" for i in range(5)]
    assert clicks["customer_id"].tolist() == [None, "C1", None, "C3", None]
    dates = sorted(p.name for p in (catalogue_dir / Tables.PURCHASES).iterdir())
    days = [f"date={DAY + pd.Timedelta(days=d):%Y-%m-%d}" for d in range(3)]
    assert dates == ["base", *days]
    assert (catalogue_dir / "purchases" / "base" / "empty.parquet").is_file()


def test_exposures_of_served_feeds_land_with_the_documented_schema(
    settings: Settings, keys: dict[str, str], redis_client: Any, tmp_path: Path
) -> None:
    snapshot = publish(redis_client).snapshot
    with serve(settings) as client:
        client.headers["X-API-Key"] = keys["platform"]
        answers = [client.get(f"/v1/agents/a0{i}/picks", params={"k": 3}).json() for i in (2, 5)]
        wait_for(lambda: redis_client.xlen(settings.exposure_stream) == 2)
    sink = _sink(redis_client, tmp_path / "data")
    sink.drain()
    (part,) = sorted((tmp_path / "data" / "exposures").rglob("*.parquet"))
    assert pq.read_schema(part).remove_metadata() == EXPOSURE_SCHEMA
    rows = pq.read_table(part).to_pylist()
    entry_ids = [i.decode() for i, _ in redis_client.xrange(settings.exposure_stream)]
    assert [r["event_id"] for r in rows] == entry_ids
    for row, answer in zip(rows, answers, strict=True):
        assert row["request_id"] == answer["request_id"]
        assert row["sku_ids"] == [p["sku_id"] for p in answer["picks"]]
        assert row["positions"] == [1, 2, 3]
        assert (row["target"], row["agent_id"], row["customer_id"]) == (
            "agent",
            answer["agent_id"],
            None,
        )
        assert (row["snapshot"], row["model_version"], row["source"]) == (
            snapshot,
            "1",
            "personal",
        )
        assert (row["experiment"], row["variant"]) == (None, None)
        assert part.parent.name == f"date={row['ts']:%Y-%m-%d}"


def test_a_sink_dying_after_writing_but_before_acking_writes_nothing_twice(
    redis_client: Any, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    items = [purchase(i) for i in range(30)]
    _post(redis_client, items)
    first = _sink(redis_client, data, batch=20, consumer="c1")

    def crash(ids: dict[str, list[str]]) -> None:
        raise ConnectionError("killed between write and ack")

    first.reader.ack = crash  # type: ignore[method-assign]
    with pytest.raises(ConnectionError):
        first.step()
    assert first.counts.rows["purchases"] == 20  # written, not acknowledged
    again = _sink(redis_client, data, batch=20, consumer="c1")  # restart: same name
    again.drain()
    assert again.counts.duplicates["purchases"] == 20
    assert again.counts.rows["purchases"] == 10
    ids = _table(data, "purchases")["event_id"].dropna().tolist()
    assert sorted(ids) == sorted(f"pu-{i}" for i in range(30))
    assert measure_lag(redis_client, EVENTS, "parquet-sink").entries == 0


def test_entries_left_pending_by_a_dead_consumer_are_claimed_by_another(
    redis_client: Any, tmp_path: Path
) -> None:
    _post(redis_client, [click(i) for i in range(8)])
    dead = _sink(redis_client, tmp_path / "data", batch=5, consumer="dead")
    assert len(dead.reader.read(new=True)[EVENTS]) == 5  # read, then the process died
    other = _sink(redis_client, tmp_path / "data", consumer="other", claim_idle_s=0)
    other.drain()
    assert other.counts.rows["clicks"] == 8
    assert sorted(_table(tmp_path / "data", "clicks")["event_id"]) == sorted(
        f"cl-{i}" for i in range(8)
    )
    pending = redis_client.xpending(EVENTS, "parquet-sink")
    assert pending["pending"] == 0


def test_an_event_id_stored_twice_in_the_stream_is_written_once(
    redis_client: Any, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    assert _post(redis_client, [share(1), share(2)], ttl_s=1) == [1, 1]
    _sink(redis_client, data).drain()
    redis_client.delete(f"{{{EVENTS}}}:seen:sh-1")  # the intake's marker expired
    assert _post(redis_client, [share(1), share(3)]) == [1, 1]
    later = _sink(redis_client, data)  # a fresh process: the ids come from the files
    later.drain()
    assert later.counts.duplicates["shares"] == 1
    assert sorted(_table(data, "shares")["event_id"].dropna()) == ["sh-1", "sh-2", "sh-3"]


def test_refused_and_trimmed_entries_are_set_aside_and_acknowledged(
    redis_client: Any, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    redis_client.xadd(EVENTS, {"event_id": "x1", "kind": "view", "data": "{}"})
    bad = {**purchase(1), "qty": 0}
    redis_client.xadd(EVENTS, {"event_id": "pu-1", "kind": "purchase", "data": orjson.dumps(bad)})
    redis_client.xadd(EXPOSURES, {"request_id": "r1", "ts": "1790000000000", "target": "agent"})
    _post(redis_client, [click(1)])
    sink = _sink(redis_client, data)
    sink.drain()
    lines = [orjson.loads(line) for line in sink.rejected_path.read_bytes().splitlines()]
    assert [(x["stream"], x["reason"]) for x in lines] == [
        (EVENTS, "kind must be one of share, purchase, return, click, got 'view'"),
        (EVENTS, "qty must be >= 1, got 0"),
        (EXPOSURES, "missing field(s) snapshot, source"),
    ]
    assert sink.counts.rows["clicks"] == 1
    # entries trimmed away while pending come back empty: acknowledged, counted
    _post(redis_client, [click(i) for i in range(2, 6)])
    taken = sink.reader.read(new=True)
    assert len(taken[EVENTS]) == 4
    redis_client.xtrim(EVENTS, maxlen=0, approximate=False)
    sink.drain()
    assert sink.counts.trimmed == 4
    assert redis_client.xpending(EVENTS, "parquet-sink")["pending"] == 0


def test_a_single_file_event_table_is_refused_or_folded_keeping_its_rows(
    redis_client: Any, catalogue_dir: Path
) -> None:
    old = expected_table([purchase(101)], "purchase")
    write_table(old, catalogue_dir / "purchases.parquet")
    with pytest.raises(LayoutError, match="rerun with --fold"):
        prepare_data_dir(catalogue_dir)
    prepared = prepare_data_dir(catalogue_dir, fold=True)
    assert prepared.folded == [
        (catalogue_dir / "purchases.parquet", catalogue_dir / "purchases/base/purchases.parquet")
    ]
    assert prepared.created_empty == ["shares", "returns"]
    _post(redis_client, [purchase(1)])
    _sink(redis_client, catalogue_dir).drain()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no row quarantined
        purchases = load_tables(catalogue_dir)["purchases"]
    assert purchases["purchase_id"].tolist() == ["P101", "P1"]  # base/ sorts before date=


def test_one_sink_per_data_directory(tmp_path: Path) -> None:
    with SinkLock(tmp_path):
        with pytest.raises(LayoutError, match=r"another sink \(pid \d+\) is writing"):
            SinkLock(tmp_path).__enter__()
    with SinkLock(tmp_path):  # released on exit
        pass


def test_lag_counts_undelivered_and_pending_entries_and_their_age(
    redis_client: Any, tmp_path: Path
) -> None:
    for ms in range(1000, 8000, 1000):  # 7 entries, ids 1000-0 .. 7000-0
        redis_client.xadd(EVENTS, {"event_id": str(ms), "kind": "x"}, id=f"{ms}-0")
    lag = measure_lag(redis_client, EVENTS, "parquet-sink")
    assert (lag.entries, lag.pending, lag.seconds, lag.exact) == (7, 0, 6.0, True)
    metrics = SinkMetrics()
    sink = _sink(redis_client, tmp_path / "data", batch=3, metrics=metrics)
    sink.reader.read(new=True)  # 3 delivered, not acknowledged
    lag = measure_lag(redis_client, EVENTS, "parquet-sink")
    assert (lag.entries, lag.pending, lag.seconds) == (7, 3, 6.0)
    capped = measure_lag(redis_client, EVENTS, "parquet-sink", cap=2)
    if int(redis_client.info("server")["redis_version"].split(".")[0]) >= 7:
        # the server reports the group's lag itself: exact, no paging, no cap
        assert (capped.entries, capped.exact, capped.describe()) == (7, True, "7 entries (6.0 s)")
    else:  # counted by paging, stopped at the cap
        assert (capped.entries, capped.exact, capped.describe()) == (5, False, "≥5 entries (6.0 s)")
    sink.drain()
    assert [x.entries for x in sink.lag()] == [0, 0]
    text = metrics.render().decode()
    assert f'recsys_sink_lag{{stream="{EVENTS}"}} 0.0' in text
    assert 'recsys_sink_rejected_total{stream="events:v1:events"} 7.0' in text


def test_a_running_sink_waits_out_outages_but_not_bugs() -> None:
    from redis.exceptions import (
        ClusterDownError,
        ConnectionError,
        CrossSlotTransactionError,
        RedisClusterException,
        ResponseError,
    )

    from training.sink_cli import _is_outage

    def unreachable() -> RedisClusterException:
        try:
            raise ConnectionError("Error 111 connecting to 127.0.0.1:7000")
        except ConnectionError as cause:
            try:
                raise RedisClusterException("Redis Cluster cannot be connected") from cause
            except RedisClusterException as exc:
                return exc

    assert _is_outage(ConnectionError("gone"))
    assert _is_outage(ClusterDownError("CLUSTERDOWN The cluster is down"))
    assert _is_outage(unreachable())
    assert not _is_outage(RedisClusterException("XREADGROUP - all keys must map to one slot"))
    assert not _is_outage(CrossSlotTransactionError("keys in two slots"))
    assert not _is_outage(ResponseError("WRONGTYPE"))
