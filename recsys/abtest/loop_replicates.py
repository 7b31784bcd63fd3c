"""Closed-loop replicates: many A/B experiments of two real models in the full simulator.

The known-effect proof of the ranker (docs/ab-testing.md, "Known effect of the ranker") needs
many experiments whose true effect is known. `recsys simulate-ab` plays one over HTTP in
minutes; here the same days are played in process, many times:

- Each arm's picks are computed once, as publish computes them (`ModelSource.picks_for` over
  every agent), and served from memory. This bypasses HTTP and Redis, which would serve the same
  lists from the arm's snapshot; storefront clicks are left out (the proof's metrics do not use
  them).
- Per replicate, the world resumes where the history ends (a copy of its state) on its own random
  streams: agents open their feed (`SimWorld.feed_openers`), are assigned by the experiment's
  salt (`recsys.ab.assign_many`, as the service does), share from their feed with `adoption`,
  and their customers buy and return by the simulator's ground truth. The history plus the new
  events go through the report's own `build_outcomes` and `analyze`.
- **Truth** is the simulator's counterfactual: the same replicate (the same streams, so the same
  agents open their feed at the same moments) played with every agent on A and again with every
  agent on B. An analysed agent's outcome under each arm comes from those two runs through the
  same `build_outcomes`; `recsys.abtest.sim_truth.true_effects` turns the pairs into effects
  (per-agent means: mean of differences; return rate: difference of pooled ratios). Each
  replicate's truth carries its own outcome noise, so the true effect is their mean over the
  truth replicates, with its standard error.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from recsys.ab import Experiment, assign_many
from recsys.abtest.data import CONTRACT_COLUMNS, ExperimentData, empty_events
from recsys.abtest.loop import LoopSettings, loop_rng, make_experiment
from recsys.abtest.loop_world import Feed, SimWorld, resume_world
from recsys.abtest.metrics import metric
from recsys.abtest.outcomes import OutcomeSettings, build_outcomes
from recsys.abtest.sim_truth import true_effects
from recsys.abtest.stats import analyze, srm_check
from recsys.simulation.output import purchases_frame, returns_frame, shares_frame

PROOF_METRICS: tuple[str, ...] = ("net_gmv_per_agent", "return_rate")
TRUTH_COLUMNS: tuple[str, ...] = ("gmv", "returned_value", "net_gmv")
Progress = Callable[[str], None]


@dataclass(frozen=True)
class ArmPicks:
    """Per variant, each agent's served SKUs (world SKU indices, best first, -1 = none)."""

    picks: dict[str, np.ndarray]  # variant -> (n_agents, k) int array

    def feed(self, variant: str, agent: int) -> np.ndarray:
        """The SKUs agent `agent` is served in `variant`."""
        row = self.picks[variant][agent]
        return row[row >= 0]


def model_picks(model: Any, world_sku_ids: np.ndarray, agent_ids: np.ndarray, k: int) -> np.ndarray:
    """Top-`k` picks of every agent as publish computes them, as an (agents, k) index array.

    Raises
    ------
    ValueError
        If `k` is not positive.
    """
    from training.publish_source import ModelSource

    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    source = ModelSource(model, "agent", pd.Index(world_sku_ids))
    out = np.full((len(agent_ids), k), -1, dtype=np.int64)
    for start in range(0, len(agent_ids), 2048):
        users = np.asarray(agent_ids[start : start + 2048], dtype=object)
        got = source.picks_for(users, k)
        for i in range(len(users)):
            row = got.sku_index[got.offsets[i] : got.offsets[i + 1]][:k]
            out[start + i, : len(row)] = row
    return out


@dataclass
class Played:
    """The events of one replicate after the history: exposures, shares, purchases, returns."""

    exposures: pd.DataFrame
    shares: pd.DataFrame
    purchases: pd.DataFrame
    returns: pd.DataFrame


def _exposure_rows(
    sim: SimWorld, experiment: Experiment, variant: str, agents: Sequence[int], ts: Sequence[int],
    feeds: Sequence[np.ndarray], tag: str,
) -> list[dict[str, Any]]:  # fmt: skip
    """Exposure records as the service logs them (docs/events.md), one per served feed."""
    ids, skus = sim.world.agents.ids, sim.world.skus.ids
    rows = []
    for agent, t, feed in zip(agents, ts, feeds, strict=True):
        request = f"{tag}{agent}-{t}"
        rows.append(
            {
                "event_id": request,
                "request_id": request,
                "ts": pd.Timestamp(t, unit="s", tz="UTC"),
                "target": "agent",
                "agent_id": str(ids[agent]),
                "customer_id": None,
                "experiment": experiment.name,
                "variant": variant,
                "snapshot": f"{tag}{variant}",
                "model_version": None,
                "sku_ids": [str(s) for s in skus[feed]],
                "positions": list(range(1, len(feed) + 1)),
                "source": "model",
            }
        )
    return rows


def feed_rng(seed: int, day: int, replicate: int) -> np.random.Generator:
    """The feed openings' stream of a day: the loop's own for replicate 0, else the replicate's."""
    if replicate == 0:
        return loop_rng(seed, day)
    return np.random.default_rng(np.random.SeedSequence([seed, 7, day, replicate]))


def play(
    base: SimWorld,
    picks: ArmPicks,
    experiment: Experiment,
    settings: LoopSettings,
    replicate: int,
    *,
    only: str | None = None,
) -> Played:
    """Play `settings.days` experiment days and `settings.tail_days` more on a copy of `base`.

    Agents are assigned by the experiment's salt, or all to variant `only` (the counterfactual
    runs of the truth). Replicate `replicate` has its own streams for feed openings and for the
    world's days, the same whichever variants are served.
    """
    sim = SimWorld(
        world=base.world, state=copy.deepcopy(base.state), seed=base.seed, next_day=base.next_day
    )
    agent_ids = [str(a) for a in sim.world.agents.ids]
    variants = (
        np.full(len(agent_ids), only, dtype=object)
        if only is not None
        else np.asarray(assign_many(experiment, agent_ids), dtype=object)
    )
    tag = f"r{replicate}-"
    exposures: list[dict[str, Any]] = []
    shares, purchases, returns = [], [], []
    for i in range(settings.days + settings.tail_days):
        day = sim.next_day
        if i < settings.days:
            rng = feed_rng(settings.seed, day, replicate)
            openers = sim.feed_openers(day, rng)
            times = sim.feed_times(day, len(openers), rng)
            for variant in np.unique(variants[openers]).tolist():
                mask = variants[openers] == variant
                agents, ts = openers[mask].tolist(), times[mask].tolist()
                feeds = [picks.feed(variant, a) for a in agents]
                for agent, t, feed in zip(agents, ts, feeds, strict=True):
                    sim.feeds[agent] = Feed(f"{tag}{agent}-{t}", int(t), feed)
                exposures += _exposure_rows(sim, experiment, variant, agents, ts, feeds, tag)
        events = sim.step(settings.adoption, replicate=replicate)
        shares.append(shares_frame(sim.world, events.shares))
        purchases.append(purchases_frame(sim.world, events.purchases))
        returns.append(returns_frame(sim.world, events.returns))
    frame = pd.DataFrame(exposures) if exposures else empty_events("exposures")
    return Played(
        exposures=frame,
        shares=pd.concat(shares, ignore_index=True),
        purchases=pd.concat(purchases, ignore_index=True),
        returns=pd.concat(returns, ignore_index=True),
    )


def history_data(data_dir: str | Path) -> ExperimentData:
    """The history's contract tables as report input, with no exposures or clicks yet."""
    from recsys.contract.loader import load_tables

    tables = load_tables(Path(data_dir), on_quarantine="ignore")
    picked = {name: tables[name][list(cols)] for name, cols in CONTRACT_COLUMNS.items()}
    return ExperimentData(
        exposures=empty_events("exposures"), clicks=empty_events("clicks"), **picked
    )


def _with_history(history: ExperimentData, played: Played) -> ExperimentData:
    """The history's tables with a replicate's events appended (the report's input)."""

    def both(old: pd.DataFrame, new: pd.DataFrame) -> pd.DataFrame:
        new = new[[c for c in old.columns if c in new.columns]]
        return pd.concat([old, new], ignore_index=True) if len(new) else old

    return ExperimentData(
        exposures=played.exposures,
        clicks=history.clicks,
        shares=both(history.shares, played.shares),
        purchases=both(history.purchases, played.purchases),
        returns=both(history.returns, played.returns),
        customers=history.customers,
    )


class ClosedLoopProof:
    """Known-effect replicates of arm B's model against arm A's in the full simulator."""

    def __init__(
        self,
        data_dir: str | Path,
        picks: ArmPicks,
        settings: LoopSettings,
        *,
        window_days: float = 7.0,
        return_days: float = 30.0,
        name: str = "proof",
    ) -> None:
        self.base = resume_world(Path(data_dir))
        self.history = history_data(data_dir)
        self.picks = picks
        self.settings = settings
        self.name = name
        self.outcome_settings = OutcomeSettings(window_days=window_days, return_days=return_days)
        self.specs = [metric(k) for k in PROOF_METRICS]

    def experiment(self, replicate: int) -> Experiment:
        """The 50/50 agent experiment of replicate `replicate` (its own salt)."""
        return make_experiment(self.name, replicate, [("A", None), ("B", None)])

    def outcomes(self, replicate: int, only: str | None = None) -> pd.DataFrame:
        """The per-agent outcome table of a replicate (all agents on `only`, if given)."""
        experiment = self.experiment(replicate)
        played = play(self.base, self.picks, experiment, self.settings, replicate, only=only)
        data = _with_history(self.history, played)
        return build_outcomes(data, experiment, self.outcome_settings).table

    def truth(self, replicate: int, agents: pd.Index | None = None) -> pd.DataFrame:
        """Each agent's outcomes with every agent on A and with every agent on B."""
        out = None
        for variant in ("A", "B"):
            table = self.outcomes(replicate, only=variant).set_index("agent_id")
            cols = table[list(TRUTH_COLUMNS)].add_suffix(f"_{variant}")
            out = cols if out is None else out.join(cols, how="inner")
        assert out is not None
        if agents is not None:
            out = out.loc[out.index.intersection(agents)]
        return out.reset_index()

    def experiment_row(self, replicate: int) -> tuple[dict[str, Any], pd.Index]:
        """The report's comparisons of B against A in replicate `replicate`, and its agents."""
        table = self.outcomes(replicate)
        found = analyze(table, "A", ["B"], specs=self.specs)
        row: dict[str, Any] = {"replicate": replicate}
        counts = table["variant"].value_counts().to_dict()
        row["srm_pvalue"] = srm_check(counts, {"A": 1.0, "B": 1.0}).pvalue
        row["agents_A"], row["agents_B"] = int(counts.get("A", 0)), int(counts.get("B", 0))
        for c in found:
            row.update(
                {
                    f"{c.metric}.effect": c.effect,
                    f"{c.metric}.rel_effect": c.rel_effect,
                    f"{c.metric}.ci_lower": c.effect_ci[0],
                    f"{c.metric}.ci_upper": c.effect_ci[1],
                    f"{c.metric}.pvalue": c.pvalue,
                    f"{c.metric}.variance_reduction": c.variance_reduction,
                    f"{c.metric}.control_value": c.control_value,
                    f"{c.metric}.treatment_value": c.treatment_value,
                    f"{c.metric}.rel_mde": c.rel_mde,
                }
            )
        return row, pd.Index(table["agent_id"])

    def truth_row(self, replicate: int, agents: pd.Index) -> dict[str, Any]:
        """True effects (B over A) among `agents` from the two counterfactual runs."""
        effects = true_effects(self.truth(replicate, agents), "A", "B")
        row: dict[str, Any] = {"replicate": replicate}
        for key, values in effects.items():
            row.update({f"{key}.{name}": v for name, v in values.items()})
        return row


def summarize(experiments: pd.DataFrame, truths: pd.DataFrame) -> pd.DataFrame:
    """Per metric: the true effect (mean over truth replicates, with its standard error) and the
    share of experiments that cover it with their 95% interval and detect it (p < 0.05, in its
    direction)."""
    rows = []
    for key in PROOF_METRICS:
        values = truths[f"{key}.effect"].to_numpy(np.float64)
        true = float(values.mean())
        se = float(values.std(ddof=1) / np.sqrt(len(values))) if len(values) > 1 else float("nan")
        lo, hi = experiments[f"{key}.ci_lower"], experiments[f"{key}.ci_upper"]
        covered = (lo <= true) & (true <= hi)
        detected = (experiments[f"{key}.pvalue"] < 0.05) & (
            np.sign(experiments[f"{key}.effect"]) == np.sign(true)
        )
        rows.append(
            {
                "metric": key,
                "runs": len(experiments),
                "truth_runs": len(values),
                "true_effect": true,
                "true_effect_se": se,
                "true_rel_effect": float(truths[f"{key}.rel_effect"].mean()),
                "true_control": float(truths[f"{key}.control"].mean()),
                "mean_estimate": float(experiments[f"{key}.effect"].mean()),
                "detected": int(detected.sum()),
                "covered": int(covered.sum()),
                "mean_ci_width": float((hi - lo).mean()),
                "variance_reduction": float(experiments[f"{key}.variance_reduction"].mean()),
            }
        )
    return pd.DataFrame(rows)
