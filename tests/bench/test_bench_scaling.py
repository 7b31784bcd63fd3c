"""bench/bench_scaling.py: the CPU of each training stage, placed on the sampled timeline."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
from bench_scaling import Step, _step_details, stage_cpu  # noqa: E402


def _step(seconds: float, rate: list[tuple[float, float]]) -> Step:
    """A step sampled every 0.5 s whose tree burns CPU at `rate` (until, cores) piecewise."""
    timeline, cpu, t = [], 0.0, 0.0
    while t <= seconds + 1e-9:
        timeline.append((t, cpu))
        cores = next(c for until, c in rate if t < until or until == rate[-1][0])
        cpu += 0.5 * cores
        t += 0.5
    return Step(seconds, 0.0, "", True, cpu, timeline)


def test_stage_cpu_aligns_the_stages_with_the_end_of_the_process() -> None:
    # 5 s of imports on one core, then session 5 s (1 core), prepare 20 s (2 cores),
    # fit 40 s (1.5 cores), logging 10 s (0.5 core): total_s = 75, process = 80 s
    step = _step(80.0, [(5, 1.0), (10, 1.0), (30, 2.0), (70, 1.5), (80, 0.5)])
    timings = {"session_s": 5.0, "prepare_s": 20.0, "fit_s": 40.0, "total_s": 75.0}
    cpu = stage_cpu(step, timings)
    assert cpu["session"] == pytest.approx(5.0, abs=0.6)
    assert cpu["prepare"] == pytest.approx(40.0, abs=1.1)
    assert cpu["fit"] == pytest.approx(60.0, abs=1.1)
    assert cpu["log"] == pytest.approx(5.0, abs=0.6)
    assert sum(cpu.values()) == pytest.approx(step.timeline[-1][1] - 5.0, abs=0.6)


def test_stage_cpu_without_timings_or_samples_is_empty() -> None:
    assert stage_cpu(_step(10.0, [(10, 1.0)]), {"fit_s": 3.0}) == {}
    assert stage_cpu(Step(1.0, 0.0, "", True), {"total_s": 1.0}) == {}


def test_step_details_reads_both_commands_timings() -> None:
    train = "noise\ntimings: session_s 3.2s, prepare_s 10.5s, total_s 20.0s\n"
    publish = (
        "900 users (0 without picks), 90000 picks, 1005 B per user, 14 fallback lists\n"
        "timings: prepare_s 1.5s, picks_s 7.25s\n"
    )
    out = _step_details(train, publish)
    assert out["train_timings"] == {"session_s": 3.2, "prepare_s": 10.5, "total_s": 20.0}
    assert out["publish_timings"] == {"prepare_s": 1.5, "picks_s": 7.25}
    assert out["publish_counts"]["value_bytes_per_user"] == 1005
