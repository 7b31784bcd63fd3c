"""The data directory the sink writes into: one form per table, loadable event tables, one sink.

The sink writes every event table in the folder form (`purchases/date=.../part-...parquet`).
The contract allows one form per table, so a directory made with a single `purchases.parquet`
(or `.csv`) cannot also get a `purchases/` folder: the sink refuses it, or with `fold=True`
moves the file into the folder (`purchases/base/purchases.parquet`, a rename that keeps every
row; `base` sorts before `date=`, so those rows stay first in file order). Event tables that do
not exist yet get an empty part, so the directory loads before the first share or return.
"""

from __future__ import annotations

import fcntl
import os
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

import pyarrow.parquet as pq

from recsys.columns import Tables
from recsys.contract.io import SUFFIXES, find_table_files
from recsys.events.kinds import EVENT_TABLES, SINK_TABLES, TABLE_SCHEMAS
from recsys.events.parts import remove_temporaries
from recsys.exceptions import RecsysError

SINK_DIR = "_sink"
BASE_DIR = "base"
EMPTY_PART = "empty.parquet"
REJECTED_FILE = "rejected.jsonl"
CATALOGUE_TABLES: tuple[str, ...] = (Tables.SKUS, Tables.AGENTS, Tables.CUSTOMERS)


class LayoutError(RecsysError, ValueError):
    """The data directory cannot take the sink's output as it is (the message says what to do)."""


@dataclass
class Prepared:
    """What preparing a data directory did, and what it still lacks for training."""

    folded: list[tuple[Path, Path]] = field(default_factory=list)
    created_empty: list[str] = field(default_factory=list)
    removed_temporaries: int = 0
    missing_catalogue: list[str] = field(default_factory=list)


def _single_files(data_dir: Path, table: str) -> list[Path]:
    return [data_dir / f"{table}{s}" for s in SUFFIXES if (data_dir / f"{table}{s}").is_file()]


def prepare_data_dir(data_dir: Path, *, fold: bool = False) -> Prepared:
    """Make `data_dir` ready for the sink (creating it if needed); see the module docstring.

    Raises
    ------
    LayoutError
        If a sink table is a single file and `fold` is False, or the fold target exists.
    """
    data_dir = Path(data_dir)
    data_dir.mkdir(parents=True, exist_ok=True)
    out = Prepared()
    singles = {table: _single_files(data_dir, table) for table in SINK_TABLES}
    found = [p for paths in singles.values() for p in paths]
    if found and not fold:
        names = ", ".join(p.name for p in found)
        raise LayoutError(
            f"{data_dir} holds {names} as single file(s), but the sink writes each event table "
            f"as a folder of date partitions and a table may have only one form; rerun with "
            f"--fold to move each file into its folder ({found[0].stem}/{BASE_DIR}/"
            f"{found[0].name}, no row changes)"
        )
    for table, paths in singles.items():
        for path in paths:
            target = data_dir / table / BASE_DIR / path.name
            if target.exists():
                raise LayoutError(f"cannot fold {path}: {target} already exists")
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(path, target)
            out.folded.append((path, target))
    for table in EVENT_TABLES:
        if not find_table_files(data_dir, table):
            path = data_dir / table / BASE_DIR / EMPTY_PART
            path.parent.mkdir(parents=True, exist_ok=True)
            pq.write_table(TABLE_SCHEMAS[table].empty_table(), path)
            out.created_empty.append(table)
    out.removed_temporaries = remove_temporaries(data_dir, SINK_TABLES)
    out.missing_catalogue = [t for t in CATALOGUE_TABLES if not find_table_files(data_dir, t)]
    return out


class SinkLock:
    """An exclusive lock on `data_dir/_sink/lock`: one sink per data directory.

    The event-id index lives in the sink's memory, so a second sink on the same directory could
    write an event twice. The operating system drops the lock when the process dies, even on
    SIGKILL.
    """

    def __init__(self, data_dir: Path) -> None:
        self.path = Path(data_dir) / SINK_DIR / "lock"
        self._fd: int | None = None

    def __enter__(self) -> SinkLock:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 32).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            raise LayoutError(
                f"another sink (pid {holder}) is writing to {self.path.parent.parent}; "
                "run one sink per data directory"
            ) from None
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        self._fd = fd
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None
