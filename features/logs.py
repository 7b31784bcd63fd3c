"""The event logs as they were known at a cutoff: purchase lines with the returns filed by then.

The rule "nothing at or after the cutoff" is applied here and in `features.interactions`: a
purchase, share or return with `ts >= cutoff` does not exist for the model. Also the fast id
lookups every builder uses.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime

import numpy as np
import pandas as pd
import pyarrow as pa

from recsys.columns import FAULT_RETURN_REASONS, Columns, Tables
from recsys.contract.arrow_tables import arrow_strings, index_in
from recsys.data.dataset import FAULT_RETURNED_QTY, RETURNED_QTY
from recsys.data.id_map import IdMap
from recsys.exceptions import EmptyDataError

C = Columns
# Added to the last event time when the cutoff defaults to "after everything", so that the last
# event itself satisfies `ts < cutoff`.
EPSILON = pd.Timedelta(microseconds=1)
EVENT_TABLES: tuple[str, ...] = (Tables.SHARES, Tables.PURCHASES, Tables.RETURNS)
LINE_COLUMNS: tuple[str, ...] = (
    C.PURCHASE_ID,
    C.TS,
    C.CUSTOMER_ID,
    C.AGENT_ID,
    C.SKU_ID,
    C.QTY,
    C.UNIT_PRICE,
)

TimeLike = pd.Timestamp | datetime | str
# Table → column → the column in Arrow, same values (`recsys.contract.loader.LoadedTables.arrow`).
ArrowColumns = Mapping[str, Mapping[str, pa.Array]]


def to_utc(moment: TimeLike) -> pd.Timestamp:
    """`moment` as a UTC timestamp (a naive one is taken to be UTC already)."""
    ts = pd.Timestamp(moment)
    if ts is pd.NaT:
        raise ValueError(f"cutoff must be a valid time, got {moment!r}")
    return ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")


def utc_series(values: pd.Series) -> pd.Series:
    """A timestamp column as datetime64[ns, UTC] (no copy when it already is)."""
    if isinstance(values.dtype, pd.DatetimeTZDtype) and str(values.dtype.tz) == "UTC":
        return values
    return pd.to_datetime(values, utc=True)


def time_ns(values: pd.Series) -> np.ndarray:
    """A timestamp column as int64 nanoseconds since the epoch, UTC (no copy when already so)."""
    return utc_series(values).to_numpy(dtype="datetime64[ns]").view(np.int64)


def lookup(keys: pd.Series | np.ndarray | pa.Array, value_set: np.ndarray | pa.Array) -> np.ndarray:
    """Position of each key in `value_set` (unique strings), -1 where absent or null.

    Arrow's hash lookup is several times faster than pandas' on millions of Python strings, and
    Arrow-backed keys (event ids) are looked up without building a `str` each; keys that are not
    all strings fall back to pandas.
    """
    try:
        arr = arrow_strings(keys)
        values = arrow_strings(value_set)
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        index = pd.Index(np.asarray(value_set, dtype=object))
        return index.get_indexer(np.asarray(keys, dtype=object)).astype(np.int64)
    return index_in(arr, values)


def lookup_arrow(keys: pa.Array, value_set: np.ndarray) -> np.ndarray | None:
    """`lookup` for keys already in Arrow (plain or dictionary strings); None if it cannot be."""
    try:
        values = pa.array(value_set, type=pa.string())
        return index_in(keys, values)
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError):
        return None


def arrow_column(
    arrow_columns: ArrowColumns | None, table: str, column: str, n_rows: int
) -> pa.Array | None:
    """The Arrow twin of `table.column` when one was given for a table of `n_rows` rows."""
    if arrow_columns is None:
        return None
    arr = arrow_columns.get(table, {}).get(column)
    return arr if arr is not None and len(arr) == n_rows else None


def map_ids(
    id_map: IdMap,
    values: pd.Series,
    rows: np.ndarray | None = None,
    *,
    arrow: pa.Array | None = None,
) -> np.ndarray:
    """Indices in `id_map` of `values` (of `values[rows]` if given); unknown ids map to -1.

    A categorical column is mapped through its categories, so each distinct id is looked up once;
    so is `arrow`, the same column in Arrow (`LoadedTables.arrow`), when given.
    """
    if arrow is not None and len(arrow) == len(values):
        idx = lookup_arrow(arrow, id_map.external_ids)
        if idx is not None:
            return idx if rows is None else idx[rows]
    if isinstance(values.dtype, pd.CategoricalDtype):
        codes = values.cat.codes.to_numpy()
        table = lookup(values.cat.categories.to_numpy(dtype=object), id_map.external_ids)
        idx = np.where(codes >= 0, table[np.maximum(codes, 0)], -1).astype(np.int64)
    else:
        # The whole column, then the rows: cheaper than gathering scattered Python strings first.
        idx = lookup(values.to_numpy(dtype=object), id_map.external_ids)
    return idx if rows is None else idx[rows]


def require_tables(tables: Mapping[str, pd.DataFrame], names: Iterable[str]) -> None:
    """Raise ValueError naming the tables missing from `tables`."""
    missing = [n for n in names if n not in tables]
    if missing:
        raise ValueError(f"tables is missing table(s) {missing}; it has {sorted(tables)}")


def log_end(tables: Mapping[str, pd.DataFrame]) -> pd.Timestamp:
    """Just after the last share, purchase or return: the default cutoff, which keeps every event.

    Raises
    ------
    EmptyDataError
        If the event tables hold no rows.
    """
    last = [utc_series(tables[t][C.TS]).max() for t in EVENT_TABLES if t in tables]
    last = [t for t in last if pd.notna(t)]
    if not last:
        raise EmptyDataError("tables hold no shares, purchases or returns: nothing to learn from")
    return max(last) + EPSILON


def resolve_cutoff(tables: Mapping[str, pd.DataFrame], cutoff: TimeLike | None) -> pd.Timestamp:
    """`cutoff` as a UTC timestamp, or the end of the log when it is None."""
    return log_end(tables) if cutoff is None else to_utc(cutoff)


def purchase_lines(tables: Mapping[str, pd.DataFrame], cutoff: pd.Timestamp) -> pd.DataFrame:
    """Purchase lines with `ts < cutoff`, with the units returned before the cutoff.

    Adds `returned_qty` (units returned by returns with `ts < cutoff`, capped at the line's qty)
    and `fault_returned_qty` (those of them with a `quality`/`not_as_described` reason). A return
    filed after the cutoff is unknown at the cutoff, so it does not count here.
    """
    require_tables(tables, [Tables.PURCHASES, Tables.RETURNS])
    purchases = tables[Tables.PURCHASES]
    rows = np.flatnonzero(time_ns(purchases[C.TS]) < cutoff.value)
    lines = purchases.iloc[rows][list(LINE_COLUMNS)].reset_index(drop=True)
    lines[C.TS] = utc_series(lines[C.TS])
    qty = lines[C.QTY].to_numpy(dtype=np.int64)
    returned, fault = returned_units(
        lines[C.PURCHASE_ID], qty, tables[Tables.RETURNS], before=cutoff
    )
    lines[C.QTY] = qty
    lines[RETURNED_QTY] = returned
    lines[FAULT_RETURNED_QTY] = fault
    return lines


def returned_units(
    purchase_ids: pd.Series | np.ndarray,
    qty: np.ndarray,
    returns: pd.DataFrame,
    before: pd.Timestamp | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Units returned of each purchase line (all of them, or only by returns before `before`).

    Returns two int64 arrays aligned to `purchase_ids`: all returned units (capped at `qty`, in case
    the log over-returns a line) and the units returned for a fault reason (capped likewise).
    Arrow-backed ids (the contract's event ids) are looked up without building a `str` each.
    """
    rets = returns
    if before is not None:
        rets = rets.iloc[np.flatnonzero(time_ns(rets[C.TS]) < before.value)]
    returned = np.zeros(len(purchase_ids), dtype=np.int64)
    fault = np.zeros(len(purchase_ids), dtype=np.int64)
    if len(rets) == 0 or len(purchase_ids) == 0:
        return returned, fault
    units = rets[C.QTY].to_numpy(dtype=np.int64)
    is_fault = rets[C.REASON].isin(FAULT_RETURN_REASONS).to_numpy()
    # Sum returns per purchase first (few rows), then look the lines up in that small set.
    ret_ids = rets[C.PURCHASE_ID]
    returned_ids = pd.unique(ret_ids)
    code = lookup(ret_ids, returned_ids)
    ok = code >= 0  # a null purchase id matches nothing
    n_ids = len(returned_ids)
    all_units = np.bincount(code[ok], weights=units[ok], minlength=n_ids).astype(np.int64)
    fault_units = np.bincount(
        code[ok], weights=np.where(is_fault, units, 0)[ok], minlength=n_ids
    ).astype(np.int64)
    pos = lookup(purchase_ids, returned_ids)
    hit = pos >= 0
    returned[hit] = all_units[pos[hit]]
    fault[hit] = fault_units[pos[hit]]
    returned = np.minimum(returned, qty)
    return returned, np.minimum(fault, returned)
