"""The assembled report: SRM on top, verdicts, guardrails, JSON of all numbers, one page."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from recsys.abtest.metrics import METRICS
from recsys.abtest.render import render_html, write_report
from recsys.abtest.report import ReportSettings, build_report
from recsys.abtest.sim_config import scenario
from recsys.abtest.simulate import simulate_experiment
from tests.abtest.conftest import TINY_EXPERIMENT, tiny_data


@pytest.fixture(scope="module")
def skewed_report() -> dict:
    """A/A whose assignment really splits 70/30 against a configured 50/50."""
    sim = simulate_experiment(scenario("broken", "tiny", assign_weights=(0.7, 0.3)), 0)
    return build_report(sim.data, sim.experiment, source="skewed")


@pytest.fixture(scope="module")
def good_report(sim_effect_tiny) -> dict:
    """The known-effect tiny experiment (SRM passes)."""
    return build_report(sim_effect_tiny.data, sim_effect_tiny.experiment)


def test_report_holds_every_metric_and_comparison(good_report: dict) -> None:
    assert [m["key"] for m in good_report["metrics"]] == [m.key for m in METRICS]
    for m in good_report["metrics"]:
        (c,) = m["comparisons"]
        assert (c["control"], c["treatment"]) == ("A", "B")
        assert c["verdict"] in ("better", "worse", "no detectable difference")
        assert c["effect_ci"][0] <= c["effect"] <= c["effect_ci"][1]
    assert good_report["trustworthy"] is True and good_report["srm"]["ok"] is True
    variants = {v["name"]: v for v in good_report["experiment"]["variants"]}
    assert variants["B"]["model_uri"] == "models:/item-to-agent/2"
    assert list(variants["B"]["model_versions"]) == ["2"]
    assert (
        sum(e["agents"] for e in good_report["exposures"])
        == good_report["integrity"]["agents_exposed"]
    )
    assert {r["variant"] for r in good_report["daily"]} == {"A", "B"}
    json.dumps(good_report, allow_nan=False)  # every number is plain JSON


def test_tiny_report_numbers(tmp_path: Path) -> None:
    report = build_report(tiny_data(), TINY_EXPERIMENT, ReportSettings(srm_alpha=0.01))
    primary = next(m for m in report["metrics"] if m["primary"])["comparisons"][0]
    # One agent per arm: net GMV 130 (A1) and 65 (A2); too few agents for a test.
    assert (primary["control_value"], primary["treatment_value"]) == (130.0, 65.0)
    assert primary["verdict"] == "not enough data"
    assert report["srm"]["counts"] == {"A": 1, "B": 1}
    assert len(report["notes"]) == 2  # A3 in both arms, A4 in an unknown arm
    write_report(report, tmp_path / "r.html", tmp_path / "r.json")
    assert json.loads((tmp_path / "r.json").read_text())["control"] == "A"
    assert "n/a" in (tmp_path / "r.html").read_text()


def test_failing_srm_is_on_top_in_red_and_marks_verdicts(skewed_report: dict) -> None:
    assert skewed_report["trustworthy"] is False
    assert skewed_report["srm"]["pvalue"] < 0.001
    assert all(
        c["trustworthy"] is False for m in skewed_report["metrics"] for c in m["comparisons"]
    )
    html = render_html(skewed_report)
    body = html[html.index("<body>") :]
    assert body.index('class="banner fail"') < body.index("<h2>Verdict</h2>")
    assert "Sample ratio mismatch" in body
    assert body.count("(untrustworthy: SRM)") >= len(METRICS)


def test_passing_srm_shows_a_quiet_banner_and_the_power_note(good_report: dict) -> None:
    html = render_html(good_report)
    assert 'class="banner ok"' in html and "banner fail" not in html
    assert "untrustworthy" not in html
    primary = next(m for m in good_report["metrics"] if m["primary"])["comparisons"][0]
    assert f"with 80% power (alpha 0.05) is B {100 * primary['rel_mde']:.1f}%" in html


def test_page_is_self_contained(good_report: dict) -> None:
    html = render_html(good_report)
    assert html.count("<svg") == 2
    assert not re.search(r"<(script|link|img)\b", html)
    # The SVGs refer to their own markers and clip paths (#id) and to nothing else.
    assert not re.search(r"""(src|href)\s*=\s*["'](?!#)|url\((?!#)""", html)
    assert "@import" not in html


def test_control_and_levels_are_checked(sim_effect_tiny) -> None:
    with pytest.raises(ValueError, match="control 'C' is not a variant of 'sim-effect'"):
        build_report(sim_effect_tiny.data, sim_effect_tiny.experiment, ReportSettings(control="C"))
    with pytest.raises(ValueError, match="alpha must be between 0 and 1, got 1.5"):
        ReportSettings(alpha=1.5)
    swapped = build_report(
        sim_effect_tiny.data, sim_effect_tiny.experiment, ReportSettings(control="B")
    )
    assert swapped["treatments"] == ["A"]


def test_three_arms_compare_each_treatment_with_the_control() -> None:
    config = scenario("aa", "tiny", variants=("A", "B", "C"), weights=(2.0, 1.0, 1.0))
    sim = simulate_experiment(config, 0)
    report = build_report(sim.data, sim.experiment)
    assert report["treatments"] == ["B", "C"]
    assert set(report["srm"]["counts"]) == {"A", "B", "C"}
    assert report["srm"]["expected"]["A"] == pytest.approx(2 * report["srm"]["expected"]["B"])
    for m in report["metrics"]:
        assert [c["treatment"] for c in m["comparisons"]] == ["B", "C"]
    html = render_html(report)
    assert "(B)" in html and "(C)" in html  # the effects plot names the arm of each row
