"""Quarantine records: reason codes, the rows a check rejects, and the result of a validation.

A quarantine file (`<table>.csv`) has one line per rejected row with the columns of
`QUARANTINE_COLUMNS`; the format is documented in docs/data-contract.md.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from recsys.columns import Tables
from recsys.contract.io import SOURCE_FILE, SOURCE_ROW
from recsys.contract.schema import TableSpec

# Reason codes, in the order the checks run; a row's first problem gives its code.
NULL = "null"
BAD_TYPE = "bad_type"
BAD_LIST = "bad_list"
OUT_OF_RANGE = "out_of_range"
NOT_ALLOWED = "not_allowed"
TS_OUT_OF_RANGE = "ts_out_of_range"
DUPLICATE_ID = "duplicate_id"
MISSING_REF = "missing_ref"
REF_QUARANTINED = "ref_quarantined"
RETURN_BEFORE_PURCHASE = "return_before_purchase"
OVER_RETURN = "over_return"
REASON_CODES: tuple[str, ...] = (
    NULL,
    BAD_TYPE,
    BAD_LIST,
    OUT_OF_RANGE,
    NOT_ALLOWED,
    TS_OUT_OF_RANGE,
    DUPLICATE_ID,
    MISSING_REF,
    REF_QUARANTINED,
    RETURN_BEFORE_PURCHASE,
    OVER_RETURN,
)

QUARANTINE_COLUMNS: tuple[str, ...] = (
    "table",
    "source_file",
    "row",
    "column",
    "reason_code",
    "reason",
    "value",
    "raw",
)
SUMMARY_COLUMNS: tuple[str, ...] = ("table", "read", "kept", "quarantined")


@dataclass(frozen=True)
class Problem:
    """Rows of one column that break one rule: positions in the table, reasons, offending values."""

    column: str
    code: str
    positions: np.ndarray
    reasons: list[str]
    values: list[str]


def jsonable(value: Any) -> Any:
    """A raw cell as a JSON value: arrays as lists, datetimes as ISO-8601, missing as null."""
    if isinstance(value, np.ndarray | list | tuple):
        return [jsonable(v) for v in value]
    if value is None or (np.ndim(value) == 0 and pd.isna(value)):
        return None
    if isinstance(value, datetime):
        return pd.Timestamp(value).isoformat()
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not np.isfinite(value):
        return str(value)
    return value if isinstance(value, str | int | float | bool) else str(value)


def quarantine_rows(
    raw: pd.DataFrame, spec: TableSpec, problems: list[Problem], display: Callable[[str], str]
) -> pd.DataFrame:
    """One quarantine record per rejected row, plus its `position` in `raw` and `first_reason`.

    The first problem found names the row's column, reason code and value; the reason lists
    every problem of the row, separated by "; ".
    """
    if not problems:
        return pd.DataFrame(columns=[*QUARANTINE_COLUMNS, "position", "first_reason"]).astype(
            {"row": "int64", "position": "int64"}
        )
    issues = pd.DataFrame(
        {
            "position": np.concatenate([p.positions for p in problems]).astype("int64"),
            "column": np.concatenate([[p.column] * len(p.positions) for p in problems]),
            "reason_code": np.concatenate([[p.code] * len(p.positions) for p in problems]),
            "reason": np.concatenate([np.asarray(p.reasons, dtype=object) for p in problems]),
            "value": np.concatenate([np.asarray(p.values, dtype=object) for p in problems]),
        }
    ).sort_values("position", kind="stable")
    first = issues.drop_duplicates("position", keep="first").reset_index(drop=True)
    reasons = issues.groupby("position", sort=True)["reason"].agg("; ".join)
    positions = first["position"].to_numpy()
    rows = raw.iloc[positions][spec.column_names].to_dict("records")
    return pd.DataFrame(
        {
            "table": spec.name,
            "source_file": [display(str(s)) for s in raw[SOURCE_FILE].iloc[positions]],
            "row": raw[SOURCE_ROW].iloc[positions].to_numpy().astype("int64"),
            "column": first["column"].to_numpy(),
            "reason_code": first["reason_code"].to_numpy(),
            "reason": reasons.loc[positions].to_numpy(),
            "value": first["value"].to_numpy(),
            "raw": [
                json.dumps({k: jsonable(v) for k, v in r.items()}, ensure_ascii=False) for r in rows
            ],
            "position": positions,
            "first_reason": first["reason"].to_numpy(),
        }
    )


def _is_quarantine_file(path: Path) -> bool:
    """Whether `path` is a quarantine file written earlier (so it may be replaced or removed)."""
    with path.open(encoding="utf-8") as handle:
        return handle.readline().strip() == ",".join(QUARANTINE_COLUMNS)


@dataclass
class ValidationResult:
    """Kept typed tables, the quarantine (one record per rejected row) and rows read per table."""

    tables: dict[str, pd.DataFrame]
    quarantine: pd.DataFrame
    rows_read: dict[str, int]
    # Some text columns of the kept tables as Arrow arrays, when the reader kept them (same
    # values as `tables`); the table cache stores them without converting millions of str again.
    arrow: dict[str, dict[str, pa.Array]] = field(default_factory=dict, repr=False, compare=False)

    @property
    def exit_code(self) -> int:
        """0 when every row was kept, 1 when rows were quarantined."""
        return 0 if self.quarantine.empty else 1

    def n_quarantined(self, table: str) -> int:
        """Number of quarantined rows of `table`."""
        return int((self.quarantine["table"] == table).sum())

    def summary(self) -> pd.DataFrame:
        """Rows read, kept and quarantined per table, and quarantined rows per reason code."""
        counts = (
            self.quarantine.groupby(["table", "reason_code"]).size().unstack(fill_value=0)
            if not self.quarantine.empty
            else pd.DataFrame()
        )
        codes = [c for c in REASON_CODES if c in counts.columns]
        records = []
        for table in self.rows_read:
            record: dict[str, Any] = {
                "table": table,
                "read": self.rows_read[table],
                "kept": len(self.tables[table]),
                "quarantined": self.n_quarantined(table),
            }
            for code in codes:
                record[code] = int(counts.at[table, code]) if table in counts.index else 0
            records.append(record)
        return pd.DataFrame(records, columns=[*SUMMARY_COLUMNS, *codes])

    def write_quarantine(self, directory: str | Path) -> list[Path]:
        """Write `<table>.csv` for each table with rejected rows; return the paths written.

        A quarantine file left in `directory` by an earlier run for a table that is now clean is
        removed, so the folder always describes this result.
        """
        directory = Path(directory)
        written: list[Path] = []
        for table in Tables.ALL:
            path = directory / f"{table}.csv"
            rows = self.quarantine[self.quarantine["table"] == table]
            if rows.empty:
                if path.is_file() and _is_quarantine_file(path):
                    path.unlink()
                continue
            directory.mkdir(parents=True, exist_ok=True)
            rows.to_csv(path, index=False, columns=list(QUARANTINE_COLUMNS), encoding="utf-8")
            written.append(path)
        return written
