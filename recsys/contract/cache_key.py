"""What a cached validation depends on: the bytes of the input files and the code that read them.

A file's identity is the sha256 of its content. Hashing runs at about 1 GB/s, a small cost next
to parsing, but a memo keyed by (size, mtime, ctime, inode) skips even that for files untouched
since they were hashed. As in git's "racily clean" rule, a file changed within `RACY_NS` of the
moment it was hashed is hashed again, since a coarse file clock could hide a later change.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

RACY_NS = 2_000_000_000
MEMO_FILE = "file-digests.json"


def _stat_key(path: Path) -> list[int]:
    """What changes whenever a file's content does (ctime cannot be set back by a user)."""
    st = path.stat()
    return [st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino]


def _hash_file(path: Path) -> str:
    """sha256 of a file's bytes."""
    with path.open("rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def file_digests(paths: Iterable[Path], memo_dir: Path | None) -> dict[str, str]:
    """sha256 of each file by its path (as given), reusing the memo in `memo_dir` when safe."""
    memo_path = memo_dir / MEMO_FILE if memo_dir is not None else None
    memo: dict[str, list] = {}
    if memo_path is not None and memo_path.is_file():
        try:
            memo = json.loads(memo_path.read_text())
        except (OSError, ValueError):
            memo = {}
    out: dict[str, str] = {}
    fresh: dict[str, list] = {}
    for path in paths:
        name = str(Path(path).resolve())
        started = time.time_ns()
        stat = _stat_key(Path(path))
        known = memo.get(name)
        if known is not None and known[:4] == stat and known[5] - stat[2] > RACY_NS:
            out[str(path)] = known[4]
            fresh[name] = known
            continue
        digest = _hash_file(Path(path))
        out[str(path)] = digest
        fresh[name] = [*stat, digest, started]
    if memo_path is not None and fresh != {k: memo.get(k) for k in fresh}:
        memo.update(fresh)
        try:
            write_atomic(memo_path, json.dumps(memo).encode())
        except OSError:
            pass  # the memo only saves time; a read-only cache folder must not fail a load
    return out


def source_digest(*modules: str) -> str:
    """sha256 over the source of the given modules (dotted names) and the library versions.

    A cache entry keyed by it is invalidated by any change to the code that produced it.
    """
    import importlib.util

    digest = hashlib.sha256()
    for name in sorted(modules):
        spec = importlib.util.find_spec(name)
        if spec is None or spec.origin is None:
            raise ValueError(f"cannot find the source of module {name!r}")
        digest.update(name.encode() + b"\0" + Path(spec.origin).read_bytes() + b"\0")
    versions = f"numpy {np.__version__}; pandas {pd.__version__}; pyarrow {pa.__version__}"
    digest.update(versions.encode())
    return digest.hexdigest()


def package_digest(package: str) -> str:
    """sha256 over every module of a package (by dotted name) and the library versions."""
    import importlib.util

    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise ValueError(f"{package!r} is not a package")
    folder = Path(next(iter(spec.submodule_search_locations)))
    names = [f"{package}.{p.stem}" for p in sorted(folder.glob("*.py")) if p.stem != "__init__"]
    return source_digest(package, *names)


def write_atomic(path: Path, data: bytes) -> None:
    """Write `data` to `path` through a temporary file and a rename (readers never see half)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)
