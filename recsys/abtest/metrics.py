"""The metrics of an A/B report: each a mean or a ratio of per-agent sums, with its covariate.

A ratio metric (e.g. return rate = returned value / GMV over all agents of a variant) is analysed
with the delta method, since its numerator and denominator vary together across agents; the
covariate columns are the same sums over the pre-experiment period (CUPED). Definitions in words:
docs/ab-testing.md.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class MetricSpec:
    """One metric: columns of the outcome table, direction, and its role in the report."""

    key: str
    label: str
    numer: str
    denom: str | None = None  # None: a per-agent mean
    numer_covariate: str | None = None
    denom_covariate: str | None = None
    higher_is_better: bool = True
    primary: bool = False
    guardrail: bool = False
    business_rate: str | None = None  # which of the four rates of the business it is
    unit: str = "rate"  # "rate" (shown as %), "rmb" or "count"

    @property
    def is_ratio(self) -> bool:
        """Whether the metric is a ratio of two per-agent sums (delta method)."""
        return self.denom is not None

    @property
    def has_covariate(self) -> bool:
        """Whether CUPED can adjust it."""
        return self.numer_covariate is not None

    @property
    def columns(self) -> tuple[str, ...]:
        """Every outcome column the metric reads."""
        cols = (self.numer, self.denom, self.numer_covariate, self.denom_covariate)
        return tuple(c for c in cols if c is not None)


PRIMARY = "net_gmv_per_agent"
METRICS: tuple[MetricSpec, ...] = (
    MetricSpec(
        PRIMARY,
        "Net GMV per agent (after returns)",
        "net_gmv",
        numer_covariate="net_gmv_pre",
        primary=True,
        unit="rmb",
    ),
    MetricSpec(
        "return_rate",
        "Return rate (returned value / GMV)",
        "returned_value",
        "gmv",
        "returned_value_pre",
        "gmv_pre",
        higher_is_better=False,
        guardrail=True,
    ),
    MetricSpec("gmv_per_agent", "GMV per agent", "gmv", numer_covariate="gmv_pre", unit="rmb"),
    MetricSpec(
        "purchase_conversion",
        "Purchase conversion (agents with a sale)",
        "any_purchase",
        numer_covariate="any_purchase_pre",
    ),
    MetricSpec(
        "share_rate",
        "Share rate of exposed SKUs",
        "shared_skus",
        "exposed_skus",
        numer_covariate="shares_pre",
    ),
    MetricSpec(
        "repurchase_rate",
        "Customer repurchase rate",
        "repeat_buyers",
        "buyers",
        "repeat_buyers_pre",
        "buyers_pre",
        business_rate="repurchase",
    ),
    MetricSpec(
        "coverage",
        "Coverage (customers reached)",
        "reached",
        "customers",
        "reached_pre",
        "customers_pre",
        business_rate="coverage",
    ),
    MetricSpec(
        "conversion",
        "Conversion (agents who acted)",
        "acted",
        numer_covariate="acted_pre",
        business_rate="conversion",
    ),
    MetricSpec(
        "penetration",
        "Penetration (customer spend through picks)",
        "rec_gmv",
        "customer_spend",
        business_rate="penetration",
    ),
)
BUSINESS_RATES: tuple[str, ...] = ("coverage", "conversion", "repurchase", "penetration")


def metric(key: str) -> MetricSpec:
    """The metric named `key`.

    Raises
    ------
    KeyError
        If no metric has that key.
    """
    for spec in METRICS:
        if spec.key == key:
            return spec
    raise KeyError(f"unknown metric {key!r}; known: {', '.join(m.key for m in METRICS)}")
