"""The one way the project loads a data directory: validated, typed tables (issue 2).

Training, features and importers' round trips all call `load_tables`, so every consumer sees the
same kept rows and nothing invalid slips past the contract.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Literal

import pandas as pd

from recsys.columns import Tables
from recsys.contract.validate import TimeLike, ValidationResult, validate_dir

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


def load_tables(
    data_dir: str | Path,
    *,
    on_quarantine: OnQuarantine = "warn",
    quarantine_dir: str | Path | None = None,
    now: TimeLike | None = None,
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

    Raises
    ------
    SchemaError
        If a table is missing, unreadable or lacks a required column.
    ValueError
        If `on_quarantine` is unknown, or is "raise" and rows were quarantined.
    """
    if on_quarantine not in ON_QUARANTINE:
        raise ValueError(
            f"on_quarantine must be one of {', '.join(map(repr, ON_QUARANTINE))}, "
            f"got {on_quarantine!r}"
        )
    data_dir = Path(data_dir)
    result = validate_dir(data_dir, now=now)
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
        return result.tables
    message = _report(result, data_dir, where)
    if on_quarantine == "raise":
        raise ValueError(message)
    warnings.warn(message, QuarantineWarning, stacklevel=2)
    return result.tables
