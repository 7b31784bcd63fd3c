"""A/B reports on disk: the HTML files `recsys ab-report` writes under `RECSYS_REPORTS_DIR`.

The explorer lists them newest first and serves them (and the files beside them, such as
plots) only from inside that directory: a path that resolves outside it is refused.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

MAX_LISTED = 50
# Files a report may link to besides itself; anything else is not served.
SERVED_SUFFIXES = frozenset({".html", ".png", ".svg", ".css", ".js", ".json", ".csv"})


@dataclass(frozen=True)
class Report:
    """One HTML report: its path under the reports directory, when it was written, its size."""

    path: str
    modified: datetime
    size: int


def find_reports(root: Path | None, limit: int = MAX_LISTED) -> list[Report]:
    """The newest `limit` HTML files under `root` (none when it is unset or missing)."""
    if root is None or not root.is_dir():
        return []
    found = []
    for path in root.rglob("*.html"):
        if path.is_file() and path.resolve().is_relative_to(root.resolve()):
            stat = path.stat()
            modified = datetime.fromtimestamp(stat.st_mtime, UTC)
            found.append(Report(path.relative_to(root).as_posix(), modified, stat.st_size))
    found.sort(key=lambda r: (r.modified, r.path), reverse=True)
    return found[:limit]


def report_file(root: Path | None, relative: str) -> Path | None:
    """The file `relative` names inside `root`, or None (outside it, missing, or not servable)."""
    if root is None or not relative or "\x00" in relative:
        return None
    base = root.resolve()
    path = (base / relative).resolve()
    if not path.is_relative_to(base) or not path.is_file():
        return None
    return path if path.suffix.lower() in SERVED_SUFFIXES else None
