"""Many simulated experiments, analysed like the report does: the A/A, known-effect and SRM proofs.

Two paths give the same numbers for a seed (tested): `full` runs the report's own code
(`simulate_experiment` -> `build_outcomes` -> `analyze`, optionally through Parquet on disk);
`fast` computes the per-agent sums the proofs need (net GMV, GMV, returned value, their
pre-period covariates) straight from the simulator's arrays with `np.bincount`, and analyses all
seeds from one aggregation pass, so a hundred A/A runs take seconds.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from recsys.abtest.metrics import PRIMARY, MetricSpec, metric
from recsys.abtest.sim_config import ABSimConfig
from recsys.abtest.sim_truth import true_effects
from recsys.abtest.simulate import Events, World, experiment_config, simulate_arrays
from recsys.abtest.stats import aggregates, compare, srm_check

PROOF_METRICS: tuple[str, ...] = (PRIMARY, "return_rate")
Progress = Callable[[], None]


def fast_outcomes(config: ABSimConfig, world: World, events: Events) -> pd.DataFrame:
    """Per exposed agent: variant and the sales sums of `build_outcomes`, computed in numpy."""
    n = config.n_agents
    p = events.purchases
    value = p["qty"] * world.price[p["sku"]]
    first = world.first_ts[p["agent"]]
    t, return_t = p["t"], p["return_t"]
    in_window = (t >= first) & (t < first + config.window_days)
    counted = p["returned"] & (return_t <= t + config.return_days)
    start = float(config.pre_days)
    in_pre = t < start
    counted_pre = counted & (return_t <= start)
    exposed = np.nonzero(~np.isnan(world.first_ts))[0]

    def per_agent(mask: np.ndarray) -> np.ndarray:
        """Value of the masked lines summed per exposed agent."""
        return np.bincount(p["agent"][mask], weights=value[mask], minlength=n)[exposed]

    gmv, ret = per_agent(in_window), per_agent(in_window & counted)
    gmv_pre, ret_pre = per_agent(in_pre), per_agent(in_pre & counted_pre)
    return pd.DataFrame(
        {
            "agent_id": [f"A{i:06d}" for i in exposed.tolist()],
            "variant": np.array(config.variants, dtype=object)[world.arm[exposed]],
            "gmv": gmv,
            "returned_value": ret,
            "net_gmv": gmv - ret,
            "gmv_pre": gmv_pre,
            "returned_value_pre": ret_pre,
            "net_gmv_pre": gmv_pre - ret_pre,
        }
    )


def _row(
    seed: int,
    comparisons: dict[str, Any],
    truth: dict[str, dict[str, float]],
    srm_pvalue: float,
) -> dict[str, Any]:
    """One result row: SRM, then effect, interval, p-value and truth per metric."""
    row: dict[str, Any] = {"seed": seed, "srm_pvalue": srm_pvalue}
    for key, c in comparisons.items():
        true = truth[key]["effect"]
        row.update(
            {
                f"{key}.n_control": c.n_control,
                f"{key}.n_treatment": c.n_treatment,
                f"{key}.effect": c.effect,
                f"{key}.ci_lower": c.effect_ci[0],
                f"{key}.ci_upper": c.effect_ci[1],
                f"{key}.pvalue": c.pvalue,
                f"{key}.plain_pvalue": c.plain_pvalue,
                f"{key}.variance_reduction": c.variance_reduction,
                f"{key}.true_effect": true,
                f"{key}.covered": bool(c.effect_ci[0] <= true <= c.effect_ci[1]),
                # Significant in the true effect's direction (never, when there is none).
                f"{key}.detected": bool(c.pvalue < c.alpha and c.effect * true > 0),
            }
        )
    return row


def _srm_pvalue(config: ABSimConfig, variants: pd.Series) -> float:
    """SRM p-value of the exposed agents' split against the configured weights."""
    weights = dict(zip(config.variants, config.weights, strict=True))
    return srm_check(variants.value_counts().to_dict(), weights).pvalue


def run_fast(
    config: ABSimConfig,
    seeds: Iterable[int],
    *,
    metrics: Sequence[str] = PROOF_METRICS,
    alpha: float = 0.05,
    progress: Progress | None = None,
) -> pd.DataFrame:
    """One row per seed from the vectorised path (B against A; truth from `sim_truth`)."""
    from recsys.abtest.sim_truth import agent_truth

    specs: list[MetricSpec] = [metric(k) for k in metrics]
    control, treatment = config.variants[0], config.variants[1]
    tables, truths = [], {}
    for seed in seeds:
        world, events = simulate_arrays(config, seed, sales_only=True)
        table = fast_outcomes(config, world, events)
        table["group"] = [f"{seed}:{v}" for v in table["variant"]]
        table["seed"] = seed
        tables.append(table)
        truths[seed] = true_effects(agent_truth(config, world), control, treatment)
        if progress is not None:
            progress()
    every = pd.concat(tables, ignore_index=True)
    by_group = aggregates(every, "group", specs)
    rows = []
    for seed, table in zip(truths, tables, strict=True):
        c, t = by_group[f"{seed}:{control}"], by_group[f"{seed}:{treatment}"]
        found = {
            s.key: compare(s, c, t, names=(control, treatment), alpha=alpha, with_mde=False)
            for s in specs
        }
        rows.append(_row(seed, found, truths[seed], _srm_pvalue(config, table["variant"])))
    return pd.DataFrame(rows)


def run_full(
    config: ABSimConfig,
    seeds: Iterable[int],
    *,
    metrics: Sequence[str] = PROOF_METRICS,
    alpha: float = 0.05,
    workdir: str | None = None,
    progress: Progress | None = None,
) -> pd.DataFrame:
    """One row per seed from the report's own path (through Parquet files when `workdir` is set)."""
    from recsys.abtest.data import load_experiment_data
    from recsys.abtest.outcomes import OutcomeSettings, build_outcomes
    from recsys.abtest.sim_write import write_experiment
    from recsys.abtest.simulate import simulate_experiment
    from recsys.abtest.stats import analyze

    specs = [metric(k) for k in metrics]
    control, treatment = config.variants[0], config.variants[1]
    settings = OutcomeSettings(
        window_days=config.window_days,
        return_days=config.return_days,
        pre_days=config.pre_days,
        start=pd.Timestamp(config.start, tz="UTC"),
    )
    rows = []
    for seed in seeds:
        sim = simulate_experiment(config, seed)
        data = sim.data
        if workdir is not None:
            out = write_experiment(sim, f"{workdir}/seed-{seed}")
            data = load_experiment_data(out)
        outcomes = build_outcomes(data, experiment_config(config, seed), settings)
        found = analyze(outcomes.table, control, [treatment], specs=specs, alpha=alpha)
        truth = true_effects(sim.truth, control, treatment)
        srm = _srm_pvalue(config, outcomes.table["variant"])
        rows.append(_row(seed, {c.metric: c for c in found}, truth, srm))
        if progress is not None:
            progress()
    return pd.DataFrame(rows)


def binomial_band(n: int, rate: float, level: float = 0.95) -> tuple[int, int]:
    """Central `level` range of the count of hits in `n` runs at `rate` (binomial)."""
    lo, hi = stats.binom.interval(level, n, rate)
    return int(lo), int(hi)


def summarize(
    results: pd.DataFrame, *, alpha: float = 0.05, srm_alpha: float = 0.001
) -> dict[str, Any]:
    """Rates over seeds: false or true positives per metric, CI coverage, SRM alarms."""
    n = len(results)
    band = binomial_band(n, alpha)
    out: dict[str, Any] = {
        "runs": n,
        "alpha": alpha,
        "band_at_alpha": list(band),
        "srm_pvalue_below_alpha": int((results["srm_pvalue"] < alpha).sum()),
        "srm_alarms": int((results["srm_pvalue"] < srm_alpha).sum()),
        "srm_alpha": srm_alpha,
    }
    for key in PROOF_METRICS:
        if f"{key}.pvalue" not in results:
            continue
        sig = results[f"{key}.pvalue"] < alpha
        out[key] = {
            "significant": int(sig.sum()),
            "plain_significant": int((results[f"{key}.plain_pvalue"] < alpha).sum()),
            "covered": int(results[f"{key}.covered"].sum()),
            "detected": int(results[f"{key}.detected"].sum()),
            "mean_effect": float(results[f"{key}.effect"].mean()),
            "mean_true_effect": float(results[f"{key}.true_effect"].mean()),
            "mean_variance_reduction": float(results[f"{key}.variance_reduction"].mean()),
            "mean_ci_width": float(
                (results[f"{key}.ci_upper"] - results[f"{key}.ci_lower"]).mean()
            ),
        }
    return out
