"""Assemble an A/B report: every number of the HTML page and the JSON, in one plain dict.

The SRM check comes first: when the split of exposed agents does not match the configured weights
the whole report is marked untrustworthy (the verdicts are still computed, and labelled so).
The primary metric decides; the guardrail (return rate must not get worse) is judged on its own;
the other metrics describe. Metric definitions: docs/ab-testing.md.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

import pandas as pd

from recsys.ab import Experiment
from recsys.abtest.daily import daily_cumulative
from recsys.abtest.data import ExperimentData
from recsys.abtest.metrics import METRICS, PRIMARY, MetricSpec
from recsys.abtest.outcomes import Outcomes, OutcomeSettings, build_outcomes
from recsys.abtest.stats import Comparison, analyze, srm_check, verdict

SCHEMA_VERSION = 1


@dataclass(frozen=True)
class ReportSettings:
    """Choices of one report: periods, the control arm, and the test levels."""

    outcome: OutcomeSettings = field(default_factory=OutcomeSettings)
    control: str | None = None  # default: the first variant of the experiment
    alpha: float = 0.05
    srm_alpha: float = 0.001
    power: float = 0.8

    def __post_init__(self) -> None:
        for name in ("alpha", "srm_alpha", "power"):
            value = getattr(self, name)
            if not 0 < value < 1:
                raise ValueError(f"{name} must be between 0 and 1, got {value}")


def _clean(value: Any) -> Any:
    """JSON-ready: NaN and infinities as None, timestamps as ISO text, tuples as lists."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, pd.Timestamp):
        return value.isoformat()
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    if hasattr(value, "item"):  # numpy scalars
        return _clean(value.item())
    return value


def _variants(experiment: Experiment, data: ExperimentData) -> list[dict[str, Any]]:
    """Configured variants with the model versions and snapshots their exposures were served by."""
    exp = data.exposures[data.exposures["experiment"] == experiment.name]
    out = []
    for v in experiment.variants:
        mine = exp[exp["variant"] == v.name]
        out.append(
            {
                **v.model_dump(mode="json"),
                "model_versions": mine["model_version"].dropna().value_counts().to_dict(),
                "snapshots": mine["snapshot"].dropna().value_counts().to_dict(),
            }
        )
    return out


def _exposure_counts(outcomes: Outcomes, variants: list[str]) -> list[dict[str, Any]]:
    """Agents, feed requests and distinct exposed SKUs per variant (analysed agents)."""
    t = outcomes.table
    rows = []
    for name in variants:
        mine = t[t["variant"] == name]
        rows.append(
            {
                "variant": name,
                "agents": len(mine),
                "exposures": int(mine["n_exposures"].sum()),
                "exposed_skus_in_window": int(mine["exposed_skus"].sum()),
                "exposures_per_agent": float(mine["n_exposures"].mean()) if len(mine) else None,
            }
        )
    return rows


def _metric_entry(spec: MetricSpec, found: list[Comparison], trustworthy: bool) -> dict[str, Any]:
    """A metric with its definition and one comparison per treatment, each with its verdict."""
    comparisons = []
    for c in found:
        judged = verdict(spec, c)
        comparisons.append({**c.to_dict(), "verdict": judged, "trustworthy": trustworthy})
    keys = ("key", "label", "numer", "denom", "numer_covariate", "denom_covariate")
    return {
        **{k: getattr(spec, k) for k in keys},
        "kind": "ratio (delta method)" if spec.is_ratio else "mean",
        "higher_is_better": spec.higher_is_better,
        "primary": spec.primary,
        "guardrail": spec.guardrail,
        "business_rate": spec.business_rate,
        "unit": spec.unit,
        "comparisons": comparisons,
    }


def _notes(outcomes: Outcomes, data: ExperimentData, settings: ReportSettings) -> list[str]:
    """Plain-language caveats about the data behind the numbers."""
    notes = list(data.notes)
    i = outcomes.integrity
    if i["agents_in_several_variants"]:
        notes.append(
            f"{i['agents_in_several_variants']} agents were served by more than one variant and "
            "are left out (assignment changed during the experiment?)"
        )
    if i["agents_in_unknown_variants"]:
        notes.append(
            f"{i['agents_in_unknown_variants']} agents were served by a variant the configuration "
            "does not name and are left out"
        )
    if i["agents_not_in_their_assigned_variant"]:
        notes.append(
            f"{i['agents_not_in_their_assigned_variant']} agents were served by another variant "
            "than the configuration assigns them (salt or weights changed?)"
        )
    if i["agents_with_open_window"]:
        notes.append(
            f"{i['agents_with_open_window']} agents' {settings.outcome.window_days:g}-day windows "
            f"were still open at the end of the data ({outcomes.observed_until}); their outcomes "
            "are incomplete"
        )
    if i["agents_with_immature_returns"]:
        notes.append(
            f"returns of {i['agents_with_immature_returns']} agents' purchases can still arrive "
            f"(the {settings.outcome.return_days:g}-day return period runs past the end of the "
            "data)"
        )
    return notes


def build_report(
    data: ExperimentData,
    experiment: Experiment,
    settings: ReportSettings | None = None,
    *,
    source: str | None = None,
) -> dict[str, Any]:
    """Every number of the report of `experiment` on `data`, as a JSON-ready dict.

    Raises
    ------
    EmptyDataError
        If the experiment has no analysable exposures in the period.
    ValueError
        If the control names no variant, or the experiment has fewer than two variants.
    """
    settings = settings or ReportSettings()
    names = [v.name for v in experiment.variants]
    if len(names) < 2:
        raise ValueError(f"experiment {experiment.name!r} has one variant; nothing to compare")
    control = settings.control or names[0]
    if control not in names:
        raise ValueError(f"control {control!r} is not a variant of {experiment.name!r}: {names}")
    treatments = [n for n in names if n != control]
    outcomes = build_outcomes(data, experiment, settings.outcome)
    counts = outcomes.table["variant"].value_counts().to_dict()
    weights = {v.name: v.weight for v in experiment.variants}
    srm = srm_check(counts, weights, settings.srm_alpha)
    found = analyze(outcomes.table, control, treatments, alpha=settings.alpha, power=settings.power)
    metrics = [
        _metric_entry(spec, [c for c in found if c.metric == spec.key], srm.ok) for spec in METRICS
    ]
    primary = next(m for m in metrics if m["key"] == PRIMARY)
    guardrails = [
        {
            "metric": m["key"],
            "label": m["label"],
            "treatment": c["treatment"],
            "breached": c["verdict"] == "worse",
            "effect": c["effect"],
            "effect_ci": c["effect_ci"],
            "pvalue": c["pvalue"],
        }
        for m in metrics
        if m["guardrail"]
        for c in m["comparisons"]
    ]
    report = {
        "schema_version": SCHEMA_VERSION,
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "source": source,
        "experiment": {
            "name": experiment.name,
            "salt": experiment.salt,
            "target": experiment.target,
            "enabled": experiment.enabled,
            "variants": _variants(experiment, data),
        },
        "control": control,
        "treatments": treatments,
        "settings": {
            **asdict(settings.outcome),
            **{k: getattr(settings, k) for k in ("alpha", "srm_alpha", "power")},
        },
        "period": {
            "start": outcomes.start,
            "end": outcomes.end,
            "pre_start": outcomes.pre_start,
            "observed_until": outcomes.observed_until,
        },
        "trustworthy": srm.ok,
        "srm": srm.to_dict(),
        "exposures": _exposure_counts(outcomes, names),
        "integrity": outcomes.integrity,
        "primary": {
            "metric": PRIMARY,
            "label": primary["label"],
            "verdicts": {c["treatment"]: c["verdict"] for c in primary["comparisons"]},
        },
        "guardrails": guardrails,
        "metrics": metrics,
        "daily": daily_cumulative(outcomes).to_dict("records"),
        "notes": _notes(outcomes, data, settings),
    }
    return _clean(report)
