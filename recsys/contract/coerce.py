"""Typing one raw column of a contract table, and the row-level problems found on the way.

A raw column is what `recsys.contract.io.read_raw_table` returns: text for CSV, whatever Parquet
held otherwise (ints, floats, datetimes, lists, or a mix when parts of a folder differ). Each kind
of column is coerced to its typed form; a value that cannot be, or that breaks a nullability,
range or allowed-values rule, is reported as a `Problem` and left null in the typed column.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from pandas.api.types import infer_dtype

from recsys.contract.io import LIST_SEPARATOR
from recsys.contract.quarantine import (
    BAD_LIST,
    BAD_TYPE,
    NOT_ALLOWED,
    NULL,
    OUT_OF_RANGE,
    TS_OUT_OF_RANGE,
    Problem,
    jsonable,
)
from recsys.contract.schema import ColumnSpec

# An explicit UTC offset (`Z`, `+08:00`, `-0500`) after the time part of an ISO-8601 string.
_OFFSET_PATTERN = r"[T ]\d.*([Zz]|[+-]\d\d(:?\d\d)?)$"
_BAD_TS = " must be an ISO-8601 timestamp such as 2025-01-31T08:00:00+00:00, got {raw!r}"
_BAD_LIST = (
    f" must be a list of non-empty texts ('{LIST_SEPARATOR}'-separated in CSV), got {{shown!r}}"
)
# Integers beyond this are not exactly representable once parsed as float64.
_MAX_EXACT_INT = 2**53


@dataclass(frozen=True)
class TimeBounds:
    """The sane range of timestamps: `lower` <= ts <= `upper` (both UTC)."""

    lower: pd.Timestamp
    upper: pd.Timestamp
    upper_note: str = ""


@dataclass(frozen=True)
class Coerced:
    """A typed column, the problems found typing it, and the rows holding a good value."""

    typed: pd.Series
    problems: list[Problem]
    present: np.ndarray
    arrow: pa.Array | None = None


def show(value: Any) -> str:
    """Render a raw value as the text a person would see in the file."""
    if value is None or (np.ndim(value) == 0 and pd.isna(value)):
        return ""
    if isinstance(value, np.ndarray | list | tuple):
        return json.dumps(jsonable(value), ensure_ascii=False)
    if isinstance(value, datetime):
        return pd.Timestamp(value).isoformat()
    return str(value)


def _problem(
    raw: pd.Series, mask: np.ndarray, column: str, code: str, template: str, **fields: Any
) -> list[Problem]:
    """A one-element list with the problem of the rows under `mask`, or an empty list.

    `template` is formatted per row with `raw` (the value as read), `shown` (as text) and `fields`.
    """
    positions = np.flatnonzero(mask)
    if positions.size == 0:
        return []
    values = raw.iloc[positions].tolist()
    shown = [show(v) for v in values]
    reasons = [
        template.format(raw=v, shown=t, **fields) for v, t in zip(values, shown, strict=True)
    ]
    return [Problem(column, code, positions, reasons, shown)]


def _plain(raw: pd.Series) -> pd.Series:
    """Extension dtypes (string, category, Int64) as plain numpy-backed values, NA as None/NaN."""
    if isinstance(raw.dtype, pd.CategoricalDtype | pd.StringDtype | pd.ArrowDtype):
        return raw.astype(object).where(raw.notna(), None)
    if isinstance(raw.dtype, pd.api.extensions.ExtensionDtype) and raw.dtype.kind in "iuf":
        return raw.astype("float64")
    return raw


def _is_null(raw: pd.Series) -> np.ndarray:
    """Missing values: None/NaN/NaT, and empty strings (a CSV cannot tell them apart)."""
    if raw.dtype != object:
        return raw.isna().to_numpy()
    values = raw.to_numpy()
    if infer_dtype(values, skipna=False) == "string":
        # all str, no None: skip pandas' slower per-object null test
        return values == ""
    null = raw.isna().to_numpy()
    try:
        null |= values == ""
    except ValueError:
        # arrays hiding in a scalar column (a list where text was expected)
        null |= np.array([isinstance(v, str) and v == "" for v in values], dtype=bool)
    return null


def _text_value(value: Any) -> str:
    """One non-null id or text value as str; integral numbers become their digits."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool | np.bool_):
        raise TypeError(value)
    if isinstance(value, int | np.integer):
        return str(int(value))
    if isinstance(value, float | np.floating) and float(value).is_integer():
        return str(int(value))
    raise TypeError(value)


def _empty_or_null(arrow: pa.Array) -> np.ndarray:
    """Null or empty values of an Arrow string column (plain or dictionary-encoded)."""
    if pa.types.is_dictionary(arrow.type):
        empty_word = pc.equal(arrow.dictionary, "").to_numpy(zero_copy_only=False)
        codes = arrow.indices.fill_null(-1).to_numpy(zero_copy_only=False)
        # position -1 (a null code) picks the trailing True
        return np.append(empty_word, True)[codes]
    null = pc.or_(arrow.is_null(), pc.fill_null(pc.equal(arrow, ""), False))
    return null.to_numpy(zero_copy_only=False)


def _text_fast(
    raw: pd.Series, want_arrow: bool, arrow: pa.Array | None = None
) -> tuple[np.ndarray, pa.Array | None] | None:
    """Null mask (and the column in Arrow) when every value is str or null; None otherwise.

    `arrow` is the column as read, when the reader kept it (`read_raw_arrow`): its values are
    the very strings of `raw`, so nothing is converted.
    """
    if arrow is not None:
        return _empty_or_null(arrow), (arrow if want_arrow else None)
    if raw.dtype != object or infer_dtype(raw, skipna=True) not in ("string", "empty"):
        return None
    if not want_arrow:
        return _is_null(raw), None
    # One conversion answers both the null test and, later, the id lookups (validate.py);
    # each pass over millions of scattered str objects costs more than the work done on them.
    arrow = pa.array(raw.to_numpy(), type=pa.string(), from_pandas=True)
    null = pc.or_(arrow.is_null(), pc.fill_null(pc.equal(arrow, ""), False))
    return null.to_numpy(zero_copy_only=False), arrow


def _coerce_text(
    raw: pd.Series, spec: ColumnSpec, want_arrow: bool, arrow: pa.Array | None = None
) -> tuple[Coerced, np.ndarray]:
    """Ids and text as Python str; ids stored as numbers in Parquet (13085) become "13085"."""
    fast = _text_fast(raw, want_arrow, arrow)
    arrow = None
    if fast is not None:
        (null, arrow), typed = fast, raw  # already str: no copy (the typed frame copies once)
        bad = np.zeros(len(raw), dtype=bool)
    elif raw.dtype.kind in "iu":
        null = _is_null(raw)
        typed, bad = raw.astype(str).astype(object), np.zeros(len(raw), dtype=bool)
    elif raw.dtype.kind == "f":
        # Parquet int ids with nulls arrive as float64; only whole numbers are ids.
        null, values = _is_null(raw), raw.to_numpy()
        whole = ~null & (np.floor(np.where(null, 0, values)) == values)
        whole &= np.abs(np.where(whole, values, 0)) <= _MAX_EXACT_INT
        typed = pd.Series(None, index=raw.index, dtype=object)
        typed[whole] = raw[whole].astype("int64").astype(str)
        bad = ~null & ~whole
    else:
        # Rare: a mix of types from parts written differently; value by value.
        null, out = _is_null(raw), []
        for value, is_null in zip(raw.tolist(), null, strict=True):
            try:
                out.append(None if is_null else _text_value(value))
            except TypeError:
                out.append(None)
        typed = pd.Series(out, index=raw.index, dtype=object)
        bad = ~null & np.fromiter((v is None for v in out), dtype=bool, count=len(out))
    present = ~(null | bad)
    if not present.all():
        typed = typed.where(present, None)
    what = "an id (text or a whole number)" if spec.kind == "id" else "text"
    problems = _problem(raw, bad, spec.name, BAD_TYPE, f"{spec.name} must be {what}, got {{raw!r}}")
    if spec.allowed is not None:
        not_allowed = present & ~typed.isin(list(spec.allowed)).to_numpy()
        present &= ~not_allowed
        listed = ", ".join(repr(a) for a in spec.allowed)
        template = f"{spec.name} must be one of {listed}, got {{shown!r}}"
        problems += _problem(raw, not_allowed, spec.name, NOT_ALLOWED, template)
    return Coerced(typed, problems, present, arrow), null


def _coerce_number(raw: pd.Series, spec: ColumnSpec, null: np.ndarray) -> Coerced:
    """Floats as float64, ints as int64 (Int64 when nullable); non-finite values are bad."""
    if raw.dtype.kind in "iuf":
        parsed = raw.astype("float64")
    elif raw.dtype.kind == "b":
        parsed = pd.Series(np.nan, index=raw.index)
    else:
        numeric = raw.where(~null, None)
        if infer_dtype(numeric, skipna=True) == "mixed":
            # bools hiding in an object column are not numbers
            numeric = numeric.map(lambda v: None if isinstance(v, bool | np.bool_) else v)
        parsed = pd.to_numeric(numeric, errors="coerce").astype("float64")
    values = parsed.to_numpy()
    finite = np.isfinite(values)
    bad = ~null & ~finite
    integer = spec.kind == "int"
    if integer:
        whole = finite & (np.floor(np.where(finite, values, 0)) == values)
        bad |= ~null & finite & (~whole | (np.abs(np.where(finite, values, 0)) > _MAX_EXACT_INT))
    ok = ~null & ~bad
    what = "a whole number" if integer else "a number"
    problems = _problem(raw, bad, spec.name, BAD_TYPE, f"{spec.name} must be {what}, got {{raw!r}}")
    found, ok = _check_bounds(raw, values, ok, spec)
    problems += found
    if not integer:
        typed = pd.Series(np.where(ok, values, np.nan), index=raw.index, dtype="float64")
        return Coerced(typed, problems, ok)
    ints = np.where(ok, values, 0).astype("int64")
    if spec.nullable:
        typed = pd.Series(pd.array(ints, dtype="Int64"), index=raw.index).mask(~ok)
        return Coerced(typed, problems, ok)
    return Coerced(pd.Series(ints, index=raw.index, dtype="int64"), problems, ok)


def _check_bounds(
    raw: pd.Series, values: np.ndarray, ok: np.ndarray, spec: ColumnSpec
) -> tuple[list[Problem], np.ndarray]:
    """Range (`> gt`, `>= min`, `<= max`) and allowed-value problems among parsed numbers.

    Returns the problems and the rows still ok.
    """
    safe = np.where(ok, values, 0.0)
    name = spec.name
    out: list[Problem] = []
    for bound, broken, op in (
        (spec.gt_value, safe <= (spec.gt_value or 0.0), ">"),
        (spec.min_value, safe < (spec.min_value or 0.0), ">="),
        (spec.max_value, safe > (spec.max_value or 0.0), "<="),
    ):
        if bound is None:
            continue
        mask = ok & broken
        ok = ok & ~mask
        out += _problem(
            raw, mask, name, OUT_OF_RANGE, f"{name} must be {op} {bound:g}, got {{shown}}"
        )
    if spec.allowed is not None:
        allowed = np.asarray(spec.allowed, dtype="float64")
        mask = ok & ~np.isin(safe, allowed)
        listed = ", ".join(str(a) for a in spec.allowed)
        ok = ok & ~mask
        out += _problem(
            raw, mask, name, NOT_ALLOWED, f"{name} must be one of {listed}, got {{shown}}"
        )
    return out, ok


def _parse_iso(strings: pd.Series) -> pd.Series:
    """ISO-8601 strings as UTC; naive ones are taken as UTC; unparseable ones become NaT."""
    out = pd.Series(pd.NaT, index=strings.index, dtype="datetime64[ns, UTC]")
    if strings.empty:
        return out
    arrow = pa.array(strings.to_numpy(dtype=object), type=pa.string())
    aware = pc.fill_null(pc.match_substring_regex(arrow, _OFFSET_PATTERN), False)
    aware_np = aware.to_numpy(zero_copy_only=False)
    # Parse naive and offset-carrying strings apart: pandas' ISO8601 parser applies the offset of
    # one string to the naive strings that follow it in the same call (pandas 2.3).
    for group, target in (
        (aware_np, pa.timestamp("ns", tz="UTC")),
        (~aware_np, pa.timestamp("ns")),
    ):
        if not group.any():
            continue
        try:
            part = arrow if group.all() else arrow.filter(pa.array(group))
            values = part.cast(target).to_pandas()
            values.index = strings.index[group]
            values = values.dt.tz_localize("UTC") if values.dt.tz is None else values
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            # Arrow's fast cast is all-or-nothing; find the bad strings with pandas instead.
            values = pd.to_datetime(strings[group], format="ISO8601", utc=True, errors="coerce")
        out[group] = values.astype("datetime64[ns, UTC]")
    return out


def _coerce_ts(raw: pd.Series, spec: ColumnSpec, null: np.ndarray, bounds: TimeBounds) -> Coerced:
    """Timestamps as datetime64[ns, UTC]; then the sane-range check."""
    typed = pd.Series(pd.NaT, index=raw.index, dtype="datetime64[ns, UTC]")
    if raw.dtype.kind == "M":
        values = raw if getattr(raw.dtype, "tz", None) else raw.dt.tz_localize("UTC")
        values = values.dt.tz_convert("UTC")
        try:
            typed = values.astype("datetime64[ns, UTC]", copy=False)
        except (OverflowError, pd.errors.OutOfBoundsDatetime):
            # Parquet may hold µs timestamps beyond 2262, which nanoseconds cannot.
            inside = (values >= pd.Timestamp.min.tz_localize("UTC")) & (
                values <= pd.Timestamp.max.tz_localize("UTC")
            )
            typed = values.where(inside).astype("datetime64[ns, UTC]")
    elif raw.dtype == object and infer_dtype(raw, skipna=True) in ("string", "empty"):
        typed = _parse_iso(raw.where(~null, None)).where(~null, pd.NaT)
    elif raw.dtype == object:
        is_str = raw.map(lambda v: isinstance(v, str)).to_numpy() & ~null
        is_dt = raw.map(lambda v: isinstance(v, datetime)).to_numpy() & ~null
        # Rare: a mix of strings and datetimes from parts written differently.
        if is_str.any():
            typed[is_str] = _parse_iso(raw[is_str])
        if is_dt.any():
            typed[is_dt] = pd.to_datetime(raw[is_dt], utc=True).astype("datetime64[ns, UTC]")
    bad = ~null & typed.isna().to_numpy()
    name = spec.name
    problems = _problem(raw, bad, name, BAD_TYPE, name + _BAD_TS)
    early = (typed < bounds.lower).to_numpy()
    late = (typed > bounds.upper).to_numpy()
    lower, upper = bounds.lower.isoformat(), bounds.upper.isoformat() + bounds.upper_note
    problems += _problem(
        raw,
        early,
        name,
        TS_OUT_OF_RANGE,
        f"{name} {{shown}} is before the earliest accepted {lower}",
    )
    problems += _problem(
        raw, late, name, TS_OUT_OF_RANGE, f"{name} {{shown}} is after the latest accepted {upper}"
    )
    present = ~(null | bad | early | late)
    return Coerced(typed if present.all() else typed.where(present), problems, present)


def _list_value(value: Any) -> list[str] | None:
    """One raw list as a list of non-empty str, or None when it is not one."""
    if value is None or (np.ndim(value) == 0 and pd.isna(value)):
        return []
    if isinstance(value, str):
        items: list[Any] = value.split(LIST_SEPARATOR) if value else []
    elif isinstance(value, np.ndarray | list | tuple):
        items = list(value)
    else:
        return None
    if all(isinstance(v, str) and v != "" for v in items):
        return items
    return None


def _arrow_lists(raw: pd.Series) -> pa.ListArray | None:
    """The column as an Arrow list<string> array (text split on `|`), or None if it is not one."""
    values = raw.to_numpy()
    try:
        if raw.dtype == object and infer_dtype(raw, skipna=True) in ("string", "empty"):
            # An empty text is an empty list, like an empty CSV cell.
            text = pa.array(
                np.where(values == "", None, values), type=pa.string(), from_pandas=True
            )
            return pc.split_pattern(text, LIST_SEPARATOR)
        # Arrow would read a lone str as a list of characters: only true lists take this path.
        if all(isinstance(v, np.ndarray | list) or v is None for v in values):
            return pa.array(values, type=pa.list_(pa.string()), from_pandas=True)
        return None
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        return None


def _coerce_list(raw: pd.Series, spec: ColumnSpec) -> Coerced:
    """Lists of str; CSV text is `|`-separated and a missing value is an empty list."""
    lists = _arrow_lists(raw)
    if lists is None:
        # Rare: numbers inside lists, or text and lists mixed; judged value by value.
        python = [_list_value(v) for v in raw.tolist()]
        bad = np.fromiter((v is None for v in python), dtype=bool, count=len(python))
    else:
        items = lists.flatten()
        bad_items = pc.fill_null(pc.equal(items, ""), True).to_numpy(zero_copy_only=False)
        bad = np.zeros(len(raw), dtype=bool)
        bad[pc.list_parent_indices(lists).to_numpy()[bad_items]] = True
        python = [v if v is not None else [] for v in lists.to_pylist()]
        python = [None if b else v for v, b in zip(python, bad, strict=True)]
    typed = pd.Series(python, index=raw.index, dtype=object)
    return Coerced(typed, _problem(raw, bad, spec.name, BAD_LIST, spec.name + _BAD_LIST), ~bad)


def coerce_column(
    raw: pd.Series,
    spec: ColumnSpec,
    bounds: TimeBounds,
    *,
    want_arrow: bool = False,
    arrow: pa.Array | None = None,
) -> Coerced:
    """Type one raw column by its spec: the typed column, the problems found, the rows present.

    Typed values of rows with a problem are null (0 in a non-nullable int column), so later checks
    (keys, references) skip them. With `want_arrow`, an id column also comes back as an Arrow
    string array (`Coerced.arrow`, possibly dictionary-encoded) when its values are all text, for
    fast lookups. `arrow` is the text column as read (see `read_raw_arrow`), when known.
    """
    raw = _plain(raw)
    if spec.kind == "list":
        return _coerce_list(raw, spec)
    if spec.kind in ("id", "str"):
        coerced, null = _coerce_text(raw, spec, want_arrow, arrow)
    elif spec.kind in ("float", "int"):
        null = _is_null(raw)
        coerced = _coerce_number(raw, spec, null)
    elif spec.kind == "ts":
        null = _is_null(raw)
        coerced = _coerce_ts(raw, spec, null, bounds)
    else:
        raise ValueError(f"unknown column kind {spec.kind!r} of column {spec.name!r}")
    if spec.nullable:
        return coerced
    template = f"{spec.name} is empty but required"
    null_problems = _problem(raw, null, spec.name, NULL, template)
    return Coerced(coerced.typed, null_problems + coerced.problems, coerced.present, coerced.arrow)
