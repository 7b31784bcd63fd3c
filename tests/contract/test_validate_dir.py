"""Whole directories: file forms, empty tables, schema errors and the quarantine files."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest

from recsys.columns import Columns as C
from recsys.columns import Tables as T
from recsys.contract.quarantine import QUARANTINE_COLUMNS
from recsys.contract.validate import validate_dir, validate_tables
from recsys.exceptions import SchemaError
from tests.contract.conftest import NOW, typed_tables, valid_tables


def test_validate_dir_keeps_every_valid_row(data_dir: Path) -> None:
    result = validate_dir(data_dir, now=NOW)
    assert result.exit_code == 0
    assert result.quarantine.empty
    assert result.rows_read == {T.SKUS: 3, T.AGENTS: 2, T.CUSTOMERS: 3, T.SHARES: 2,
                                T.PURCHASES: 4, T.RETURNS: 2}  # fmt: skip
    for name, frame in typed_tables().items():
        pd.testing.assert_frame_equal(result.tables[name], frame, check_dtype=True)


def test_validate_dir_csv_and_parquet_keep_the_same_rows(
    tables: dict[str, pd.DataFrame], make_dir: Callable[..., Path]
) -> None:
    tables[T.SKUS].loc[0, C.PRICE] = -3.5  # cascades into shares, purchases, returns
    tables[T.PURCHASES].loc[1, C.QTY] = 0
    from_parquet = validate_dir(make_dir(tables, "parquet"), now=NOW)
    from_csv = validate_dir(make_dir(tables, "csv"), now=NOW)
    for name in T.ALL:
        pd.testing.assert_frame_equal(from_parquet.tables[name], from_csv.tables[name])
    assert len(from_parquet.tables[T.PURCHASES]) == 1
    compared = ["table", "row", "column", "reason_code"]
    pd.testing.assert_frame_equal(from_parquet.quarantine[compared], from_csv.quarantine[compared])


def test_validate_dir_reads_partitioned_folders(
    tables: dict[str, pd.DataFrame], make_dir: Callable[..., Path]
) -> None:
    tables[T.PURCHASES].loc[3, C.QTY] = 0  # P4: second part (a CSV), its row 2
    data_dir = make_dir(tables, "folder")
    assert (data_dir / T.PURCHASES / "part-1.csv").is_file()
    result = validate_dir(data_dir, now=NOW)
    expected = typed_tables()[T.PURCHASES].iloc[:3]
    pd.testing.assert_frame_equal(result.tables[T.PURCHASES], expected)
    assert result.quarantine[["source_file", "row"]].to_dict("records") == [
        {"source_file": "purchases/part-1.csv", "row": 2}
    ]
    assert result.tables[T.SKUS][C.TAGS].tolist() == [["frozen", "seafood"], [], ["gift"]]


def test_validate_dir_accepts_empty_tables(
    tables: dict[str, pd.DataFrame], make_dir: Callable[..., Path]
) -> None:
    tables[T.SHARES] = tables[T.SHARES].iloc[:0]
    tables[T.RETURNS] = tables[T.RETURNS].iloc[:0]
    tables[T.PURCHASES][C.SHARE_ID] = None
    for fmt in ("csv", "parquet"):
        result = validate_dir(make_dir(tables, fmt), now=NOW)
        assert result.exit_code == 0
        assert len(result.tables[T.SHARES]) == 0
        assert list(result.tables[T.RETURNS].columns) == list(tables[T.RETURNS].columns)
        assert len(result.tables[T.PURCHASES]) == 4


def test_validate_dir_names_missing_column(data_dir: Path) -> None:
    suffix = next(data_dir.glob("skus.*")).suffix
    path = data_dir / f"skus{suffix}"
    frame = valid_tables()[T.SKUS].drop(columns=C.PRICE)
    path.unlink()
    from recsys.contract.io import write_table

    write_table(frame, path, T.SKUS)
    with pytest.raises(
        SchemaError, match=r"skus\.(csv|parquet): missing required column\(s\) 'price'"
    ):
        validate_dir(data_dir, now=NOW)


def test_validate_dir_names_unreadable_file(data_dir: Path) -> None:
    path = next(data_dir.glob("purchases.*"))
    path.write_bytes(b"\x00\x01garbage\xff" * 10)
    with pytest.raises(SchemaError, match=f"cannot read {path}"):
        validate_dir(data_dir, now=NOW)


def test_validate_dir_names_missing_table(data_dir: Path) -> None:
    next(data_dir.glob("returns.*")).unlink()
    with pytest.raises(SchemaError, match="table 'returns' not found in"):
        validate_dir(data_dir, now=NOW)


def test_validate_dir_rejects_missing_directory(tmp_path: Path) -> None:
    with pytest.raises(SchemaError, match="data directory .*nowhere does not exist"):
        validate_dir(tmp_path / "nowhere")


def test_validate_dir_refuses_quarantine_in_the_data_dir(data_dir: Path) -> None:
    with pytest.raises(ValueError, match="quarantine_dir must differ from data_dir"):
        validate_dir(data_dir, quarantine_dir=data_dir, now=NOW)


def test_validate_tables_names_missing_table_and_column(raw: dict[str, pd.DataFrame]) -> None:
    with pytest.raises(SchemaError, match="table 'returns' is missing"):
        validate_tables({k: v for k, v in raw.items() if k != T.RETURNS}, now=NOW)
    raw[T.AGENTS] = raw[T.AGENTS].drop(columns=C.TIER)
    with pytest.raises(SchemaError, match="table 'agents': missing required column.*'tier'"):
        validate_tables(raw, now=NOW)


def test_validate_tables_rejects_bad_now(raw: dict[str, pd.DataFrame]) -> None:
    with pytest.raises(ValueError, match="now must be a timestamp, got 'soon'"):
        validate_tables(raw, now="soon")


def test_write_quarantine_writes_one_file_per_rejecting_table(
    tables: dict[str, pd.DataFrame], make_dir: Callable[..., Path], tmp_path: Path
) -> None:
    tables[T.PURCHASES].loc[1, C.UNIT_PRICE] = -2.0
    out = tmp_path / "q"
    result = validate_dir(make_dir(tables, "csv"), quarantine_dir=out, now=NOW)
    assert sorted(p.name for p in out.iterdir()) == ["purchases.csv"]
    written = pd.read_csv(out / "purchases.csv", dtype=str, keep_default_na=False)
    assert tuple(written.columns) == QUARANTINE_COLUMNS
    line = written.iloc[0].to_dict()
    assert line["source_file"] == "purchases.csv"
    assert line["row"] == "2"
    assert line["reason"] == "unit_price must be >= 0, got -2.0"
    assert json.loads(line["raw"]) == {
        "purchase_id": "P2", "order_id": "O1", "ts": "2025-04-01T10:00:00+00:00",
        "customer_id": "C1", "agent_id": "A1", "sku_id": "S3", "qty": "1",
        "unit_price": "-2.0", "share_id": None,
    }  # fmt: skip
    summary = result.summary()
    assert list(summary.columns) == ["table", "read", "kept", "quarantined", "out_of_range"]
    assert summary.set_index("table").loc[T.PURCHASES].tolist() == [4, 3, 1, 1]


def test_write_quarantine_removes_stale_files_only(
    tables: dict[str, pd.DataFrame], make_dir: Callable[..., Path], tmp_path: Path
) -> None:
    out = tmp_path / "q"
    bad = {k: v.copy() for k, v in tables.items()}
    bad[T.SKUS].loc[2, C.STATUS] = "gone"
    validate_dir(make_dir(bad), quarantine_dir=out, now=NOW)
    assert (out / "skus.csv").is_file()
    (out / "agents.csv").write_text("not,a,quarantine,file\n")
    clean = validate_dir(make_dir(tables), quarantine_dir=out, now=NOW)
    assert clean.exit_code == 0
    assert sorted(p.name for p in out.iterdir()) == ["agents.csv"]


def test_validate_dir_ignores_its_default_quarantine_folder(data_dir: Path) -> None:
    bad_copy = data_dir.parent / "copy"
    shutil.copytree(data_dir, bad_copy)
    validate_dir(bad_copy, quarantine_dir=bad_copy / "quarantine", now=NOW)
    (bad_copy / "quarantine").mkdir(exist_ok=True)
    (bad_copy / "quarantine" / "skus.csv").write_text(",".join(QUARANTINE_COLUMNS) + "\n")
    assert validate_dir(bad_copy, now=NOW).exit_code == 0


def test_validate_dir_matches_int_ids_in_parquet_to_text_ids_in_csv(tmp_path: Path) -> None:
    from recsys.contract.io import write_table

    tables = valid_tables()
    skus = tables[T.SKUS].assign(**{C.SKU_ID: [13085, 2, 3]})  # int64 column in Parquet
    purchases = tables[T.PURCHASES].assign(**{C.SKU_ID: ["13085", "3", "2", "13085"]})
    shares = tables[T.SHARES].assign(**{C.SKU_ID: ["13085", "2"]})
    data_dir = tmp_path / "data"
    write_table(skus, data_dir / "skus.parquet", T.SKUS)
    write_table(purchases, data_dir / "purchases.csv", T.PURCHASES)
    write_table(shares, data_dir / "shares.parquet", T.SHARES)
    for name in (T.AGENTS, T.CUSTOMERS, T.RETURNS):
        write_table(tables[name], data_dir / f"{name}.csv", name)
    result = validate_dir(data_dir, now=NOW)
    assert result.exit_code == 0, result.quarantine.to_dict("records")
    assert result.tables[T.SKUS][C.SKU_ID].tolist() == ["13085", "2", "3"]


@pytest.mark.parametrize("fmt", ["parquet", "csv"])
def test_validate_dir_reads_missing_list_as_empty(
    tables: dict[str, pd.DataFrame], make_dir: Callable[..., Path], fmt: str
) -> None:
    tables[T.SKUS][C.TAGS] = [None, ["gift"], []]
    result = validate_dir(make_dir(tables, fmt), now=NOW)
    assert result.exit_code == 0
    assert result.tables[T.SKUS][C.TAGS].tolist() == [[], ["gift"], []]


def test_validate_tables_accepts_typed_frames() -> None:
    # Importers check what they built before writing it: typed frames go through unchanged.
    result = validate_tables(valid_tables(), now=NOW)
    assert result.exit_code == 0
    for name, frame in typed_tables().items():
        pd.testing.assert_frame_equal(result.tables[name], frame)
