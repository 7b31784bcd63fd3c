"""Checking events one by one with the data contract's own rules, so a bad event is refused at
the door with the reason the loader would give, and the good ones of the same batch are kept.

Each kind's events are typed column by column with `recsys.contract.coerce.coerce_column` (the
loader's coercion: nulls, types, ranges, allowed values, the sane time range), so an event
accepted here loads cleanly later, except for references to rows the intake cannot see (a
purchase of an unknown SKU is quarantined by `recsys validate`, as any row would be).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from recsys.contract.coerce import TimeBounds, coerce_column
from recsys.contract.schema import ColumnSpec
from recsys.contract.validate import TimeLike
from recsys.contract.validate import time_bounds as contract_time_bounds
from recsys.events.kinds import EVENT_ID, EVENT_SPECS, KIND, KINDS, MAX_EVENT_ID_LENGTH

MIN_TS = "2000-01-01"


@dataclass(frozen=True)
class Rejection:
    """An event refused: its position in the batch, its id when readable, and every reason."""

    index: int
    event_id: str | None
    reason: str


@dataclass(frozen=True)
class Typed:
    """The kept events of one kind as a typed frame, and their positions in what was checked."""

    kind: str
    frame: pd.DataFrame
    positions: np.ndarray


@dataclass(frozen=True)
class CheckedBatch:
    """A checked batch: kept events per kind (typed) and the refused ones, by batch index."""

    typed: dict[str, Typed]
    rejected: list[Rejection]

    @property
    def n_accepted(self) -> int:
        """How many events were kept."""
        return sum(len(t.frame) for t in self.typed.values())


def time_bounds(now: TimeLike | None = None) -> TimeBounds:
    """The loader's sane time range: from 2000-01-01 to one day after `now` (default: now)."""
    return contract_time_bounds(now, MIN_TS)


def _coerce(
    values: list[Any], spec: ColumnSpec, bounds: TimeBounds
) -> tuple[pd.Series, dict[int, list[str]]]:
    """One column typed as the loader types it; reasons of the rows it refuses, by position.

    JSON booleans are judged apart: mixed with numbers they would read as 0 and 1.
    """
    flags = np.fromiter((isinstance(v, bool) for v in values), dtype=bool, count=len(values))
    reasons: dict[int, list[str]] = {}
    groups = [np.flatnonzero(~flags), np.flatnonzero(flags)] if flags.any() else [None]
    typed: pd.Series | None = None
    for rows in groups:
        if rows is not None and rows.size == 0:
            continue
        part = values if rows is None else [values[i] for i in rows]
        raw = pd.Series(part, dtype=bool if rows is not None and flags[rows[0]] else None)
        coerced = coerce_column(raw, spec, bounds)
        for problem in coerced.problems:
            for position, reason in zip(problem.positions, problem.reasons, strict=True):
                at = int(position) if rows is None else int(rows[position])
                reasons.setdefault(at, []).append(reason)
        column = coerced.typed
        if rows is not None:
            column.index = rows
            typed = column if typed is None else pd.concat([typed, column]).sort_index()
        else:
            typed = column
    assert typed is not None
    return typed.reset_index(drop=True), reasons


def check_records(
    kind: str, records: Sequence[Mapping[str, Any]], bounds: TimeBounds
) -> tuple[Typed, dict[int, list[str]]]:
    """Type `records` of one kind; return the kept rows and every reason of each refused one.

    Keys a record lacks are missing values; keys the kind does not know are ignored (as extra
    columns are). Kept timestamps are floored to the microsecond.
    """
    spec = EVENT_SPECS[kind]
    columns: dict[str, pd.Series] = {}
    reasons: dict[int, list[str]] = {}
    for column in spec.columns:
        values = [r.get(column.name) for r in records]
        typed, found = _coerce(values, column, bounds)
        columns[column.name] = typed.dt.floor("us") if column.kind == "ts" else typed
        for at, why in found.items():
            reasons.setdefault(at, []).extend(why)
    ids = columns[EVENT_ID]
    for at, value in enumerate(ids.tolist()):
        if isinstance(value, str) and len(value) > MAX_EVENT_ID_LENGTH:
            reasons.setdefault(at, []).append(
                f"{EVENT_ID} must be at most {MAX_EVENT_ID_LENGTH} characters, got {len(value)}"
            )
    keep = np.array([i not in reasons for i in range(len(records))], dtype=bool)
    frame = pd.DataFrame(columns)
    if not keep.all():
        frame = frame[keep].reset_index(drop=True)
    return Typed(kind, frame, np.flatnonzero(keep)), reasons


def _event_id_of(item: Any) -> str | None:
    """The event id of a raw item as text, when it has a readable one."""
    value = item.get(EVENT_ID) if isinstance(item, Mapping) else None
    if isinstance(value, str) and value:
        return value[:MAX_EVENT_ID_LENGTH]
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return None


def check_events(items: Sequence[Any], *, now: TimeLike | None = None) -> CheckedBatch:
    """Check a posted batch: each item must be an object with a known `kind` and that kind's
    columns; an `event_id` seen earlier in the same batch refuses the later items (the first is
    judged on its own merits, as the contract treats duplicate keys).
    """
    bounds = time_bounds(now)
    reasons: dict[int, list[str]] = {}
    by_kind: dict[str, list[int]] = {kind: [] for kind in KINDS}
    for index, item in enumerate(items):
        if not isinstance(item, Mapping):
            reasons[index] = [f"an event must be a JSON object, got {type(item).__name__}"]
            continue
        kind = item.get(KIND)
        if not isinstance(kind, str) or kind not in by_kind:
            listed = ", ".join(repr(k) for k in KINDS)
            reasons[index] = [f"{KIND} must be one of {listed}, got {kind!r}"]
            continue
        by_kind[kind].append(index)
    checked: dict[str, tuple[Typed, list[int]]] = {}
    for kind, indexes in by_kind.items():
        if not indexes:
            continue
        typed, found = check_records(kind, [items[i] for i in indexes], bounds)
        for at, why in found.items():
            reasons[indexes[at]] = why
        checked[kind] = (typed, indexes)
    first_at: dict[str, int] = {}
    for index, item in enumerate(items):
        event_id = _event_id_of(item)
        if event_id is None:
            continue
        if event_id in first_at:
            reasons.setdefault(index, []).append(
                f"duplicate {EVENT_ID} {event_id!r} (first at index {first_at[event_id]})"
            )
        else:
            first_at[event_id] = index
    typed_out: dict[str, Typed] = {}
    for kind, (typed, indexes) in checked.items():
        batch_index = np.array([indexes[p] for p in typed.positions], dtype=np.int64)
        keep = np.array([i not in reasons for i in batch_index], dtype=bool)
        frame = typed.frame if keep.all() else typed.frame[keep].reset_index(drop=True)
        if len(frame):
            typed_out[kind] = Typed(kind, frame, batch_index[keep])
    rejected = [
        Rejection(index, _event_id_of(items[index]), "; ".join(reasons[index]))
        for index in sorted(reasons)
    ]
    return CheckedBatch(typed_out, rejected)


def to_records(typed: Typed) -> list[dict[str, Any]]:
    """The kept rows as JSON-ready dicts: text, ints, floats, ISO-8601 UTC timestamps, nulls."""
    spec = EVENT_SPECS[typed.kind]
    columns: list[list[Any]] = []
    for column in spec.columns:
        series = typed.frame[column.name]
        if column.kind == "ts":
            values = [None if t is pd.NaT else t.isoformat() for t in series.tolist()]
        else:
            # object dtype turns numpy scalars into Python ones; nulls (NaN, NA) into None
            values = series.astype(object).where(series.notna(), None).tolist()
        columns.append(values)
    names = spec.column_names
    return [dict(zip(names, row, strict=True)) for row in zip(*columns, strict=True)]
