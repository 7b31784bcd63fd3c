"""Regions, agents and their customers: heavy-tailed groups whose members resemble their agent."""

from __future__ import annotations

import numpy as np

from recsys.simulation.config import SimConfig
from recsys.simulation.world import Agents, Customers, Regions, format_ids


def build_regions(config: SimConfig, rng: np.random.Generator) -> Regions:
    """Regional taste offsets, category preferences and price levels."""
    g = config.n_regions
    return Regions(
        names=np.array(config.regions, dtype=object),
        taste=rng.normal(0.0, config.sigma_region_taste, (g, config.latent_dim)).astype(np.float32),
        category_pref=rng.normal(
            0.0, config.sigma_region_category, (g, config.n_categories)
        ).astype(np.float32),
        price_level=rng.normal(0.0, config.sigma_region_price, g).astype(np.float32),
    )


def _beta(rng: np.random.Generator, ab: tuple[float, float], n: int) -> np.ndarray:
    return rng.beta(ab[0], ab[1], n).astype(np.float32)


def build_population(
    config: SimConfig, rng: np.random.Generator, regions: Regions
) -> tuple[Agents, Customers]:
    """Draw agents (ids ascending with join date) and their customers (sorted by agent)."""
    n_agents, g, dim = config.n_agents, len(regions), config.latent_dim
    region_weights = rng.dirichlet(np.full(g, config.region_concentration))
    region = rng.choice(g, size=n_agents, p=region_weights)
    joined = np.where(
        rng.random(n_agents) < config.new_agent_share,
        rng.uniform(0.0, config.new_agent_join_window * config.n_days, n_agents),
        -rng.uniform(1.0, config.agent_history_days, n_agents),
    )
    order = np.argsort(joined, kind="stable")
    region, joined = region[order], joined[order]
    is_new = joined >= 0
    # drawn only when asked for, so that worlds without inherited groups stay as they were
    inherits = (
        is_new & (rng.random(n_agents) < config.inherited_group_share)
        if config.inherited_group_share > 0
        else np.zeros(n_agents, dtype=bool)
    )

    # Heavy tail: lognormal group sizes, many with a handful, a few with hundreds. New agents
    # are still building their group, so theirs are smaller.
    sizes = np.exp(
        np.log(config.customers_per_agent_median)
        + config.customers_per_agent_sigma * rng.normal(size=n_agents)
    )
    sizes = np.where(is_new & ~inherits, sizes * config.new_agent_group_factor, sizes)
    sizes = np.clip(np.round(sizes), 1, config.max_customers_per_agent).astype(np.int64)
    stop = np.cumsum(sizes)
    start = stop - sizes

    agent_dev = rng.normal(0.0, config.sigma_agent_taste, (n_agents, dim))
    taste = regions.taste[region] + agent_dev
    price_band = regions.price_level[region] + rng.normal(0.0, config.sigma_price_band, n_agents)
    potential = sizes**config.share_rate_size_elasticity * rng.lognormal(
        0.0, config.sigma_share_rate, n_agents
    )
    share_rate = config.shares_per_active_day * potential / np.median(potential)
    activity = _beta(rng, config.active_rate, n_agents)

    customers = _build_customers(
        config, rng, regions, region, agent_dev, price_band, joined, sizes, inherits
    )
    # her choice of SKUs mixes her own taste with what she knows of her group
    group_mean = np.add.reduceat(customers.taste, start, axis=0) / sizes[:, None]
    w = config.audience_awareness
    perceived = (1.0 - w) * taste + w * group_mean

    # tier at the start follows her potential; new agents start at tier 1
    score = activity * share_rate * sizes
    cuts = (
        np.quantile(score[~is_new], np.cumsum(config.tier_shares)[:-1]) if (~is_new).any() else []
    )
    tier = (1 + np.searchsorted(np.asarray(cuts), score)).astype(np.int8)
    tier[is_new] = 1

    agents = Agents(
        ids=format_ids("A", np.arange(1, n_agents + 1), 6),
        region=region.astype(np.int16),
        taste=taste.astype(np.float32),
        perceived_taste=perceived.astype(np.float32),
        price_band=price_band.astype(np.float32),
        activity=activity,
        share_rate=share_rate.astype(np.float32),
        push_rate=_beta(rng, config.push_rate, n_agents),
        repeat_rate=_beta(rng, config.repeat_rate, n_agents),
        joined_day=joined,
        customer_start=start,
        customer_stop=stop,
        initial_tier=tier,
    )
    return agents, customers


def _build_customers(
    config: SimConfig,
    rng: np.random.Generator,
    regions: Regions,
    agent_region: np.ndarray,
    agent_dev: np.ndarray,
    price_band: np.ndarray,
    agent_joined: np.ndarray,
    sizes: np.ndarray,
    inherits: np.ndarray,
) -> Customers:
    """Customers of every agent; homophily: taste = her agent's taste mixed with noise.

    A new agent's group fills after she joins, unless she `inherits` one: then her customers
    joined as an established agent's do, and until she joins they buy through their host
    (`World.hosts`).
    """
    n = int(sizes.sum())
    g, dim, days = len(regions), config.latent_dim, config.n_days
    agent = np.repeat(np.arange(len(sizes)), sizes)
    region = agent_region[agent].copy()
    moved = rng.random(n) < config.other_region_share
    region[moved] = rng.integers(0, g, int(moved.sum()))

    rho = config.homophily
    noise = rng.normal(0.0, config.sigma_agent_taste, (n, dim))
    taste = regions.taste[region] + rho * agent_dev[agent] + np.sqrt(1.0 - rho**2) * noise
    price_ref = price_band[agent] + rng.normal(0.0, config.sigma_customer_price, n)

    a_join = agent_joined[agent]
    joins_later = rng.random(n) < config.new_customer_share
    # the same three draws, in the same order, whatever `inherits` holds
    fills = a_join + rng.exponential(config.group_fill_days, n)  # a new group fills over weeks
    later = rng.uniform(0.0, days, n)
    before = -rng.uniform(0.0, config.customer_history_days, n)
    inherited = inherits[agent]
    joined = np.where(
        (a_join >= 0) & ~inherited,
        fills,
        np.where(joins_later, later, np.where(inherited, before, np.maximum(a_join, before))),
    )
    # nobody joins after the period; late joiners land in its last days
    late = joined > days - 1
    low = np.minimum(np.maximum(a_join[late], days - 5), days - 0.02)
    joined[late] = rng.uniform(low, days - 0.01)

    # ids ascend with join date; the index order stays grouped by agent
    id_number = np.empty(n, dtype=np.int64)
    id_number[np.argsort(joined, kind="stable")] = np.arange(1, n + 1)
    return Customers(
        ids=format_ids("C", id_number, 7),
        agent=agent.astype(np.int32),
        region=region.astype(np.int16),
        taste=taste.astype(np.float32),
        price_ref=price_ref.astype(np.float32),
        price_sensitivity=rng.lognormal(0.0, config.sigma_price_sensitivity, n).astype(np.float32),
        view_rate=_beta(rng, config.view_rate, n),
        storefront_rate=_beta(rng, config.storefront_rate, n),
        loyalty=rng.normal(0.0, config.sigma_loyalty, n).astype(np.float32),
        joined_day=joined,
    )
