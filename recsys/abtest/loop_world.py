"""The simulated side of the closed loop: a world resumed after its history, feeds, and events.

A simulated data directory (`recsys simulate`) holds the history, the first part of a world's
timeline, and in `truth/` the configuration and seed that made it. `resume_world` rebuilds that
world and replays the history day by day with the same random streams, so its state (queued
repurchases and returns, the agents' past hits, id counters) is exactly where the written logs
end. The loop then steps further days with `recsys.simulation.step.step_day`, the agents
sharing from the picks the service served them (`PicksSharePolicy`); everything after the share
(who sees it, who buys, who returns) is the simulator's own model.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import scipy.sparse as sp

from recsys.simulation.build import build_world, world_rng
from recsys.simulation.config import SimConfig
from recsys.simulation.events import NO_SHARE, DayEvents
from recsys.simulation.output import purchases_frame, returns_frame, shares_frame
from recsys.simulation.sharing import PicksSharePolicy
from recsys.simulation.state import SimState
from recsys.simulation.step import day_rng, step_day
from recsys.simulation.truth_store import TRUTH_DIR
from recsys.simulation.world import SECONDS_PER_DAY, World, expand_ranges

# Agents open their storefront feed in the first half hour of the UTC day (08:00 in UTC+8),
# before almost all of the day's shares, so what they share can come from what they were served.
FEED_WINDOW_S = 1800
# A storefront click comes this many seconds (uniform) before the purchase it leads to.
CLICK_LEAD_S = (60, 1200)
ISO = "%Y-%m-%dT%H:%M:%S+00:00"


@dataclass
class Feed:
    """One served feed: the answer's request id, when (simulated seconds) and its SKU indices."""

    request_id: str
    ts: int
    skus: np.ndarray


@dataclass
class SimWorld:
    """A simulated world past its history, with each agent's latest served feed."""

    world: World
    state: SimState
    seed: int
    next_day: int
    feeds: dict[int, Feed] = field(default_factory=dict)
    n_clicks: int = 0

    def __post_init__(self) -> None:
        self._skus = pd.Index(self.world.skus.ids)

    def day_start(self, day: int) -> int:
        """Start of simulated day `day` in seconds since the Unix epoch."""
        return self.world.start_seconds + day * SECONDS_PER_DAY

    def date(self, day: int) -> str:
        """The UTC date of simulated day `day` (YYYY-MM-DD)."""
        return (self.world.start + pd.Timedelta(days=day)).strftime("%Y-%m-%d")

    def feed_openers(self, day: int, rng: np.random.Generator) -> np.ndarray:
        """Agents who open their feed on `day`: each joined one with her daily activity."""
        agents = self.world.agents
        joined = agents.joined_day <= day
        return np.flatnonzero(joined & (rng.random(len(agents)) < agents.activity))

    def feed_times(self, day: int, n: int, rng: np.random.Generator) -> np.ndarray:
        """Times (epoch seconds) at which `n` agents open their feed on `day`."""
        return self.day_start(day) + rng.integers(0, FEED_WINDOW_S, n)

    def serve(self, agent: int, request_id: str, ts: int, sku_ids: list[str]) -> int:
        """Remember the feed an agent was served; returns how many of its SKUs the world knows."""
        index = self._skus.get_indexer(sku_ids) if sku_ids else np.empty(0, dtype=np.int64)
        known = index[index >= 0].astype(np.int64)
        self.feeds[agent] = Feed(request_id, int(ts), known)
        return len(known)

    def picks_matrix(self) -> sp.csr_matrix:
        """Agents x SKUs, 1 where the SKU is in her latest served feed."""
        shape = (len(self.world.agents), len(self.world.skus))
        if not self.feeds:
            return sp.csr_matrix(shape, dtype=np.int8)
        rows = np.concatenate([np.full(len(f.skus), a) for a, f in self.feeds.items()])
        cols = np.concatenate([f.skus for f in self.feeds.values()])
        return sp.csr_matrix((np.ones(len(rows), dtype=np.int8), (rows, cols)), shape=shape)

    def step(self, adoption: float, *, replicate: int = 0) -> DayEvents:
        """Simulate the next day, agents sharing from their served feeds with `adoption`.

        Replicate 0 continues the world's own random streams; another replicate number plays
        the same days on streams of its own (the closed-loop proofs' independent repetitions).
        """
        day = self.next_day
        policy = PicksSharePolicy(self.picks_matrix(), adoption=adoption)
        rng = (
            day_rng(self.seed, day) if replicate == 0 else replicate_rng(self.seed, day, replicate)
        )
        events = step_day(self.world, self.state, day, rng, policy)
        self.next_day += 1
        return events

    def clicks(
        self, events: DayEvents, openers: np.ndarray, rng: np.random.Generator, tag: str
    ) -> list[dict[str, Any]]:
        """Storefront clicks of the day (see `click_rows`) as event records, ids `tag` + `CK…`."""
        rows = click_rows(self, events, openers, rng)
        ids = np.arange(self.n_clicks + 1, self.n_clicks + 1 + len(rows))
        self.n_clicks += len(rows)
        w = self.world
        return [
            {
                "kind": "click",
                "event_id": f"{tag}CK{n:010d}",
                "ts": _iso(ts),
                "agent_id": w.agents.ids[a],
                "customer_id": w.customers.ids[c],
                "sku_id": w.skus.ids[s],
                "request_id": req,
            }
            for n, (ts, a, c, s, req) in zip(ids.tolist(), rows, strict=True)
        ]


def replicate_rng(seed: int, day: int, replicate: int) -> np.random.Generator:
    """Random generator of a day of a world's replicate `replicate` (independent of `day_rng`)."""
    return np.random.default_rng(np.random.SeedSequence([seed, 1, day, replicate]))


def click_rows(
    sim: SimWorld, events: DayEvents, openers: np.ndarray, rng: np.random.Generator
) -> list[tuple[int, int, int, int, str]]:
    """(ts, agent, customer, SKU, request id) of the day's storefront clicks.

    Two kinds, both on SKUs of the agent's latest served feed: a customer who buys such a SKU
    from her agent's storefront (not through a share) clicked it a few minutes before; and on a
    day her agent opens her feed, each of her customers who joined glances at the storefront
    with her storefront propensity and clicks one served SKU at random. Clicks do not change
    what anybody buys: the report uses them for coverage only.
    """
    out: list[tuple[int, int, int, int, str]] = []
    lines = events.purchases
    storefront = np.flatnonzero(lines.share_id == NO_SHARE)
    lead = rng.integers(*CLICK_LEAD_S, len(storefront))
    for i, lead_s in zip(storefront.tolist(), lead.tolist(), strict=True):
        feed = sim.feeds.get(int(lines.agent[i]))
        if feed is None or lines.ts[i] < feed.ts or not (feed.skus == lines.sku[i]).any():
            continue
        ts = max(feed.ts, int(lines.ts[i]) - lead_s)
        out.append(
            (ts, int(lines.agent[i]), int(lines.customer[i]), int(lines.sku[i]), feed.request_id)
        )
    world, day = sim.world, events.day
    end = sim.day_start(day + 1) - 1
    for agent in openers.tolist():
        feed = sim.feeds.get(agent)
        if feed is None or len(feed.skus) == 0:
            continue
        start = world.agents.customer_start[agent : agent + 1]
        _, cust = expand_ranges(start, world.agents.customer_stop[agent : agent + 1] - start)
        cust = cust[world.customers.joined_day[cust] <= day]
        cust = cust[rng.random(len(cust)) < world.customers.storefront_rate[cust]]
        skus = feed.skus[rng.integers(0, len(feed.skus), len(cust))]
        times = rng.integers(feed.ts, end, len(cust)) if feed.ts < end else np.full(len(cust), end)
        out += [
            (int(t), agent, int(c), int(s), feed.request_id)
            for t, c, s in zip(times.tolist(), cust.tolist(), skus.tolist(), strict=True)
        ]
    return out


def _iso(seconds: int) -> str:
    return pd.Timestamp(seconds, unit="s", tz="UTC").strftime(ISO)


def _records(frame: pd.DataFrame, kind: str, id_column: str, tag: str) -> list[dict[str, Any]]:
    """Contract rows as event records: `kind`, `event_id` (`tag` + the row id), ISO `ts`."""
    if frame.empty:
        return []
    frame = frame.copy()
    frame["ts"] = frame["ts"].dt.strftime(ISO)
    records = frame.astype(object).where(frame.notna(), None).to_dict("records")
    for rec in records:
        rec["kind"] = kind
        rec["event_id"] = f"{tag}{rec[id_column]}"
    return records


def event_records(world: World, events: DayEvents, tag: str) -> dict[str, list[dict[str, Any]]]:
    """The day's shares, purchases and returns as `POST /v1/events` records, by kind.

    `event_id` is `tag` + the row's own id (`SH…`, `P…`, `R…`), so a run's ids are unique and
    a re-sent batch is stored once; another run on the same service uses another tag.
    """
    return {
        "share": _records(shares_frame(world, events.shares), "share", "share_id", tag),
        "purchase": _records(
            purchases_frame(world, events.purchases), "purchase", "purchase_id", tag
        ),
        "return": _records(returns_frame(world, events.returns), "return", "return_id", tag),
    }


def read_truth_meta(data_dir: Path) -> dict[str, Any]:
    """`truth/config.json` of a simulated data directory.

    Raises
    ------
    FileNotFoundError
        If `data_dir` has no `truth/config.json` (it was not written by `recsys simulate`).
    """
    path = Path(data_dir) / TRUTH_DIR / "config.json"
    if not path.is_file():
        raise FileNotFoundError(
            f"{data_dir} has no {TRUTH_DIR}/config.json: the closed loop needs a data directory "
            "written by `recsys simulate` (its world goes on where the logs end)"
        )
    return dict(json.loads(path.read_text()))


def _rows_written(data_dir: Path, table: str) -> int | None:
    """Rows of a Parquet contract table (one file or a folder of parts); None if not Parquet."""
    single = data_dir / f"{table}.parquet"
    if single.is_file():
        return int(pq.ParquetFile(single).metadata.num_rows)
    folder = data_dir / table
    if folder.is_dir():
        parts = sorted(folder.rglob("*.parquet"))
        return sum(int(pq.ParquetFile(p).metadata.num_rows) for p in parts) if parts else None
    return None


def resume_world(data_dir: Path, *, on_day: Callable[[int], None] | None = None) -> SimWorld:
    """Rebuild the world of a simulated data directory and replay its history to its end.

    Raises
    ------
    FileNotFoundError
        If the directory has no `truth/` folder.
    ValueError
        If the replay does not give the directory's purchase lines (the data was changed, or
        written by another version of the simulator).
    """
    meta = read_truth_meta(data_dir)
    config = SimConfig.from_dict(meta["config"])
    seed = int(meta["seed"])
    world = build_world(config, world_rng(seed), seed)
    state = SimState.initial(world)
    for day in range(config.n_days):
        step_day(world, state, day, day_rng(seed, day))
        if on_day is not None:
            on_day(day)
    written = _rows_written(Path(data_dir), "purchases")
    replayed = state.next_purchase - 1
    if abs(world.mismatch_mu - float(meta["mismatch_mu"])) > 1e-9:
        raise ValueError(
            f"{data_dir}: its truth/ was written by another version of the simulator (the "
            "rebuilt world differs); simulate it again"
        )
    if written is not None and written != replayed:
        raise ValueError(
            f"{data_dir}: replaying its truth gives {replayed:,} purchase lines, the directory "
            f"holds {written:,}: it was changed after `recsys simulate`; simulate it again"
        )
    return SimWorld(world=world, state=state, seed=seed, next_day=config.n_days)
