"""One simulated day: agents share, customers buy (via shares, the storefront, repurchases), return.

`step_day` is the seam a closed-loop experiment drives: pass a `share_policy` to replace the
agents' own choice of SKUs (e.g. with a recommender's picks); everything downstream (who sees,
who buys, who returns) follows the same model as the offline logs. All events of the day have a
`ts` within that day; decisions about later days (storefront buys, repurchases, returns) wait in
the state's queues.
"""

from __future__ import annotations

import numpy as np

from recsys.simulation.dynamics import (
    PairTerms,
    category_arrays,
    on_sale,
    pair_terms,
    rebuy_probability,
    return_hazards,
)
from recsys.simulation.events import (
    CHANNEL_GROUP,
    CHANNEL_MOMENTS,
    NO_SHARE,
    SOURCE_REPURCHASE,
    DayEvents,
    PurchaseRows,
    ReturnRows,
    ShareRows,
)
from recsys.simulation.purchasing import (
    day_times,
    finish_lines,
    first_of_non_consumables,
    forwarded_purchases,
    queued_purchases,
    share_purchases,
)
from recsys.simulation.returns import draw_returns
from recsys.simulation.sharing import SharePolicy, ShareRequest, default_share_policy, push_list
from recsys.simulation.state import SimState
from recsys.simulation.tiers import is_month_start, update_tiers
from recsys.simulation.world import SECONDS_PER_DAY, World


def make_shares(
    world: World, state: SimState, day: int, rng: np.random.Generator, policy: SharePolicy
) -> ShareRows:
    """The day's shares: which agents share, how often, what (by `policy`), when and where."""
    cfg, agents = world.config, world.agents
    day_start = world.start_seconds + day * SECONDS_PER_DAY
    weekday = (world.start.dayofweek + day) % 7
    boost = cfg.weekend_boost if weekday >= 5 else 1.0
    joined = agents.joined_day <= day
    active = np.flatnonzero(joined & (rng.random(len(agents)) < agents.activity * boost))
    n_shares = 1 + rng.poisson(agents.share_rate[active])
    slot_agent = np.repeat(active, n_shares)
    available = np.flatnonzero(on_sale(world, np.arange(len(world.skus)), day))
    push = push_list(world, state, day, rng)
    request = ShareRequest(world, state, day, slot_agent, push, available, rng)
    sku = np.asarray(policy(request), dtype=np.int64)
    keep = sku >= 0
    # one share of a SKU per agent and day
    key = np.unique(slot_agent[keep].astype(np.int64) * (1 << 32) + sku[keep])
    agent, sku = (key >> 32).astype(np.int32), (key & 0xFFFFFFFF).astype(np.int32)
    channel = np.where(rng.random(len(agent)) < cfg.moments_share, CHANNEL_MOMENTS, CHANNEL_GROUP)
    ts = day_times(world, rng, day_start, len(agent))
    order = np.lexsort((sku, agent, ts))
    agent, sku, channel, ts = agent[order], sku[order], channel[order].astype(np.int8), ts[order]

    members = world.customers.joined_day <= day
    group_size = np.add.reduceat(members.astype(np.int64), agents.customer_start)
    audience = np.where(channel == CHANNEL_GROUP, group_size[agent], NO_SHARE)
    share_id = state.next_share + np.arange(len(agent), dtype=np.int64)
    state.next_share += len(agent)
    return ShareRows(share_id, ts, agent, sku, channel, audience)


def _after_purchase(
    world: World, state: SimState, day: int, rng: np.random.Generator, lines: PurchaseRows
) -> None:
    """Queue the returns of today's lines and the repurchases of kept consumables."""
    cfg = world.config
    terms = pair_terms(world, lines.customer, lines.sku)
    hazards = return_hazards(world, lines.customer, lines.sku, float(day), terms)
    ret = draw_returns(world, rng, lines.sku, lines.ts, lines.qty, hazards)
    due = (ret["ts"] - world.start_seconds) // SECONDS_PER_DAY
    state.return_queue.push(
        due,
        ts=ret["ts"],
        purchase_id=lines.purchase_id[ret["line"]],
        qty=ret["qty"],
        reason=ret["reason"],
        cause=ret["cause"],
    )

    kept = np.ones(len(lines), dtype=bool)
    kept[ret["line"]] = False
    cats = category_arrays(cfg)
    cat = world.skus.category[lines.sku]
    candidates = np.flatnonzero(kept & cats.consumable[cat])
    p = rebuy_probability(world, lines.customer[candidates], _take_terms(terms, candidates))
    again = candidates[rng.random(len(candidates)) < p]
    wait = cats.cycle_days[cat[again]] * rng.lognormal(0.0, cfg.cycle_sigma, len(again))
    state.purchase_queue.push(
        day + np.maximum(1, np.round(wait)).astype(np.int64),
        customer=lines.customer[again],
        sku=lines.sku[again],
        source=np.full(len(again), SOURCE_REPURCHASE, dtype=np.int8),
    )


def _take_terms(terms: PairTerms, rows: np.ndarray) -> PairTerms:
    return PairTerms(affinity=terms.affinity[rows], price_gap=terms.price_gap[rows])


def _due_returns(world: World, state: SimState, day: int) -> ReturnRows:
    """Returns whose time has come, ordered by ts, with fresh ids."""
    due = state.return_queue.pop(day)
    if due is None:
        empty = np.empty(0, dtype=np.int64)
        return ReturnRows(empty, empty, empty, empty, empty.astype(np.int8), empty.astype(np.int8))
    order = np.lexsort((due["purchase_id"], due["ts"]))
    n = len(order)
    rows = ReturnRows(
        return_id=state.next_return + np.arange(n, dtype=np.int64),
        ts=due["ts"][order],
        purchase_id=due["purchase_id"][order],
        qty=due["qty"][order],
        reason=due["reason"][order],
        cause=due["cause"][order],
    )
    state.next_return += n
    return rows


def _update_windows(
    world: World, state: SimState, day: int, shares: ShareRows, lines: PurchaseRows
) -> None:
    """Roll the sales, GMV and share windows and remember what sold for each agent."""
    n_skus, n_agents = len(world.skus), len(world.agents)
    state.sales_ring[day % len(state.sales_ring)] = np.bincount(
        lines.sku, weights=lines.qty, minlength=n_skus
    ).astype(np.int32)
    slot = day % len(state.gmv_ring)
    state.gmv_ring[slot] = np.bincount(
        lines.agent, weights=lines.qty * lines.unit_price, minlength=n_agents
    ).astype(np.float32)
    state.shares_ring[slot] = np.bincount(shares.agent, minlength=n_agents).astype(np.int32)
    via_share = lines.share_id != NO_SHARE
    state.record_hits(lines.agent[via_share], lines.sku[via_share])
    durable = ~category_arrays(world.config).consumable[world.skus.category[lines.sku]]
    state.record_owned(lines.customer[durable], lines.sku[durable])


def step_day(
    world: World,
    state: SimState,
    day: int,
    rng: np.random.Generator,
    share_policy: SharePolicy | None = None,
) -> DayEvents:
    """Simulate day `day` (0-based) in place on `state` and return its events.

    Parameters
    ----------
    world
        The latent world (from `build_world` or `load_truth(...).world`).
    state
        Carried state; `SimState.initial(world)` before day 0. Days must be stepped in order.
    day
        Day index since the period start.
    rng
        This day's random generator (`day_rng(seed, day)` reproduces an offline run).
    share_policy
        Fills the agents' share slots with SKUs; None = their own behaviour
        (`default_share_policy`). See `sharing.PicksSharePolicy` for recommender-driven sharing.
    """
    if is_month_start(world, day):
        update_tiers(world, state, day)
    shares = make_shares(world, state, day, rng, share_policy or default_share_policy)
    parts = share_purchases(world, state, day, rng, shares)
    parts.append(forwarded_purchases(world, state, day, rng, shares))
    parts.append(queued_purchases(world, state, day, rng))
    lines = first_of_non_consumables(world, PurchaseRows.concat(parts))
    lines = finish_lines(world, state, rng, lines)
    _after_purchase(world, state, day, rng, lines)
    returns = _due_returns(world, state, day)
    _update_windows(world, state, day, shares, lines)
    return DayEvents(day=day, shares=shares, purchases=lines, returns=returns)


def day_rng(seed: int, day: int) -> np.random.Generator:
    """The random generator of one day of a run (independent streams per day)."""
    return np.random.default_rng(np.random.SeedSequence([seed, 1, day]))
