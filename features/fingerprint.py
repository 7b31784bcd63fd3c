"""A stable fingerprint of the input tables: what data a run saw, independent of row order.

Each table is put in a canonical form and serialised: the contract's columns in contract order,
each as Arrow data of its kind (text as UTF-8, timestamps as UTC nanoseconds, numbers as float64,
lists as their items joined by U+001F), rows sorted by every column (primary key first). sha256
runs over the table's name, column names and kinds, and each column's null mask and values. The
fingerprint of the data set is sha256 over the tables' names, hashes and row counts. The same rows
in any order give the same hash; any changed value gives a different one.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from recsys.contract.cache_key import source_digest, write_atomic
from recsys.contract.schema import SCHEMAS

if TYPE_CHECKING:
    from recsys.contract.table_cache import CacheEntry

DIGEST = "digest"  # key of the overall hash in a fingerprint
LIST_JOIN = "\x1f"  # unit separator: cannot clash with text inside tags or regions


def _text(values: np.ndarray) -> pa.Array:
    """Strings as an Arrow large_string array (values that are not str hash as their text)."""
    try:
        arr = pa.array(values, type=pa.large_string(), from_pandas=True)
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        as_text = [None if pd.isna(v) else str(v) for v in values]
        arr = pa.array(as_text, type=pa.large_string())
    return arr.combine_chunks() if isinstance(arr, pa.ChunkedArray) else arr


def _arrow_column(values: pd.Series, kind: str) -> pa.Array:
    """One column in the canonical Arrow form of its contract kind."""
    if kind == "ts":
        ts = pd.to_datetime(values, utc=True)
        ns = ts.to_numpy(dtype="datetime64[ns]").view(np.int64)
        return pa.array(ns, type=pa.int64(), mask=ts.isna().to_numpy())
    if kind in ("float", "int"):
        num = pd.to_numeric(values, errors="coerce").astype(np.float64).to_numpy() + 0.0  # -0 → 0
        return pa.array(num, type=pa.float64(), mask=np.isnan(num))
    if kind == "list":
        joined = [
            LIST_JOIN.join(map(str, v)) if isinstance(v, (list, tuple, np.ndarray)) else None
            for v in values
        ]
        return _text(np.asarray(joined, dtype=object))
    return _text(values.to_numpy(dtype=object))


def _feed(digest: Any, arr: pa.Array) -> None:
    """Add a column's null mask and values (nulls as 0 or "") to `digest`, byte-exactly."""
    digest.update(np.asarray(arr.is_null(), dtype=np.uint8).tobytes())
    if pa.types.is_large_string(arr.type):
        arr = pc.fill_null(arr, "")
        offsets = np.frombuffer(arr.buffers()[1], dtype=np.int64)[
            arr.offset : arr.offset + len(arr) + 1
        ]
        digest.update((offsets - offsets[0]).astype("<i8").tobytes())
        data = arr.buffers()[2]
        if data is not None and len(arr):
            digest.update(memoryview(data)[int(offsets[0]) : int(offsets[-1])])
    else:
        filled = pc.fill_null(arr, pa.scalar(0, type=arr.type))
        values = np.asarray(filled)
        digest.update(values.astype(values.dtype.newbyteorder("<")).tobytes())


def _kinds(name: str, frame: pd.DataFrame) -> list[tuple[str, str]]:
    """(column, kind) pairs to hash: the contract's columns, or every column for other tables."""
    spec = SCHEMAS.get(name)
    if spec is not None:
        return [(c.name, c.kind) for c in spec.columns if c.name in frame.columns]
    kinds = []
    for col in sorted(map(str, frame.columns)):
        dtype = frame[col].dtype
        if isinstance(dtype, pd.DatetimeTZDtype) or np.issubdtype(dtype, np.datetime64):
            kinds.append((col, "ts"))
        elif pd.api.types.is_numeric_dtype(dtype) and not pd.api.types.is_bool_dtype(dtype):
            kinds.append((col, "float"))
        else:
            kinds.append((col, "str"))
    return kinds


def fingerprint_table(name: str, frame: pd.DataFrame) -> dict[str, Any]:
    """Hash, row count and (for contract tables with a time column) time range of one table."""
    kinds = _kinds(name, frame)
    columns = {col: _arrow_column(frame[col], kind) for col, kind in kinds}
    digest = hashlib.sha256()
    digest.update(repr((name, kinds, len(frame))).encode())
    if columns:
        table = pa.table(columns)
        # Canonical row order: by every column, in contract order (the primary key comes first).
        order = pc.sort_indices(table, sort_keys=[(col, "ascending") for col in columns])
        for col in columns:
            _feed(digest, table.column(col).take(order).combine_chunks())
    info: dict[str, Any] = {"hash": digest.hexdigest(), "rows": int(len(frame))}
    spec = SCHEMAS.get(name)
    if spec is not None and spec.time_column and spec.time_column in frame.columns:
        ts = pd.to_datetime(frame[spec.time_column], utc=True)
        has = bool(ts.notna().any())
        info["min_ts"] = ts.min().isoformat() if has else None
        info["max_ts"] = ts.max().isoformat() if has else None
    return info


def fingerprint_tables(tables: Mapping[str, pd.DataFrame]) -> dict[str, Any]:
    """A stable fingerprint of a data set: `{"digest": sha256, <table>: {hash, rows, ...}, ...}`.

    Per table: `hash` (sha256 hex), `rows`, and for contract tables with a time column `min_ts`
    and `max_ts` (ISO-8601, UTC). `digest` covers every table. The same rows in any order give
    the same fingerprint; any changed value changes its table's hash and the digest.

    Raises
    ------
    ValueError
        If a table is named `digest`.
    """
    if DIGEST in tables:
        raise ValueError(f"a table may not be named {DIGEST!r}: the key holds the overall hash")
    per_table = {name: fingerprint_table(name, tables[name]) for name in sorted(tables)}
    digest = hashlib.sha256()
    for name, info in per_table.items():
        digest.update(f"{name}:{info['hash']}:{info['rows']};".encode())
    return {DIGEST: digest.hexdigest(), **per_table}


def flat_fingerprint(fingerprint: Mapping[str, Any], prefix: str = "data") -> dict[str, str]:
    """The fingerprint as flat string params (`data.digest`, `data.purchases.rows`, ...) to log."""
    out: dict[str, str] = {}
    for name, info in fingerprint.items():
        if isinstance(info, Mapping):
            for key, value in info.items():
                out[f"{prefix}.{name}.{key}"] = str(value)
        else:
            out[f"{prefix}.{name}"] = str(info)
    return out


def fingerprint_cached(
    tables: Mapping[str, pd.DataFrame], entry: CacheEntry | None
) -> dict[str, Any]:
    """`fingerprint_tables(tables)`, kept in the table cache entry the tables were loaded from.

    The entry's key covers the input files and the contract code; this module's own source is
    part of the file name, so a change to the fingerprint rules computes it afresh.
    """
    if entry is None:
        return fingerprint_tables(tables)
    name = f"fingerprint-{source_digest(__name__)[:16]}.json"
    try:
        return dict(json.loads(entry.derived(name).read_text()))
    except (OSError, ValueError):
        pass
    fingerprint = fingerprint_tables(tables)
    try:
        write_atomic(entry.derived(name), json.dumps(fingerprint).encode())
    except OSError:
        pass  # the cache only saves time
    return fingerprint
