"""True value of picks on simulated data: expected kept purchases and the oracle's picks.

The value of sharing SKU s to agent a's group on day t is what the simulator's own model expects
her customers to buy through that share over the next `horizon_days` and keep:

    sum over her customers c (joined by t, SKU sold in c's region, not a non-consumable she owns)
        buys(c, s) * kept_units(c, s) * (1 + repurchase chain within the horizon)
    buys = p_now + (1 - p_now) * p_buy * storefront(c) * P(later buy within the horizon)
    p_now = p_buy * view(c)

with `p_buy`, the return hazards, quantities and the repurchase probability taken from
`recsys.simulation.dynamics`, the very functions the day step samples from. A customer's value
(`expected_kept_purchases_customer`) is the same summand for her alone, so an agent's value is
the sum of her customers' values. Simplifications: the share goes to her group (not moments),
forwarding beyond the group and the SKU ending within the horizon are ignored, the return model
is taken as of day t (an incident that has started counts), and the repurchase chain's waiting
time uses the Fenton-Wilkinson lognormal approximation of a sum of lognormals.

`oracle_share_at_k` (issue 3) = value of a model's picks / value of `oracle_picks`.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
import pandas as pd
import scipy.sparse as sp
from scipy.special import ndtr

from recsys.columns import Columns
from recsys.simulation.dynamics import (
    PairTerms,
    buy_probability,
    category_arrays,
    expected_qty,
    mismatch_z,
    on_sale,
    pair_terms,
    pair_terms_grid,
    rebuy_probability,
    return_probability,
    sold_in,
)
from recsys.simulation.truth_store import Truth, load_truth
from recsys.simulation.world import World, expand_ranges

__all__ = [
    "Truth",
    "expected_kept_purchases",
    "expected_kept_purchases_customer",
    "load_truth",
    "oracle_picks",
]

PAIR_BLOCK = 1 << 18  # (customer, SKU) pairs evaluated at once
GRID_CELLS = 1 << 20  # customer x SKU cells evaluated at once by the oracle


def _check_horizon(horizon_days: float) -> None:
    if horizon_days <= 0:
        raise ValueError(f"horizon_days must be > 0, got {horizon_days}")


def _within_horizon(world: World, horizon: float) -> np.ndarray:
    """P(the g-th repurchase falls within the horizon), shape (generations, n_categories).

    The wait for the g-th repurchase is a sum of g lognormal cycles, approximated by a lognormal
    of the same mean and variance (Fenton-Wilkinson); 0 for categories that are not consumable.
    """
    cfg, cats = world.config, category_arrays(world.config)
    cycle = np.maximum(cats.cycle_days, 1e-9)
    shortest = cats.cycle_days[cats.consumable].min(initial=np.inf)
    n_gen = int(min(np.ceil(horizon / max(shortest, 1.0)) + 1, 64)) if np.isfinite(shortest) else 0
    s2 = cfg.cycle_sigma**2
    rows = []
    for g in range(1, n_gen + 1):
        mean = g * cycle * np.exp(s2 / 2)
        var = g * cycle**2 * np.exp(s2) * (np.exp(s2) - 1.0)
        sig2 = np.log1p(var / mean**2)
        mu = np.log(mean) - sig2 / 2
        within = ndtr((np.log(max(horizon - 0.5, 1e-9)) - mu) / np.sqrt(sig2))
        rows.append(np.where(cats.consumable, within, 0.0))
    return np.array(rows, dtype=np.float32).reshape(n_gen, len(cycle))


def _chain_factor(world: World, sku: np.ndarray, rho: np.ndarray, horizon: float) -> np.ndarray:
    """1 + expected repurchases within the horizon, for chain continuation probability `rho`."""
    within = _within_horizon(world, horizon)
    within = within[within.max(axis=1) > 1e-6]  # generations that can still land in the horizon
    cat = world.skus.category[sku]
    factor = np.zeros(np.broadcast_shapes(np.shape(rho), np.shape(sku)), dtype=np.float32)
    for row in within[::-1]:  # Horner: rho * (w1 + rho * (w2 + ...))
        factor = rho * (row[cat] + factor)
    return 1.0 + factor


def _values(
    truth: Truth,
    cust: np.ndarray,
    sku: np.ndarray,
    day: float,
    horizon: float,
    terms: PairTerms,
) -> np.ndarray:
    """Expected kept units for (customer, SKU) index arrays (aligned or broadcast grids)."""
    world = truth.world
    cfg, customers = world.config, world.customers
    p = buy_probability(world, cust, sku, terms)
    later_days = min(int(np.ceil(horizon)) - 1, cfg.storefront_max_days)
    p_later = 1.0 - (1.0 - cfg.storefront_p_day) ** max(later_days, 0)
    # she buys when she sees the share or, failing that, later from the storefront
    now = p * customers.view_rate[cust]
    buys = now + (1.0 - now) * p * (customers.storefront_rate[cust] * np.float32(p_later))
    z = mismatch_z(world, terms)
    p_ret = return_probability(world, cust, sku, day, terms, z=z)
    mean_qty, mean_returned = expected_qty(world, sku)
    kept_units = mean_qty - p_ret * mean_returned
    rho = (1.0 - p_ret) * rebuy_probability(world, cust, terms, z=z)
    value = buys * kept_units * _chain_factor(world, sku, rho, horizon)
    ok = (
        sold_in(world, sku, customers.region[cust])
        & on_sale(world, sku, day)
        & (customers.joined_day[cust] <= day)
    )
    value = np.where(ok, value, 0.0)
    value[np.broadcast_to(truth.owned_before(cust, sku, day), value.shape)] = 0.0
    return value


def expected_kept_purchases_customer(
    truth: Truth,
    customer_ids: Any,
    sku_ids: Any,
    *,
    horizon_days: float = 14,
    at: Any = None,
) -> np.ndarray:
    """True expected kept units a customer buys over the horizon when shown a SKU, per pair.

    `customer_ids` and `sku_ids` are aligned; `at` is a timestamp (default: end of the period).
    A SKU not on sale then, or not sold in her region, is worth 0.
    """
    _check_horizon(horizon_days)
    world = truth.world
    cust, sku = truth.customer_index(customer_ids), truth.sku_index(sku_ids)
    if len(cust) != len(sku):
        raise ValueError(f"customer_ids and sku_ids must align, got {len(cust)} and {len(sku)}")
    day = world.day_of(at)
    out = np.zeros(len(cust))
    for lo in range(0, len(cust), PAIR_BLOCK):
        c, s = cust[lo : lo + PAIR_BLOCK], sku[lo : lo + PAIR_BLOCK]
        out[lo : lo + PAIR_BLOCK] = _values(truth, c, s, day, horizon_days, pair_terms(world, c, s))
    return out


def expected_kept_purchases(
    truth: Truth,
    agent_ids: Any,
    sku_ids: Any,
    *,
    horizon_days: float = 14,
    at: Any = None,
) -> np.ndarray:
    """True expected kept units her customers buy over the horizon if she shares a SKU, per pair.

    `agent_ids` and `sku_ids` are aligned; `at` is a timestamp (default: end of the period). A SKU
    she cannot share then (not on sale, not sold in her region) is worth 0. Pairs are expanded to
    her customers in blocks, so memory stays bounded for agents with large groups.
    """
    _check_horizon(horizon_days)
    world = truth.world
    agent, sku = truth.agent_index(agent_ids), truth.sku_index(sku_ids)
    if len(agent) != len(sku):
        raise ValueError(f"agent_ids and sku_ids must align, got {len(agent)} and {len(sku)}")
    day = world.day_of(at)
    start = world.agents.customer_start[agent]
    size = world.agents.customer_stop[agent] - start
    out = np.zeros(len(agent))
    block = (np.cumsum(size) - size) // PAIR_BLOCK
    for rows in np.split(np.arange(len(agent)), np.flatnonzero(np.diff(block)) + 1):
        owner, cust = expand_ranges(start[rows], size[rows])
        s = sku[rows][owner]
        values = _values(truth, cust, s, day, horizon_days, pair_terms(world, cust, s))
        out[rows] = np.bincount(owner, weights=values, minlength=len(rows))
    shareable = on_sale(world, sku, day) & sold_in(world, sku, world.agents.region[agent])
    return np.where(shareable, out, 0.0)


def oracle_picks(
    truth: Truth,
    ids: Any,
    k: int,
    *,
    target: Literal["agent", "customer"] = "agent",
    at: Any = None,
    horizon_days: float = 14,
) -> pd.DataFrame:
    """The top-k SKUs by true expected kept purchases for each agent (or customer).

    Candidates are the SKUs on sale at `at` and sold in her region. Returns columns
    (agent_id or customer_id, sku_id, score, rank), ranks 1..k, best first; the cost is
    O(customers x SKUs), computed in blocks of about a million cells.

    Raises
    ------
    ValueError
        If `k` < 1 or `target` is neither "agent" nor "customer".
    """
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    if target not in ("agent", "customer"):
        raise ValueError(f"target must be 'agent' or 'customer', got {target!r}")
    _check_horizon(horizon_days)
    world = truth.world
    day = world.day_of(at)
    candidates = np.flatnonzero(on_sale(world, np.arange(len(world.skus)), day))
    if target == "agent":
        rows, id_col = truth.agent_index(ids), Columns.AGENT_ID
        region = world.agents.region[rows]
        size = world.agents.customer_stop[rows] - world.agents.customer_start[rows]
    else:
        rows, id_col = truth.customer_index(ids), Columns.CUSTOMER_ID
        region = world.customers.region[rows]
        size = np.ones(len(rows), dtype=np.int64)
    per_block = max(1, GRID_CELLS // max(len(candidates), 1))
    frames = []
    block = (np.cumsum(size) - size) // per_block
    for part in np.split(np.arange(len(rows)), np.flatnonzero(np.diff(block)) + 1):
        if len(part) == 0:
            continue
        if target == "agent":
            scores = _agent_grid(truth, rows[part], candidates, day, horizon_days)
        else:
            cust = rows[part]
            terms = pair_terms_grid(world, cust, candidates)
            scores = _values(truth, cust[:, None], candidates[None, :], day, horizon_days, terms)
        allowed = sold_in(world, candidates[None, :], region[part][:, None])
        scores = np.where(allowed, scores, -np.inf)
        frames.append(_top_k(scores, rows[part], candidates, k))
    owner, sku, score, rank = (np.concatenate(x) for x in zip(*frames, strict=True))
    id_array = world.agents.ids if target == "agent" else world.customers.ids
    return pd.DataFrame(
        {
            id_col: id_array[owner],
            Columns.SKU_ID: world.skus.ids[sku],
            Columns.SCORE: score,
            Columns.RANK: rank,
        }
    )


def _agent_grid(
    truth: Truth, agents: np.ndarray, candidates: np.ndarray, day: float, horizon: float
) -> np.ndarray:
    """Agent x candidate values: her customers' values summed, in blocks of customers."""
    world = truth.world
    start = world.agents.customer_start[agents]
    owner, cust = expand_ranges(start, world.agents.customer_stop[agents] - start)
    out = np.zeros((len(agents), len(candidates)))
    per_block = max(1, GRID_CELLS // max(len(candidates), 1))
    for lo in range(0, len(cust), per_block):
        c, o = cust[lo : lo + per_block], owner[lo : lo + per_block]
        terms = pair_terms_grid(world, c, candidates)
        values = _values(truth, c[:, None], candidates[None, :], day, horizon, terms)
        # sum customer rows into their agent's row
        members = sp.csr_matrix(
            (np.ones(len(c)), (o, np.arange(len(c)))), shape=(len(agents), len(c))
        )
        out += members @ values
    return out


def _top_k(
    scores: np.ndarray, owners: np.ndarray, candidates: np.ndarray, k: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Rows of the k best finite scores per row (ties broken by SKU index)."""
    kk = min(k, scores.shape[1])
    # stable sort on -score keeps the lower SKU index first among ties
    order = np.argsort(-scores, axis=1, kind="stable")[:, :kk]
    best = np.take_along_axis(scores, order, axis=1)
    keep = np.isfinite(best)
    n_rows = np.broadcast_to(np.arange(len(owners))[:, None], best.shape)
    rank = np.broadcast_to(np.arange(1, kk + 1)[None, :], best.shape)
    return owners[n_rows[keep]], candidates[order[keep]], best[keep], rank[keep]
