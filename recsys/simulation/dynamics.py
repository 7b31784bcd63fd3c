"""The purchase, return and repurchase model, shared by the day step and the ground truth.

Every function takes aligned arrays of customer and SKU indices, so the simulator (sampling
events) and `truth` (taking expectations) evaluate exactly the same probabilities.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from recsys.simulation.config import SimConfig
from recsys.simulation.world import World

# return causes, in the column order of `return_hazards`
CAUSE_QUALITY, CAUSE_MISMATCH, CAUSE_RANDOM, CAUSE_INCIDENT = 0, 1, 2, 3
MAX_HAZARD = 0.95


@dataclass(frozen=True)
class CategoryArrays:
    """Per-category traits as arrays indexed by category index."""

    base_rate: np.ndarray
    mix: np.ndarray  # (n_categories, 3): quality, mismatch, random
    damaged_share: np.ndarray
    fit_share: np.ndarray
    delay_days: np.ndarray
    consumable: np.ndarray  # bool
    cycle_days: np.ndarray
    extra_qty: np.ndarray
    price_median: np.ndarray


@lru_cache(maxsize=8)
def category_arrays(config: SimConfig) -> CategoryArrays:
    """The category table of a configuration as arrays."""
    cats = config.categories
    return CategoryArrays(
        base_rate=np.array([c.base_return_rate for c in cats], dtype=np.float32),
        mix=np.array([c.return_mix for c in cats], dtype=np.float32),
        damaged_share=np.array([c.damaged_share for c in cats]),
        fit_share=np.array([c.fit_share for c in cats]),
        delay_days=np.array([c.return_delay_days for c in cats]),
        consumable=np.array([c.consumable for c in cats]),
        cycle_days=np.array([c.cycle_days for c in cats]),
        extra_qty=np.array([c.extra_qty for c in cats]),
        price_median=np.array([c.price_median for c in cats]),
    )


def sigmoid(x: np.ndarray) -> np.ndarray:
    """Logistic function."""
    return 1.0 / (1.0 + np.exp(-x))


@dataclass(frozen=True)
class PairTerms:
    """Taste affinity and price gap of aligned (customer, SKU) pairs."""

    affinity: np.ndarray  # taste_strength * <customer taste, SKU latent> / sqrt(dim)
    price_gap: np.ndarray  # (SKU log relative price - her preferred one) / price_tolerance


def pair_terms(world: World, cust: np.ndarray, sku: np.ndarray) -> PairTerms:
    """Affinity and price gap of aligned (customer, SKU) index arrays."""
    cfg = world.config
    u = world.customers.taste[cust]
    v = world.skus.latent[sku]
    scale = cfg.taste_strength / np.sqrt(cfg.latent_dim)
    affinity = np.einsum("ij,ij->i", u, v) * np.float32(scale)
    gap = (world.skus.log_rel_price[sku] - world.customers.price_ref[cust]) / cfg.price_tolerance
    return PairTerms(affinity=affinity, price_gap=gap.astype(np.float32))


def pair_terms_grid(world: World, cust: np.ndarray, sku: np.ndarray) -> PairTerms:
    """Affinity and price gap of every (customer, SKU) combination, shape (len(cust), len(sku)).

    Pass `cust[:, None]` and `sku[None, :]` to the other functions of this module to broadcast
    them over the same grid.
    """
    cfg = world.config
    scale = np.float32(cfg.taste_strength / np.sqrt(cfg.latent_dim))
    affinity = (world.customers.taste[cust] @ world.skus.latent[sku].T) * scale
    gap = world.skus.log_rel_price[sku][None, :] - world.customers.price_ref[cust][:, None]
    return PairTerms(affinity=affinity, price_gap=(gap / np.float32(cfg.price_tolerance)))


def buy_probability(
    world: World, cust: np.ndarray, sku: np.ndarray, terms: PairTerms | None = None
) -> np.ndarray:
    """Chance she buys a SKU she sees shared: taste, appeal, region and price fit."""
    terms = terms or pair_terms(world, cust, sku)
    region_pref = world.regions.category_pref[
        world.customers.region[cust], world.skus.category[sku]
    ]
    logit = (
        world.config.buy_intercept
        + terms.affinity
        + world.skus.appeal[sku]
        + region_pref
        - 0.5 * world.customers.price_sensitivity[cust] * terms.price_gap**2
    )
    return sigmoid(logit)


def raw_mismatch(world: World, terms: PairTerms) -> np.ndarray:
    """Taste and price mismatch before standardising (higher = worse fit)."""
    return -terms.affinity + world.config.price_gap_weight * np.abs(terms.price_gap)


def mismatch_z(world: World, terms: PairTerms) -> np.ndarray:
    """Mismatch in standard deviations of what customers actually buy."""
    return (raw_mismatch(world, terms) - world.mismatch_mu) / world.mismatch_sd


def hazard_parts(
    world: World,
    cust: np.ndarray,
    sku: np.ndarray,
    day: np.ndarray | float,
    terms: PairTerms,
    z: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per-cause return probabilities (quality, mismatch, random, incident), broadcastable.

    Quality and mismatch act as log-hazards centred so that, averaged over what is bought, each
    cause contributes its configured share of the category's base rate; an incident adds its rate
    to lines bought on or after its onset day.
    """
    cfg, cats, skus = world.config, category_arrays(world.config), world.skus
    cat = skus.category[sku]
    base = cats.base_rate[cat]
    bq, bm = cfg.quality_effect, cfg.mismatch_effect
    quality = base * cats.mix[cat, 0] * np.exp(np.float32(-bq) * skus.quality[sku] - bq**2 / 2)
    z = mismatch_z(world, terms) if z is None else z
    mismatch = base * cats.mix[cat, 1] * np.exp(np.float32(bm) * z - np.float32(bm**2 / 2))
    random = base * cats.mix[cat, 2]
    incident = np.where(skus.incident_onset[sku] <= day, skus.incident_rate[sku], np.float32(0))
    clip = (0.0, MAX_HAZARD)
    return (
        np.clip(quality, *clip),
        np.clip(mismatch, *clip),
        np.clip(random, *clip),
        np.clip(incident, *clip),
    )


def return_hazards(
    world: World, cust: np.ndarray, sku: np.ndarray, day: np.ndarray | float, terms: PairTerms
) -> np.ndarray:
    """Per-cause return probabilities of aligned purchase lines, shape (n, 4) in CAUSE_* order."""
    parts = np.broadcast_arrays(*hazard_parts(world, cust, sku, day, terms))
    return np.stack(parts, axis=-1)


def return_probability(
    world: World,
    cust: np.ndarray,
    sku: np.ndarray,
    day: np.ndarray | float,
    terms: PairTerms,
    z: np.ndarray | None = None,
) -> np.ndarray:
    """Chance a line is returned for any cause (causes act independently), broadcastable."""
    kept = np.ones(1, dtype=np.float32)
    for part in hazard_parts(world, cust, sku, day, terms, z):
        kept = kept * (1.0 - part)
    return 1.0 - kept


def rebuy_probability(
    world: World, cust: np.ndarray, terms: PairTerms, z: np.ndarray | None = None
) -> np.ndarray:
    """Chance she buys a kept consumable again around its cycle: loyalty and fit."""
    z = mismatch_z(world, terms) if z is None else z
    logit = world.config.rebuy_intercept + world.customers.loyalty[cust] - 0.5 * np.clip(z, -3, 3)
    return sigmoid(logit)


def on_sale(world: World, sku: np.ndarray, day: float) -> np.ndarray:
    """Whether SKUs are on sale on `day` (launched, not yet discontinued or suspended)."""
    return (world.skus.launch_day[sku] <= day) & (world.skus.end_day[sku] > day)


def sold_in(world: World, sku: np.ndarray, region: np.ndarray) -> np.ndarray:
    """Whether SKUs are sold in the given regions (aligned arrays)."""
    return (world.skus.region_mask[sku] >> region.astype(np.int32)) & 1 == 1


def expected_qty(world: World, sku: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean units of a line and mean units sent back if it is returned, per SKU (broadcastable)."""
    cfg = world.config
    mean_qty, mean_returned = _qty_moments(
        cfg.max_qty, category_arrays(cfg).extra_qty, cfg.full_return_share
    )
    cat = world.skus.category[sku]
    return mean_qty[cat], mean_returned[cat]


def _qty_moments(
    max_qty: int, extra: np.ndarray, full_share: float
) -> tuple[np.ndarray, np.ndarray]:
    """Mean qty and mean returned qty under qty = min(1 + Poisson(extra), max_qty)."""
    q = np.arange(1, max_qty + 1)
    k = q - 1
    # Poisson pmf of k extra units; the tail is folded into max_qty
    log_fact = np.concatenate([[0.0], np.cumsum(np.log(np.arange(1, max_qty)))])
    lam = np.maximum(np.asarray(extra, dtype=np.float64), 1e-12)[:, None]
    pmf = np.exp(k * np.log(lam) - lam - log_fact[k])
    pmf[:, -1] += 1.0 - pmf.sum(axis=1)
    mean_qty = pmf @ q
    returned = np.where(q == 1, 1.0, full_share * q + (1 - full_share) * (q + 1) / 2)
    return mean_qty, pmf @ returned
