"""Monthly agent tiers: earned by contribution (GMV and effort), one step up or down at a time."""

from __future__ import annotations

import numpy as np
import pandas as pd

from recsys.simulation.state import SimState
from recsys.simulation.world import World


def is_month_start(world: World, day: int) -> bool:
    """Whether `day` is the first day of a calendar month (and not the period's first day)."""
    return day > 0 and (world.start + pd.Timedelta(days=day)).day == 1


def target_tiers(world: World, contribution: np.ndarray, joined: np.ndarray) -> np.ndarray:
    """Tier each agent's last-month contribution earns, by rank among agents who have joined.

    Agents with no contribution earn tier 1; the others are cut by the configured tier shares.
    """
    target = np.ones(len(contribution), dtype=np.int8)
    idx = np.flatnonzero(joined & (contribution > 0))
    if len(idx) == 0:
        return target
    # rank among all joined agents, so the shares of the top tiers stay as configured
    n_joined = int(joined.sum())
    order = idx[np.argsort(-contribution[idx], kind="stable")]
    # agents (by rank) that fit in tiers 5, 4, 3, 2, 1 cumulatively
    cuts = np.round(np.cumsum(world.config.tier_shares[::-1]) * n_joined)
    position = np.arange(len(order))
    target[order] = (5 - np.searchsorted(cuts, position, side="right")).astype(np.int8)
    return np.maximum(target, 1)


def update_tiers(world: World, state: SimState, day: int) -> None:
    """Move every agent one tier toward the tier her last 30 days earned, and log it."""
    joined = world.agents.joined_day <= day
    contribution = state.gmv_ring.sum(
        axis=0
    ) + world.config.share_effort_value * state.shares_ring.sum(axis=0)
    target = target_tiers(world, contribution, joined)
    step = np.sign(target.astype(np.int16) - state.tier.astype(np.int16)).astype(np.int8)
    state.tier = np.where(joined, state.tier + step, state.tier).astype(np.int8)
    state.tier_log.append((day, state.tier.copy(), contribution.astype(np.float32)))
