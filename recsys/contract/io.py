"""Reading and writing contract tables as Parquet or CSV files.

A table `name` in a data directory is one of: `name.parquet`, `name.csv`, or a folder `name/`
holding Parquet/CSV parts at any depth (e.g. date-partitioned
`name/date=2026-01-01/part-0.parquet`).
Raw reads keep every row with its source file and 1-based row number, so validation can quarantine
a row and say exactly where it came from.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from recsys.contract.schema import SCHEMAS, TableSpec
from recsys.exceptions import SchemaError

SOURCE_FILE = "_source_file"
SOURCE_ROW = "_source_row"
LIST_SEPARATOR = "|"
SUFFIXES = (".parquet", ".csv")


def find_table_files(data_dir: Path, table: str) -> list[Path]:
    """Files holding `table` in `data_dir`, sorted; empty when the table is absent.

    Raises
    ------
    SchemaError
        If the table is present in more than one form (e.g. both `skus.parquet` and `skus.csv`).
    """
    data_dir = Path(data_dir)
    forms: list[list[Path]] = []
    for suffix in SUFFIXES:
        single = data_dir / f"{table}{suffix}"
        if single.is_file():
            forms.append([single])
    folder = data_dir / table
    if folder.is_dir():
        parts = sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix in SUFFIXES)
        if parts:
            forms.append(parts)
    if len(forms) > 1:
        found = ", ".join(str(f[0]) for f in forms)
        raise SchemaError(
            f"table {table!r} is present in more than one form in {data_dir}: {found}; keep one",
            path=str(data_dir),
        )
    return forms[0] if forms else []


def _read_one(path: Path, spec: TableSpec) -> pd.DataFrame:
    """Read one file untyped (CSV as strings), failing with the path named."""
    try:
        if path.suffix == ".parquet":
            frame = pq.read_table(path).to_pandas()
        else:
            # Everything as text: validation, not the reader, decides what a bad value is.
            options = pacsv.ConvertOptions(
                column_types={c: pa.string() for c in spec.column_names},
                strings_can_be_null=True,
                null_values=[""],
            )
            frame = pacsv.read_csv(path, convert_options=options).to_pandas()
    except (OSError, pa.ArrowException, ValueError) as exc:
        raise SchemaError(f"cannot read {path}: {exc}", path=str(path)) from exc
    missing = [c for c in spec.column_names if c not in frame.columns]
    if missing:
        raise SchemaError(
            f"{path}: missing required column(s) {', '.join(map(repr, missing))} of table "
            f"{spec.name!r} (expected columns: {', '.join(spec.column_names)})",
            path=str(path),
            column=missing[0],
        )
    frame = frame[spec.column_names].copy()
    frame[SOURCE_FILE] = str(path)
    frame[SOURCE_ROW] = range(1, len(frame) + 1)
    return frame


def read_raw_table(data_dir: Path, table: str) -> pd.DataFrame:
    """All rows of `table` as read (untyped), with `_source_file` and `_source_row` columns.

    Raises
    ------
    SchemaError
        If the table is missing, unreadable or lacks a required column.
    """
    spec = SCHEMAS[table]
    files = find_table_files(Path(data_dir), table)
    if not files:
        raise SchemaError(
            f"table {table!r} not found in {data_dir} "
            f"(expected {table}.parquet, {table}.csv or a folder {table}/)",
            path=str(data_dir),
        )
    frames = [_read_one(p, spec) for p in files]
    if len(frames) == 1:
        return frames[0]
    with warnings.catch_warnings():
        # Parts may hold all-null columns; the raw dtype does not matter (validation types it).
        warnings.simplefilter("ignore", FutureWarning)
        return pd.concat(frames, ignore_index=True)


def _to_csv_frame(frame: pd.DataFrame, spec: TableSpec) -> pd.DataFrame:
    """Render lists as `|`-joined text and timestamps as ISO-8601 for CSV output."""
    out = frame.copy()
    for col in spec.columns:
        if col.name not in out.columns:
            continue
        if col.kind == "list":
            out[col.name] = [
                LIST_SEPARATOR.join(v) if v is not None else None for v in out[col.name]
            ]
        elif col.kind == "ts":
            out[col.name] = pd.to_datetime(out[col.name], utc=True).map(
                lambda t: t.isoformat() if pd.notna(t) else None
            )
    return out


def write_table(frame: pd.DataFrame, path: Path, table: str | None = None) -> Path:
    """Write a typed contract table to `path` (`.parquet` or `.csv`), creating parent folders.

    Parquet output is deterministic for a given frame (same rows, same bytes).
    """
    path = Path(path)
    table = table or path.stem
    spec = SCHEMAS[table]
    path.parent.mkdir(parents=True, exist_ok=True)
    cols = [c for c in spec.column_names if c in frame.columns]
    extra = [c for c in frame.columns if c not in cols]
    frame = frame[cols + extra]
    if path.suffix == ".parquet":
        arrow = pa.Table.from_pandas(frame, preserve_index=False)
        pq.write_table(arrow, path, compression="zstd")
    elif path.suffix == ".csv":
        _to_csv_frame(frame, spec).to_csv(path, index=False)
    else:
        raise ValueError(f"unsupported table file suffix {path.suffix!r} for {path}")
    return path
