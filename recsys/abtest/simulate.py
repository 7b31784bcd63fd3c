"""Fast-mode A/B experiments: agents, feeds, shares, purchases, returns and clicks in numpy.

This generator skips the HTTP service: it writes what the service and `recsys sink` would have
logged (exposures with variant and model version, clicks, and the contract tables) straight from
a parametric model whose true effects are known (`sim_truth`). It is what the A/A, known-effect
and broken-split proofs run on (docs/ab-testing.md); the closed-loop simulation drives the real
service and feeds the same report.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from recsys.ab import Experiment, Variant, assign_many
from recsys.abtest.data import ExperimentData
from recsys.abtest.sim_config import ABSimConfig
from recsys.abtest.sim_truth import agent_truth

DAY = pd.Timedelta(days=1)
_EPOCH = pd.Timestamp("1970-01-01", tz="UTC")
STREAMS: tuple[str, ...] = (
    "world",
    "visits",
    "first_feeds",
    "feeds",
    "shares",
    "purchases",
    "clicks",
)
Streams = dict[str, np.random.Generator]


@dataclass
class World:
    """The latent state of one simulated experiment (numpy arrays by agent, customer, SKU)."""

    price: np.ndarray  # by SKU
    popularity: np.ndarray  # by SKU, sums to 1
    return_prob: np.ndarray  # by SKU
    activity: np.ndarray  # by agent, mean 1
    n_customers: np.ndarray  # by agent
    customer_agent: np.ndarray  # by customer (customers grouped by agent)
    customer_key: np.ndarray  # agent + cumulative loyalty within the agent, for sampling
    arm: np.ndarray  # by agent: index of the variant she is really in
    first_ts: np.ndarray  # by agent: days since pre-period start of the first exposure, or nan
    first_feed: np.ndarray  # agents x feed_size SKU indices of the first feed (-1 if none)


def experiment_config(config: ABSimConfig, seed: int) -> Experiment:
    """The experiment as configured (names, salt, weights, model URIs) for this seed."""
    return Experiment(
        name=config.experiment,
        salt=f"{config.experiment}-{seed}",
        variants=[
            Variant(name=name, weight=w, model_uri=f"models:/item-to-agent/{i + 1}")
            for i, (name, w) in enumerate(zip(config.variants, config.weights, strict=True))
        ],
    )


def _ids(prefix: str, values: np.ndarray, width: int) -> np.ndarray:
    """Text ids such as `A000042` from integer indices."""
    return np.array([f"{prefix}{v:0{width}d}" for v in values.tolist()], dtype=object)


def _to_ts(days: np.ndarray, origin: pd.Timestamp) -> pd.Series:
    """Days since `origin` (whole milliseconds) as UTC timestamps."""
    ms = np.round(np.asarray(days, dtype=float) * 86_400_000).astype(np.int64)
    base = int((origin - _EPOCH) / pd.Timedelta(milliseconds=1))
    return pd.Series(pd.to_datetime(base + ms, unit="ms", utc=True)).astype("datetime64[ns, UTC]")


def _ms(days: np.ndarray) -> np.ndarray:
    """Times in days rounded to whole milliseconds, the resolution of the logs."""
    return np.round(np.asarray(days, dtype=float) * 86_400_000) / 86_400_000


def _feeds(rng: np.random.Generator, popularity: np.ndarray, n: int, k: int) -> np.ndarray:
    """`n` feeds of `k` distinct SKUs drawn by popularity (a repeated SKU is drawn again)."""
    cdf = np.cumsum(popularity)
    out = np.searchsorted(cdf, rng.random((n, k)) * cdf[-1], side="right")
    rows = np.arange(n)
    while rows.size:
        sub = out[rows]
        order = np.argsort(sub, axis=1, kind="stable")
        ranked = np.take_along_axis(sub, order, axis=1)
        dup = np.zeros_like(sub, dtype=bool)
        np.put_along_axis(dup, order[:, 1:], ranked[:, 1:] == ranked[:, :-1], axis=1)
        sub[dup] = np.searchsorted(cdf, rng.random(int(dup.sum())) * cdf[-1], side="right")
        out[rows] = sub
        rows = rows[dup.any(axis=1)]
    return out


def build_world(config: ABSimConfig, seed: int, rng: np.random.Generator) -> World:
    """SKUs, agents with activity and customers, and the arm each agent is assigned to."""
    n, n_skus = config.n_agents, config.n_skus
    price = np.round(np.exp(rng.normal(np.log(60.0), 0.6, n_skus)), 1).clip(1.0)
    popularity = rng.permutation(1.0 / np.arange(1, n_skus + 1) ** 0.8)
    popularity /= popularity.sum()
    m = config.mean_return_prob
    return_prob = rng.beta(2.0, 2.0 * (1 - m) / m, n_skus)
    sigma = config.activity_sigma
    activity = np.exp(rng.normal(-(sigma**2) / 2, sigma, n))
    n_customers = 1 + rng.poisson((config.mean_customers - 1) * np.sqrt(activity))
    customer_agent = np.repeat(np.arange(n), n_customers)
    loyalty = rng.gamma(0.7, 1.0, len(customer_agent))
    csum = np.cumsum(loyalty)
    seg_start = np.concatenate([[0], np.cumsum(n_customers)[:-1]])
    before = np.concatenate([[0.0], csum])[seg_start]
    totals = np.bincount(customer_agent, weights=loyalty, minlength=n)
    key = customer_agent + (csum - before[customer_agent]) / totals[customer_agent]
    key[np.cumsum(n_customers) - 1] = np.arange(n) + 1.0  # exact segment ends despite rounding
    agent_ids = _ids("A", np.arange(n), 6).tolist()
    actual = experiment_config(config, seed)
    if config.assign_weights is not None:
        actual = actual.model_copy(
            update={
                "variants": [
                    v.model_copy(update={"weight": w})
                    for v, w in zip(actual.variants, config.assign_weights, strict=True)
                ]
            }
        )
    names = {name: i for i, name in enumerate(config.variants)}
    arm = np.array([names[v] for v in assign_many(actual, agent_ids)], dtype=np.int64)
    return World(
        price=price,
        popularity=popularity,
        return_prob=return_prob,
        activity=activity,
        n_customers=n_customers,
        customer_agent=customer_agent,
        customer_key=key,
        arm=arm,
        first_ts=np.full(n, np.nan),
        first_feed=np.full((n, config.feed_size), -1, dtype=np.int64),
    )


def _arm_values(config: ABSimConfig, world: World, attr: str) -> np.ndarray:
    """An `ArmEffect` field per agent, from the arm she is in."""
    per_arm = np.array([getattr(config.effect(i), attr) for i in range(len(config.variants))])
    return per_arm[world.arm]


def _exposures(
    config: ABSimConfig, world: World, streams: Streams, every_feed: bool = True
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Feed requests during the experiment: (agent, time in days, SKUs) per exposure event.

    First feeds and later feeds come from their own streams, so `every_feed=False` (first feeds
    only: all that purchases depend on) leaves every other draw unchanged.
    """
    rng = streams["visits"]
    visit = np.clip(config.visit_rate * np.sqrt(world.activity), 0.02, 0.95)
    visits = rng.random((config.n_agents, config.exp_days)) < visit[:, None]
    agent, day = np.nonzero(visits)  # sorted by agent, then day
    t = _ms(config.pre_days + day + rng.random(len(day)))
    first = np.concatenate([[True], agent[1:] != agent[:-1]]) if len(agent) else agent.astype(bool)
    skus = np.empty((len(agent), config.feed_size), dtype=np.int64)
    skus[first] = _feeds(
        streams["first_feeds"], world.popularity, int(first.sum()), config.feed_size
    )
    world.first_ts[agent[first]] = t[first]
    world.first_feed[agent[first]] = skus[first]
    if not every_feed:
        return agent[first], t[first], skus[first]
    later = ~first
    skus[later] = _feeds(streams["feeds"], world.popularity, int(later.sum()), config.feed_size)
    return agent, t, skus


def _treated(world: World, agent: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Whether each event happens at or after its agent's first exposure."""
    first = world.first_ts[agent]
    return ~np.isnan(first) & (t >= np.nan_to_num(first, nan=np.inf))


def _pick_skus(
    config: ABSimConfig, world: World, rng: np.random.Generator, agent: np.ndarray, t: np.ndarray
) -> np.ndarray:
    """SKUs of purchase lines or clicks: from her first feed after exposure, else by popularity."""
    sku = rng.choice(len(world.popularity), size=len(agent), p=world.popularity)
    from_feed = _treated(world, agent, t) & (rng.random(len(agent)) < config.rec_line_share)
    slot = rng.integers(0, config.feed_size, size=len(agent))
    sku[from_feed] = world.first_feed[agent[from_feed], slot[from_feed]]
    return sku


def _daily_counts(
    rng: np.random.Generator, rate: np.ndarray, lift: np.ndarray, world: World, n_days: int
) -> tuple[np.ndarray, np.ndarray]:
    """Poisson events per agent and day (lifted from the day of first exposure): (agent, time)."""
    days = np.arange(n_days)
    first_day = np.floor(np.nan_to_num(world.first_ts, nan=np.inf))
    mult = np.where(days[None, :] >= first_day[:, None], lift[:, None], 1.0)
    counts = rng.poisson(rate[:, None] * mult)
    agent, day = np.nonzero(counts)
    reps = counts[agent, day]
    agent, day = np.repeat(agent, reps), np.repeat(day, reps)
    return agent, _ms(day + rng.random(len(day)))


def _customers_of(world: World, rng: np.random.Generator, agent: np.ndarray) -> np.ndarray:
    """A customer of each agent, drawn by loyalty (so loyal customers buy again)."""
    u = 1.0 - rng.random(len(agent))  # in (0, 1]: never the previous agent's last key
    return np.searchsorted(world.customer_key, agent + u, side="left")


def n_days_total(config: ABSimConfig) -> int:
    """Days with purchases and clicks: the pre-period, the experiment and a last window."""
    return config.pre_days + config.exp_days + int(np.ceil(config.window_days)) + 1


def data_end_days(config: ABSimConfig) -> float:
    """Days from the pre-period start to the end of the data (every counted return is in)."""
    return n_days_total(config) + config.return_days + 1


@dataclass
class Events:
    """Index-level events of one simulated experiment (times in days since the pre-period)."""

    exposures: tuple[np.ndarray, np.ndarray, np.ndarray]
    shares: tuple[np.ndarray, np.ndarray, np.ndarray]  # agent, t, sku
    purchases: dict[str, np.ndarray]  # agent, t, customer, sku, qty, returned, return_t
    clicks: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]  # agent, t, customer, sku


def _shares(
    config: ABSimConfig,
    world: World,
    rng: np.random.Generator,
    exposures: tuple[np.ndarray, np.ndarray, np.ndarray],
) -> tuple[np.ndarray, ...]:
    """Shares of served SKUs (a few hours after serving) and of SKUs she picked herself."""
    exp_agent, exp_t, exp_skus = exposures
    share_p = np.clip(config.share_prob * rng.gamma(4.0, 0.25, config.n_agents), 0, 0.9)
    share_p = np.clip(share_p * _arm_values(config, world, "share_mult"), 0, 1)
    shared = rng.random(exp_skus.shape) < share_p[exp_agent, None]
    row, col = np.nonzero(shared)
    share_t = _ms(exp_t[row] + rng.exponential(0.3, len(row)))
    rec_shares = (exp_agent[row], share_t, exp_skus[row, col])
    org_agent, org_t = _daily_counts(
        rng,
        config.organic_shares_per_day * world.activity,
        np.ones(config.n_agents),
        world,
        n_days_total(config),
    )
    org_sku = rng.choice(config.n_skus, size=len(org_agent), p=world.popularity)
    return tuple(
        np.concatenate(p) for p in zip(rec_shares, (org_agent, org_t, org_sku), strict=True)
    )


def _purchases(
    config: ABSimConfig, world: World, rng: np.random.Generator
) -> dict[str, np.ndarray]:
    """Purchase lines (Poisson per agent and day) and whether and when each comes back."""
    lift = _arm_values(config, world, "purchase_lift")
    agent, t = _daily_counts(
        rng, config.lines_per_day * world.activity, lift, world, n_days_total(config)
    )
    customer = _customers_of(world, rng, agent)
    forwarded = rng.random(len(agent)) < config.forward_rate
    customer[forwarded] = rng.integers(0, len(world.customer_agent), int(forwarded.sum()))
    sku = _pick_skus(config, world, rng, agent, t)
    qty = 1 + rng.poisson(config.mean_extra_qty, len(agent))
    mult = np.where(_treated(world, agent, t), _arm_values(config, world, "return_mult")[agent], 1)
    returned = rng.random(len(agent)) < np.minimum(1.0, world.return_prob[sku] * mult)
    delay = np.exp(
        rng.normal(np.log(config.return_delay_median_days), config.return_delay_sigma, len(agent))
    )
    return_t = _ms(t + delay)
    return {
        "agent": agent,
        "t": t,
        "customer": customer,
        "sku": sku,
        "qty": qty,
        "returned": returned & (return_t <= data_end_days(config)),
        "return_t": return_t,
    }


def _clicks(config: ABSimConfig, world: World, rng: np.random.Generator) -> tuple[np.ndarray, ...]:
    """Storefront clicks by her customers: (agent, t, customer, sku)."""
    click_rate = config.clicks_per_customer_day * world.n_customers
    agent, t = _daily_counts(
        rng, click_rate, _arm_values(config, world, "click_mult"), world, n_days_total(config)
    )
    customer = world.customer_agent.searchsorted(agent) + (
        rng.random(len(agent)) * world.n_customers[agent]
    ).astype(np.int64)
    return agent, t, customer, _pick_skus(config, world, rng, agent, t)


def simulate_events(
    config: ABSimConfig, world: World, streams: Streams, sales_only: bool = False
) -> Events:
    """Exposures, shares, purchase lines with their returns, and clicks of every agent.

    With `sales_only` only first feeds and purchases are drawn (shares and clicks are empty);
    they come out exactly as in a full run, each part having its own random stream.
    """
    exposures = _exposures(config, world, streams, every_feed=not sales_only)
    purchases = _purchases(config, world, streams["purchases"])
    if sales_only:
        none = np.empty(0, dtype=np.int64)
        return Events(exposures, (none, none.astype(float), none), purchases, (none,) * 4)
    shares = _shares(config, world, streams["shares"], exposures)
    clicks = _clicks(config, world, streams["clicks"])
    return Events(exposures, shares, purchases, clicks)


def to_experiment_data(config: ABSimConfig, world: World, events: Events) -> ExperimentData:
    """The events as the frames the report reads (same columns and types as from disk)."""
    origin = pd.Timestamp(config.start, tz="UTC") - config.pre_days * DAY
    agent_ids = _ids("A", np.arange(config.n_agents), 6)
    customer_ids = _ids("C", np.arange(len(world.customer_agent)), 7)
    sku_ids = _ids("S", np.arange(config.n_skus), 5)
    e_agent, e_t, e_skus = events.exposures
    order = np.argsort(e_t, kind="stable")
    e_agent, e_t, e_skus = e_agent[order], e_t[order], e_skus[order]
    arm = world.arm[e_agent]
    variant = np.array(config.variants, dtype=object)[arm]
    n_exp = len(e_agent)
    positions = list(range(1, config.feed_size + 1))
    exposures = pd.DataFrame(
        {
            "event_id": _ids("X", np.arange(n_exp), 9),
            "request_id": _ids("Q", np.arange(n_exp), 9),
            "ts": _to_ts(e_t, origin),
            "target": "agent",
            "agent_id": agent_ids[e_agent],
            "customer_id": None,
            "experiment": config.experiment,
            "variant": variant,
            "snapshot": np.char.add("snap-", variant.astype(str)).astype(object),
            "model_version": (arm + 1).astype(str).astype(object),
            "sku_ids": [list(row) for row in sku_ids[e_skus]],
            "positions": [positions] * n_exp,
            "source": "model",
        }
    )
    s_agent, s_t, s_sku = events.shares
    order = np.argsort(s_t, kind="stable")
    shares = pd.DataFrame(
        {
            "share_id": _ids("SH", np.arange(len(order)), 9),
            "ts": _to_ts(s_t[order], origin),
            "agent_id": agent_ids[s_agent[order]],
            "sku_id": sku_ids[s_sku[order]],
        }
    )
    p = events.purchases
    order = np.argsort(p["t"], kind="stable")
    p = {k: v[order] for k, v in p.items()}
    n_lines = len(order)
    purchase_ids = _ids("P", np.arange(n_lines), 10)
    purchases = pd.DataFrame(
        {
            "purchase_id": purchase_ids,
            "order_id": _ids("O", np.arange(n_lines), 10),
            "ts": _to_ts(p["t"], origin),
            "customer_id": customer_ids[p["customer"]],
            "agent_id": agent_ids[p["agent"]],
            "sku_id": sku_ids[p["sku"]],
            "qty": p["qty"].astype(np.int64),
            "unit_price": world.price[p["sku"]].astype(np.float64),
        }
    )
    ret = np.nonzero(p["returned"])[0]
    ret = ret[np.argsort(p["return_t"][ret], kind="stable")]
    returns = pd.DataFrame(
        {
            "return_id": _ids("R", np.arange(len(ret)), 9),
            "ts": _to_ts(p["return_t"][ret], origin),
            "purchase_id": purchase_ids[ret],
            "qty": p["qty"][ret].astype(np.int64),
        }
    )
    c_agent, c_t, c_customer, c_sku = events.clicks
    order = np.argsort(c_t, kind="stable")
    clicks = pd.DataFrame(
        {
            "event_id": _ids("K", np.arange(len(order)), 9),
            "ts": _to_ts(c_t[order], origin),
            "agent_id": agent_ids[c_agent[order]],
            "customer_id": customer_ids[c_customer[order]],
            "sku_id": sku_ids[c_sku[order]],
            "request_id": None,
        }
    )
    customers = pd.DataFrame(
        {
            "customer_id": customer_ids,
            "agent_id": agent_ids[world.customer_agent],
            "joined_at": _to_ts(np.full(len(customer_ids), -30.0), origin),
        }
    )
    return ExperimentData(
        exposures=exposures,
        clicks=clicks,
        shares=shares,
        purchases=purchases,
        returns=returns,
        customers=customers,
    )


@dataclass
class SimulatedExperiment:
    """One simulated experiment: its configuration, the logs, and the truth per agent."""

    config: ABSimConfig
    seed: int
    experiment: Experiment  # as configured (the report's SRM checks against these weights)
    world: World
    data: ExperimentData
    truth: pd.DataFrame  # per agent: expected outcomes in every arm (sim_truth.agent_truth)


def streams(seed: int) -> Streams:
    """One independent random stream per part of the simulation, all from `seed`."""
    return {name: np.random.default_rng([seed, 6, i]) for i, name in enumerate(STREAMS)}


def simulate_arrays(
    config: ABSimConfig, seed: int, *, sales_only: bool = False
) -> tuple[World, Events]:
    """The world and its index-level events for a seed (no frames: the fast path starts here)."""
    rngs = streams(seed)
    world = build_world(config, seed, rngs["world"])
    return world, simulate_events(config, world, rngs, sales_only=sales_only)


def simulate_experiment(config: ABSimConfig, seed: int) -> SimulatedExperiment:
    """Simulate one experiment in memory (deterministic for a configuration and seed)."""
    world, events = simulate_arrays(config, seed)
    return SimulatedExperiment(
        config=config,
        seed=seed,
        experiment=experiment_config(config, seed),
        world=world,
        data=to_experiment_data(config, world, events),
        truth=agent_truth(config, world),
    )
