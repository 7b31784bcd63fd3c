"""The mutable state a simulation carries from one day to the next."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from recsys.simulation.world import World


class PendingQueue:
    """Rows decided on one day that happen later (storefront buys, repurchases, returns)."""

    def __init__(self) -> None:
        self._by_day: dict[int, list[dict[str, np.ndarray]]] = {}

    def push(self, days: np.ndarray, **columns: np.ndarray) -> None:
        """Queue aligned column arrays, each row for the day in `days`."""
        if len(days) == 0:
            return
        order = np.argsort(days, kind="stable")
        days = days[order]
        cuts = np.flatnonzero(np.diff(days)) + 1
        for lo, hi in zip(
            np.concatenate([[0], cuts]), np.concatenate([cuts, [len(days)]]), strict=True
        ):
            rows = order[lo:hi]
            self._by_day.setdefault(int(days[lo]), []).append(
                {k: v[rows] for k, v in columns.items()}
            )

    def pop(self, day: int) -> dict[str, np.ndarray] | None:
        """All rows queued for `day` (concatenated, in queueing order), or None."""
        parts = self._by_day.pop(day, None)
        if not parts:
            return None
        return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}

    def __len__(self) -> int:
        return sum(len(next(iter(p.values()))) for parts in self._by_day.values() for p in parts)


@dataclass
class SimState:
    """Counters, queues and rolling windows that carry over between days."""

    next_share: int
    next_purchase: int
    next_order: int
    next_return: int
    purchase_queue: PendingQueue
    return_queue: PendingQueue
    hits: np.ndarray  # (n_agents, hits_per_agent) SKU index of SKUs that sold for her; -1 = empty
    hits_next: np.ndarray  # (n_agents,) next slot to overwrite
    sales_ring: np.ndarray  # (hot_window_days, n_skus) units sold per day
    gmv_ring: np.ndarray  # (tier_window_days, n_agents) GMV credited per day
    shares_ring: np.ndarray  # (tier_window_days, n_agents) shares per day
    owned: np.ndarray  # (n_customers, owned_memory) non-consumable SKUs she bought; -1 = empty
    owned_next: np.ndarray  # (n_customers,) next slot to overwrite
    tier: np.ndarray  # (n_agents,) int8, current tier
    tier_log: list[tuple[int, np.ndarray, np.ndarray]] = field(default_factory=list)

    @classmethod
    def initial(cls, world: World) -> SimState:
        """The state at the start of the period."""
        n_agents, n_skus = len(world.agents), len(world.skus)
        state = cls(
            next_share=1,
            next_purchase=1,
            next_order=1,
            next_return=1,
            purchase_queue=PendingQueue(),
            return_queue=PendingQueue(),
            hits=np.full((n_agents, world.config.hits_per_agent), -1, dtype=np.int32),
            hits_next=np.zeros(n_agents, dtype=np.int64),
            sales_ring=np.zeros((world.config.hot_window_days, n_skus), dtype=np.int32),
            gmv_ring=np.zeros((world.config.tier_window_days, n_agents), dtype=np.float32),
            shares_ring=np.zeros((world.config.tier_window_days, n_agents), dtype=np.int32),
            owned=np.full((len(world.customers), world.config.owned_memory), -1, dtype=np.int32),
            owned_next=np.zeros(len(world.customers), dtype=np.int64),
            tier=world.agents.initial_tier.copy(),
        )
        state.tier_log.append((0, state.tier.copy(), np.zeros(n_agents, dtype=np.float32)))
        return state

    def record_hits(self, agent: np.ndarray, sku: np.ndarray) -> None:
        """Remember SKUs that sold for agents (newest overwrite oldest)."""
        _ring_insert(self.hits, self.hits_next, agent, sku)

    def record_owned(self, customer: np.ndarray, sku: np.ndarray) -> None:
        """Remember non-consumable SKUs customers bought (newest overwrite oldest)."""
        _ring_insert(self.owned, self.owned_next, customer, sku)

    def owns(self, customer: np.ndarray, sku: np.ndarray) -> np.ndarray:
        """Whether each customer remembers owning the SKU (aligned arrays)."""
        if len(customer) == 0:
            return np.zeros(0, dtype=bool)
        return (self.owned[customer] == sku[:, None]).any(axis=1)


def _ring_insert(
    ring: np.ndarray, next_slot: np.ndarray, owner: np.ndarray, value: np.ndarray
) -> None:
    """Insert (owner, value) pairs into per-owner ring buffers, skipping values already held."""
    if len(owner) == 0:
        return
    pairs = np.unique(owner.astype(np.int64) * (1 << 32) + value)
    owner, value = pairs >> 32, (pairs & 0xFFFFFFFF).astype(ring.dtype)
    known = (ring[owner] == value[:, None]).any(axis=1)
    owner, value = owner[~known], value[~known]
    # rank of each new value within its owner (pairs are sorted by owner), to give it its own slot
    rank = np.arange(len(owner)) - np.searchsorted(owner, owner, side="left")
    ring[owner, (next_slot[owner] + rank) % ring.shape[1]] = value
    np.add.at(next_slot, owner, 1)
