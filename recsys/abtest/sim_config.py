"""Settings of the fast A/B experiment generator: sizes, behaviour, and each arm's true effect."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

SCALES: dict[str, int] = {"tiny": 200, "small": 2000, "medium": 8000}
SCENARIOS: tuple[str, ...] = ("aa", "effect", "broken")


@dataclass(frozen=True)
class ArmEffect:
    """How one arm changes behaviour after an agent's first exposure (1.0 = no change)."""

    purchase_lift: float = 1.0  # multiplies purchase lines per day
    return_mult: float = 1.0  # multiplies each line's return probability
    share_mult: float = 1.0  # multiplies the chance a recommended SKU is shared
    click_mult: float = 1.0  # multiplies storefront clicks per day


# The documented known effect: B sells 8% more and draws 30% fewer returns (docs/ab-testing.md).
KNOWN_EFFECT = ArmEffect(purchase_lift=1.08, return_mult=0.7, share_mult=1.3, click_mult=1.1)


@dataclass(frozen=True)
class ABSimConfig:
    """A parametric social-commerce experiment whose true effects are known exactly.

    Agents differ in activity (lognormal), which drives their purchases before and during the
    experiment alike, so the pre-experiment period is an informative CUPED covariate.
    """

    n_agents: int = 2000
    n_skus: int = 300
    mean_customers: float = 8.0
    start: str = "2025-03-03"  # first day of the experiment (UTC)
    pre_days: int = 28  # days of history before it
    exp_days: int = 14  # days agents can first be exposed
    window_days: float = 7.0  # attribution window the truth is computed for
    return_days: float = 30.0  # returns counted up to this long after a purchase
    experiment: str = "sim-ab"
    variants: tuple[str, ...] = ("A", "B")
    weights: tuple[float, ...] = (0.5, 0.5)  # configured split (what the report checks)
    assign_weights: tuple[float, ...] | None = None  # actual split; differs when broken
    effects: tuple[ArmEffect, ...] = field(default_factory=tuple)  # per variant; none = no effect
    visit_rate: float = 0.3  # chance an average agent opens her storefront feed on a day
    feed_size: int = 10
    lines_per_day: float = 0.3  # purchase lines per average agent and day
    activity_sigma: float = 0.9
    rec_line_share: float = 0.4  # after exposure, share of lines bought from her first feed
    share_prob: float = 0.08  # chance an average agent shares a SKU of her feed
    organic_shares_per_day: float = 0.3
    mean_return_prob: float = 0.08
    return_delay_median_days: float = 6.0
    return_delay_sigma: float = 0.9
    mean_extra_qty: float = 0.4  # qty = 1 + Poisson(this)
    forward_rate: float = 0.05  # lines bought by a customer of another agent
    clicks_per_customer_day: float = 0.03

    def __post_init__(self) -> None:
        n = len(self.variants)
        if n < 2:
            raise ValueError(f"variants must name at least two arms, got {self.variants}")
        if len(self.weights) != n:
            raise ValueError(f"weights must have one value per variant ({n}), got {self.weights}")
        if self.assign_weights is not None and len(self.assign_weights) != n:
            raise ValueError(
                f"assign_weights must have one value per variant ({n}), got {self.assign_weights}"
            )
        if len(self.effects) > n:
            raise ValueError(f"effects has {len(self.effects)} arms but there are {n} variants")
        if self.n_agents < 2:
            raise ValueError(f"n_agents must be >= 2, got {self.n_agents}")
        if self.feed_size > self.n_skus:
            raise ValueError(f"feed_size {self.feed_size} exceeds n_skus {self.n_skus}")

    def effect(self, arm: int) -> ArmEffect:
        """The true effect of variant number `arm` (no change when not given)."""
        return self.effects[arm] if arm < len(self.effects) else ArmEffect()

    def replace(self, **changes: Any) -> ABSimConfig:
        """A copy with some fields changed."""
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready dict of every field."""
        return dataclasses.asdict(self)


def scenario(name: str, scale: str = "small", **overrides: Any) -> ABSimConfig:
    """A documented experiment: `aa` (no effect), `effect` (B = KNOWN_EFFECT) or `broken` (A/A
    whose assignment really splits 56/44 while the configuration says 50/50).

    Raises
    ------
    ValueError
        If `name` or `scale` is unknown.
    """
    if scale not in SCALES:
        raise ValueError(f"scale must be one of {', '.join(SCALES)}, got {scale!r}")
    if name not in SCENARIOS:
        raise ValueError(f"scenario must be one of {', '.join(SCENARIOS)}, got {name!r}")
    base: dict[str, Any] = {"n_agents": SCALES[scale], "experiment": f"sim-{name}"}
    if name == "effect":
        base["effects"] = (ArmEffect(), KNOWN_EFFECT)
    elif name == "broken":
        base["assign_weights"] = (0.56, 0.44)
    return ABSimConfig(**{**base, **overrides})
