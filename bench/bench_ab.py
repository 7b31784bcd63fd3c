"""A/B report proofs at full size (issue 6, section 4): the section of docs/benchmarks.md.

    python bench/bench_ab.py                       # everything, default seeds (~12 min on 2 cores)
    python bench/bench_ab.py --aa-seeds 200 --effect-seeds 100 --no-write

A/A: `aa` experiments (no effect) at `small`, on the fast path and, for a subset, on the
report's own path (`run_full`); the share of p < 0.05 on the primary metric, and of SRM
p-values below 0.05, must sit in the binomial 95% band around 5%. Known effect: `effect` at
`medium` (and `small`, to show why `medium` is the documented size): detection and coverage of
the true effect on net GMV and return rate. Broken split: `broken` (56/44 against a configured
50/50) and a milder 52/48. A few seeds go through Parquet on disk and must equal the fast path.
The section between the markers in docs/benchmarks.md is replaced (added at the end if absent).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import textwrap
import time
from datetime import date
from pathlib import Path
from typing import Any

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from rich.progress import Progress  # noqa: E402
from scipy import stats  # noqa: E402

from recsys.abtest.replicates import binomial_band, run_fast, run_full, summarize  # noqa: E402
from recsys.abtest.sim_config import scenario  # noqa: E402
from recsys.console import progress_columns  # noqa: E402

DOC = Path(__file__).resolve().parents[1] / "docs" / "benchmarks.md"
START, END = "<!-- bench_ab:start -->", "<!-- bench_ab:end -->"


def _run(
    progress: Progress, label: str, path: str, name: str, scale: str, seeds: range, **kw: Any
) -> tuple[pd.DataFrame, float]:
    """Results of `seeds` on one path with a progress bar, and seconds per seed."""
    task = progress.add_task(label, total=len(seeds))
    config = scenario(name, scale, **kw)
    started = time.perf_counter()
    runner = run_fast if path == "fast" else run_full
    results = runner(config, seeds, progress=lambda: progress.advance(task))
    return results, (time.perf_counter() - started) / len(seeds)


def _rate(count: int, n: int) -> str:
    """`12/200 (6.0%)`."""
    return f"{count}/{n} ({100 * count / n:.1f}%)"


def _aa_rows(results: pd.DataFrame, label: str) -> list[str]:
    """Markdown rows of an A/A run: false positives with and without CUPED, SRM, uniformity."""
    s = summarize(results)
    n, (lo, hi) = s["runs"], s["band_at_alpha"]
    p = results["net_gmv_per_agent.pvalue"]
    ks = stats.kstest(p, "uniform").pvalue
    fp = s["net_gmv_per_agent"]["significant"]
    srm = s["srm_pvalue_below_alpha"]
    alarm_lo, alarm_hi = binomial_band(n, s["srm_alpha"])
    ok = lo <= fp <= hi and lo <= srm <= hi and s["srm_alarms"] <= alarm_hi
    return [
        f"| {label} | {n} | {_rate(fp, n)} "
        f"| {_rate(s['net_gmv_per_agent']['plain_significant'], n)} "
        f"| {_rate(s['return_rate']['significant'], n)} | {_rate(srm, n)} "
        f"| {s['srm_alarms']} (band {alarm_lo}–{alarm_hi}) "
        f"| {lo}–{hi} | {ks:.2f} | {'yes' if ok else '**no**'} |"
    ]


def _effect_rows(results: pd.DataFrame, label: str) -> list[str]:
    """Markdown rows of a known-effect run, one per proved metric."""
    s = summarize(results)
    n = s["runs"]
    rows = []
    for key, unit in (("net_gmv_per_agent", "RMB"), ("return_rate", "pp")):
        m = s[key]
        scale = 100 if unit == "pp" else 1
        ok = m["detected"] >= 0.8 * n and m["covered"] >= 0.8 * n
        rows.append(
            f"| {label} | {key} | {n} | {scale * m['mean_true_effect']:+.2f} {unit} "
            f"| {scale * m['mean_effect']:+.2f} {unit} | {_rate(m['detected'], n)} "
            f"| {_rate(m['covered'], n)} | {scale * m['mean_ci_width']:.2f} {unit} "
            f"| {100 * m['mean_variance_reduction']:.0f}% | {'yes' if ok else '**no**'} |"
        )
    return rows


def _disk_check(seeds: range, workdir: str) -> bool:
    """Whether the report's path through Parquet gives exactly the fast path's numbers."""
    config = scenario("effect", "small")
    fast = run_fast(config, seeds)
    disk = run_full(config, seeds, workdir=workdir)
    a, b = fast.drop(columns="seed").astype(float), disk.drop(columns="seed").astype(float)
    return bool(np.allclose(a.to_numpy(), b.to_numpy(), rtol=1e-9, equal_nan=True))


def _report_timing(workdir: str) -> dict[str, float]:
    """Seconds to load a `medium` experiment from disk and build + render its report."""
    from recsys.abtest.data import load_experiment_data
    from recsys.abtest.render import render_html
    from recsys.abtest.report import build_report
    from recsys.abtest.sim_write import write_experiment
    from recsys.abtest.simulate import simulate_experiment

    sim = simulate_experiment(scenario("effect", "medium"), 0)
    out = write_experiment(sim, Path(workdir) / "timing")
    t0 = time.perf_counter()
    data = load_experiment_data(out)
    t1 = time.perf_counter()
    report = build_report(data, sim.experiment)
    t2 = time.perf_counter()
    render_html(report)
    t3 = time.perf_counter()
    return {
        "purchase_lines": float(len(data.purchases)),
        "exposures": float(len(data.exposures)),
        "load": t1 - t0,
        "report": t2 - t1,
        "render": t3 - t2,
    }


def _section(parts: dict[str, Any], args: argparse.Namespace) -> str:
    """The markdown section."""
    lines = [
        START,
        "## A/B report proofs",
        "",
        f"`python bench/bench_ab.py` (measured {date.today().isoformat()}; generator and "
        "scenarios in [ab-testing.md](ab-testing.md); seeds 0..N-1). The fast path computes the "
        "same per-agent sums as the report from the simulator's arrays and is checked equal to it; "
        "`full` runs the report's own code per seed (in memory).",
        "",
        "**A/A** (no effect, `small`: ~1,900 exposed agents, 50/50): share of runs with p < 0.05 "
        "on net GMV per agent (CUPED, and plain without the covariate), on the return-rate "
        "guardrail, and of SRM p-values < 0.05; SRM alarms are p < 0.001. The band is the binomial "
        "95% range of the count at 5%; KS is the p-value of the primary p-values against uniform.",
        "",
        "| path | runs | primary p<0.05 | plain p<0.05 | return rate p<0.05 | SRM p<0.05 "
        "| SRM alarms | band | KS p | in band |",
        "|---|---:|---:|---:|---:|---:|---:|---|---:|---|",
        *parts["aa"],
        "",
        f"Seconds per seed: fast {parts['speed']['fast']:.3f}, full {parts['speed']['full']:.3f} "
        f"(the fast path is {parts['speed']['full'] / parts['speed']['fast']:.0f}× the report's "
        "own path, the baseline, in the same run).",
        "",
        "**Known effect** (B: purchase lines ×1.08, return probability ×0.7, shares ×1.3; truth "
        "from `sim_truth`, the sample average over the analysed agents). Detected = p < 0.05 in "
        "the true direction; covered = the 95% interval holds the true effect; CI width and "
        "CUPED variance reduction are means over seeds. `medium` (~7,600 exposed agents) is the "
        "documented size.",
        "",
        "| scale | metric | runs | true effect | mean estimate | detected | covered "
        "| mean CI width | CUPED var. red. | ≥ 80% both |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---|",
        *parts["effect"],
        "",
        "**Broken split** (A/A whose assignment really splits as shown while the configuration "
        "says 50/50): SRM alarms (p < 0.001).",
        "",
        "| real split | scale | runs | SRM alarms |",
        "|---|---|---:|---:|",
        *parts["broken"],
        "",
        f"Parquet round trip: {len(args.disk_seeds_range)} seeds written as data directories, "
        f"read back and reported give exactly the fast path's numbers: "
        f"{'yes' if parts['disk'] else '**no**'}.",
        "",
        f"Report on `medium` ({parts['timing']['purchase_lines']:,.0f} purchase lines, "
        f"{parts['timing']['exposures']:,.0f} exposures): load and validate "
        f"{parts['timing']['load']:.1f} s, outcomes + statistics "
        f"{parts['timing']['report']:.1f} s, "
        f"HTML {parts['timing']['render']:.1f} s.",
        END,
    ]
    # Prose wrapped at 100 like the rest of the page; table rows stay whole.
    wrapped = [
        line
        if line.startswith(("|", "<!--"))
        else textwrap.fill(line, 100, break_long_words=False, break_on_hyphens=False)
        for line in lines
    ]
    return "\n".join(wrapped) + "\n"


def _write_section(text: str) -> None:
    """Replace the section between the markers, or append it."""
    doc = DOC.read_text()
    if START in doc and END in doc:
        before, rest = doc.split(START, 1)
        after = rest.split(END, 1)[1].lstrip("\n")
        doc = before + text + after
    else:
        doc = doc.rstrip("\n") + "\n\n" + text
    DOC.write_text(doc)


def main() -> None:
    """Run the proofs and write the section."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--aa-seeds", type=int, default=2000)
    parser.add_argument("--aa-full-seeds", type=int, default=100)
    parser.add_argument("--effect-seeds", type=int, default=200)
    parser.add_argument("--broken-seeds", type=int, default=100)
    parser.add_argument("--disk-seeds", type=int, default=3)
    parser.add_argument("--no-write", action="store_true", help="print, leave the docs alone")
    parser.add_argument("--json", type=Path, help="also write every per-seed row here")
    args = parser.parse_args()
    args.disk_seeds_range = range(args.disk_seeds)
    parts: dict[str, Any] = {"aa": [], "effect": [], "broken": []}
    rows: dict[str, list[dict[str, Any]]] = {}
    with Progress(*progress_columns()) as progress:
        aa, fast_s = _run(progress, "A/A fast", "fast", "aa", "small", range(args.aa_seeds))
        aa_full, full_s = _run(
            progress, "A/A full", "full", "aa", "small", range(args.aa_full_seeds)
        )
        parts["aa"] += _aa_rows(aa, "fast") + _aa_rows(aa_full, "full")
        parts["speed"] = {"fast": fast_s, "full": full_s}
        rows["aa"], rows["aa_full"] = aa.to_dict("records"), aa_full.to_dict("records")
        for scale in ("medium", "small"):
            found, _ = _run(
                progress, f"effect {scale}", "fast", "effect", scale, range(args.effect_seeds)
            )
            parts["effect"] += _effect_rows(found, scale)
            rows[f"effect_{scale}"] = found.to_dict("records")
        for split, scale in (
            ((0.56, 0.44), "small"),
            ((0.52, 0.48), "small"),
            ((0.52, 0.48), "medium"),
        ):
            found, _ = _run(
                progress, f"broken {split} {scale}", "fast", "broken", scale,
                range(args.broken_seeds), assign_weights=split,
            )  # fmt: skip
            alarms = int((found["srm_pvalue"] < 0.001).sum())
            label = f"{round(100 * split[0])}/{round(100 * split[1])}"
            parts["broken"].append(
                f"| {label} | {scale} | {len(found)} | {_rate(alarms, len(found))} |"
            )
        with tempfile.TemporaryDirectory() as tmp:
            parts["disk"] = _disk_check(args.disk_seeds_range, tmp)
            parts["timing"] = _report_timing(tmp)
    text = _section(parts, args)
    print(text)
    if args.json:
        args.json.write_text(json.dumps(rows, default=float, indent=1))
    if not args.no_write:
        _write_section(text)
        print(f"wrote the section to {DOC}")
    print(f"band check at 5% for {args.aa_seeds} runs: {binomial_band(args.aa_seeds, 0.05)}")


if __name__ == "__main__":
    sys.exit(main())
