"""Validation of the six contract tables: typed kept rows, and every rejected row with its reason.

Tables are checked in dependency order (skus, agents, customers, shares, purchases, returns), so a
row whose reference was quarantined is itself quarantined, saying which row it depended on and why
that row went. Every read row ends up either kept or quarantined; nothing is dropped silently.
See docs/data-contract.md for the checks and their reason codes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from pandas.util import hash_array

from recsys.columns import Columns, Tables
from recsys.contract.arrow_tables import index_in, with_event_ids
from recsys.contract.coerce import Coerced, TimeBounds, coerce_column
from recsys.contract.io import RELEASE_ROWS, SOURCE_FILE, SOURCE_ROW, read_raw_arrow
from recsys.contract.quarantine import (
    DUPLICATE_ID,
    MISSING_REF,
    OVER_RETURN,
    QUARANTINE_COLUMNS,
    REASON_CODES,
    REF_QUARANTINED,
    RETURN_BEFORE_PURCHASE,
    Problem,
    ValidationResult,
    quarantine_rows,
)
from recsys.contract.schema import SCHEMAS, TableSpec
from recsys.exceptions import SchemaError

__all__ = ["REASON_CODES", "ValidationResult", "time_bounds", "validate_dir", "validate_tables"]

Display = Callable[[str], str]
TimeLike = str | datetime | pd.Timestamp
DEFAULT_MIN_TS = "2000-01-01"


@dataclass
class _Checked:
    """What later tables need to know of a checked table."""

    kept: pd.DataFrame
    # primary keys of the kept rows, in Arrow: hashing millions of ids there is several times
    # faster than in pandas' object hash table
    kept_ids: pa.Array
    # primary key of each quarantined row -> where it is and why it went
    rejected: dict[str, str]

    def positions(self, values: pa.Array, mask: np.ndarray) -> np.ndarray:
        """Position of each id of `values` among the kept ids; -1 if absent or not in `mask`."""
        out = np.full(len(values), -1, dtype=np.int64)
        n_wanted = int(mask.sum())
        if len(self.kept_ids) == 0 or n_wanted == 0:
            return out
        keys = self.kept_ids
        if n_wanted < len(keys) // 4:
            # Few references to many keys (returns -> purchases): narrow the keys first, so
            # the hash table holds the few referenced ids rather than millions.
            wanted = _plain_text(values.filter(pa.array(mask)))
            candidates = np.flatnonzero(
                pc.is_in(keys, value_set=wanted).to_numpy(zero_copy_only=False)
            )
            keys = keys.take(pa.array(candidates))
        else:
            candidates = None
        found = index_in(values, keys)
        if candidates is not None and candidates.size:
            found = np.where(found >= 0, candidates[np.maximum(found, 0)], -1)
        out[mask] = found[mask]
        return out


def _plain_text(values: pa.Array) -> pa.Array:
    """A string array without dictionary encoding."""
    return values.dictionary_decode() if pa.types.is_dictionary(values.type) else values


def _utc(value: TimeLike, name: str) -> pd.Timestamp:
    """`value` as a UTC timestamp; a naive one is taken as UTC."""
    try:
        ts = pd.Timestamp(value)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} must be a timestamp, got {value!r}") from exc
    if pd.isna(ts):
        raise ValueError(f"{name} must be a timestamp, got {value!r}")
    return ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")


def time_bounds(now: TimeLike | None, min_ts: TimeLike) -> TimeBounds:
    """The sane timestamp range: from `min_ts` to one day after `now` (clock skew, time zones)."""
    lower = _utc(min_ts, "min_ts")
    current = pd.Timestamp.now(tz="UTC") if now is None else _utc(now, "now")
    upper = current + pd.Timedelta(days=1)
    if upper < lower:
        raise ValueError(f"now must be after min_ts, got now={now!r} and min_ts={min_ts!r}")
    return TimeBounds(lower, upper, upper_note=f" (now {current.isoformat()} + 1 day)")


def _raw_frame(raws: dict[str, pd.DataFrame], spec: TableSpec) -> pd.DataFrame:
    """The raw rows of one table with source columns, or SchemaError when it is unusable."""
    if spec.name not in raws:
        raise SchemaError(f"table {spec.name!r} is missing (all of {', '.join(Tables.ALL)} needed)")
    raw = raws[spec.name]
    missing = [c for c in spec.column_names if c not in raw.columns]
    if missing:
        raise SchemaError(
            f"table {spec.name!r}: missing required column(s) {', '.join(map(repr, missing))}",
            column=missing[0],
        )
    if not raw.index.equals(pd.RangeIndex(len(raw))):
        raw = raw.reset_index(drop=True)
    if SOURCE_FILE not in raw.columns:
        raw = raw.assign(**{SOURCE_FILE: spec.name})
    if SOURCE_ROW not in raw.columns:
        raw = raw.assign(**{SOURCE_ROW: np.arange(1, len(raw) + 1)})
    return raw


def _where(raw: pd.DataFrame, position: int, display: Display) -> str:
    """`file row N` of one raw row, for messages."""
    return f"{display(str(raw[SOURCE_FILE].iat[position]))} row {raw[SOURCE_ROW].iat[position]}"


def _later_occurrences(key: pd.Series, present: np.ndarray) -> np.ndarray:
    """Rows whose present key was already seen in an earlier row."""
    out = np.zeros(len(key), dtype=bool)
    rows = np.flatnonzero(present)
    if rows.size < 2:
        return out
    values = key.to_numpy()[rows]
    # Sorting 64-bit hashes finds the candidates far faster than a hash table of millions of
    # str; only rows sharing a hash (true duplicates, or a rare collision) are compared exactly.
    hashes = hash_array(values, categorize=False)
    order = np.argsort(hashes)
    same = hashes[order[1:]] == hashes[order[:-1]]
    if not same.any():
        return out
    shared = np.zeros(rows.size, dtype=bool)
    shared[order[1:][same]] = True
    shared[order[:-1][same]] = True
    later = pd.Series(values[shared]).duplicated(keep="first").to_numpy()
    out[rows[np.flatnonzero(shared)[later]]] = True
    return out


def _all_distinct(arrow: pa.Array | None, present: np.ndarray) -> bool:
    """Whether the present keys are known to be distinct (False = not known to be).

    Logs usually number their ids in order: strictly increasing keys are distinct, which one
    vectorised comparison shows; otherwise one Arrow hash pass counts the distinct keys.
    """
    if arrow is None or pa.types.is_dictionary(arrow.type):
        return False
    keys = arrow.filter(pa.array(present)) if not present.all() else arrow
    if len(keys) < 2:
        return True
    increasing = pc.less(keys.slice(0, len(keys) - 1), keys.slice(1))
    if pc.all(increasing).as_py():
        return True
    return len(pc.unique(keys)) == len(keys)


def _duplicates(
    raw: pd.DataFrame,
    typed: pd.DataFrame,
    key_column: Coerced,
    spec: TableSpec,
    display: Display,
) -> list[Problem]:
    """Later occurrences of a primary key; the first occurrence in file order is the one kept."""
    key = typed[spec.primary_key]
    present = key_column.present
    if _all_distinct(key_column.arrow, present):
        return []
    dup = _later_occurrences(key, present)
    positions = np.flatnonzero(dup)
    if positions.size == 0:
        return []
    dup_values = key.iloc[positions].tolist()
    # Among rows that are not later occurrences, each duplicated value appears exactly once.
    firsts = np.flatnonzero(key.isin(list(set(dup_values))).to_numpy() & ~dup)
    first_of = dict(zip(key.iloc[firsts].tolist(), firsts.tolist(), strict=True))
    reasons = [
        f"duplicate {spec.primary_key} {v!r} (first at {_where(raw, first_of[v], display)})"
        for v in dup_values
    ]
    return [Problem(spec.primary_key, DUPLICATE_ID, positions, reasons, dup_values)]


def _references(
    typed: pd.DataFrame,
    coerced: dict[str, Coerced],
    spec: TableSpec,
    checked: dict[str, _Checked],
) -> tuple[list[Problem], dict[str, np.ndarray]]:
    """References to rows that do not exist, or that exist but were quarantined.

    Also returns, for the returns table, the position of each row's referenced kept purchase
    line (or -1), by reference column.
    """
    out: list[Problem] = []
    found_at: dict[str, np.ndarray] = {}
    for fk in spec.foreign_keys:
        ref = checked[fk.ref_table]
        values = typed[fk.column]
        present = coerced[fk.column].present
        found = ref.positions(_as_arrow(coerced[fk.column]), present)
        if spec.name == Tables.RETURNS:
            found_at[fk.column] = found  # the return checks need each return's purchase line
        broken = np.flatnonzero(present & (found < 0))
        del found
        if broken.size == 0:
            continue
        missing, quarantined = [], []
        for position, value in zip(broken.tolist(), values.iloc[broken].tolist(), strict=True):
            if value in ref.rejected:
                reason = (
                    f"{fk.column} {value!r} refers to a quarantined row of {fk.ref_table} "
                    f"({ref.rejected[value]})"
                )
                quarantined.append((position, reason, value))
            else:
                missing.append(
                    (position, f"{fk.column} {value!r} not found in {fk.ref_table}", value)
                )
        for code, items in ((MISSING_REF, missing), (REF_QUARANTINED, quarantined)):
            if items:
                positions, reasons, shown = zip(*items, strict=True)
                out.append(
                    Problem(fk.column, code, np.array(positions), list(reasons), list(shown))
                )
    return out, found_at


def _over_returned(frame: pd.DataFrame, bought: np.ndarray) -> tuple[list[int], list[str]]:
    """Greedy pass over the rare purchase lines whose returns add up to more than was bought."""
    positions: list[int] = []
    reasons: list[str] = []
    for line, group in frame.groupby("line", sort=False):
        line_bought = int(bought[int(line)])
        already = 0
        for position, qty, purchase in zip(
            group["pos"].tolist(), group["qty"].tolist(), group["purchase"].tolist(), strict=True
        ):
            if already + qty <= line_bought:
                already += qty
                continue
            positions.append(position)
            reasons.append(
                f"returned qty {qty} exceeds remaining {line_bought - already} of purchase "
                f"{purchase!r} (bought {line_bought}, already returned {already})"
            )
    return positions, reasons


def _return_checks(
    typed: pd.DataFrame, candidate: np.ndarray, lines: np.ndarray, purchases: _Checked
) -> list[Problem]:
    """Returns dated before their purchase, and returns beyond the qty bought on the line.

    `candidate` marks the returns with no problem so far; `lines` holds the position of each
    return's purchase among the kept purchases.
    """
    out: list[Problem] = []
    positions = np.flatnonzero(candidate)
    lines = lines[positions]
    bought_ts = purchases.kept[Columns.TS].to_numpy(dtype="datetime64[ns]")[lines]
    returned_ts = typed[Columns.TS].to_numpy(dtype="datetime64[ns]")[positions]
    early = returned_ts < bought_ts
    if early.any():
        reasons = [
            f"return ts {pd.Timestamp(r).tz_localize('UTC').isoformat()} is before its purchase "
            f"{p!r} ts {pd.Timestamp(b).tz_localize('UTC').isoformat()}"
            for r, p, b in zip(
                returned_ts[early],
                typed[Columns.PURCHASE_ID].iloc[positions[early]],
                bought_ts[early],
                strict=True,
            )
        ]
        values = [pd.Timestamp(r).tz_localize("UTC").isoformat() for r in returned_ts[early]]
        out.append(Problem(Columns.TS, RETURN_BEFORE_PURCHASE, positions[early], reasons, values))
    # Returns count against the line in time order (then return_id), as they happened.
    frame = pd.DataFrame(
        {
            "pos": positions[~early],
            "line": lines[~early],
            "ts": returned_ts[~early],
            "rid": typed[Columns.RETURN_ID].to_numpy()[positions[~early]],
            "qty": typed[Columns.QTY].to_numpy()[positions[~early]],
            "purchase": typed[Columns.PURCHASE_ID].to_numpy()[positions[~early]],
        }
    ).sort_values(["ts", "rid"], kind="stable")
    bought = purchases.kept[Columns.QTY].to_numpy()
    cumulative = frame.groupby("line", sort=False)["qty"].cumsum().to_numpy()
    over_lines = frame["line"].to_numpy()[cumulative > bought[frame["line"].to_numpy()]]
    if over_lines.size:
        suspects = frame[frame["line"].isin(np.unique(over_lines))]
        over, reasons = _over_returned(suspects, bought)
        shown = typed[Columns.QTY].iloc[over].astype(str).tolist()
        out.append(Problem(Columns.QTY, OVER_RETURN, np.array(over), reasons, shown))
    return out


def _as_arrow(coerced: Coerced) -> pa.Array:
    """An id column in Arrow: as coerced, or built from its typed str values."""
    if coerced.arrow is not None:
        return coerced.arrow
    return pa.array(coerced.typed.to_numpy(), type=pa.string(), from_pandas=True)


def _typed_text(twin: pa.Array, present: np.ndarray, keep: pa.Array | None) -> pa.Array:
    """A text column as read, as validation types it (null where missing), kept rows only."""
    if not present.all():
        missing = pa.array(~present)
        if pa.types.is_dictionary(twin.type):
            indices = pc.if_else(missing, pa.scalar(None, twin.indices.type), twin.indices)
            twin = pa.DictionaryArray.from_arrays(indices, twin.dictionary)
        else:
            twin = pc.if_else(missing, pa.scalar(None, twin.type), twin)
    return twin.filter(keep) if keep is not None else twin


def _rejected_mask(n_rows: int, problems: list[Problem]) -> np.ndarray:
    """Rows with at least one problem."""
    rejected = np.zeros(n_rows, dtype=bool)
    for problem in problems:
        rejected[problem.positions] = True
    return rejected


def _check_table(
    raw: pd.DataFrame,
    spec: TableSpec,
    bounds: TimeBounds,
    checked: dict[str, _Checked],
    display: Display,
    twins: dict[str, pa.Array] | None = None,
) -> tuple[_Checked, pd.DataFrame, dict[str, pa.Array]]:
    """Check one table; return what later tables need, its quarantine rows and Arrow columns.

    `twins` are text columns as read (`read_raw_arrow`); the kept part of each comes back typed
    (null where missing), for the table cache.
    """
    twins = twins or {}
    looked_up = {spec.primary_key} | {fk.column for fk in spec.foreign_keys}
    coerced: dict[str, Coerced] = {}
    problems: list[Problem] = []
    for column in spec.columns:
        want_arrow = column.name in looked_up
        coerced[column.name] = coerce_column(
            raw[column.name],
            column,
            bounds,
            want_arrow=want_arrow,
            arrow=twins.get(column.name),
        )
        problems += coerced[column.name].problems
    # copy=False: consolidating millions of object pointers into one block costs seconds.
    typed = pd.DataFrame({name: c.typed for name, c in coerced.items()}, copy=False)
    problems += _duplicates(raw, typed, coerced[spec.primary_key], spec, display)
    found, found_at = _references(typed, coerced, spec, checked)
    problems += found
    if spec.name == Tables.RETURNS:
        candidate = ~_rejected_mask(len(raw), problems)
        lines = found_at[Columns.PURCHASE_ID]
        problems += _return_checks(typed, candidate, lines, checked[Tables.PURCHASES])
    rejected = _rejected_mask(len(raw), problems)
    quarantine = quarantine_rows(raw, spec, problems, display)
    kept = typed
    if rejected.any():
        keep = np.flatnonzero(~rejected)
        kept = pd.DataFrame(
            {name: column.take(keep).reset_index(drop=True) for name, column in typed.items()},
            copy=False,
        )
    # Rows that refer to a quarantined row are told where it is and its first problem.
    keys = typed[spec.primary_key].to_numpy()[quarantine["position"].to_numpy()]
    descriptions: dict[str, str] = {}
    for key, source, row, reason in zip(
        keys, quarantine["source_file"], quarantine["row"], quarantine["first_reason"], strict=True
    ):
        if key is not None and key not in descriptions:
            descriptions[key] = f"{source} row {row}: {reason}"
    if len(kept) + len(quarantine) != len(raw):
        raise AssertionError(
            f"table {spec.name!r}: read {len(raw)} rows but kept {len(kept)} "
            f"and quarantined {len(quarantine)}"
        )
    kept_ids = _plain_text(_as_arrow(coerced[spec.primary_key]))
    keep_mask = pa.array(~rejected) if rejected.any() else None
    if keep_mask is not None:
        kept_ids = kept_ids.filter(keep_mask)
    kept_arrow = {
        name: _typed_text(twin, coerced[name].present, keep_mask) for name, twin in twins.items()
    }
    state = _Checked(kept, kept_ids, descriptions)
    return state, quarantine.drop(columns=["position", "first_reason"]), kept_arrow


def _validate(
    raws: dict[str, pd.DataFrame],
    bounds: TimeBounds,
    display: Display,
    twins: dict[str, dict[str, pa.Array]] | None = None,
) -> ValidationResult:
    """Check the six tables in dependency order."""
    checked: dict[str, _Checked] = {}
    parts: list[pd.DataFrame] = []
    rows_read: dict[str, int] = {}
    arrow: dict[str, dict[str, pa.Array]] = {}
    for name in Tables.ALL:
        spec = SCHEMAS[name]
        raw = _raw_frame(raws, spec)
        rows_read[name] = len(raw)
        table_twins = (twins or {}).get(name) if raw is raws[name] else None
        checked[name], quarantine, arrow[name] = _check_table(
            raw, spec, bounds, checked, display, table_twins
        )
        parts.append(quarantine)
        if len(raw) >= RELEASE_ROWS:
            pa.default_memory_pool().release_unused()  # lookups' hash tables, gone now
    quarantine = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()
    return ValidationResult(
        tables={
            name: with_event_ids(name, state.kept, arrow.get(name))
            for name, state in checked.items()
        },
        quarantine=quarantine[list(QUARANTINE_COLUMNS)],
        rows_read=rows_read,
        arrow=arrow,
    )


def validate_tables(
    raw: dict[str, pd.DataFrame],
    *,
    now: TimeLike | None = None,
    min_ts: TimeLike = DEFAULT_MIN_TS,
) -> ValidationResult:
    """Check raw tables (as `read_raw_table` returns them) against the contract.

    Parameters
    ----------
    raw
        The six tables by name; `_source_file`/`_source_row` columns are used when present.
    now
        The moment timestamps may not be more than one day after (default: the current time).
    min_ts
        The earliest timestamp accepted; naive values are taken as UTC.

    Returns
    -------
    ValidationResult
        Kept tables may share memory with the frames given (text columns are not copied).

    Raises
    ------
    SchemaError
        If a table or one of its required columns is missing.
    """
    return _validate(raw, time_bounds(now, min_ts), display=str)


def validate_dir(
    data_dir: str | Path,
    *,
    quarantine_dir: str | Path | None = None,
    now: TimeLike | None = None,
    min_ts: TimeLike = DEFAULT_MIN_TS,
) -> ValidationResult:
    """Read and check the six tables of `data_dir`; write quarantine files when a dir is given.

    Source files are named relative to `data_dir` in reasons and quarantine files.

    Raises
    ------
    SchemaError
        If `data_dir` is not a directory, or a table is missing, unreadable or lacks a column.
    ValueError
        If `quarantine_dir` is `data_dir` itself (its files would read as tables).
    """
    data_dir = Path(data_dir)
    if not data_dir.is_dir():
        raise SchemaError(f"data directory {data_dir} does not exist", path=str(data_dir))
    if quarantine_dir is not None and Path(quarantine_dir).resolve() == data_dir.resolve():
        raise ValueError(
            f"quarantine_dir must differ from data_dir, got {quarantine_dir} for both "
            "(quarantine files would be read as tables)"
        )
    bounds = time_bounds(now, min_ts)
    raws: dict[str, pd.DataFrame] = {}
    twins: dict[str, dict[str, pa.Array]] = {}
    for name in Tables.ALL:
        rows = {read: len(frame) for read, frame in raws.items()}
        raws[name], twins[name] = read_raw_arrow(data_dir, name, rows)

    def display(source: str) -> str:
        try:
            return Path(source).relative_to(data_dir).as_posix()
        except ValueError:
            return source

    result = _validate(raws, bounds, display, twins)
    if quarantine_dir is not None:
        result.write_quarantine(quarantine_dir)
    return result
