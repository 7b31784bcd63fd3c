"""The closed loop's clock: exposures moved from the service's wall clock to simulated time.

The service stamps each exposure with its own clock, but the loop plays weeks of simulated days
in minutes, and the purchases, shares and returns it posts carry simulated times. After
`recsys sink` has written (and acknowledged) the exposures, `retime_exposures` gives each
exposure of the loop's own requests (known by `request_id`) the simulated time its agent opened
her feed, and moves it into that date's partition, so the report's windows line up with the
outcomes exactly as they would in production, where both clocks are the same. The service's
time stays in a `served_at` column; exposures of other requests are left as they are.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

SERVED_AT = "served_at"


@dataclass
class Retimed:
    """What `retime_exposures` did: exposures moved and left alone (`strays`: of those, the
    ones of the experiment), requests of the clock not found, part files written."""

    moved: int = 0
    others: int = 0
    strays: int = 0
    missing: int = 0
    parts: int = 0


def _free_name(folder: Path, name: str, source: Path) -> Path:
    """`folder/name`, or `folder/<stem>-rN.parquet` when another file already has that name."""
    target = folder / name
    n = 0
    while target.exists() and target != source:
        n += 1
        target = folder / f"{Path(name).stem}-r{n}.parquet"
    return target


def _write(table: pa.Table, path: Path) -> None:
    """Write a part atomically (a hidden temporary file renamed into place)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    pq.write_table(table, tmp, compression="zstd")
    os.replace(tmp, path)


def retime_exposures(
    data_dir: Path, clock: Mapping[str, pd.Timestamp], experiment: str | None = None
) -> Retimed:
    """Give the exposures of the requests in `clock` their simulated time and date partition.

    `clock` maps a request id to the simulated UTC time its feed was opened; exposures of
    `experiment` that are not in it are counted as `strays` (a request sent again after its
    answer was lost was served, and logged, twice). Run it after the
    sink has acknowledged every exposure: a redelivered exposure is looked for in the partition
    of its service time, where it no longer is.

    Raises
    ------
    FileNotFoundError
        If `data_dir` has no `exposures/` folder.
    """
    root = Path(data_dir) / "exposures"
    if not root.is_dir():
        raise FileNotFoundError(f"no exposures in {data_dir}: run `recsys sink` first")
    out = Retimed()
    seen: set[str] = set()
    for path in sorted(p for p in root.rglob("*.parquet") if p.is_file()):
        table = pq.read_table(path)
        frame = table.to_pandas()
        new_ts = frame["request_id"].map(clock)
        mine = new_ts.notna().to_numpy()
        seen.update(frame.loc[mine, "request_id"])
        out.others += int((~mine).sum())
        if experiment is not None:
            out.strays += int(((frame["experiment"] == experiment).to_numpy() & ~mine).sum())
        if not mine.any():
            continue
        if SERVED_AT not in frame.columns:
            frame[SERVED_AT] = frame["ts"]
        frame.loc[mine, "ts"] = pd.to_datetime(new_ts[mine], utc=True)
        frame["ts"] = pd.to_datetime(frame["ts"], utc=True)
        schema = table.schema
        if SERVED_AT not in schema.names:
            schema = schema.append(pa.field(SERVED_AT, schema.field("ts").type))
        days = frame["ts"].dt.strftime("%Y-%m-%d")
        keep_here = False
        for day, rows in frame.groupby(days, sort=True):
            folder = root / f"date={day}"
            target = _free_name(folder, path.name, path)
            keep_here |= target == path
            part = pa.Table.from_pandas(rows, schema=schema, preserve_index=False)
            _write(part, target)
            out.parts += 1
        if not keep_here:
            path.unlink()
        out.moved += int(mine.sum())
    out.missing = len(set(clock) - seen)
    return out
