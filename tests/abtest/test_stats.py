"""Effects, delta method, CUPED, SRM and MDE against independent computations and a bootstrap."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st
from numpy.testing import assert_allclose
from scipy import stats

from recsys.abtest.metrics import METRICS, MetricSpec, metric
from recsys.abtest.outcomes import build_outcomes
from recsys.abtest.stats import aggregates, analyze, compare, srm_check, verdict

RATIO = MetricSpec("r", "ratio", "x", "y")
RATIO_CUPED = MetricSpec("rc", "ratio with covariate", "x", "y", "u", "v")
MEAN_CUPED = MetricSpec("mc", "mean with covariate", "x", numer_covariate="u")


def _groups(seed: int = 0, n: tuple[int, int] = (300, 400), lift: float = 0.1) -> pd.DataFrame:
    """Per-unit numerators, denominators and correlated pre-period covariates for A and B."""
    rng = np.random.default_rng(seed)
    frames = []
    for name, size, mult in (("A", n[0], 1.0), ("B", n[1], 1.0 + lift)):
        level = rng.gamma(2.0, 1.0, size)
        y = rng.poisson(5 * level) + 1.0
        x = rng.binomial(y.astype(int), 0.2 * mult).astype(float)
        v = rng.poisson(5 * level) + 1.0
        u = rng.binomial(v.astype(int), 0.2).astype(float)
        frames.append(pd.DataFrame({"variant": name, "x": x, "y": y, "u": u, "v": v}))
    return pd.concat(frames, ignore_index=True)


def _welch(
    effect: float, var_c: float, n_c: int, var_t: float, n_t: int
) -> tuple[float, float, float]:
    """Welch interval (95%) and two-sided p-value of a difference with per-unit variances."""
    a, b = var_c / n_c, var_t / n_t
    se = math.sqrt(a + b)
    df = (a + b) ** 2 / (a**2 / (n_c - 1) + b**2 / (n_t - 1))
    half = stats.t.ppf(0.975, df) * se
    return effect - half, effect + half, 2 * stats.t.sf(abs(effect) / se, df)


def _linearized(num: np.ndarray, den: np.ndarray) -> tuple[float, np.ndarray]:
    """Ratio of means and each unit's first-order (delta-method) contribution."""
    ratio = num.mean() / den.mean()
    return ratio, (num - ratio * den) / den.mean()


def _analyze(spec: MetricSpec, frame: pd.DataFrame):  # type: ignore[no-untyped-def]
    aggr = aggregates(frame, "variant", [spec])
    return compare(spec, aggr["A"], aggr["B"], names=("A", "B"))


def test_delta_method_matches_independent_computation() -> None:
    frame = _groups()
    a, b = (frame[frame["variant"] == v] for v in ("A", "B"))
    r_a, lin_a = _linearized(a["x"].to_numpy(), a["y"].to_numpy())
    r_b, lin_b = _linearized(b["x"].to_numpy(), b["y"].to_numpy())
    lo, hi, p = _welch(r_b - r_a, lin_a.var(ddof=1), len(a), lin_b.var(ddof=1), len(b))
    got = _analyze(RATIO, frame)
    assert_allclose([got.control_value, got.treatment_value], [r_a, r_b], rtol=1e-12)
    assert_allclose([got.effect, *got.effect_ci, got.pvalue], [r_b - r_a, lo, hi, p], rtol=1e-9)
    assert got.cuped is False and math.isnan(got.variance_reduction)


def test_cuped_mean_matches_independent_computation() -> None:
    frame = _groups(seed=1)
    y_all, x_all = frame["x"].to_numpy(), frame["u"].to_numpy()
    theta = np.cov(y_all, x_all, ddof=1)[0, 1] / x_all.var(ddof=1)
    adjusted = {}
    for name in ("A", "B"):
        g = frame[frame["variant"] == name]
        adj = g["x"].to_numpy() - theta * (g["u"].to_numpy() - x_all.mean())
        adjusted[name] = adj
    effect = adjusted["B"].mean() - adjusted["A"].mean()
    lo, hi, p = _welch(
        effect,
        adjusted["A"].var(ddof=1),
        len(adjusted["A"]),
        adjusted["B"].var(ddof=1),
        len(adjusted["B"]),
    )
    got = _analyze(MEAN_CUPED, frame)
    assert_allclose([got.effect, *got.effect_ci, got.pvalue], [effect, lo, hi, p], rtol=1e-9)
    # Variance reduction: 1 - Var(CUPED effect) / Var(plain effect), from the two interval widths.
    plain = {n: frame.loc[frame["variant"] == n, "x"].to_numpy() for n in ("A", "B")}
    var_plain = plain["A"].var(ddof=1) / len(plain["A"]) + plain["B"].var(ddof=1) / len(plain["B"])
    var_cuped = adjusted["A"].var(ddof=1) / len(plain["A"]) + adjusted["B"].var(ddof=1) / len(
        plain["B"]
    )
    assert got.variance_reduction == pytest.approx(1 - var_cuped / var_plain, abs=2e-3)
    assert got.variance_reduction > 0.2  # the covariate shares the unit's level


def test_cuped_ratio_matches_independent_linearization() -> None:
    frame = _groups(seed=2)
    _, lin_all = _linearized(frame["x"].to_numpy(), frame["y"].to_numpy())
    _, cov_all = _linearized(frame["u"].to_numpy(), frame["v"].to_numpy())
    q_all = frame["u"].mean() / frame["v"].mean()
    theta = np.cov(lin_all, cov_all, ddof=1)[0, 1] / cov_all.var(ddof=1)
    parts = {}
    for name in ("A", "B"):
        g = frame[frame["variant"] == name]
        r, lin = _linearized(g["x"].to_numpy(), g["y"].to_numpy())
        q, k = _linearized(g["u"].to_numpy(), g["v"].to_numpy())
        var = lin.var(ddof=1) + theta**2 * k.var(ddof=1) - 2 * theta * np.cov(lin, k, ddof=1)[0, 1]
        parts[name] = (r - theta * (q - q_all), var, len(g))
    effect = parts["B"][0] - parts["A"][0]
    lo, hi, p = _welch(effect, parts["A"][1], parts["A"][2], parts["B"][1], parts["B"][2])
    got = _analyze(RATIO_CUPED, frame)
    assert_allclose([got.effect, *got.effect_ci, got.pvalue], [effect, lo, hi, p], rtol=1e-8)


def test_mde_is_the_effect_with_80_percent_power() -> None:
    frame = _groups(seed=3, lift=0.0)
    got = _analyze(RATIO, frame)
    # At the MDE, a Welch test of the observed sizes rejects with probability 0.8 (normal approx.).
    aggr = aggregates(frame, "variant", [RATIO])
    total = aggr["A"] + aggr["B"]
    ratio = total.mean("x") / total.mean("y")
    _, lin = _linearized(frame["x"].to_numpy(), frame["y"].to_numpy())
    se = math.sqrt(lin.var(ddof=1) * (1 / 300 + 1 / 400))
    assert got.mde == pytest.approx((stats.norm.ppf(0.975) + stats.norm.ppf(0.8)) * se, rel=0.01)
    assert got.rel_mde == pytest.approx(got.mde / ratio, rel=1e-6)


def test_bootstrap_agrees_with_the_delta_method_on_return_rate(sim_effect_tiny) -> None:
    table = build_outcomes(sim_effect_tiny.data, sim_effect_tiny.experiment).table
    spec = metric("return_rate")
    got = analyze(table, "A", ["B"], specs=[spec])[0]
    groups = [table[table["variant"] == v] for v in ("A", "B")]
    num = [g["returned_value"].to_numpy() for g in groups]
    den = [g["gmv"].to_numpy() for g in groups]

    def diff(ia: np.ndarray, ib: np.ndarray, axis: int = -1) -> np.ndarray:
        rate_a = num[0][ia].sum(axis) / den[0][ia].sum(axis)
        return num[1][ib].sum(axis) / den[1][ib].sum(axis) - rate_a

    boot = stats.bootstrap(
        (np.arange(len(groups[0])), np.arange(len(groups[1]))),
        diff,
        vectorized=True,
        n_resamples=4000,
        method="percentile",
        random_state=0,
    )
    lo, hi = got.plain_effect_ci
    se_delta = (hi - lo) / 2 / stats.t.ppf(0.975, len(table) - 2)
    assert boot.standard_error == pytest.approx(se_delta, rel=0.12)
    width = hi - lo
    assert abs(boot.confidence_interval.low - lo) < 0.15 * width
    assert abs(boot.confidence_interval.high - hi) < 0.15 * width


def test_srm_matches_closed_forms() -> None:
    two = srm_check({"A": 1100, "B": 900}, {"A": 1, "B": 1})
    chi2 = 2 * 100**2 / 1000
    assert two.chi2 == pytest.approx(chi2)
    assert two.pvalue == pytest.approx(math.erfc(math.sqrt(chi2 / 2)))  # 1 degree of freedom
    assert not two.ok and two.to_dict()["ok"] is False
    three = srm_check({"A": 500, "B": 260, "C": 240}, {"A": 0.5, "B": 0.25, "C": 0.25}, alpha=0.05)
    chi2 = (10**2 + 10**2) / 250
    assert three.pvalue == pytest.approx(math.exp(-chi2 / 2))  # 2 degrees of freedom
    assert three.ok
    assert srm_check({"A": 10}, {"A": 1, "B": 1}).counts == {"A": 10, "B": 0}


@given(st.integers(1, 500), st.lists(st.integers(1, 5), min_size=2, max_size=5))
def test_srm_exact_split_never_alarms(scale: int, weights: list[int]) -> None:
    names = [f"v{i}" for i in range(len(weights))]
    result = srm_check(
        {n: w * scale for n, w in zip(names, weights, strict=True)},
        dict(zip(names, weights, strict=True)),
    )
    assert result.chi2 == pytest.approx(0, abs=1e-9) and result.ok


def test_srm_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="no weight: \\['Z'\\]"):
        srm_check({"Z": 3}, {"A": 1, "B": 1})
    with pytest.raises(ValueError, match="two variants or more"):
        srm_check({"A": 3}, {"A": 1})
    with pytest.raises(ValueError, match="at least one unit"):
        srm_check({}, {"A": 1, "B": 1})


def test_verdicts_follow_direction_and_significance() -> None:
    frame = _groups(seed=4, n=(2000, 2000), lift=0.3)
    higher = _analyze(RATIO, frame)
    lower = MetricSpec("r", "ratio", "x", "y", higher_is_better=False)
    assert higher.significant and higher.effect > 0
    assert verdict(RATIO, higher) == "better"
    assert verdict(lower, higher) == "worse"
    flat = _analyze(RATIO, _groups(seed=5, lift=0.0))
    assert verdict(RATIO, flat) == "no detectable difference"


def test_too_few_agents_give_no_verdict() -> None:
    frame = _groups(n=(1, 50))
    got = _analyze(RATIO, frame)
    assert got.n_control == 1 and math.isnan(got.pvalue)
    assert verdict(RATIO, got) == "not enough data"
    missing = analyze(frame[frame["variant"] == "B"], "A", ["B"], specs=[RATIO])[0]
    assert missing.n_control == 0 and verdict(RATIO, missing) == "not enough data"


def test_every_metric_reads_outcome_columns() -> None:
    from recsys.abtest.outcomes import PRE_COLUMNS, WINDOW_COLUMNS

    known = set(WINDOW_COLUMNS) | set(PRE_COLUMNS)
    for spec in METRICS:
        assert set(spec.columns) <= known, spec.key
    assert [m.key for m in METRICS if m.primary] == ["net_gmv_per_agent"]
    assert [m.key for m in METRICS if m.guardrail] == ["return_rate"]
    with pytest.raises(KeyError, match="unknown metric 'nope'"):
        metric("nope")
