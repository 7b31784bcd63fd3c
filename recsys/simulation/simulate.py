"""Running a whole simulation: in memory (`simulate`) or streamed to a data directory."""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from recsys.columns import Tables
from recsys.contract.io import SUFFIXES, write_table
from recsys.simulation.build import build_world, world_rng
from recsys.simulation.config import SimConfig
from recsys.simulation.dynamics import category_arrays
from recsys.simulation.events import DayEvents, PurchaseRows, ReturnRows, ShareRows
from recsys.simulation.output import (
    ChunkedTableWriter,
    Format,
    agents_frame,
    customers_frame,
    purchases_frame,
    returns_frame,
    shares_frame,
    skus_frame,
)
from recsys.simulation.sharing import SharePolicy
from recsys.simulation.state import SimState
from recsys.simulation.step import day_rng, step_day
from recsys.simulation.truth_store import (
    TRUTH_DIR,
    OwnedWriter,
    Truth,
    owned_index,
    save_truth,
    tier_history_frame,
)
from recsys.simulation.world import SECONDS_PER_DAY, World

EVENT_TABLES = (Tables.SHARES, Tables.PURCHASES, Tables.RETURNS)


@dataclass
class SimulationResult:
    """An in-memory run: the world, its final state, the six tables and the ground truth."""

    world: World
    state: SimState
    tables: dict[str, pd.DataFrame]
    truth: Truth


@dataclass
class WriteSummary:
    """What `write_simulation` wrote: rows per table and the time it took."""

    out: Path
    rows: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0


@contextmanager
def _progress(enabled: bool, total: int) -> Iterator[object]:
    """A rich progress bar on stderr (a no-op callback when disabled)."""
    if not enabled:
        yield lambda **_: None
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    columns = (
        TextColumn("simulating"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("days  {task.fields[lines]:,} purchase lines"),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=Console(stderr=True)) as bar:
        task = bar.add_task("days", total=total, lines=0)
        yield lambda **fields: bar.update(task, advance=1, **fields)


def run_days(
    world: World,
    state: SimState,
    seed: int,
    *,
    share_policy: SharePolicy | None = None,
    progress: bool = False,
) -> Iterator[DayEvents]:
    """Step every day of the configured period in order, yielding each day's events."""
    lines = 0
    with _progress(progress, world.config.n_days) as tick:
        for day in range(world.config.n_days):
            events = step_day(world, state, day, day_rng(seed, day), share_policy)
            lines += len(events.purchases)
            yield events
            tick(lines=lines)  # type: ignore[operator]


def simulate(
    config: SimConfig,
    seed: int,
    *,
    share_policy: SharePolicy | None = None,
    progress: bool = False,
) -> SimulationResult:
    """Run a simulation in memory (for tests and small experiments; see `write_simulation`)."""
    world = build_world(config, world_rng(seed), seed)
    state = SimState.initial(world)
    shares, purchases, returns = [], [], []
    for events in run_days(world, state, seed, share_policy=share_policy, progress=progress):
        shares.append(events.shares)
        purchases.append(events.purchases)
        returns.append(events.returns)
    lines = PurchaseRows.concat(purchases)
    durable = ~category_arrays(config).consumable[world.skus.category[lines.sku]]
    keys, days = owned_index(
        lines.customer[durable],
        lines.sku[durable],
        (lines.ts[durable] - world.start_seconds) // SECONDS_PER_DAY,
        len(world.skus),
    )
    truth = Truth(world, tier_history_frame(world, state), keys, days)
    tables = {
        Tables.SKUS: skus_frame(world),
        Tables.AGENTS: agents_frame(world, state.tier),
        Tables.CUSTOMERS: customers_frame(world),
        Tables.SHARES: shares_frame(world, ShareRows.concat(shares)),
        Tables.PURCHASES: purchases_frame(world, lines),
        Tables.RETURNS: returns_frame(world, ReturnRows.concat(returns)),
    }
    return SimulationResult(world, state, tables, truth)


def existing_outputs(out: Path) -> list[Path]:
    """Table files/folders and the truth folder a previous run left in `out`."""
    found = [out / TRUTH_DIR] if (out / TRUTH_DIR).exists() else []
    for table in Tables.ALL:
        found += [p for p in [out / table, *(out / f"{table}{s}" for s in SUFFIXES)] if p.exists()]
    return found


def write_simulation(
    config: SimConfig,
    seed: int,
    out: str | Path,
    *,
    fmt: Format = "parquet",
    progress: bool = True,
    overwrite: bool = False,
) -> WriteSummary:
    """Simulate and write the six tables plus `truth/` to `out`, streaming events in chunks.

    Raises
    ------
    FileExistsError
        If `out` already holds tables or a truth folder and `overwrite` is False.
    """
    started = time.perf_counter()
    out = Path(out)
    previous = existing_outputs(out)
    if previous and not overwrite:
        names = ", ".join(p.name for p in previous)
        raise FileExistsError(f"out {str(out)!r} already holds {names}; pass overwrite=True")
    for path in previous:
        shutil.rmtree(path) if path.is_dir() else path.unlink()
    out.mkdir(parents=True, exist_ok=True)

    world = build_world(config, world_rng(seed), seed)
    state = SimState.initial(world)
    summary = WriteSummary(out=out)
    for table, frame in (
        (Tables.SKUS, skus_frame(world)),
        (Tables.CUSTOMERS, customers_frame(world)),
    ):
        write_table(frame, out / f"{table}.{fmt}", table)
        summary.rows[table] = len(frame)
    writers = {t: ChunkedTableWriter(world, out, t, fmt, config.chunk_rows) for t in EVENT_TABLES}
    owned = OwnedWriter(out, config.chunk_rows)
    for events in run_days(world, state, seed, progress=progress):
        writers[Tables.SHARES].add(events.shares)
        writers[Tables.PURCHASES].add(events.purchases)
        writers[Tables.RETURNS].add(events.returns)
        owned.add(world, events.purchases)
    owned.close()
    for table, writer in writers.items():
        writer.close()
        summary.rows[table] = writer.rows_written
    agents = agents_frame(world, state.tier)
    write_table(agents, out / f"{Tables.AGENTS}.{fmt}", Tables.AGENTS)
    summary.rows[Tables.AGENTS] = len(agents)
    save_truth(world, state, out)
    summary.seconds = time.perf_counter() - started
    return summary
