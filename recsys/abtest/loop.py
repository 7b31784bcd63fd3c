"""Closed-loop A/B simulation: simulated agents and customers against the live picks service.

Each simulated day, the agents who open their storefront feed (each with her daily activity)
ask the service for their picks over HTTP; the service assigns them to a variant and logs the
exposure itself. Then the simulator plays the day: agents share, with probability `adoption`
per share, the served SKU they rate best for their group (their true taste and audience),
otherwise what they would have shared anyway; customers buy and return by the simulator's
ground truth; storefront clicks follow the served feeds. Every share, purchase, return and
click is posted to `POST /v1/events`. After the experiment's days, `tail_days` more days
(no new feeds; agents keep sharing from their last one) let windows close and returns arrive.

`recsys simulate-ab` (training/simulate_ab_cli.py) sets up the service and runs the sink and
the report after this loop; docs/ab-testing.md ("Closed loop over HTTP").
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from recsys.ab import Experiment, Variant
from recsys.abtest.loop_http import Posted, ServiceClient
from recsys.abtest.loop_world import SimWorld, event_records

EVENT_KINDS: tuple[str, ...] = ("share", "purchase", "return", "click")
FEED_VALUE_HORIZON_DAYS = 7.0


@dataclass(frozen=True)
class LoopSettings:
    """How many days to play, what a feed holds, and how agents use it."""

    days: int
    tail_days: int
    seed: int
    k: int = 20
    adoption: float = 0.7
    tag: str = "sim-"  # prefix of the event ids of this run

    def __post_init__(self) -> None:
        if self.days < 1:
            raise ValueError(f"--days must be >= 1, got {self.days}")
        if self.tail_days < 0:
            raise ValueError(f"--tail-days must be >= 0, got {self.tail_days}")
        if not 1 <= self.k <= 100:
            raise ValueError(f"--k must be in 1..100, got {self.k}")
        if not 0.0 <= self.adoption <= 1.0:
            raise ValueError(f"--adoption must be in [0, 1], got {self.adoption}")


@dataclass
class LoopRecord:
    """What the loop did: every feed it was served, every event it posted, per-day counts."""

    requests: list[dict[str, Any]] = field(default_factory=list)
    posted: list[tuple[str, str, int]] = field(default_factory=list)  # kind, event_id, day
    rejected: list[dict[str, Any]] = field(default_factory=list)
    days: list[dict[str, Any]] = field(default_factory=list)

    def requests_frame(self) -> pd.DataFrame:
        """One row per served feed: request id, simulated day and time, agent, variant, what
        served it, and the SKU ids in served order."""
        columns = [
            "request_id", "day", "date", "ts", "agent_id", "variant", "snapshot",
            "model_version", "source", "n_skus", "sku_ids",
        ]  # fmt: skip
        return pd.DataFrame(self.requests, columns=columns)

    def posted_frame(self) -> pd.DataFrame:
        """One row per accepted event: kind, event_id, simulated day."""
        return pd.DataFrame(self.posted, columns=["kind", "event_id", "day"])

    def clock(self) -> dict[str, pd.Timestamp]:
        """Simulated time of each request (for `loop_clock.retime_exposures`)."""
        return {r["request_id"]: r["ts"] for r in self.requests}


def make_experiment(
    name: str,
    seed: int,
    arms: list[tuple[str, str | None]],
    weights: tuple[float, ...] | None = None,
) -> Experiment:
    """An agent experiment named `name` with variants A, B, ... reading channels `arms[i][0]`
    and recording model URIs `arms[i][1]`; the salt is `name-seed`."""
    weights = weights or tuple(1.0 for _ in arms)
    variants = [
        Variant(name=chr(ord("A") + i), weight=w, channel=channel, model_uri=uri)
        for i, ((channel, uri), w) in enumerate(zip(arms, weights, strict=True))
    ]
    return Experiment(name=name, salt=f"{name}-{seed}", target="agent", variants=variants)


def loop_rng(seed: int, day: int) -> np.random.Generator:
    """The loop's own random stream of a day (feed openings, clicks), apart from the
    simulator's streams, so the world's dynamics are those of an offline run."""
    return np.random.default_rng(np.random.SeedSequence([seed, 7, day]))


def _serve_day(
    sim: SimWorld, client: ServiceClient, settings: LoopSettings, rng: np.random.Generator
) -> tuple[np.ndarray, list[dict[str, Any]]]:
    """Agents who open their feed today ask the service for it; returns them and the feeds."""
    day = sim.next_day
    openers = sim.feed_openers(day, rng)
    times = sim.feed_times(day, len(openers), rng)
    ids = sim.world.agents.ids
    rows = []
    for agent, ts in zip(openers.tolist(), times.tolist(), strict=True):
        served = client.picks(str(ids[agent]), settings.k)
        known = sim.serve(agent, served.request_id, ts, served.sku_ids)
        rows.append(
            {
                "request_id": served.request_id,
                "day": day,
                "date": sim.date(day),
                "ts": pd.Timestamp(ts, unit="s", tz="UTC"),
                "agent_id": str(ids[agent]),
                "variant": served.variant,
                "snapshot": served.snapshot,
                "model_version": served.model_version,
                "source": served.source,
                "n_skus": known,
                "sku_ids": served.sku_ids,
            }
        )
    return openers, rows


def run_loop(
    sim: SimWorld,
    client: ServiceClient,
    settings: LoopSettings,
    on_day: Callable[[dict[str, Any]], None] | None = None,
) -> LoopRecord:
    """Play `settings.days` experiment days and `settings.tail_days` more against the service.

    Raises
    ------
    ServiceError
        If the service refuses a call or stays unreachable.
    """
    record = LoopRecord()
    for i in range(settings.days + settings.tail_days):
        day = sim.next_day
        rng = loop_rng(settings.seed, day)
        openers: np.ndarray = np.empty(0, dtype=np.int64)
        feeds: list[dict[str, Any]] = []
        if i < settings.days:
            openers, feeds = _serve_day(sim, client, settings, rng)
        events = sim.step(settings.adoption)
        by_kind = event_records(sim.world, events, settings.tag)
        by_kind["click"] = sim.clicks(events, openers, rng, settings.tag)
        records = [r for kind in EVENT_KINDS for r in by_kind[kind]]
        posted: Posted = client.post_events(records)
        refused = {r["event_id"] for r in posted.rejected}
        record.requests += feeds
        record.posted += [
            (r["kind"], r["event_id"], day) for r in records if r["event_id"] not in refused
        ]
        record.rejected += posted.rejected
        stats = {
            "day": day,
            "date": sim.date(day),
            "phase": "experiment" if i < settings.days else "tail",
            "feeds": dict(Counter(str(f["variant"]) for f in feeds)),
            "events": {kind: len(by_kind[kind]) for kind in EVENT_KINDS},
            "accepted": posted.accepted,
            "duplicates": posted.duplicates,
            "rejected": len(posted.rejected),
        }
        record.days.append(stats)
        if on_day is not None:
            on_day(stats)
    return record


def feed_values(data_dir: Path, requests: pd.DataFrame) -> dict[str, float]:
    """Per variant, the true value of a served SKU: the units her customers are expected to buy
    through a share of it within 7 days and keep (`recsys.simulation.truth`, as of the day it
    was served; owned non-consumables as of the end of the history), averaged over served SKUs."""
    from recsys.simulation.truth import expected_kept_purchases, load_truth

    pairs = requests[["variant", "date", "agent_id", "sku_ids"]].explode("sku_ids").dropna()
    if pairs.empty:
        return {}
    truth = load_truth(data_dir)
    known = pairs["sku_ids"].isin(set(truth.world.skus.ids))
    out: dict[str, list[float]] = {}
    for (variant, date), rows in pairs[known].groupby(["variant", "date"], sort=True):
        values = expected_kept_purchases(
            truth,
            rows["agent_id"].to_numpy(),
            rows["sku_ids"].to_numpy(),
            horizon_days=FEED_VALUE_HORIZON_DAYS,
            at=pd.Timestamp(date, tz="UTC"),
        )
        out.setdefault(str(variant), []).extend(values.tolist())
    return {variant: float(np.mean(values)) for variant, values in sorted(out.items())}


def sink_group(client: Any, group: str, streams: tuple[str, ...], *, create: bool) -> None:
    """Create a consumer group at the streams' ends, so a sink reading with it gets only what
    comes after (not the service's earlier traffic), or remove it once the sink is done."""
    for stream in streams:
        if create:
            client.xgroup_create(stream, group, id="$", mkstream=True)
        else:
            client.xgroup_destroy(stream, group)


def play(
    sim: SimWorld, client: ServiceClient, settings: LoopSettings, *, progress: bool = True
) -> LoopRecord:
    """`run_loop` with a progress bar per simulated day (on stderr)."""
    if not progress:
        return run_loop(sim, client, settings)
    from rich.progress import Progress, TextColumn

    from recsys.console import err_console, progress_columns

    columns = (*progress_columns(), TextColumn("{task.fields[info]}"))
    totals = {"feeds": 0, "events": 0}
    with Progress(*columns, console=err_console) as bar:
        task = bar.add_task("simulated days", total=settings.days + settings.tail_days, info="")

        def on_day(stats: dict[str, Any]) -> None:
            totals["feeds"] += sum(stats["feeds"].values())
            totals["events"] += stats["accepted"]
            info = (
                f"{stats['date']} {stats['phase']}: {totals['feeds']:,} feeds served, "
                f"{totals['events']:,} events posted"
            )
            bar.update(task, advance=1, info=info)

        return run_loop(sim, client, settings, on_day=on_day)
