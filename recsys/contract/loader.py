"""The one way the project loads a data directory: validated, typed tables (issue 2).

Training, features and importers' round trips all call `load_tables`, so every consumer sees the
same kept rows and nothing invalid slips past the contract.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import pandas as pd
import pyarrow as pa

from recsys.columns import Tables
from recsys.contract.schema import SCHEMAS
from recsys.contract.table_cache import CacheEntry, TableCache, cache_enabled
from recsys.contract.validate import (
    DEFAULT_MIN_TS,
    TimeLike,
    ValidationResult,
    time_bounds,
    validate_dir,
)

OnQuarantine = Literal["raise", "warn", "ignore"]
ON_QUARANTINE: tuple[str, ...] = ("raise", "warn", "ignore")
QUARANTINE_DIRNAME = "quarantine"


class QuarantineWarning(UserWarning):
    """Rows of a data directory were quarantined while loading it."""


def _report(result: ValidationResult, data_dir: Path, where: str) -> str:
    """One line naming how many rows of each table were quarantined and where they went."""
    counts = ", ".join(
        f"{table} {result.n_quarantined(table)}/{result.rows_read[table]}"
        for table in Tables.ALL
        if result.n_quarantined(table)
    )
    return f"{len(result.quarantine)} rows of {data_dir} quarantined ({counts}); {where}"


@dataclass(frozen=True)
class LoadedTables:
    """The kept tables of a data directory, and the cache entry they came from or went to."""

    tables: dict[str, pd.DataFrame]
    # None when caching is off or the cache could not be written
    cache_entry: CacheEntry | None
    from_cache: bool
    # Id columns as Arrow arrays (dictionary-encoded when ids repeat), same values as `tables`,
    # when the reader had them: lookups on them skip converting millions of `str`.
    arrow: dict[str, dict[str, pa.Array]] = field(default_factory=dict, repr=False)


def validate_cached(
    data_dir: Path, *, now: TimeLike | None = None, cache: bool | None = None
) -> tuple[ValidationResult, CacheEntry | None, bool]:
    """`validate_dir(data_dir, now=now)`, answered from the table cache when it holds the result.

    Returns the result, its cache entry (None when not cached) and whether it came from the cache.
    """
    # One "now" for the cache check and the validation, so both use the same bounds.
    current = pd.Timestamp.now(tz="UTC") if now is None else now
    bounds = time_bounds(current, DEFAULT_MIN_TS)
    store = TableCache(data_dir, min_ts=bounds.lower) if cache_enabled(cache) else None
    if store is not None:
        hit = store.read(bounds.upper)
        if hit is not None:
            return hit[0], hit[1], True
    result = validate_dir(data_dir, now=current)
    entry = store.write(result, bounds.upper) if store is not None else None
    return result, entry, False


def load_tables(
    data_dir: str | Path,
    *,
    on_quarantine: OnQuarantine = "warn",
    quarantine_dir: str | Path | None = None,
    now: TimeLike | None = None,
    cache: bool | None = None,
) -> dict[str, pd.DataFrame]:
    """Read, validate and type the six tables of `data_dir`; return the kept rows by table name.

    Parameters
    ----------
    data_dir
        The data directory (see docs/data-contract.md).
    on_quarantine
        What to do when rows are quarantined: "warn" (a `QuarantineWarning` naming the counts
        per table and the quarantine folder), "raise" (`ValueError`) or "ignore".
    quarantine_dir
        Where quarantine files go; by default `data_dir/quarantine` ("warn" and "raise") and
        nowhere ("ignore").
    now
        The moment timestamps may not be more than one day after (default: the current time).
    cache
        Reuse (and store) the validated tables in the table cache (docs/data-contract.md);
        None = on unless the environment variable `RECSYS_TABLE_CACHE` is `off`.

    Raises
    ------
    SchemaError
        If a table is missing, unreadable or lacks a required column.
    ValueError
        If `on_quarantine` is unknown, or is "raise" and rows were quarantined.
    """
    return load_tables_cached(
        data_dir, on_quarantine=on_quarantine, quarantine_dir=quarantine_dir, now=now, cache=cache
    ).tables


def load_tables_cached(
    data_dir: str | Path,
    *,
    on_quarantine: OnQuarantine = "warn",
    quarantine_dir: str | Path | None = None,
    now: TimeLike | None = None,
    cache: bool | None = None,
) -> LoadedTables:
    """`load_tables`, also saying which cache entry holds the tables (for derived results)."""
    if on_quarantine not in ON_QUARANTINE:
        raise ValueError(
            f"on_quarantine must be one of {', '.join(map(repr, ON_QUARANTINE))}, "
            f"got {on_quarantine!r}"
        )
    data_dir = Path(data_dir)
    result, entry, hit = validate_cached(data_dir, now=now, cache=cache)
    ids = {
        name: {c.name for c in SCHEMAS[name].columns if c.kind == "id"} for name in result.tables
    }
    arrow = {
        name: {col: arr for col, arr in columns.items() if col in ids[name]}
        for name, columns in result.arrow.items()
    }
    loaded = LoadedTables(result.tables, entry, hit, arrow)
    target = quarantine_dir
    if target is None and on_quarantine != "ignore":
        target = data_dir / QUARANTINE_DIRNAME
    where = "no quarantine files written"
    if target is not None:
        try:
            written = result.write_quarantine(target)
            where = f"see {', '.join(str(p) for p in written)}" if written else where
        except OSError as exc:
            # A read-only data directory must not stop training; say why the files are missing.
            where = f"could not write quarantine files to {target}: {exc}"
    if result.exit_code == 0 or on_quarantine == "ignore":
        return loaded
    message = _report(result, data_dir, where)
    if on_quarantine == "raise":
        raise ValueError(message)
    warnings.warn(message, QuarantineWarning, stacklevel=3)
    return loaded
