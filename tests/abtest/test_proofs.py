"""The statistical proofs of the report, in-suite size (the bench runs them bigger).

Seeds are fixed, so each proof is a reproducible check: A/A false positives within the binomial
band, a known effect detected and covered, and a skewed split caught by SRM. The fast path gives
the same numbers as the report's own path (test_simulate.py).
"""

from __future__ import annotations

from recsys.abtest.replicates import binomial_band, run_fast, summarize
from recsys.abtest.sim_config import scenario


def test_aa_false_positives_sit_in_the_binomial_band() -> None:
    results = run_fast(scenario("aa", "small"), range(100))
    summary = summarize(results)
    lo, hi = binomial_band(100, 0.05)
    assert lo <= summary["net_gmv_per_agent"]["significant"] <= hi, summary
    assert lo <= summary["srm_pvalue_below_alpha"] <= hi, summary
    assert summary["srm_alarms"] <= binomial_band(100, 0.001)[1]
    # With no effect, every interval that misses zero is a false positive.
    assert (
        summary["net_gmv_per_agent"]["covered"] == 100 - summary["net_gmv_per_agent"]["significant"]
    )
    assert summary["net_gmv_per_agent"]["mean_variance_reduction"] > 0.3  # CUPED helps


def test_known_effect_is_detected_and_covered() -> None:
    results = run_fast(scenario("effect", "medium"), range(20))
    summary = summarize(results)
    for key in ("net_gmv_per_agent", "return_rate"):
        assert summary[key]["detected"] >= 16, (key, summary[key])  # >= 80% of seeds
        assert summary[key]["covered"] >= 16, (key, summary[key])
    assert summary["net_gmv_per_agent"]["mean_true_effect"] > 0
    assert summary["return_rate"]["mean_true_effect"] < 0


def test_skewed_split_is_caught_by_srm() -> None:
    results = run_fast(scenario("broken", "small"), range(20))
    assert (results["srm_pvalue"] < 0.001).all(), results["srm_pvalue"].describe()
