"""A log the simulator writes in chunks (`purchases/part-NNNNN.parquet`, ...) is one data set.

bench/bench_scaling.py's `50m` size is such a log; these tests prove, on a short `tiny` world,
that the parts are a valid data-contract directory holding exactly the rows of the same run
written as single files, with ids unique across parts, and that Spark reads it as the same data.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow.parquet as pq
import pytest

from recsys.columns import Columns, Tables
from recsys.contract.loader import load_tables
from recsys.contract.validate import validate_dir
from recsys.simulation.config import SimConfig
from recsys.simulation.simulate import EVENT_TABLES, write_simulation

C = Columns
CHUNK_ROWS = 1500
ID_COLUMN = {
    Tables.PURCHASES: C.PURCHASE_ID,
    Tables.SHARES: C.SHARE_ID,
    Tables.RETURNS: C.RETURN_ID,
}


@pytest.fixture(scope="module")
def both(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, dict[str, int]]:
    """The same world written whole and in parts of CHUNK_ROWS rows; the parts' row counts."""
    config = SimConfig.preset("tiny", n_days=30)
    whole, chunked = tmp_path_factory.mktemp("whole"), tmp_path_factory.mktemp("chunked")
    write_simulation(config, 3, whole, progress=False)
    summary = write_simulation(config.replace(chunk_rows=CHUNK_ROWS), 3, chunked, progress=False)
    return whole, chunked, summary.rows


def test_chunked_log_is_a_valid_directory_of_parts(both: tuple[Path, Path, dict[str, int]]) -> None:
    _, chunked, written = both
    parts = sorted((chunked / Tables.PURCHASES).glob("part-*.parquet"))
    assert len(parts) >= 3 and not (chunked / f"{Tables.PURCHASES}.parquet").exists()
    result = validate_dir(chunked, now="2026-01-01")
    assert result.quarantine.empty, result.quarantine.head().to_string()
    for table in EVENT_TABLES:
        files = sorted((chunked / table).glob("*.parquet")) or [chunked / f"{table}.parquet"]
        in_parts = sum(pq.read_metadata(f).num_rows for f in files)
        assert result.rows_read[table] == in_parts == written[table], table


def test_ids_are_unique_across_parts_and_references_resolve(
    both: tuple[Path, Path, dict[str, int]],
) -> None:
    _, chunked, _ = both
    tables = load_tables(chunked)
    for table, column in ID_COLUMN.items():
        assert tables[table][column].is_unique, table
    purchases = tables[Tables.PURCHASES]
    assert tables[Tables.RETURNS][C.PURCHASE_ID].isin(purchases[C.PURCHASE_ID]).all()
    shared = purchases[C.SHARE_ID].dropna()
    assert len(shared) and shared.isin(tables[Tables.SHARES][C.SHARE_ID]).all()


def test_parts_hold_exactly_the_rows_of_the_whole_run(
    both: tuple[Path, Path, dict[str, int]],
) -> None:
    whole, chunked, _ = both
    one, many = load_tables(whole), load_tables(chunked)
    for table in Tables.ALL:
        key = ID_COLUMN.get(table, one[table].columns[0])
        a = one[table].sort_values(key, ignore_index=True)
        b = many[table].sort_values(key, ignore_index=True)
        pd.testing.assert_frame_equal(a, b, obj=table)


@pytest.mark.spark
def test_spark_reads_the_parts_as_the_same_data_set(
    spark: Any, both: tuple[Path, Path, dict[str, int]]
) -> None:
    from training.spark.io import fingerprint, read_tables

    whole, chunked, written = both
    one, many = (
        fingerprint(read_tables(spark, str(whole))),
        fingerprint(read_tables(spark, str(chunked))),
    )
    assert many["digest"] == one["digest"]
    assert many[Tables.PURCHASES]["rows"] == written[Tables.PURCHASES]
    purchases = read_tables(spark, str(chunked))[Tables.PURCHASES]
    assert purchases.select(C.PURCHASE_ID).distinct().count() == written[Tables.PURCHASES]
