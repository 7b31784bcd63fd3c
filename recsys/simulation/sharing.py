"""What agents share: their own taste and audience, SKUs that sold for them, the platform's push.

A share policy fills the day's share slots (one row per share an agent makes that day) with SKU
indices. The default policy is the agents' own behaviour; `PicksSharePolicy` lets a closed-loop
experiment make agents share from the picks a recommender served them instead.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from recsys.simulation.dynamics import on_sale, sold_in
from recsys.simulation.state import SimState
from recsys.simulation.world import World


@dataclass(frozen=True)
class ShareRequest:
    """The share slots of one day: `agents[i]` makes share i; `push` is the platform's list."""

    world: World
    state: SimState
    day: int
    agents: np.ndarray  # agent index per slot
    push: np.ndarray  # SKU indices the platform pushes today
    available: np.ndarray  # SKU indices on sale today
    rng: np.random.Generator


SharePolicy = Callable[[ShareRequest], np.ndarray]
"""Maps a `ShareRequest` to one SKU index per slot (-1 = she shares nothing in that slot)."""


def push_list(world: World, state: SimState, day: int, rng: np.random.Generator) -> np.ndarray:
    """The platform's top-down list of the day: new launches, hot sellers and overstock."""
    cfg = world.config
    available = np.flatnonzero(on_sale(world, np.arange(len(world.skus)), day))
    if len(available) == 0:
        return available
    sales = state.sales_ring.sum(axis=0)[available]
    new = available[world.skus.launch_day[available] > day - cfg.new_sku_days]
    hot = available[np.argsort(-sales, kind="stable")[: max(cfg.push_size, 1)]]
    slow = available[sales <= np.quantile(sales, cfg.overstock_quantile)]
    counts = np.round(np.asarray(cfg.push_mix) * cfg.push_size).astype(int)
    picks = [
        rng.choice(pool, size=min(k, len(pool)), replace=False)
        for pool, k in zip((new, hot, slow), counts, strict=True)
        if len(pool)
    ]
    return np.unique(np.concatenate(picks)) if picks else available[:0]


def agent_scores(world: World, agent: np.ndarray, sku: np.ndarray) -> np.ndarray:
    """How well agents think SKUs suit their groups: perceived taste, appeal, price band.

    `agent` is (n,), `sku` is (n, k): row i scores agent i's k candidates.
    """
    cfg = world.config
    u = world.agents.perceived_taste[agent][:, None, :]  # (n, 1, dim)
    v = world.skus.latent[sku]  # (n, k, dim)
    taste = (v * u).sum(axis=-1) * np.float32(cfg.taste_strength / np.sqrt(cfg.latent_dim))
    band = world.agents.price_band[agent][:, None]
    gap = (world.skus.log_rel_price[sku] - band) / np.float32(cfg.price_tolerance)
    return taste + world.skus.appeal[sku] - 0.5 * gap**2


def choose_best(
    world: World, slot_agent: np.ndarray, candidates: np.ndarray, rng: np.random.Generator
) -> np.ndarray:
    """Per slot (row), the candidate SKU she rates best, with Gumbel noise.

    `candidates` is (n_slots, n_candidates) of SKU indices, -1 = padding. Returns one SKU index
    per slot, -1 where no candidate is sold in her region.
    """
    n, width = candidates.shape
    if n == 0 or width == 0:
        return np.full(n, -1, dtype=np.int64)
    sku = np.maximum(candidates, 0)
    noise = rng.gumbel(size=n * width).astype(np.float32).reshape(n, width)
    score = agent_scores(world, slot_agent, sku) + world.config.share_noise * noise
    region = world.agents.region[slot_agent][:, None]
    score[(candidates < 0) | ~sold_in(world, sku, region)] = -np.inf
    best = np.argmax(score, axis=1)
    rows = np.arange(n)
    return np.where(np.isfinite(score[rows, best]), candidates[rows, best], -1).astype(np.int64)


def choose_by_taste(request: ShareRequest, slots: np.ndarray) -> np.ndarray:
    """Her own pick for each slot: a category she likes, then the best of a few SKUs in it."""
    world, rng = request.world, request.rng
    cfg, skus = world.config, world.skus
    available = request.available
    agent = request.agents[slots]
    if len(slots) == 0 or len(available) == 0:
        return np.full(len(slots), -1, dtype=np.int64)
    n_cat = cfg.n_categories
    by_cat = available[np.argsort(skus.category[available], kind="stable")]
    counts = np.bincount(skus.category[available], minlength=n_cat)
    offsets = np.concatenate([[0], np.cumsum(counts)])
    present = counts > 0
    centroid = np.zeros((n_cat, cfg.latent_dim), dtype=np.float32)
    sums = np.add.reduceat(skus.latent[by_cat], offsets[:-1][present], axis=0)
    centroid[present] = sums / counts[present][:, None]
    scale = cfg.taste_strength / np.sqrt(cfg.latent_dim)
    logits = (
        world.agents.perceived_taste[agent] @ centroid.T * scale
        + world.regions.category_pref[world.agents.region[agent]]
        + np.log(np.maximum(counts, 1e-9))
    )
    logits[:, ~present] = -np.inf
    category = np.argmax(logits + rng.gumbel(size=logits.shape), axis=1)

    k = cfg.candidates_per_share
    draws = offsets[category][:, None] + (
        rng.random((len(slots), k)) * counts[category][:, None]
    ).astype(np.int64)
    return choose_best(world, agent, by_cat[draws], rng)


def default_share_policy(request: ShareRequest) -> np.ndarray:
    """The agents' own behaviour: push list, re-sharing past sellers, or her taste."""
    world, state, rng = request.world, request.state, request.rng
    agents = world.agents
    n = len(request.agents)
    a = request.agents
    out = np.full(n, -1, dtype=np.int64)
    u = rng.random(n)
    push_p = agents.push_rate[a]
    from_push = (u < push_p) & (len(request.push) > 0)
    from_hits = ~from_push & (u < push_p + agents.repeat_rate[a])

    if from_push.any():
        idx = np.flatnonzero(from_push)
        sku = request.push[rng.integers(0, len(request.push), len(idx))]
        ok = sold_in(world, sku, agents.region[a[idx]])
        out[idx[ok]] = sku[ok]
    if from_hits.any():
        idx = np.flatnonzero(from_hits)
        sku = state.hits[a[idx], rng.integers(0, state.hits.shape[1], len(idx))].astype(np.int64)
        ok = sku >= 0
        ok[ok] = on_sale(world, sku[ok], request.day)
        out[idx[ok]] = sku[ok]
    rest = np.flatnonzero(out < 0)
    out[rest] = choose_by_taste(request, rest)
    return out


class PicksSharePolicy:
    """Agents share from SKUs a recommender served them, choosing among them by their own taste.

    `picks` is a sparse agent x SKU matrix (any nonzero = served). With probability `adoption`
    a slot is filled from her picks (if any is on sale and sold in her region); otherwise, and for
    agents without picks, `fallback` decides.
    """

    def __init__(
        self,
        picks: sp.csr_matrix,
        adoption: float = 0.7,
        fallback: SharePolicy = default_share_policy,
    ) -> None:
        if not 0.0 <= adoption <= 1.0:
            raise ValueError(f"adoption must be in [0, 1], got {adoption}")
        self.picks = sp.csr_matrix(picks)
        self.adoption = adoption
        self.fallback = fallback

    def __call__(self, request: ShareRequest) -> np.ndarray:
        """Fill the slots from the picks, falling back to the agents' own choice."""
        expected = (len(request.world.agents), len(request.world.skus))
        if self.picks.shape != expected:
            raise ValueError(f"picks must be agents x SKUs {expected}, got {self.picks.shape}")
        rng = request.rng
        indptr, indices = self.picks.indptr, self.picks.indices
        a = request.agents
        n_picks = indptr[a + 1] - indptr[a]
        slots = np.flatnonzero((rng.random(len(a)) < self.adoption) & (n_picks > 0))
        width = int(n_picks[slots].max()) if len(slots) else 0
        # her picks as a padded (slots x width) matrix; picks not on sale become padding
        pos = np.arange(width)[None, :]
        valid = pos < n_picks[slots][:, None]
        flat = np.minimum(indptr[a[slots]][:, None] + pos, max(len(indices) - 1, 0))
        candidates = np.where(valid, indices[flat] if len(indices) else -1, -1).astype(np.int64)
        live = on_sale(request.world, np.maximum(candidates, 0), request.day)
        candidates[~live] = -1
        chosen = choose_best(request.world, a[slots], candidates, rng)
        out = self.fallback(request)
        taken = chosen >= 0
        out[slots[taken]] = chosen[taken]
        return out
