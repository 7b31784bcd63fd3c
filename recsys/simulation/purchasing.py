"""Purchase lines of a day: through shares, forwarded shares, the storefront and repurchases."""

from __future__ import annotations

import numpy as np

from recsys.simulation.dynamics import buy_probability, category_arrays, on_sale, sold_in
from recsys.simulation.events import (
    CHANNEL_GROUP,
    CHANNEL_MOMENTS,
    NO_SHARE,
    SOURCE_FORWARD,
    SOURCE_SHARE,
    SOURCE_STOREFRONT,
    PurchaseRows,
    ShareRows,
)
from recsys.simulation.state import SimState
from recsys.simulation.world import SECONDS_PER_DAY, World, expand_ranges

PAIR_BLOCK = 1 << 19  # (share, customer) pairs evaluated at once; bounds memory for big groups


def day_times(world: World, rng: np.random.Generator, day_start: int, n: int) -> np.ndarray:
    """Timestamps within a day following the configured hourly activity profile."""
    profile = np.asarray(world.config.hourly_profile, dtype=np.float64)
    hour = rng.choice(24, size=n, p=profile / profile.sum())
    return day_start + hour * 3600 + rng.integers(0, 3600, n)


def _blocks(sizes: np.ndarray, limit: int) -> list[np.ndarray]:
    """Consecutive row slices whose sizes sum to about `limit` (one big row may exceed it)."""
    block = (np.cumsum(sizes) - sizes) // limit
    return np.split(np.arange(len(sizes)), np.flatnonzero(np.diff(block)) + 1)


def share_purchases(
    world: World, state: SimState, day: int, rng: np.random.Generator, shares: ShareRows
) -> list[PurchaseRows]:
    """Customers who see each share buy now; some buy it later from her storefront (queued).

    Her group is her bound customers and, while they are hosted (`World.hosts`), the inherited
    groups of agents who have not joined yet.
    """
    start = world.agents.customer_start[shares.agent]
    size = world.agents.customer_stop[shares.agent] - start
    out: list[PurchaseRows] = []
    for rows in _blocks(size, PAIR_BLOCK):
        owner, cust = expand_ranges(start[rows], size[rows])
        _buy_from_shares(world, state, day, rng, shares, rows[owner], cust, out)
    _, guest_ptr, guests = world.hosts()
    if len(guests):
        start = guest_ptr[shares.agent]
        size = guest_ptr[shares.agent + 1] - start
        for rows in _blocks(size, PAIR_BLOCK):
            owner, at = expand_ranges(start[rows], size[rows])
            share, cust = rows[owner], guests[at]
            hosted = world.agent_at(cust, shares.ts[share]) == shares.agent[share]
            _buy_from_shares(world, state, day, rng, shares, share[hosted], cust[hosted], out)
    return out


def _buy_from_shares(
    world: World,
    state: SimState,
    day: int,
    rng: np.random.Generator,
    shares: ShareRows,
    share: np.ndarray,
    cust: np.ndarray,
    out: list[PurchaseRows],
) -> None:
    """Purchases of (share row, customer in its group) pairs: now, or queued for later."""
    cfg, customers = world.config, world.customers
    day_end = world.start_seconds + (day + 1) * SECONDS_PER_DAY
    sku = shares.sku[share]
    ts = shares.ts[share]
    seen = (world.start_seconds + customers.joined_day[cust] * SECONDS_PER_DAY <= ts) & sold_in(
        world, sku, customers.region[cust]
    )
    share, cust, sku, ts = share[seen], cust[seen], sku[seen], ts[seen]
    p = buy_probability(world, cust, sku)
    reach = np.where(shares.channel[share] == CHANNEL_MOMENTS, cfg.moments_reach, 1.0)
    now = rng.random(len(p)) < customers.view_rate[cust] * reach * p
    later = ~now & (rng.random(len(p)) < customers.storefront_rate[cust] * p)
    owned = _owns_non_consumable(world, state, cust, sku, now | later)
    now, later = now & ~owned, later & ~owned
    out.append(_bought_through(world, rng, shares, share, cust, now, day_end, SOURCE_SHARE))
    delay = rng.geometric(cfg.storefront_p_day, int(later.sum()))
    ok = delay <= cfg.storefront_max_days
    state.purchase_queue.push(
        day + delay[ok],
        customer=cust[later][ok],
        sku=sku[later][ok],
        source=np.full(int(ok.sum()), SOURCE_STOREFRONT, dtype=np.int8),
    )


def forwarded_purchases(
    world: World, state: SimState, day: int, rng: np.random.Generator, shares: ShareRows
) -> PurchaseRows:
    """Shares forwarded beyond her group reach a few customers of other agents in her region."""
    cfg, customers = world.config, world.customers
    day_end = world.start_seconds + (day + 1) * SECONDS_PER_DAY
    group = np.flatnonzero(shares.channel == CHANNEL_GROUP)
    n_fwd = rng.poisson(cfg.forward_rate * shares.audience[group])
    share = np.repeat(group, n_fwd)
    order, offsets = world.customers_by_region()
    region = world.agents.region[shares.agent[share]]
    lo, hi = offsets[region], offsets[region + 1]
    cust = order[lo + (rng.random(len(share)) * (hi - lo)).astype(np.int64)]
    sku, ts = shares.sku[share], shares.ts[share]
    ok = (
        (world.agent_at(cust, ts) != shares.agent[share])
        & (world.start_seconds + customers.joined_day[cust] * SECONDS_PER_DAY <= ts)
        & sold_in(world, sku, customers.region[cust])
    )
    share, cust, sku, ts = share[ok], cust[ok], sku[ok], ts[ok]
    buy = rng.random(len(cust)) < cfg.forward_view * buy_probability(world, cust, sku)
    buy &= ~_owns_non_consumable(world, state, cust, sku, buy)
    return _bought_through(world, rng, shares, share, cust, buy, day_end, SOURCE_FORWARD)


def _bought_through(
    world: World,
    rng: np.random.Generator,
    shares: ShareRows,
    share: np.ndarray,
    cust: np.ndarray,
    bought: np.ndarray,
    day_end: int,
    source: int,
) -> PurchaseRows:
    """Lines of the (share row, customer) pairs that buy: a delay after the share, same day."""
    delay = rng.exponential(world.config.buy_delay_hours * 3600, int(bought.sum()))
    buy_ts = shares.ts[share[bought]] + delay.astype(np.int64)
    return _lines(
        np.minimum(buy_ts, day_end - 1),
        cust[bought],
        shares.agent[share[bought]],
        shares.sku[share[bought]],
        shares.share_id[share[bought]],
        source,
    )


def queued_purchases(
    world: World, state: SimState, day: int, rng: np.random.Generator
) -> PurchaseRows:
    """Storefront buys and repurchases decided earlier, if the SKU is still on sale."""
    queued = state.purchase_queue.pop(day)
    if queued is None:
        return _lines(*(np.empty(0, dtype=np.int64) for _ in range(5)), SOURCE_STOREFRONT)
    cust, sku = queued["customer"], queued["sku"]
    ok = on_sale(world, sku, day)
    ok &= ~_owns_non_consumable(world, state, cust, sku, ok)
    cust, sku, source = cust[ok], sku[ok], queued["source"][ok]
    ts = day_times(world, rng, world.start_seconds + day * SECONDS_PER_DAY, len(cust))
    rows = _lines(ts, cust, world.agent_at(cust, ts), sku, np.full(len(cust), NO_SHARE), 0)
    rows.source = source
    return rows


def _owns_non_consumable(
    world: World, state: SimState, cust: np.ndarray, sku: np.ndarray, rows: np.ndarray
) -> np.ndarray:
    """Among `rows` (a mask), pairs where she already owns the (non-consumable) SKU."""
    out = np.zeros(len(cust), dtype=bool)
    idx = np.flatnonzero(rows)
    durable = ~category_arrays(world.config).consumable[world.skus.category[sku[idx]]]
    idx = idx[durable]
    out[idx] = state.owns(cust[idx], sku[idx])
    return out


def first_of_non_consumables(world: World, lines: PurchaseRows) -> PurchaseRows:
    """Keep only her earliest line of a non-consumable SKU bought more than once today."""
    durable = ~category_arrays(world.config).consumable[world.skus.category[lines.sku]]
    key = np.where(
        durable,
        lines.customer.astype(np.int64) * len(world.skus) + lines.sku,
        -1 - np.arange(len(lines)),
    )
    by_time = np.argsort(lines.ts, kind="stable")
    _, first = np.unique(key[by_time], return_index=True)
    return lines.take(np.sort(by_time[first]))


def _lines(
    ts: np.ndarray,
    cust: np.ndarray,
    agent: np.ndarray,
    sku: np.ndarray,
    share_id: np.ndarray,
    source: int,
) -> PurchaseRows:
    n = len(ts)
    zeros = np.zeros(n, dtype=np.int64)
    return PurchaseRows(
        purchase_id=zeros,
        order_id=zeros,
        ts=np.asarray(ts, dtype=np.int64),
        customer=np.asarray(cust, dtype=np.int32),
        agent=np.asarray(agent, dtype=np.int32),
        sku=np.asarray(sku, dtype=np.int32),
        qty=zeros,
        unit_price=np.zeros(n),
        share_id=np.asarray(share_id, dtype=np.int64),
        source=np.full(n, source, dtype=np.int8),
    )


def finish_lines(
    world: World, state: SimState, rng: np.random.Generator, lines: PurchaseRows
) -> PurchaseRows:
    """Quantities, prices, orders and ids; a customer's storefront lines of a day form one order."""
    cfg = world.config
    cats = category_arrays(cfg)
    n = len(lines)
    extra = cats.extra_qty[world.skus.category[lines.sku]]
    lines.qty = np.minimum(1 + rng.poisson(extra), cfg.max_qty).astype(np.int64)
    discount = rng.choice(np.asarray(cfg.discount_levels), size=n, p=np.asarray(cfg.discount_probs))
    lines.unit_price = np.round(world.skus.price[lines.sku] * discount, 2)

    # storefront lines of one customer form one order, at the time of the earliest of them
    storefront = lines.share_id == NO_SHARE
    key = np.where(storefront, lines.customer.astype(np.int64), -1 - np.arange(n))
    _, group = np.unique(key, return_inverse=True)
    by_group = np.lexsort((lines.ts, group))
    first = np.r_[True, group[by_group][1:] != group[by_group][:-1]] if n else np.zeros(0, bool)
    lines.ts = lines.ts[by_group][first][group]
    order = np.lexsort((lines.sku, group, lines.ts))
    lines, group = lines.take(order), group[order]
    lines.purchase_id = state.next_purchase + np.arange(n, dtype=np.int64)
    state.next_purchase += n
    new_order = np.r_[True, group[1:] != group[:-1]] if n else np.zeros(0, dtype=bool)
    lines.order_id = state.next_order + np.cumsum(new_order) - 1
    state.next_order += int(new_order.sum())
    return lines
