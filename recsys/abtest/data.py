"""What an A/B report reads: exposures, clicks and the contract's event tables of a data directory.

Exposures and clicks live beside the contract tables as date-partitioned Parquet
(`DIR/exposures/date=YYYY-MM-DD/*.parquet`, `DIR/clicks/date=.../*.parquet`); shares, purchases,
returns and customers come through `recsys.contract.loader.load_tables`, so the report sees the
same validated rows as training.
"""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from recsys.exceptions import SchemaError

EXPOSURES = "exposures"
CLICKS = "clicks"
EXPOSURE_COLUMNS: tuple[str, ...] = (
    "event_id",
    "request_id",
    "ts",
    "target",
    "agent_id",
    "customer_id",
    "experiment",
    "variant",
    "snapshot",
    "model_version",
    "sku_ids",
    "positions",
    "source",
)
CLICK_COLUMNS: tuple[str, ...] = (
    "event_id",
    "ts",
    "agent_id",
    "customer_id",
    "sku_id",
    "request_id",
)
EVENT_COLUMNS: dict[str, tuple[str, ...]] = {EXPOSURES: EXPOSURE_COLUMNS, CLICKS: CLICK_COLUMNS}
# Columns of the contract tables the report uses (the loader returns more).
CONTRACT_COLUMNS: dict[str, tuple[str, ...]] = {
    "customers": ("customer_id", "agent_id", "joined_at"),
    "shares": ("share_id", "ts", "agent_id", "sku_id"),
    "purchases": (
        "purchase_id",
        "order_id",
        "ts",
        "customer_id",
        "agent_id",
        "sku_id",
        "qty",
        "unit_price",
    ),
    "returns": ("return_id", "ts", "purchase_id", "qty"),
}
_DATE_DIR = re.compile(r"^date=(\d{4}-\d{2}-\d{2})$")


@dataclass
class ExperimentData:
    """The frames an A/B report is computed from (one data directory, all experiments)."""

    exposures: pd.DataFrame
    clicks: pd.DataFrame
    shares: pd.DataFrame
    purchases: pd.DataFrame
    returns: pd.DataFrame
    customers: pd.DataFrame
    notes: list[str] = field(default_factory=list)

    def observed_until(self) -> pd.Timestamp | None:
        """The latest event time in the data (what outcome windows can be observed up to)."""
        times = [
            frame["ts"].max()
            for frame in (self.exposures, self.clicks, self.shares, self.purchases, self.returns)
            if len(frame)
        ]
        return max(times) if times else None


def empty_events(name: str) -> pd.DataFrame:
    """An event table (`exposures` or `clicks`) with its columns and no rows."""
    frame = pd.DataFrame({c: pd.Series(dtype=object) for c in EVENT_COLUMNS[name]})
    frame["ts"] = pd.Series(dtype="datetime64[ns, UTC]")
    return frame


def _partition_date(path: Path, root: Path) -> str | None:
    """The `date=YYYY-MM-DD` folder a part sits in, if any."""
    for part in path.relative_to(root).parts[:-1]:
        match = _DATE_DIR.match(part)
        if match:
            return match.group(1)
    return None


def _to_utc(values: pd.Series, where: str) -> pd.Series:
    """Timestamps as `datetime64[ns, UTC]` (naive taken as UTC, integers as epoch ms)."""
    if pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values):
        return pd.to_datetime(values, unit="ms", utc=True).astype("datetime64[ns, UTC]")
    try:
        return pd.to_datetime(values, utc=True, format="ISO8601").astype("datetime64[ns, UTC]")
    except (ValueError, TypeError) as exc:
        raise SchemaError(f"{where}: column 'ts' is not a timestamp: {exc}", column="ts") from exc


def _normalise(frame: pd.DataFrame, columns: tuple[str, ...], path: Path) -> pd.DataFrame:
    """One part with `ts` in UTC and ids as `str` (None when null), whatever the part's types."""
    frame["ts"] = _to_utc(frame["ts"], str(path))
    for col in columns:
        if col not in ("ts", "sku_ids", "positions"):
            values = frame[col]
            frame[col] = np.where(values.isna(), None, values.astype(str))
    return frame


def read_events(
    data_dir: str | Path,
    name: str,
    *,
    min_date: str | None = None,
    max_date: str | None = None,
) -> pd.DataFrame:
    """Every part of `DIR/<name>/` (`exposures` or `clicks`), optionally only some date folders.

    Parts outside a `date=` folder are always read. Ids come out as `str` (None when null),
    `ts` as `datetime64[ns, UTC]`.

    Raises
    ------
    FileNotFoundError
        If `DIR/<name>/` does not exist.
    SchemaError
        If a part cannot be read or lacks a required column (the file is named).
    """
    columns = EVENT_COLUMNS[name]
    root = Path(data_dir) / name
    if not root.is_dir():
        raise FileNotFoundError(
            f"no {name} in {data_dir}: expected {root}/date=YYYY-MM-DD/*.parquet"
        )
    frames = []
    for path in sorted(p for p in root.rglob("*.parquet") if p.is_file()):
        day = _partition_date(path, root)
        if day is not None and (
            (min_date is not None and day < min_date) or (max_date is not None and day > max_date)
        ):
            continue
        try:
            table = pq.read_table(path)
        except (OSError, pa.ArrowException) as exc:
            raise SchemaError(f"cannot read {path}: {exc}", path=str(path)) from exc
        missing = [c for c in columns if c not in table.column_names]
        if missing:
            raise SchemaError(
                f"{path}: missing column(s) {', '.join(map(repr, missing))} of {name} "
                f"(expected: {', '.join(columns)})",
                path=str(path),
                column=missing[0],
            )
        frames.append(_normalise(table.select(list(columns)).to_pandas(), columns, path))
    if not frames:
        return empty_events(name)
    with warnings.catch_warnings():
        # Parts may hold all-null columns; every column was already normalised per part.
        warnings.simplefilter("ignore", FutureWarning)
        frame = pd.concat(frames, ignore_index=True)
    return frame.reset_index(drop=True)


def load_experiment_data(data_dir: str | Path, *, now: str | None = None) -> ExperimentData:
    """Exposures, clicks and the validated contract tables of `data_dir`.

    Quarantined contract rows are left out and counted in `notes`; a missing `clicks/` folder is
    an empty table (clicks only refine coverage).

    Raises
    ------
    FileNotFoundError
        If the data directory or its `exposures/` folder is missing.
    SchemaError
        If a contract table or an event part is unreadable or lacks a column.
    """
    from recsys.contract.loader import QuarantineWarning, load_tables

    data_dir = Path(data_dir)
    if not data_dir.is_dir():
        raise FileNotFoundError(f"data directory not found: {data_dir}")
    exposures = read_events(data_dir, EXPOSURES)
    clicks = read_events(data_dir, CLICKS) if (data_dir / CLICKS).is_dir() else empty_events(CLICKS)
    notes: list[str] = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", QuarantineWarning)
        tables = load_tables(data_dir, on_quarantine="warn", now=now)
    notes += [str(w.message) for w in caught if issubclass(w.category, QuarantineWarning)]
    picked = {name: tables[name][list(cols)] for name, cols in CONTRACT_COLUMNS.items()}
    return ExperimentData(exposures=exposures, clicks=clicks, notes=notes, **picked)


def write_partitioned(frame: pd.DataFrame, folder: str | Path, *, ts: str = "ts") -> list[Path]:
    """Write `frame` as `folder/date=YYYY-MM-DD/part-0.parquet`, one file per UTC day of `ts`."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    days = pd.to_datetime(frame[ts], utc=True).dt.strftime("%Y-%m-%d")
    for day, part in frame.groupby(days, sort=True):
        path = folder / f"date={day}" / "part-0.parquet"
        path.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(pa.Table.from_pandas(part, preserve_index=False), path, compression="zstd")
        written.append(path)
    return written
