"""A cache of validated data directories: typed tables and quarantine, as Arrow files.

Validating millions of rows takes tens of seconds; re-reading the typed result takes a few. An
entry is keyed by the sha256 of every table file, the earliest accepted timestamp and the source
of the contract code (`recsys/contract/`), so any change to the data or to the rules misses the
cache. It holds each kept table (`<table>.arrow`), the quarantine records and the rows read, so a
cached load reports and writes exactly the quarantine a fresh one would.

Only the "latest accepted" timestamp depends on the moment of loading (now + 1 day). An entry
is reused when no row was rejected for being too late and the new bound is not earlier than the
one it was validated with: then no row could be judged differently.

Where: `DATA_DIR/.recsys-cache/`, or `$RECSYS_TABLE_CACHE_DIR/<hash of DATA_DIR>/`.
`RECSYS_TABLE_CACHE=off` (or `load_tables(cache=False)`) turns it off. A new entry replaces the
older entries of the same data directory; a cache that cannot be written is skipped silently.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pyarrow as pa

from recsys.columns import Tables
from recsys.contract.arrow_tables import id_columns, table_from_arrow, table_to_arrow
from recsys.contract.cache_key import file_digests, source_digest, write_atomic
from recsys.contract.io import find_table_files
from recsys.contract.quarantine import QUARANTINE_COLUMNS, ValidationResult

CACHE_DIRNAME = ".recsys-cache"
ENV_SWITCH = "RECSYS_TABLE_CACHE"
ENV_DIR = "RECSYS_TABLE_CACHE_DIR"
OFF_VALUES = ("0", "off", "false", "no")
FORMAT = 1
ENTRY_PREFIX = "tables-"
META_FILE = "meta.json"
QUARANTINE_FILE = "quarantine.arrow"
DERIVED_DIRNAME = "derived"
TMP_PREFIX = ".tmp-"
STALE_TMP_S = 3600  # a temporary folder this old was left by a crashed run
# The code whose output an entry holds: a change to any of these misses the cache.
CONTRACT_MODULES: tuple[str, ...] = (
    "recsys.columns",
    "recsys.contract.arrow_tables",
    "recsys.contract.coerce",
    "recsys.contract.io",
    "recsys.contract.quarantine",
    "recsys.contract.schema",
    "recsys.contract.table_cache",
    "recsys.contract.validate",
)
# Part of a reason that names the moment of loading (coerce.py's "after the latest accepted").
NOW_DEPENDENT = "after the latest accepted"
_IPC_OPTIONS = pa.ipc.IpcWriteOptions(compression=None)


def cache_enabled(cache: bool | None) -> bool:
    """`cache` when given, else on unless `RECSYS_TABLE_CACHE` says off."""
    if cache is not None:
        return cache
    return os.environ.get(ENV_SWITCH, "").strip().lower() not in OFF_VALUES


def cache_root(data_dir: Path) -> Path:
    """The folder holding the cache entries of `data_dir`."""
    custom = os.environ.get(ENV_DIR)
    if custom:
        tag = hashlib.sha256(str(Path(data_dir).resolve()).encode()).hexdigest()[:16]
        return Path(custom) / tag
    return Path(data_dir) / CACHE_DIRNAME


@dataclass(frozen=True)
class CacheEntry:
    """One cached validation: its folder and the key it was stored under."""

    path: Path
    key: str

    def derived(self, name: str) -> Path:
        """A file for something computed from these tables (e.g. a fingerprint).

        It lives and dies with the entry; `name` must carry whatever else it depends on.
        """
        folder = self.path / DERIVED_DIRNAME
        folder.mkdir(exist_ok=True)
        return folder / name


class TableCache:
    """The cache of one data directory: look an entry up, store one."""

    def __init__(self, data_dir: Path, *, min_ts: pd.Timestamp) -> None:
        self.data_dir = Path(data_dir)
        self.root = cache_root(self.data_dir)
        self.min_ts = min_ts
        self._key: str | None = None
        self._files: list[Path] = []
        self._stats: list[tuple[int, ...]] = []

    def key(self) -> str | None:
        """The entry key for the data as it is now; None when a table file is missing."""
        if self._key is not None:
            return self._key
        files: list[Path] = []
        for table in Tables.ALL:
            found = find_table_files(self.data_dir, table)
            if not found:
                return None  # validation will say which table is missing
            files += found
        memo_dir = self.root if writable_dir(self.root) else None
        self._files, self._stats = files, _stats(files)
        digests = file_digests(files, memo_dir)
        digest = hashlib.sha256()
        digest.update(f"format {FORMAT}; min_ts {self.min_ts.isoformat()};".encode())
        digest.update(source_digest(*CONTRACT_MODULES).encode())
        for path in files:
            rel = path.relative_to(self.data_dir).as_posix()
            digest.update(f"{rel}\0{digests[str(path)]}\0".encode())
        self._key = digest.hexdigest()
        return self._key

    def _entry_path(self, key: str) -> Path:
        return self.root / f"{ENTRY_PREFIX}{key[:32]}"

    def read(self, upper: pd.Timestamp) -> tuple[ValidationResult, CacheEntry] | None:
        """The cached result for the current files and latest accepted time `upper`, if any."""
        key = self.key()
        if key is None:
            return None
        path = self._entry_path(key)
        try:
            meta = json.loads((path / META_FILE).read_text())
        except (OSError, ValueError):
            return None
        if meta.get("key") != key or meta.get("now_dependent", True):
            return None
        if upper < pd.Timestamp(meta["upper"]):
            return None
        tables: dict[str, pd.DataFrame] = {}
        arrow: dict[str, dict[str, pa.Array]] = {}
        try:
            for name in Tables.ALL:
                stored = _read_ipc(path / f"{name}.arrow")
                tables[name] = table_from_arrow(name, stored)
                arrow[name] = id_columns(name, stored)
            quarantine = _read_ipc(path / QUARANTINE_FILE).to_pandas()
        except (OSError, pa.ArrowException, KeyError):
            return None
        result = ValidationResult(
            tables=tables,
            quarantine=quarantine[list(QUARANTINE_COLUMNS)],
            rows_read={name: int(meta["rows_read"][name]) for name in Tables.ALL},
            arrow=arrow,
        )
        return result, CacheEntry(path, key)

    def write(self, result: ValidationResult, upper: pd.Timestamp) -> CacheEntry | None:
        """Store `result` (validated with latest accepted time `upper`); None if it cannot be."""
        key = self.key()
        if key is None or not writable_dir(self.root):
            return None
        reasons = result.quarantine["reason"].astype(str)
        meta = {
            "format": FORMAT,
            "key": key,
            "upper": upper.isoformat(),
            "now_dependent": bool(reasons.str.contains(NOW_DEPENDENT, regex=False).any()),
            "rows_read": result.rows_read,
            "data_dir": str(self.data_dir.resolve()),
        }
        if self._stats != _stats(self._files):
            return None  # a file changed while it was validated: the key may not describe it
        final = self._entry_path(key)
        try:
            tmp = Path(tempfile.mkdtemp(prefix=TMP_PREFIX, dir=self.root))
        except OSError:
            return None
        try:
            for name in Tables.ALL:
                table = table_to_arrow(name, result.tables[name], result.arrow.get(name))
                _write_ipc(tmp / f"{name}.arrow", table)
            _write_ipc(tmp / QUARANTINE_FILE, _quarantine_to_arrow(result.quarantine))
            write_atomic(tmp / META_FILE, json.dumps(meta, indent=1).encode())
            if final.exists():
                shutil.rmtree(final, ignore_errors=True)
            os.replace(tmp, final)
        except (OSError, pa.ArrowException, TypeError, ValueError):
            # Values the cache cannot hold, or a full disk: load without caching.
            shutil.rmtree(tmp, ignore_errors=True)
            return None
        self._drop_others(final)
        return CacheEntry(final, key)

    def _drop_others(self, keep: Path) -> None:
        """Remove older entries of this data directory (and temporary folders left behind)."""
        stale_before = time.time() - STALE_TMP_S
        for other in self.root.iterdir():
            if other == keep or not other.is_dir():
                continue
            if other.name.startswith(ENTRY_PREFIX) or (
                other.name.startswith(TMP_PREFIX) and other.stat().st_mtime < stale_before
            ):
                shutil.rmtree(other, ignore_errors=True)


def _stats(files: list[Path]) -> list[tuple[int, ...]]:
    """(size, mtime, ctime, inode) of each file: any write to a file changes its ctime."""
    out = []
    for path in files:
        try:
            st = path.stat()
        except OSError:
            out.append(())
            continue
        out.append((st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino))
    return out


def writable_dir(folder: Path) -> bool:
    """Create `folder` if needed; whether files can be written in it."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError:
        return False
    return os.access(folder, os.W_OK)


def _quarantine_to_arrow(quarantine: pd.DataFrame) -> pa.Table:
    """The quarantine records with explicit types (text, and `row` as int64)."""
    arrays = {
        col: pa.array(
            quarantine[col].to_numpy(),
            type=pa.int64() if col == "row" else pa.string(),
            from_pandas=True,
        )
        for col in QUARANTINE_COLUMNS
    }
    return pa.table(arrays)


def _write_ipc(path: Path, table: pa.Table) -> None:
    """An Arrow IPC file (LZ4 buffers, one record batch: a table is read back in one piece)."""
    with pa.OSFile(str(path), "wb") as sink:
        with pa.ipc.new_file(sink, table.schema, options=_IPC_OPTIONS) as writer:
            writer.write_table(table, max_chunksize=max(len(table), 1))


def _read_ipc(path: Path) -> pa.Table:
    """An Arrow IPC file written by `_write_ipc`."""
    with pa.memory_map(str(path), "r") as source:
        return pa.ipc.open_file(source).read_all()
