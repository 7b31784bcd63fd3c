"""Training-pipeline overhead: `recsys train --model als` end to end vs the bare implicit fit.

    python bench/bench_train.py --scale medium --out docs/benchmarks-train.md

Each case runs in its own process (peak RSS = ru_maxrss of that process). The pipeline's
overhead is everything but the fit: loading and validating, features, evaluation, MLflow logging.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

CHILD = """
import json, os, resource, sys, time, tempfile
os.environ["RECSYS_MLRUNS"] = tempfile.mkdtemp()
from pathlib import Path
from training.config import load_config
from training.train import run_training
cfg = load_config(None, data=Path(sys.argv[1]), model="als",
                  params={"factors": 64, "iterations": 15}, weights={"log_scale": True})
start = time.perf_counter()
result = run_training(cfg, log_to_mlflow=sys.argv[2] == "1")
total = time.perf_counter() - start
out = dict(result.timings, wall_s=total,
           peak_rss_mib=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
           kept_ndcg_at_20=result.metrics["kept_ndcg_at_20"])
print("RESULT " + json.dumps(out))
"""


def run(data: Path, log: bool) -> dict[str, float]:
    """One training run in a fresh process; its timings and peak memory."""
    proc = subprocess.run(
        [sys.executable, "-c", CHILD, str(data), "1" if log else "0"],
        capture_output=True,
        text=True,
        check=True,
    )
    line = next(ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT "))
    return json.loads(line[len("RESULT ") :])


def main() -> None:
    """Simulate if needed, train once with MLflow logging, and write the table."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--scale", default="medium")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workdir", type=Path, default=Path("var/bench"))
    parser.add_argument("--out", type=Path, default=Path("docs/benchmarks-train.md"))
    args = parser.parse_args()
    from recsys.simulation.config import SimConfig
    from recsys.simulation.simulate import existing_outputs, write_simulation

    data = args.workdir / f"{args.scale}-seed{args.seed}"
    if not existing_outputs(data):
        write_simulation(SimConfig.preset(args.scale), args.seed, data, progress=False)
    r = run(data, log=True)
    overhead = r["wall_s"] - r["fit_s"]
    text = (
        f"## Training pipeline overhead: `{args.scale}` (seed {args.seed}), ALS 64 factors\n\n"
        f"Measured {time.strftime('%Y-%m-%d')} on {os.cpu_count()} cores (shared machine).\n\n"
        "| prepare (load, validate, split, features) s | bare implicit fit s | evaluate s | "
        "total s | overhead / fit | peak RSS MiB |\n|---|---|---|---|---|---|\n"
        f"| {r['prepare_s']:.1f} | {r['fit_s']:.1f} | {r['evaluate_s']:.1f} | {r['wall_s']:.1f} "
        f"| {overhead / r['fit_s']:.2f}× | {r['peak_rss_mib']:.0f} |\n"
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with open(args.out, "a") as fh:
        fh.write(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
