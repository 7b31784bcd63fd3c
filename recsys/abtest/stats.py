"""Effects, intervals, p-values, CUPED, power and the sample-ratio check, by tea-tasting and scipy.

Per metric and treatment, tea-tasting's `RatioOfMeans` does the work: Welch's t-test on the
difference of (ratios of) means, the delta method for ratios, and CUPED with the pre-experiment
sums as covariates (Deng et al. 2013, 2018). Each metric is analysed twice, with and without the
covariate, to state the variance reduction; the reported effect, interval and p-value are the
CUPED ones. The minimum detectable effect is tea-tasting's power solution at the observed sizes.
The sample-ratio check is scipy's chi-square goodness of fit against the configured weights.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from recsys.abtest.metrics import METRICS, MetricSpec

NAN = float("nan")


@dataclass(frozen=True)
class Comparison:
    """One metric, one treatment against the control."""

    metric: str
    control: str
    treatment: str
    n_control: int
    n_treatment: int
    control_value: float  # plain mean (or ratio of means) in the control
    treatment_value: float
    effect: float  # treatment - control (CUPED-adjusted when a covariate exists)
    effect_ci: tuple[float, float]
    rel_effect: float  # treatment / control - 1
    rel_effect_ci: tuple[float, float]
    pvalue: float
    cuped: bool
    variance_reduction: float  # 1 - Var(CUPED effect) / Var(plain effect); nan without covariate
    plain_effect_ci: tuple[float, float]
    plain_pvalue: float
    mde: float  # absolute minimum detectable effect at the observed size
    rel_mde: float
    alpha: float
    power: float

    @property
    def significant(self) -> bool:
        """Whether the p-value is below alpha."""
        return bool(self.pvalue < self.alpha)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready dict (tuples as lists)."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}


def verdict(spec: MetricSpec, comparison: Comparison) -> str:
    """`better`, `worse`, `no detectable difference` or `not enough data` for the treatment."""
    if not math.isfinite(comparison.pvalue) or not math.isfinite(comparison.effect):
        return "not enough data"
    if not comparison.significant:
        return "no detectable difference"
    return "better" if (comparison.effect > 0) == spec.higher_is_better else "worse"


def _tea_metric(spec: MetricSpec, *, cuped: bool, alpha: float, power: float, ratio: float) -> Any:
    """The tea-tasting metric for `spec`, with or without its covariates."""
    import tea_tasting as tt

    return tt.RatioOfMeans(
        numer=spec.numer,
        denom=spec.denom,
        numer_covariate=spec.numer_covariate if cuped else None,
        denom_covariate=spec.denom_covariate if cuped else None,
        confidence_level=1 - alpha,
        alpha=alpha,
        power=power,
        ratio=ratio,
    )


def aggregates(
    table: pd.DataFrame, group_col: str, specs: Sequence[MetricSpec] = METRICS
) -> dict[Any, Any]:
    """tea-tasting aggregates (count, means, variances, covariances) of metric columns by group."""
    from tea_tasting.aggr import read_aggregates

    cols = sorted({c for spec in specs for c in spec.columns})
    pairs = sorted({(a, b) for spec in specs for a in spec.columns for b in spec.columns if a < b})
    frame = table[[group_col, *cols]].copy()
    frame[cols] = frame[cols].astype(np.float64)
    return read_aggregates(
        frame, group_col, has_count=True, mean_cols=cols, var_cols=cols, cov_cols=pairs
    )


def _ci(result: Any, prefix: str) -> tuple[float, float]:
    """A (lower, upper) interval of a tea-tasting result."""
    return (
        float(getattr(result, f"{prefix}_ci_lower")),
        float(getattr(result, f"{prefix}_ci_upper")),
    )


def _mde(metric: Any, total: Any) -> tuple[float, float]:
    """Absolute and relative minimum detectable effect (nan when it cannot be solved)."""
    try:
        found = metric.solve_power_from_aggregates(total, "rel_effect_size")[0]
    except (ArithmeticError, ValueError, RuntimeError):
        return NAN, NAN
    return float(found.effect_size), float(found.rel_effect_size)


def _plain_value(spec: MetricSpec, aggr: Any) -> float:
    """The arm's mean (or ratio of means); nan without agents or with a zero denominator."""
    if aggr.count() == 0:
        return NAN
    denom = float(aggr.mean(spec.denom))
    return float(aggr.mean(spec.numer)) / denom if denom else NAN


def compare(
    spec: MetricSpec,
    control: Any,
    treatment: Any,
    *,
    names: tuple[str, str] = ("control", "treatment"),
    alpha: float = 0.05,
    power: float = 0.8,
    with_mde: bool = True,
) -> Comparison:
    """Compare one metric between two arms' tea-tasting aggregates (MDE skipped if not wanted)."""
    n_c, n_t = int(control.count()), int(treatment.count())
    if min(n_c, n_t) < 2:
        nan2 = (NAN, NAN)
        values = [_plain_value(spec, a) for a in (control, treatment)]
        return Comparison(
            spec.key, *names, n_c, n_t, *values, NAN, nan2, NAN, nan2, NAN, spec.has_covariate,
            NAN, nan2, NAN, NAN, NAN, alpha, power,
        )  # fmt: skip
    ratio = n_t / n_c
    plain_metric = _tea_metric(spec, cuped=False, alpha=alpha, power=power, ratio=ratio)
    with np.errstate(all="ignore"):
        plain = plain_metric.analyze_aggregates(control, treatment)
        main, used = plain, plain_metric
        if spec.has_covariate:
            used = _tea_metric(spec, cuped=True, alpha=alpha, power=power, ratio=ratio)
            main = used.analyze_aggregates(control, treatment)
        mde, rel_mde = _mde(used, control + treatment) if with_mde else (NAN, NAN)
    reduction = NAN
    if spec.has_covariate:
        plain_width = plain.effect_size_ci_upper - plain.effect_size_ci_lower
        width = main.effect_size_ci_upper - main.effect_size_ci_lower
        if plain_width > 0 and math.isfinite(width):
            reduction = float(1 - (width / plain_width) ** 2)
    return Comparison(
        metric=spec.key,
        control=names[0],
        treatment=names[1],
        n_control=n_c,
        n_treatment=n_t,
        control_value=float(plain.control),
        treatment_value=float(plain.treatment),
        effect=float(main.effect_size),
        effect_ci=_ci(main, "effect_size"),
        rel_effect=float(main.rel_effect_size),
        rel_effect_ci=_ci(main, "rel_effect_size"),
        pvalue=float(main.pvalue),
        cuped=spec.has_covariate,
        variance_reduction=reduction,
        plain_effect_ci=_ci(plain, "effect_size"),
        plain_pvalue=float(plain.pvalue),
        mde=mde,
        rel_mde=rel_mde,
        alpha=alpha,
        power=power,
    )


def analyze(
    table: pd.DataFrame,
    control: str,
    treatments: Sequence[str],
    *,
    specs: Sequence[MetricSpec] = METRICS,
    alpha: float = 0.05,
    power: float = 0.8,
) -> list[Comparison]:
    """Every metric for every treatment against `control`, from the per-agent outcome table."""
    from tea_tasting.aggr import Aggregates

    by_variant = aggregates(table, "variant", specs)
    no_agents = Aggregates(count_=0, mean_={}, var_={}, cov_={})
    c = by_variant.get(control, no_agents)
    return [
        compare(
            spec,
            c,
            by_variant.get(treatment, no_agents),
            names=(control, treatment),
            alpha=alpha,
            power=power,
        )
        for treatment in treatments
        for spec in specs
    ]


@dataclass(frozen=True)
class SRMResult:
    """Sample-ratio check: agents per variant against the configured weights."""

    counts: dict[str, int]
    expected: dict[str, float]
    chi2: float
    pvalue: float
    alpha: float

    @property
    def ok(self) -> bool:
        """False when the split is implausible under the configured weights."""
        return bool(self.pvalue >= self.alpha)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready dict."""
        return {**asdict(self), "ok": self.ok}


def srm_check(
    counts: Mapping[str, int], weights: Mapping[str, float], alpha: float = 0.001
) -> SRMResult:
    """Chi-square goodness of fit of the observed counts to the weights (every weighted variant).

    Raises
    ------
    ValueError
        If there are no units, fewer than two variants, or a count names an unknown variant.
    """
    unknown = sorted(set(counts) - set(weights))
    if unknown:
        raise ValueError(f"counts name variants that have no weight: {unknown}")
    if len(weights) < 2:
        raise ValueError(f"a sample-ratio check needs two variants or more, got {list(weights)}")
    names = list(weights)
    observed = np.array([counts.get(n, 0) for n in names], dtype=float)
    total = observed.sum()
    if total <= 0:
        raise ValueError("a sample-ratio check needs at least one unit")
    p = np.array([weights[n] for n in names], dtype=float)
    expected = total * p / p.sum()
    chi2, pvalue = stats.chisquare(observed, expected)
    return SRMResult(
        counts={n: int(c) for n, c in zip(names, observed, strict=True)},
        expected={n: float(e) for n, e in zip(names, expected, strict=True)},
        chi2=float(chi2),
        pvalue=float(pvalue),
        alpha=alpha,
    )
