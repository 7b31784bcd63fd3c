"""Fixtures of the contract tests: a tiny valid data directory, written as Parquet or CSV."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest

from recsys.columns import Columns as C
from recsys.columns import Tables
from recsys.contract.arrow_tables import with_event_ids
from recsys.contract.io import read_raw_table, write_table
from recsys.contract.validate import ValidationResult

NOW = pd.Timestamp("2025-07-01T00:00:00Z")


def _ts(values: list[str]) -> pd.Series:
    return pd.Series(
        pd.to_datetime(values, utc=True, format="ISO8601"), dtype="datetime64[ns, UTC]"
    )


def typed_tables() -> dict[str, pd.DataFrame]:
    """`valid_tables` as validation outputs them: event ids as Arrow-backed `str`."""
    return {name: with_event_ids(name, frame) for name, frame in valid_tables().items()}


def valid_tables() -> dict[str, pd.DataFrame]:
    """Six small tables that pass every check, typed as validation outputs them but for event ids
    (Python `str` here, as a caller may pass them; `typed_tables` has them as validated)."""
    skus = pd.DataFrame(
        {
            C.SKU_ID: ["S1", "S2", "S3"],
            C.TITLE: ["Fish fillet 500g", "Rice 5kg", "Face cream"],
            C.CATEGORY: ["fresh", "staples", "beauty"],
            C.SERIES: ["sea", None, "glow"],
            C.BRAND: ["Haixian", "Daomi", "Lumi"],
            C.PRICE: [39.9, 59.0, 128.5],
            C.TAGS: [["frozen", "seafood"], [], ["gift"]],
            C.LAUNCHED_AT: _ts(["2024-01-01", "2024-02-01", "2025-03-15T08:30:00+08:00"]),
            C.REGIONS: [[], ["north", "east"], ["east"]],
            C.STATUS: ["active", "active", "suspended"],
        }
    )
    agents = pd.DataFrame(
        {
            C.AGENT_ID: ["A1", "A2"],
            C.REGION: ["east", "north"],
            C.TIER: [3, 1],
            C.JOINED_AT: _ts(["2024-01-10", "2024-05-01"]),
        }
    )
    customers = pd.DataFrame(
        {
            C.CUSTOMER_ID: ["C1", "C2", "C3"],
            C.REGION: ["east", "east", "north"],
            C.AGENT_ID: ["A1", "A1", "A2"],
            C.JOINED_AT: _ts(["2024-02-01", "2024-03-01", "2024-06-01"]),
        }
    )
    shares = pd.DataFrame(
        {
            C.SHARE_ID: ["H1", "H2"],
            C.TS: _ts(["2025-04-01T09:00:00Z", "2025-04-02T10:00:00Z"]),
            C.AGENT_ID: ["A1", "A2"],
            C.SKU_ID: ["S1", "S2"],
            C.CHANNEL: ["g-compound-7", "g-office"],
            C.AUDIENCE_SIZE: pd.array([120, None], dtype="Int64"),
        }
    )
    purchases = pd.DataFrame(
        {
            C.PURCHASE_ID: ["P1", "P2", "P3", "P4"],
            C.ORDER_ID: ["O1", "O1", "O2", "O3"],
            C.TS: _ts(
                [
                    "2025-04-01T10:00:00Z",
                    "2025-04-01T10:00:00Z",
                    "2025-04-03T12:00:00Z",
                    "2025-05-01T08:00:00Z",
                ]
            ),
            C.CUSTOMER_ID: ["C1", "C1", "C3", "C2"],
            C.AGENT_ID: ["A1", "A1", "A2", "A1"],
            C.SKU_ID: ["S1", "S3", "S2", "S1"],
            C.QTY: [2, 1, 3, 1],
            C.UNIT_PRICE: [39.9, 0.0, 55.0, 39.9],
            C.SHARE_ID: ["H1", None, "H2", None],
        }
    )
    returns = pd.DataFrame(
        {
            C.RETURN_ID: ["R1", "R2"],
            C.TS: _ts(["2025-04-05T10:00:00Z", "2025-04-06T10:00:00Z"]),
            C.PURCHASE_ID: ["P1", "P3"],
            C.QTY: [1, 3],
            C.REASON: ["quality", "fit"],
        }
    )
    return {
        Tables.SKUS: skus,
        Tables.AGENTS: agents,
        Tables.CUSTOMERS: customers,
        Tables.SHARES: shares,
        Tables.PURCHASES: purchases,
        Tables.RETURNS: returns,
    }


def write_data_dir(path: Path, tables: dict[str, pd.DataFrame], fmt: str = "parquet") -> Path:
    """Write `tables` to `path` as `<table>.parquet`, `<table>.csv` or `<table>/part-N.parquet`."""
    for name, frame in tables.items():
        if fmt == "folder":
            half = len(frame) // 2
            write_table(frame.iloc[:half], path / name / "part-0.parquet", name)
            write_table(frame.iloc[half:], path / name / "part-1.csv", name)
        else:
            write_table(frame, path / f"{name}.{fmt}", name)
    return path


@pytest.fixture()
def tables() -> dict[str, pd.DataFrame]:
    """A fresh copy of the valid tables, to corrupt in a test."""
    return valid_tables()


@pytest.fixture(params=["parquet", "csv"])
def data_dir(request: pytest.FixtureRequest, tmp_path: Path) -> Path:
    """A valid data directory, once as Parquet files and once as CSV files."""
    return write_data_dir(tmp_path / "data", valid_tables(), request.param)


@pytest.fixture()
def make_dir(tmp_path: Path) -> Callable[..., Path]:
    """Write tables to a new directory under tmp_path."""
    counter = iter(range(1000))

    def make(tables: dict[str, pd.DataFrame], fmt: str = "parquet") -> Path:
        return write_data_dir(tmp_path / f"data{next(counter)}", tables, fmt)

    return make


def read_raw(data_dir: Path) -> dict[str, pd.DataFrame]:
    """The six raw tables of `data_dir`, as validation receives them."""
    return {name: read_raw_table(data_dir, name) for name in Tables.ALL}


def record(result: ValidationResult, table: str, row: int) -> dict[str, object]:
    """The quarantine record of data row `row` (1-based) of `table`."""
    q = result.quarantine
    found = q[(q["table"] == table) & (q["row"] == row)]
    assert len(found) == 1, f"expected one record for {table} row {row}, got\n{q}"
    return found.iloc[0].to_dict()


@pytest.fixture()
def raw(tmp_path: Path) -> dict[str, pd.DataFrame]:
    """The valid tables as read from CSV files: all text, with source file and row number."""
    return read_raw(write_data_dir(tmp_path / "raw", valid_tables(), "csv"))
