"""Every knob of the simulator in one dataclass, with size presets and JSON round-trip."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from typing import Any, Literal

from recsys.simulation.categories import DEFAULT_CATEGORIES, CategorySpec

Scale = Literal["tiny", "small", "medium", "large"]
SCALES: tuple[str, ...] = ("tiny", "small", "medium", "large")

DEFAULT_REGIONS: tuple[str, ...] = (
    "north",
    "northeast",
    "east",
    "south",
    "central",
    "southwest",
    "northwest",
    "coastal",
)


@dataclass(frozen=True)
class SimConfig:
    """Parameters of a simulated social-commerce world and its event logs.

    Use `SimConfig.preset(scale, **overrides)`; sizes are tuned so that `tiny`, `small`, `medium`
    and `large` yield roughly 20k, 300k, 5M and 50M purchase lines.
    """

    # period: a fixed start (not relative to today) so a seed always gives the same bytes
    start: str = "2025-01-01"
    n_days: int = 150
    latent_dim: int = 16
    regions: tuple[str, ...] = DEFAULT_REGIONS
    categories: tuple[CategorySpec, ...] = DEFAULT_CATEGORIES

    # catalogue
    n_skus: int = 3000
    prelaunched_share: float = 0.6  # SKUs already on sale at the start; the rest launch later
    brands_per_category: int = 12
    series_per_brand: int = 3
    no_series_share: float = 0.3
    sigma_category: float = 1.0  # latent spread of category centroids (per dimension)
    sigma_series: float = 0.5
    sigma_brand: float = 0.4
    sigma_sku: float = 0.5
    sigma_appeal: float = 0.6  # SKU-level popularity every customer feels
    sigma_brand_quality: float = 0.5  # brands differ in quality, so `brand` hints at returns
    sigma_sku_quality: float = 0.85
    sigma_brand_price: float = 0.25
    sigma_series_price: float = 0.15
    quality_price_effect: float = 0.1  # better products cost a little more (log price per unit)
    sku_history_days: float = 365.0  # SKUs on sale at the start launched within this many days
    min_days_on_sale: float = 30.0  # a SKU sells this long before it can be discontinued
    discontinued_share: float = 0.05
    suspended_share: float = 0.01
    incident_share: float = 0.004  # SKUs with a quality incident (at least `min_incidents`)
    min_incidents: int = 3
    incident_return_rate: tuple[float, float] = (0.35, 0.6)  # extra return probability after onset
    incident_onset_window: tuple[float, float] = (0.25, 0.7)  # onset as a fraction of the period
    incident_appeal_quantile: float = 0.75  # incidents hit SKUs above this appeal quantile
    incident_min_age_days: float = 14.0  # ... launched this long before the window opens

    # agents and customers
    n_agents: int = 900
    customers_per_agent_median: float = 7.0
    customers_per_agent_sigma: float = 1.25  # lognormal: many with a handful, a few with hundreds
    max_customers_per_agent: int = 1500
    region_concentration: float = 5.0  # Dirichlet concentration of region sizes
    agent_history_days: float = 730.0  # agents present at the start joined within this many days
    customer_history_days: float = 365.0
    new_agent_group_factor: float = 0.5  # new agents are still building their group
    group_fill_days: float = 15.0  # mean days after a new agent joins until a member joins
    share_rate_size_elasticity: float = 0.25  # big agents share more: rate ~ size ** elasticity
    sigma_share_rate: float = 0.3
    new_agent_share: float = 0.25  # agents who join during the period
    new_agent_join_window: float = 0.85  # ... within this first fraction of it
    # of them, the share who bring a group that already buys on the platform (a customer who
    # becomes an agent and takes her circle along): her customers bought through an established
    # agent of her region (her host) until she joined; 0 = every new agent's group is new
    inherited_group_share: float = 0.0
    new_customer_share: float = 0.15  # customers of established agents who join during the period
    other_region_share: float = 0.05  # customers living outside their agent's region
    sigma_region_taste: float = 0.4
    sigma_region_category: float = 0.5  # regions prefer some categories (logit offset)
    sigma_agent_taste: float = 1.0
    sigma_region_price: float = 0.15
    homophily: float = 0.75  # weight of the agent's taste in her customers' taste
    sigma_price_band: float = 0.35  # agents' price band (log price relative to category median)
    sigma_customer_price: float = 0.2
    sigma_price_sensitivity: float = 0.4  # lognormal spread of customers' price sensitivity
    price_tolerance: float = 0.6  # log-price distance at which the price penalty is felt

    # purchase model
    buy_intercept: float = -3.3
    buy_delay_hours: float = 3.0  # mean time from seeing a share to buying
    # activity by hour of day UTC (evenings in UTC+8 dominate group chats); need not sum to 1
    hourly_profile: tuple[float, ...] = (
        1, 1, 1, 1, 1, 1, 1, 2, 3, 4, 4, 5, 6, 7, 5, 4, 3, 3, 2, 2, 2, 1, 1, 1,
    )  # fmt: skip
    taste_strength: float = 1.0
    view_rate: tuple[float, float] = (2.0, 3.0)  # Beta: chance a customer sees a group share
    storefront_rate: tuple[float, float] = (1.5, 6.0)  # Beta: later buying from the storefront
    storefront_p_day: float = 0.25  # geometric daily chance of the later storefront purchase
    storefront_max_days: int = 14
    moments_share: float = 0.2  # shares posted to moments (no audience count, less reach)
    moments_reach: float = 0.6
    forward_rate: float = 0.1  # extra viewers outside her group, per group member (forwarding)
    forward_view: float = 0.5
    discount_levels: tuple[float, ...] = (1.0, 0.9, 0.8)
    discount_probs: tuple[float, ...] = (0.85, 0.1, 0.05)
    max_qty: int = 10

    # repurchases of consumables
    rebuy_intercept: float = -0.8
    sigma_loyalty: float = 0.5
    cycle_sigma: float = 0.3  # lognormal spread of the time to the next purchase
    # a customer does not buy a non-consumable she owns; she remembers her last this many
    owned_memory: int = 16

    # returns
    quality_effect: float = 0.8  # log-hazard per unit of (negative) latent quality
    mismatch_effect: float = 0.8  # log-hazard per standard deviation of taste/price mismatch
    price_gap_weight: float = 0.8  # weight of the price gap against the taste gap in mismatch
    return_delay_sigma: float = 0.6
    min_return_delay_days: float = 0.3
    full_return_share: float = 0.6  # a multi-unit line comes back whole, else 1..qty units
    changed_mind_share: float = 0.75  # random returns reported changed_mind, else other
    incident_quality_share: float = 0.7  # incident returns reported quality, else not_as_described

    # sharing
    active_rate: tuple[float, float] = (3.0, 2.0)  # Beta: chance an agent shares on a day
    shares_per_active_day: float = 1.2  # mean extra shares (Poisson) of an active agent
    push_rate: tuple[float, float] = (2.0, 4.0)  # Beta: shares taken from the platform's push list
    repeat_rate: tuple[float, float] = (2.0, 5.0)  # Beta: shares of SKUs that sold for her before
    push_size: int = 20
    push_mix: tuple[float, float, float] = (0.4, 0.3, 0.3)  # new, hot, overstock
    new_sku_days: int = 14
    hot_window_days: int = 7  # best sellers of the push list: units sold in this window
    overstock_quantile: float = 0.25  # slow sellers of the push list: sales below this quantile
    candidates_per_share: int = 24  # SKUs an agent looks at before choosing one to share
    share_noise: float = 1.0  # Gumbel noise of her choice: she matches her audience imperfectly
    audience_awareness: float = 0.5  # weight of her customers' mean taste in her own choice
    hits_per_agent: int = 8
    weekend_boost: float = 1.15

    # tiers, recomputed monthly from contribution (GMV + effort), one step at a time
    tier_shares: tuple[float, ...] = (0.40, 0.30, 0.17, 0.09, 0.04)  # tiers 1..5 targets
    share_effort_value: float = 20.0  # RMB of contribution credited per share
    tier_window_days: int = 30

    # output
    chunk_rows: int = 1_000_000  # event rows per written part file (bounds memory)

    def __post_init__(self) -> None:
        positive = (
            "n_days",
            "latent_dim",
            "n_skus",
            "n_agents",
            "push_size",
            "chunk_rows",
            "hot_window_days",
            "tier_window_days",
            "owned_memory",
            "hits_per_agent",
        )
        for name in positive:
            value = getattr(self, name)
            if value < 1:
                raise ValueError(f"{name} must be >= 1, got {value}")
        shares = (
            "prelaunched_share",
            "no_series_share",
            "discontinued_share",
            "suspended_share",
            "incident_share",
            "new_agent_share",
            "new_agent_join_window",
            "inherited_group_share",
            "new_customer_share",
            "other_region_share",
            "homophily",
            "moments_share",
            "audience_awareness",
            "full_return_share",
            "changed_mind_share",
            "incident_quality_share",
            "incident_appeal_quantile",
            "overstock_quantile",
        )
        for name in shares:
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {value}")
        if not 1 <= len(self.regions) <= 31:  # regions are kept as bits of an int32 mask
            raise ValueError(f"regions must hold 1..31 names, got {len(self.regions)}")
        if len(self.tier_shares) != 5 or abs(sum(self.tier_shares) - 1.0) > 1e-6:
            raise ValueError(f"tier_shares must be 5 shares summing to 1, got {self.tier_shares}")
        if len(self.discount_levels) != len(self.discount_probs):
            raise ValueError(
                f"discount_levels and discount_probs must have the same length, got "
                f"{len(self.discount_levels)} and {len(self.discount_probs)}"
            )
        if len(self.hourly_profile) != 24 or min(self.hourly_profile) < 0:
            raise ValueError(
                f"hourly_profile must be 24 non-negative weights, got {len(self.hourly_profile)}"
            )
        if self.customers_per_agent_median < 1:
            raise ValueError(
                f"customers_per_agent_median must be >= 1, got {self.customers_per_agent_median}"
            )

    @classmethod
    def preset(cls, scale: str, **overrides: Any) -> SimConfig:
        """The configuration of a named size (`tiny`, `small`, `medium`, `large`) with overrides.

        Raises
        ------
        ValueError
            If `scale` is unknown or an override names no field.
        """
        if scale not in PRESETS:
            raise ValueError(f"scale must be one of {', '.join(SCALES)}, got {scale!r}")
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(overrides) - known)
        if unknown:
            raise ValueError(f"unknown SimConfig field(s): {', '.join(unknown)}")
        return cls(**{**PRESETS[scale], **overrides})

    def replace(self, **changes: Any) -> SimConfig:
        """A copy with some fields changed."""
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready dict of every field (categories as a list of dicts)."""
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        """Stable JSON text of the configuration (sorted keys, so same config, same bytes)."""
        return json.dumps(self.to_dict(), sort_keys=True, indent=2)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SimConfig:
        """Rebuild a configuration written by `to_dict` (lists become tuples again)."""
        values: dict[str, Any] = {}
        for f in dataclasses.fields(cls):
            if f.name not in data:
                continue
            value = data[f.name]
            if f.name == "categories":
                value = tuple(
                    CategorySpec(
                        **{
                            **c,
                            "return_band": tuple(c["return_band"]),
                            "return_mix": tuple(c["return_mix"]),
                        }
                    )
                    for c in value
                )
            elif isinstance(value, list):
                value = tuple(value)
            values[f.name] = value
        return cls(**values)

    @property
    def n_categories(self) -> int:
        """Number of product categories."""
        return len(self.categories)

    @property
    def n_regions(self) -> int:
        """Number of regions."""
        return len(self.regions)


# Sizes tuned to roughly 20k / 300k / 5M / 50M purchase lines (see docs/benchmarks-simulator.md).
PRESETS: dict[str, dict[str, Any]] = {
    "tiny": {
        "n_days": 90,
        "n_skus": 600,
        "n_agents": 130,
        "max_customers_per_agent": 150,
        "push_size": 8,
    },
    "small": {"n_days": 150, "n_skus": 3000, "n_agents": 900},
    "medium": {"n_days": 240, "n_skus": 15000, "n_agents": 9500, "push_size": 40},
    "large": {"n_days": 365, "n_skus": 40000, "n_agents": 63000, "push_size": 60},
}
