"""Time and peak memory of `recsys simulate` (not a test).

    python bench/bench_simulate.py                   # small and ~1M purchase lines
    python bench/bench_simulate.py --cases medium    # any of: tiny small 1m medium large

Each case runs `write_simulation` (Parquet, no progress bar) in its own subprocess, so its peak
resident memory (`ru_maxrss`) is its own. Prints a markdown table and writes it, with the date
and the machine, to docs/benchmarks-simulator.md (`--no-write` to skip).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

# "1m" is `small` with more agents and SKUs: about a million purchase lines
CASES: dict[str, tuple[str, dict[str, int]]] = {
    "tiny": ("tiny", {}),
    "small": ("small", {}),
    "1m": ("small", {"n_agents": 3300, "n_skus": 5000}),
    "medium": ("medium", {}),
    "large": ("large", {}),
}
DOC = Path(__file__).resolve().parents[1] / "docs" / "benchmarks-simulator.md"

_CHILD = """
import json, resource, sys, time
from recsys.simulation.config import SimConfig
from recsys.simulation.simulate import write_simulation
scale, overrides, seed, out = sys.argv[1], json.loads(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
start = time.perf_counter()
summary = write_simulation(SimConfig.preset(scale, **overrides), seed, out, progress=False)
seconds = time.perf_counter() - start
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
print(json.dumps({"seconds": seconds, "peak_kib": peak, "rows": summary.rows}))
"""


@dataclass
class CaseResult:
    """Figures of one simulated case."""

    name: str
    config: str
    rows: dict[str, int]
    seconds: float
    peak_mib: float
    disk_mib: float


def run_case(name: str, seed: int) -> CaseResult:
    """Simulate one case in a fresh interpreter and return its figures."""
    scale, overrides = CASES[name]
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "data"
        proc = subprocess.run(
            [sys.executable, "-c", _CHILD, scale, json.dumps(overrides), str(seed), str(out)],
            check=True,
            capture_output=True,
            text=True,
        )
        size = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
    figures = json.loads(proc.stdout.strip().splitlines()[-1])
    return CaseResult(
        name=name,
        config=scale + "".join(f", {k}={v}" for k, v in overrides.items()),
        rows=figures["rows"],
        seconds=figures["seconds"],
        peak_mib=figures["peak_kib"] / 1024,
        disk_mib=size / 2**20,
    )


def markdown(results: list[CaseResult]) -> str:
    """The results as a markdown table."""
    lines = [
        "| case | config | purchase lines | shares | returns | customers | time (s) | lines/s "
        "| peak RSS (MiB) | on disk (MiB) |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        n = r.rows["purchases"]
        lines.append(
            f"| {r.name} | {r.config} | {n:,} | {r.rows['shares']:,} | {r.rows['returns']:,} "
            f"| {r.rows['customers']:,} | {r.seconds:.1f} | {n / r.seconds:,.0f} "
            f"| {r.peak_mib:,.0f} | {r.disk_mib:,.1f} |"
        )
    return "\n".join(lines)


def machine() -> str:
    """Cores, CPU model and Python version of this machine."""
    model = "unknown CPU"
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return f"{os.cpu_count()} cores (nproc), {model}, Python {platform.python_version()}"


def main() -> None:
    """Run the cases, print the table and write the benchmark page."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--cases", nargs="+", default=["small", "1m"], choices=list(CASES))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-write", action="store_true", help="Only print the table.")
    args = parser.parse_args()
    results = []
    for name in args.cases:
        print(f"running {name} ...", file=sys.stderr)
        results.append(run_case(name, args.seed))
    table = markdown(results)
    print(table)
    if args.no_write:
        return
    today = datetime.now(UTC).strftime("%Y-%m-%d")
    DOC.parent.mkdir(parents=True, exist_ok=True)
    DOC.write_text(
        "## Simulator\n\n"
        f"`python bench/bench_simulate.py --cases {' '.join(args.cases)}` on {today}, "
        f"{machine()}. Each case is one `recsys simulate` run (Parquet, seed {args.seed}) in its "
        "own process; time is wall clock of the whole run (world, days, writing tables and "
        "truth), peak RSS is `ru_maxrss` of that process.\n\n"
        f"{table}\n\n"
        "Targets (issue 2): `small` under 30 s and 1M purchase lines under 60 s on this 2-core "
        "machine. The machine is shared, so expect run-to-run noise of 15-40%.\n"
    )
    print(f"wrote {DOC}", file=sys.stderr)


if __name__ == "__main__":
    main()
