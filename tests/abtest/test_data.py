"""Reading exposures and clicks from date-partitioned Parquet, and the whole data directory."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from recsys.abtest.data import (
    CLICKS,
    EXPOSURES,
    load_experiment_data,
    read_events,
    write_partitioned,
)
from recsys.abtest.outcomes import OutcomeSettings, build_outcomes
from recsys.columns import Tables
from recsys.contract.arrow_tables import with_event_ids
from recsys.exceptions import SchemaError
from tests.abtest.conftest import tiny_data


def test_read_events_round_trips_partitions(tmp_path: Path) -> None:
    exposures = tiny_data().exposures
    written = write_partitioned(exposures, tmp_path / EXPOSURES)
    assert sorted(p.parent.name for p in written) == sorted(
        {f"date={d}" for d in exposures["ts"].dt.strftime("%Y-%m-%d")}
    )
    back = read_events(tmp_path, EXPOSURES).sort_values("event_id").reset_index(drop=True)
    expected = exposures.sort_values("event_id").reset_index(drop=True)
    assert back["ts"].dtype == "datetime64[ns, UTC]"
    pd.testing.assert_frame_equal(
        back.drop(columns=["sku_ids", "positions"]), expected.drop(columns=["sku_ids", "positions"])
    )
    assert [list(v) for v in back["sku_ids"]] == list(expected["sku_ids"])


def test_read_events_selects_date_folders(tmp_path: Path) -> None:
    write_partitioned(tiny_data().exposures, tmp_path / EXPOSURES)
    some = read_events(tmp_path, EXPOSURES, min_date="2025-03-11", max_date="2025-03-12")
    assert sorted(some["event_id"]) == ["E2", "E4", "E5", "E6", "E7"]


def test_read_events_takes_naive_and_epoch_times_as_utc(tmp_path: Path) -> None:
    clicks = tiny_data().clicks.head(2)
    naive = clicks.assign(ts=clicks["ts"].dt.tz_localize(None))
    (tmp_path / CLICKS / "date=2025-03-11").mkdir(parents=True)
    pq.write_table(pa.Table.from_pandas(naive), tmp_path / CLICKS / "date=2025-03-11" / "a.parquet")
    epoch = clicks.assign(ts=clicks["ts"].astype("int64") // 1_000_000, event_id=["K8", "K9"])
    pq.write_table(pa.Table.from_pandas(epoch), tmp_path / CLICKS / "date=2025-03-11" / "b.parquet")
    back = read_events(tmp_path, CLICKS)
    assert list(back["ts"]) == list(clicks["ts"]) * 2
    assert back["request_id"].isna().all()


def test_read_events_names_the_bad_file(tmp_path: Path) -> None:
    folder = tmp_path / EXPOSURES / "date=2025-03-10"
    folder.mkdir(parents=True)
    pq.write_table(pa.table({"event_id": ["E1"]}), folder / "part-0.parquet")
    with pytest.raises(SchemaError, match="part-0.parquet: missing column\\(s\\) 'request_id'"):
        read_events(tmp_path, EXPOSURES)
    (folder / "part-0.parquet").write_bytes(b"not parquet")
    with pytest.raises(SchemaError, match="cannot read .*part-0.parquet"):
        read_events(tmp_path, EXPOSURES)
    with pytest.raises(FileNotFoundError, match="no clicks in .*expected .*clicks/date="):
        read_events(tmp_path, CLICKS)


def test_load_experiment_data_reads_a_written_simulation(
    sim_effect_dir: Path, sim_effect_tiny
) -> None:
    data = load_experiment_data(sim_effect_dir)
    assert data.notes == []
    for name in ("exposures", "clicks", "shares", "purchases", "returns", "customers"):
        got, expected = getattr(data, name), getattr(sim_effect_tiny.data, name)
        if name in Tables.ALL:  # contract tables come back as the loader types them
            expected = with_event_ids(name, expected.copy())
        pd.testing.assert_frame_equal(
            got.drop(columns=["sku_ids", "positions"], errors="ignore"),
            expected.drop(columns=["sku_ids", "positions"], errors="ignore"),
            obj=name,
        )
    settings = OutcomeSettings(start=pd.Timestamp("2025-03-03", tz="UTC"))
    pd.testing.assert_frame_equal(
        build_outcomes(data, sim_effect_tiny.experiment, settings).table,
        build_outcomes(sim_effect_tiny.data, sim_effect_tiny.experiment, settings).table,
    )


def test_load_experiment_data_needs_the_folders(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="data directory not found"):
        load_experiment_data(tmp_path / "missing")
    with pytest.raises(FileNotFoundError, match="no exposures in"):
        load_experiment_data(tmp_path)
