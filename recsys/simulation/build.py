"""Building a world from a configuration and a seed."""

from __future__ import annotations

import dataclasses

import numpy as np

from recsys.simulation.catalog import build_skus
from recsys.simulation.config import SimConfig
from recsys.simulation.dynamics import buy_probability, pair_terms, raw_mismatch
from recsys.simulation.population import build_population, build_regions
from recsys.simulation.sharing import choose_best
from recsys.simulation.world import World

CALIBRATION_PAIRS = 20_000


def world_rng(seed: int) -> np.random.Generator:
    """The random generator the world of a run is drawn with."""
    return np.random.default_rng(np.random.SeedSequence([seed, 0]))


def build_world(config: SimConfig, rng: np.random.Generator, seed: int = 0) -> World:
    """Draw the latent world: catalogue, regions, agents and customers.

    `seed` is only recorded (in `World.seed` and the truth's config); all draws come from `rng`.
    """
    skus, text = build_skus(config, rng)
    regions = build_regions(config, rng)
    agents, customers = build_population(config, rng, regions)
    world = World(
        config=config,
        seed=seed,
        skus=skus,
        regions=regions,
        agents=agents,
        customers=customers,
        mismatch_mu=0.0,
        mismatch_sd=1.0,
        text=text,
    )
    mu, sd = _calibrate_mismatch(world, rng)
    return dataclasses.replace(world, mismatch_mu=mu, mismatch_sd=sd)


def _calibrate_mismatch(world: World, rng: np.random.Generator) -> tuple[float, float]:
    """Mean and sd of the raw mismatch over random pairs weighted by their chance of a purchase.

    Standardising mismatch against what is actually bought keeps each category's mismatch returns
    at their configured share of its base rate, whatever the taste scales are.
    """
    # pairs as shares make them: her agent picks the best of a few SKUs for her group
    cust = rng.integers(0, len(world.customers), CALIBRATION_PAIRS)
    k = world.config.candidates_per_share
    candidates = rng.integers(0, len(world.skus), (CALIBRATION_PAIRS, k))
    sku = choose_best(world, world.customers.agent[cust], candidates, rng)
    cust, sku = cust[sku >= 0], sku[sku >= 0]
    terms = pair_terms(world, cust, sku)
    weight = buy_probability(world, cust, sku, terms).astype(np.float64)
    raw = raw_mismatch(world, terms).astype(np.float64)
    mu = float(np.average(raw, weights=weight))
    sd = float(np.sqrt(np.average((raw - mu) ** 2, weights=weight)))
    return mu, max(sd, 1e-6)
