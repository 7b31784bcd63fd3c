"""Category traits of the simulated catalogue: prices, return behaviour, repurchase cycles."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class CategorySpec:
    """Traits of one product category.

    `base_return_rate` is the share of order lines returned for a typical buyer of a typical SKU;
    it is split into causes by `return_mix` (quality, mismatch, random). `return_band` is the range
    the observed return rate of the category is expected to land in (tests check it).
    """

    name: str
    weight: float  # share of the catalogue
    price_median: float  # RMB
    price_sigma: float  # lognormal spread of prices within the category
    base_return_rate: float
    return_band: tuple[float, float]
    # causes of a return: (low quality, taste/price mismatch, random), summing to 1
    return_mix: tuple[float, float, float]
    damaged_share: float  # share of quality-caused returns reported as `damaged`
    fit_share: float  # share of mismatch-caused returns reported as `fit` (else not_as_described)
    return_delay_days: float  # median days from purchase to return
    consumable: bool
    cycle_days: float  # repurchase cycle of a consumable (ignored otherwise)
    extra_qty: float  # mean of the Poisson number of extra units in a line (qty = 1 + extra)
    regional_share: float  # share of the category's SKUs sold only in some regions

    def __post_init__(self) -> None:
        if not 0.0 < self.base_return_rate < 1.0:
            raise ValueError(
                f"base_return_rate of {self.name!r} must be in (0, 1), got {self.base_return_rate}"
            )
        lo, hi = self.return_band
        if not 0.0 <= lo <= self.base_return_rate <= hi <= 1.0:
            raise ValueError(
                f"return_band of {self.name!r} must bracket base_return_rate "
                f"{self.base_return_rate}, got {self.return_band}"
            )
        if abs(sum(self.return_mix) - 1.0) > 1e-6:
            raise ValueError(f"return_mix of {self.name!r} must sum to 1, got {self.return_mix}")
        if self.consumable and self.cycle_days <= 0:
            raise ValueError(
                f"cycle_days of consumable {self.name!r} must be > 0, got {self.cycle_days}"
            )


# Columns: catalogue weight, median price (RMB) and its lognormal sigma, base return rate and the
# band its observed rate should land in, return causes (quality, mismatch, random), share of quality
# returns reported `damaged`, share of mismatch returns reported `fit`, median return delay (days),
# repurchase cycle (days; 0 = not consumable), mean extra units per line, share of regional SKUs.
# Rates follow the articles' picture: apparel is returned most (sizes), fresh food rarely but then
# mostly damaged in transit, cosmetics in between (shade, skin reaction). Consumables carry the
# repurchase traffic the business lives on: fresh weekly, snacks and household monthly.
_TABLE = """
name                    wt   price psd rate lo    hi   mixq mixm mixr dmg fit  delay cycle xqty reg
fresh_food              0.12 45    0.5 0.05 0.02  0.1  0.75 0.1  0.15 0.7 0    1.5   7     0.5  0.6
snacks                  0.1  30    0.5 0.03 0.01  0.07 0.4  0.2  0.4  0.4 0    4     21    0.6  0.3
beverages               0.07 40    0.5 0.03 0.01  0.07 0.5  0.1  0.4  0.6 0    3     14    0.7  0.2
household               0.09 35    0.6 0.04 0.015 0.08 0.45 0.2  0.35 0.3 0    5     30    0.4  0.1
personal_care           0.09 50    0.6 0.05 0.02  0.1  0.35 0.35 0.3  0.2 0    6     40    0.2  0.05
cosmetics               0.1  120   0.7 0.08 0.04  0.14 0.3  0.45 0.25 0.1 0    6     0     0.1  0.05
apparel                 0.12 150   0.6 0.22 0.12  0.35 0.15 0.65 0.2  0.1 0.85 7     0     0.1  0.1
shoes                   0.05 220   0.5 0.18 0.1   0.3  0.15 0.65 0.2  0.1 0.9  7     0     0.02 0.05
baby                    0.07 90    0.6 0.06 0.025 0.12 0.45 0.3  0.25 0.2 0.3  5     25    0.4  0.1
home_kitchen            0.08 80    0.8 0.08 0.04  0.14 0.45 0.3  0.25 0.4 0    6     0     0.1  0.1
health                  0.06 160   0.6 0.04 0.015 0.08 0.4  0.3  0.3  0.1 0    6     30    0.3  0.05
electronics_accessories 0.05 100   0.7 0.1  0.05  0.17 0.55 0.25 0.2  0.3 0    5     0     0.05 0.05
"""


def _parse(table: str) -> tuple[CategorySpec, ...]:
    """Category specs from the whitespace-separated table above."""
    specs = []
    for line in table.strip().splitlines()[1:]:
        name, *raw = line.split()
        v = [float(x) for x in raw]
        specs.append(
            CategorySpec(
                name=name,
                weight=v[0],
                price_median=v[1],
                price_sigma=v[2],
                base_return_rate=v[3],
                return_band=(v[4], v[5]),
                return_mix=(v[6], v[7], v[8]),
                damaged_share=v[9],
                fit_share=v[10],
                return_delay_days=v[11],
                consumable=v[12] > 0,
                cycle_days=v[12],
                extra_qty=v[13],
                regional_share=v[14],
            )
        )
    return tuple(specs)


DEFAULT_CATEGORIES: tuple[CategorySpec, ...] = _parse(_TABLE)
