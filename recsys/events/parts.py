"""Part files of the sink: atomic writes into `TABLE/date=YYYY-MM-DD/`, and which event ids
each such partition already holds.

A part is written to a hidden temporary file, flushed to disk and renamed into place, so a
reader (or a sink killed mid-write) only ever sees whole files; the loader ignores the
temporaries (`.tmp`), and the sink removes leftovers when it starts. An event's partition is
the UTC date of its `ts`, which never changes when the event is redelivered: so the ids already
in that one partition are all the sink needs to drop a redelivered event.
"""

from __future__ import annotations

import os
from collections import OrderedDict
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from recsys.events.kinds import EVENT_ID

PART_SUFFIX = ".parquet"
TEMP_PREFIX = ".part-"
TEMP_SUFFIX = ".tmp"


def partition_dir(data_dir: Path, table: str, date: str) -> Path:
    """`data_dir/table/date=YYYY-MM-DD`."""
    return Path(data_dir) / table / f"date={date}"


def part_stem(first_entry_id: str) -> str:
    """`part-<ms>-<seq>` from a stream entry id, zero-padded so names sort in stream order."""
    ms, _, seq = first_entry_id.partition("-")
    return f"part-{int(ms):013d}-{int(seq or 0):06d}"


def _fsync_dir(folder: Path) -> None:
    """Make a rename in `folder` durable (a no-op where directories cannot be opened)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_part(folder: Path, stem: str, table: pa.Table) -> Path:
    """Write `table` as `folder/<stem>-NNN.parquet` (first free NNN), atomically and durably."""
    folder.mkdir(parents=True, exist_ok=True)
    n = 0
    while (path := folder / f"{stem}-{n:03d}{PART_SUFFIX}").exists():
        n += 1
    temp = folder / f"{TEMP_PREFIX}{path.stem}{PART_SUFFIX}{TEMP_SUFFIX}"
    with open(temp, "wb") as handle:
        pq.write_table(table, handle, compression="zstd")
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temp, path)
    _fsync_dir(folder)
    return path


def remove_temporaries(data_dir: Path, tables: tuple[str, ...]) -> int:
    """Delete the temporaries a killed sink left in the tables' folders; return how many."""
    n = 0
    for table in tables:
        folder = Path(data_dir) / table
        if folder.is_dir():
            for temp in folder.glob(f"*/{TEMP_PREFIX}*{TEMP_SUFFIX}"):
                temp.unlink(missing_ok=True)
                n += 1
    return n


def read_event_ids(folder: Path) -> set[str]:
    """Event ids held by the Parquet parts of one partition folder (parts without any: none)."""
    ids: set[str] = set()
    if not folder.is_dir():
        return ids
    for path in sorted(folder.glob(f"*{PART_SUFFIX}")):
        if EVENT_ID not in pq.read_schema(path).names:
            continue
        column = pq.read_table(path, columns=[EVENT_ID]).column(EVENT_ID)
        ids.update(v for v in column.to_pylist() if v is not None)
    return ids


class WrittenIds:
    """The event ids already written per (table, date) partition, read from disk once and kept
    for the most recently used `max_partitions` partitions (events mostly arrive for recent days).
    """

    def __init__(self, data_dir: Path, max_partitions: int = 64) -> None:
        self.data_dir = Path(data_dir)
        self.max_partitions = max_partitions
        self._ids: OrderedDict[tuple[str, str], set[str]] = OrderedDict()

    def of(self, table: str, date: str) -> set[str]:
        """The ids written to one partition (the set is live: `add` updates it)."""
        key = (table, date)
        ids = self._ids.get(key)
        if ids is None:
            ids = read_event_ids(partition_dir(self.data_dir, table, date))
            self._ids[key] = ids
            while len(self._ids) > self.max_partitions:
                self._ids.popitem(last=False)
        else:
            self._ids.move_to_end(key)
        return ids

    def add(self, table: str, date: str, ids: list[str]) -> None:
        """Remember ids just written to a partition."""
        self.of(table, date).update(ids)
