"""Reading and writing contract tables as Parquet or CSV files.

A table `name` in a data directory is one of: `name.parquet`, `name.csv`, or a folder `name/`
holding Parquet/CSV parts at any depth (e.g. date-partitioned
`name/date=2026-01-01/part-0.parquet`).
Raw reads keep every row with its source file and 1-based row number, so validation can quarantine
a row and say exactly where it came from.
"""

from __future__ import annotations

import sys
import warnings
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from recsys.contract.arrow_tables import encode_text_chunks, text_values
from recsys.contract.schema import SCHEMAS, TableSpec
from recsys.exceptions import SchemaError

SOURCE_FILE = "_source_file"
SOURCE_ROW = "_source_row"
LIST_SEPARATOR = "|"
SUFFIXES = (".parquet", ".csv")
RELEASE_ROWS = 1_000_000  # tables this long give converted columns' memory back at once


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


def _read_arrow(path: Path, spec: TableSpec, *, check: bool = True) -> pa.Table:
    """Read one file as Arrow, untyped (CSV as strings), failing with the path named."""
    try:
        if path.suffix == ".parquet":
            table = pq.read_table(path)
        else:
            # Everything as text: validation, not the reader, decides what a bad value is.
            options = pacsv.ConvertOptions(
                column_types={c: pa.string() for c in spec.column_names},
                strings_can_be_null=True,
                null_values=[""],
            )
            table = pacsv.read_csv(path, convert_options=options)
    except (OSError, pa.ArrowException, ValueError) as exc:
        raise SchemaError(f"cannot read {path}: {exc}", path=str(path)) from exc
    if check:
        _check_columns(table.column_names, path, spec)
    return table


def _check_columns(names: list[str], path: Path, spec: TableSpec) -> None:
    """Raise SchemaError naming the contract columns missing from a file."""
    missing = [c for c in spec.column_names if c not in names]
    if missing:
        raise SchemaError(
            f"{path}: missing required column(s) {', '.join(map(repr, missing))} of table "
            f"{spec.name!r} (expected columns: {', '.join(spec.column_names)})",
            path=str(path),
            column=missing[0],
        )


def _read_one(path: Path, spec: TableSpec) -> pd.DataFrame:
    """Read one file untyped (CSV as strings), failing with the path named."""
    frame = _read_arrow(path, spec, check=False).to_pandas()
    _check_columns(list(frame.columns), path, spec)
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


def _is_text(arr: pa.ChunkedArray) -> bool:
    """Whether a column holds plain (not dictionary-encoded) strings."""
    return pa.types.is_string(arr.type) or pa.types.is_large_string(arr.type)


def _indexes_a_column(schema: pa.Schema, spec: TableSpec) -> bool:
    """Whether pandas metadata makes a contract column the index (pandas reads it so)."""
    meta = schema.pandas_metadata or {}
    index = [c for c in meta.get("index_columns", []) if isinstance(c, str)]
    return any(c in spec.column_names for c in index)


class _Part:
    """One file of a table: Parquet is read one column at a time, CSV whole (then column-wise)."""

    def __init__(self, path: Path, spec: TableSpec) -> None:
        self.path = path
        self.table: pa.Table | None = None
        if path.suffix == ".parquet":
            try:
                self.schema = pq.read_schema(path)
                self.rows = pq.ParquetFile(path).metadata.num_rows
            except (OSError, pa.ArrowException, ValueError) as exc:
                raise SchemaError(f"cannot read {path}: {exc}", path=str(path)) from exc
            _check_columns(self.schema.names, path, spec)
        else:
            self.table = _read_arrow(path, spec)
            self.schema, self.rows = self.table.schema, self.table.num_rows

    def types(self, spec: TableSpec) -> list[pa.DataType]:
        """The Arrow type of each contract column in this file."""
        return [self.schema.field(name).type for name in spec.column_names]

    def pop(self, name: str) -> list[pa.Array]:
        """The chunks of one column; a CSV table lets go of it (freeing memory column by column)."""
        if self.table is not None:
            chunks = self.table.column(name).chunks
            self.table = self.table.drop_columns([name])
            return chunks
        try:
            return pq.read_table(self.path, columns=[name]).column(0).chunks
        except (OSError, pa.ArrowException, ValueError) as exc:
            raise SchemaError(f"cannot read {self.path}: {exc}", path=str(self.path)) from exc


def _max_distinct(spec: TableSpec, column: str, rows: Mapping[str, int]) -> int | None:
    """How many distinct values `column` can hold, when known (None: not known).

    A primary key is meant to be unique; a foreign key takes no more values than its table has
    rows.
    """
    if column == spec.primary_key:
        return sys.maxsize
    for fk in spec.foreign_keys:
        if fk.column == column and fk.ref_table in rows:
            return rows[fk.ref_table]
    return None


def read_raw_arrow(
    data_dir: Path, table: str, rows: Mapping[str, int] | None = None
) -> tuple[pd.DataFrame, dict[str, pa.Array]]:
    """The rows `read_raw_table` returns, and the text columns as they were read, in Arrow.

    Text values become Python `str` without hashing each one: a column that repeats values is
    dictionary-encoded first and each distinct `str` is built once. The Arrow twins (same values,
    possibly dictionary-encoded) spare validation converting millions of `str` back. `rows`
    (rows of the tables read before) bounds how many distinct values a foreign key has. Columns are
    read and converted one at a time, so a big table is never held twice in memory. Parts whose
    column types differ (an id stored as text in one, as a number in another) are read as
    `read_raw_table` reads them, without twins.

    Raises
    ------
    SchemaError
        If the table is missing, unreadable or lacks a required column.
    """
    spec = SCHEMAS[table]
    files = find_table_files(Path(data_dir), table)
    if not files:
        return read_raw_table(data_dir, table), {}  # raises the "not found" error
    parts = [_Part(p, spec) for p in files]
    if any(_indexes_a_column(part.schema, spec) for part in parts) or any(
        part.types(spec) != parts[0].types(spec) for part in parts[1:]
    ):
        return read_raw_table(data_dir, table), {}
    sizes = [part.rows for part in parts]
    columns: dict[str, object] = {}
    twins: dict[str, pa.Array] = {}
    for col, kind in zip(spec.column_names, parts[0].types(spec), strict=True):
        arr = pa.chunked_array([c for part in parts for c in part.pop(col)], type=kind)
        if _is_text(arr):
            if spec.column(col).kind in ("id", "str"):
                flat = encode_text_chunks(arr, _max_distinct(spec, col, rows or {}))
                twins[col] = flat
                columns[col] = text_values(flat)
            else:
                columns[col] = text_values(arr)
        else:
            columns[col] = arr.to_pandas()
        del arr
        if sum(sizes) >= RELEASE_ROWS:
            # Arrow's allocator keeps freed blocks for reuse; hand the column just converted
            # back to the system, or the peak holds every column twice (~0.4 GiB per 5M rows).
            pa.default_memory_pool().release_unused()
    names = np.array([str(p) for p in files], dtype=object)
    columns[SOURCE_FILE] = pd.Categorical.from_codes(
        np.repeat(np.arange(len(files)), sizes), categories=pd.Index(names, dtype=object)
    )
    columns[SOURCE_ROW] = np.concatenate([np.arange(1, n + 1) for n in sizes])
    frame = pd.DataFrame(columns, copy=False)
    return frame, twins


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
