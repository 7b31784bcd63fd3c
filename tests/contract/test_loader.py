"""`load_tables`: the one loading path, and what it does when rows are quarantined."""

from __future__ import annotations

import warnings
from pathlib import Path

import pandas as pd
import pytest

from recsys.columns import Columns as C
from recsys.columns import Tables as T
from recsys.contract.loader import QuarantineWarning, load_tables
from recsys.exceptions import SchemaError
from tests.contract.conftest import NOW, typed_tables, valid_tables, write_data_dir


@pytest.fixture()
def dirty_dir(tmp_path: Path) -> Path:
    """A data directory with two bad purchase lines (P2 and P4)."""
    tables = valid_tables()
    tables[T.PURCHASES].loc[1, C.QTY] = 0
    tables[T.PURCHASES].loc[3, C.SKU_ID] = "S404"
    return write_data_dir(tmp_path / "data", tables, "parquet")


def test_load_tables_returns_typed_tables_when_clean(data_dir: Path) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        tables = load_tables(data_dir, now=NOW)
    assert list(tables) == list(T.ALL)
    for name, frame in typed_tables().items():
        pd.testing.assert_frame_equal(tables[name], frame)
    assert not (data_dir / "quarantine").exists()


def test_load_tables_warns_with_counts_and_where(dirty_dir: Path) -> None:
    with pytest.warns(QuarantineWarning, match=r"2 rows of .* quarantined \(purchases 2/4\)") as w:
        tables = load_tables(dirty_dir, now=NOW)
    assert str(dirty_dir / "quarantine" / "purchases.csv") in str(w[0].message)
    assert tables[T.PURCHASES][C.PURCHASE_ID].tolist() == ["P1", "P3"]
    assert (dirty_dir / "quarantine" / "purchases.csv").is_file()


def test_load_tables_raises_with_counts(dirty_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"2 rows of .* quarantined \(purchases 2/4\); see "):
        load_tables(dirty_dir, on_quarantine="raise", quarantine_dir=tmp_path / "q", now=NOW)
    assert (tmp_path / "q" / "purchases.csv").is_file()


def test_load_tables_ignore_writes_nothing_by_default(dirty_dir: Path) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        tables = load_tables(dirty_dir, on_quarantine="ignore", now=NOW)
    assert len(tables[T.PURCHASES]) == 2
    assert not (dirty_dir / "quarantine").exists()


def test_load_tables_says_when_quarantine_cannot_be_written(
    dirty_dir: Path, tmp_path: Path
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    with pytest.warns(QuarantineWarning, match=f"could not write quarantine files to {blocker}"):
        load_tables(dirty_dir, quarantine_dir=blocker, now=NOW)


def test_load_tables_rejects_unknown_on_quarantine(data_dir: Path) -> None:
    with pytest.raises(ValueError, match="on_quarantine must be one of .* got 'drop'"):
        load_tables(data_dir, on_quarantine="drop")  # type: ignore[arg-type]


def test_load_tables_raises_schema_error_for_missing_table(data_dir: Path) -> None:
    next(data_dir.glob("agents.*")).unlink()
    with pytest.raises(SchemaError, match="table 'agents' not found"):
        load_tables(data_dir, now=NOW)
