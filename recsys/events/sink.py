"""The sink: drains the events and exposures streams into date-partitioned Parquet, at least once
and idempotently by event id.

Each batch goes: read (own pending entries first, then new ones) → check → drop the event ids
already in their partition → write one part per (table, date) atomically → set refused entries
aside in `_sink/rejected.jsonl` → acknowledge the whole batch. A sink killed anywhere in this
sequence gets the unacknowledged entries again on restart; the ones it had written are dropped
as already present, the others written: nothing lost, nothing twice. See docs/events.md.
"""

from __future__ import annotations

import os
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.compute as pc

from recsys.columns import Columns
from recsys.events.check import check_records, time_bounds
from recsys.events.consumer import Entry, GroupReader
from recsys.events.kinds import (
    EVENT_ID,
    EXPOSURE_SCHEMA,
    EXPOSURES_TABLE,
    KIND_TABLES,
    TABLE_SCHEMAS,
)
from recsys.events.lag import LAG_SCAN_CAP, StreamLag, measure_lag
from recsys.events.layout import REJECTED_FILE, SINK_DIR
from recsys.events.metrics import SinkMetrics
from recsys.events.parts import WrittenIds, part_stem, partition_dir, write_part
from recsys.events.stream import (
    DEFAULT_EVENT_STREAM,
    DEFAULT_EXPOSURE_STREAM,
    DEFAULT_GROUP,
    decode_event,
    decode_exposure,
)


@dataclass
class SinkCounts:
    """What the sink did since it started."""

    entries: int = 0
    rows: Counter[str] = field(default_factory=Counter)
    duplicates: Counter[str] = field(default_factory=Counter)
    rejected: int = 0
    trimmed: int = 0
    parts: int = 0
    batches: int = 0


@dataclass(frozen=True)
class _Refused:
    stream: str
    entry_id: str
    reason: str
    fields: dict[str, str]


@dataclass
class _Batch:
    """One read, sorted into Arrow tables per destination table, refusals and trimmed entries."""

    tables: dict[str, list[tuple[str, pa.Table]]] = field(default_factory=dict)
    refused: list[_Refused] = field(default_factory=list)
    trimmed: Counter[str] = field(default_factory=Counter)

    def add(self, table: str, first_entry_id: str, rows: pa.Table) -> None:
        if rows.num_rows:
            self.tables.setdefault(table, []).append((first_entry_id, rows))


class Sink:
    """Drains `event_stream` and `exposure_stream` into `data_dir` (see the module docstring).

    Call `start()` once, then `step()` in a loop, or `drain()` to empty the streams and return.
    """

    def __init__(
        self,
        client: Any,
        data_dir: Path,
        *,
        event_stream: str = DEFAULT_EVENT_STREAM,
        exposure_stream: str = DEFAULT_EXPOSURE_STREAM,
        group: str = DEFAULT_GROUP,
        consumer: str = "sink",
        batch: int = 1_000,
        claim_idle_s: float = 60.0,
        metrics: SinkMetrics | None = None,
        lag_scan_cap: int = LAG_SCAN_CAP,
    ) -> None:
        self.client = client
        self.data_dir = Path(data_dir)
        self.event_stream = event_stream
        self.exposure_stream = exposure_stream
        self.group = group
        self.reader = GroupReader(
            client,
            (event_stream, exposure_stream),
            group,
            consumer,
            count=batch,
            claim_idle_ms=int(claim_idle_s * 1000),
        )
        self.claim_every_s = max(1.0, claim_idle_s / 2)
        self.metrics = metrics
        self.lag_scan_cap = lag_scan_cap
        self.written = WrittenIds(self.data_dir)
        self.counts = SinkCounts()
        self.rejected_path = self.data_dir / SINK_DIR / REJECTED_FILE
        self._own_pending = True  # after a restart, entries read before the crash wait here
        self._claimed_at = float("-inf")

    def start(self) -> None:
        """Create the consumer group on both streams (from their first entry) if needed."""
        self.reader.ensure_groups()

    @property
    def streams(self) -> tuple[str, str]:
        """The two streams drained."""
        return self.event_stream, self.exposure_stream

    def step(self, block_ms: int | None = None) -> int:
        """Handle one batch: claimed and own pending entries first, then new ones (waiting up
        to `block_ms` for them when given). Returns how many entries were handled."""
        now = time.monotonic()
        if now - self._claimed_at >= self.claim_every_s:
            self._claimed_at = now
            if self.reader.claim_stale():
                self._own_pending = True
            self._count_trimmed(self.reader.dropped_on_claim)
            self.reader.dropped_on_claim.clear()
        if self._own_pending:
            entries = self.reader.read(new=False)
            if not entries:
                self._own_pending = False
        if not self._own_pending:
            entries = self.reader.read(new=True, block_ms=block_ms)
        if not entries:
            return 0
        try:
            return self._handle(entries)
        except BaseException:
            self._own_pending = True  # unacknowledged: read again before anything new
            raise

    def drain(self, on_batch: Callable[[int], None] | None = None) -> SinkCounts:
        """Handle entries until both streams have nothing left for the group; return the counts."""
        self._claimed_at = float("-inf")
        self._own_pending = True
        while n := self.step():
            if on_batch is not None:
                on_batch(n)
        return self.counts

    def lag(self) -> list[StreamLag]:
        """The lag on each stream (also set on the metrics)."""
        out = [measure_lag(self.client, s, self.group, self.lag_scan_cap) for s in self.streams]
        if self.metrics is not None:
            for lag in out:
                self.metrics.lag.labels(lag.stream).set(lag.entries)
                self.metrics.lag_seconds.labels(lag.stream).set(lag.seconds)
        return out

    def _count_trimmed(self, trimmed: Counter[str]) -> None:
        """Count pending entries that were trimmed from their stream before being written."""
        self.counts.trimmed += sum(trimmed.values())
        if self.metrics is not None:
            for stream, k in trimmed.items():
                self.metrics.trimmed.labels(stream).inc(k)

    # ---- one batch ----------------------------------------------------------------------------
    def _handle(self, entries: dict[str, list[Entry]]) -> int:
        batch = _Batch()
        for stream, items in entries.items():
            if stream == self.event_stream:
                self._sort_events(stream, items, batch)
            else:
                self._sort_exposures(stream, items, batch)
        for table, parts in batch.tables.items():
            self._write(table, parts)
        self._set_aside(batch.refused)
        self.reader.ack({stream: [i for i, _ in items] for stream, items in entries.items()})
        n = sum(len(items) for items in entries.values())
        self.counts.entries += n
        self.counts.batches += 1
        self.counts.rejected += len(batch.refused)
        self._count_trimmed(batch.trimmed)
        if self.metrics is not None:
            for refused in batch.refused:
                self.metrics.rejected.labels(refused.stream).inc()
        return n

    def _sort_events(self, stream: str, items: list[Entry], batch: _Batch) -> None:
        by_kind: dict[str, list[tuple[str, dict[str, str], dict[str, Any]]]] = {}
        for entry_id, fields in items:
            if not fields:
                batch.trimmed[stream] += 1
                continue
            try:
                kind, record = decode_event(fields)
            except ValueError as exc:
                batch.refused.append(_Refused(stream, entry_id, str(exc), fields))
                continue
            by_kind.setdefault(kind, []).append((entry_id, fields, record))
        bounds = time_bounds()
        for kind, found in by_kind.items():
            typed, reasons = check_records(kind, [record for _, _, record in found], bounds)
            for at, why in sorted(reasons.items()):
                entry_id, fields, _ = found[at]
                batch.refused.append(_Refused(stream, entry_id, "; ".join(why), fields))
            table = KIND_TABLES[kind]
            rows = pa.Table.from_pandas(
                typed.frame, schema=TABLE_SCHEMAS[table], preserve_index=False
            )
            batch.add(table, found[0][0], rows)

    def _sort_exposures(self, stream: str, items: list[Entry], batch: _Batch) -> None:
        rows: list[dict[str, Any]] = []
        for entry_id, fields in items:
            if not fields:
                batch.trimmed[stream] += 1
                continue
            try:
                rows.append(decode_exposure(entry_id, fields))
            except ValueError as exc:
                batch.refused.append(_Refused(stream, entry_id, str(exc), fields))
        if rows:
            batch.add(
                EXPOSURES_TABLE, rows[0][EVENT_ID], pa.Table.from_pylist(rows, EXPOSURE_SCHEMA)
            )

    def _write(self, table: str, parts: list[tuple[str, pa.Table]]) -> None:
        """One part per date partition, without the event ids that partition already holds."""
        rows = pa.concat_tables(t for _, t in parts)
        stem = part_stem(parts[0][0])
        dates = pc.strftime(rows[Columns.TS], format="%Y-%m-%d").to_pylist()
        ids = rows[EVENT_ID].to_pylist()
        by_date: dict[str, list[int]] = {}
        for i, date in enumerate(dates):
            by_date.setdefault(date, []).append(i)
        for date, positions in sorted(by_date.items()):
            known = self.written.of(table, date)
            keep: list[int] = []
            fresh: list[str] = []
            seen: set[str] = set()
            for i in positions:
                if ids[i] in known or ids[i] in seen:
                    continue
                seen.add(ids[i])
                keep.append(i)
                fresh.append(ids[i])
            skipped = len(positions) - len(keep)
            self.counts.duplicates[table] += skipped
            if self.metrics is not None and skipped:
                self.metrics.duplicates.labels(table).inc(skipped)
            if not keep:
                continue
            write_part(partition_dir(self.data_dir, table, date), stem, rows.take(keep))
            self.written.add(table, date, fresh)
            self.counts.rows[table] += len(keep)
            self.counts.parts += 1
            if self.metrics is not None:
                self.metrics.rows.labels(table).inc(len(keep))
                self.metrics.parts.inc()

    def _set_aside(self, refused: Iterable[_Refused]) -> None:
        """Append refused entries to `_sink/rejected.jsonl`, durably, before they are acked."""
        lines = [
            orjson.dumps(
                {"stream": r.stream, "entry_id": r.entry_id, "reason": r.reason, "fields": r.fields}
            )
            + b"\n"
            for r in refused
        ]
        if not lines:
            return
        self.rejected_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.rejected_path, "ab") as handle:
            handle.writelines(lines)
            handle.flush()
            os.fsync(handle.fileno())
