"""Model quality table: every model × target × seed on simulated data, and on the real log.

Runs the same training pipeline as `recsys train` (temporal holdout, same metrics) without
MLflow logging, and writes mean ± standard deviation over seeds as a markdown table.

    python bench/bench_models.py --scale small --seeds 0 1 2 --out docs/benchmarks-models.md
    python bench/bench_models.py --real var/data/retail --holdout-days 35 --out ...
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import pandas as pd  # noqa: E402

from training.config import load_config  # noqa: E402
from training.train import run_training  # noqa: E402

LOG = {"log_scale": True}
# (model params, interaction weights) per table row: the settings docs/benchmarks.md reports.
MODELS: dict[str, tuple[dict[str, object], dict[str, object]]] = {
    "popular": ({}, {}),
    "popular_region": ({"by": "region"}, {}),
    "repeat": ({}, {}),
    "itemknn": ({}, LOG),
    "als": ({"factors": 128, "iterations": 15, "regularization": 0.1, "alpha": 2.0}, LOG),
    "bpr": ({"factors": 64, "iterations": 100, "learning_rate": 0.05}, LOG),
    # the wrapper's defaults (recsys/models/lightfm_hybrid.py says why each is set so)
    "lightfm": ({}, LOG),
    "blend": ({"cf_model": "itemknn", "repeat_weight": 0.8}, LOG),
}
# Extra rows, run only when named in --models: LightFM with young SKUs scored from their side
# features alone (`young_identity=False`), and with LightFM's own WARP sampling depth (10).
VARIANTS: dict[str, tuple[dict[str, object], dict[str, object]]] = {
    "lightfm_side_only": ({"young_identity": False}, LOG),
    "lightfm_sampled10": ({"max_sampled": 10}, LOG),
}
ROWS = {**MODELS, **VARIANTS}
COLUMNS = (
    "ndcg_at_20", "kept_ndcg_at_20", "kept_recall_at_20", "new_ndcg_at_20",
    "return_rate_at_20", "coverage_at_20", "oracle_share_at_20", "segment.new_sku.recall_at_20",
)  # fmt: skip


def model_name(key: str) -> str:
    """The registry name behind a table row (`popular_region` → `popular`)."""
    return key.split("_")[0]


def run_case(data: Path, key: str, target: str, seed: int, holdout_days: int) -> dict:
    """Train and evaluate one (model, target, seed) and return its metrics and timings."""
    cfg = load_config(
        None,
        data=data,
        target=target,
        model=model_name(key),
        params=ROWS[key][0],
        weights=ROWS[key][1],
        seed=seed,
        holdout_days=holdout_days,
    )
    start = time.perf_counter()
    result = run_training(cfg, log_to_mlflow=False)
    row = {"model": key, "target": target, "seed": seed, "wall_s": time.perf_counter() - start}
    row.update({k: result.metrics.get(k, float("nan")) for k in COLUMNS})
    row.update(result.timings)
    return row


def table(frame: pd.DataFrame) -> str:
    """Markdown table of mean ± sd per (target, model)."""
    lines = []
    cols = [c for c in COLUMNS if frame[c].notna().any()]
    header = "| target | model | " + " | ".join(cols) + " | fit s |"
    lines += [header, "|" + "---|" * (len(cols) + 3)]
    for (target, key), group in frame.groupby(["target", "model"], sort=False):
        cells = []
        for c in cols:
            mean, sd = group[c].mean(), group[c].std(ddof=1) if len(group) > 1 else 0.0
            cells.append(f"{mean:.4f} ± {sd:.4f}" if len(group) > 1 else f"{mean:.4f}")
        lines.append(
            f"| {target} | {key} | " + " | ".join(cells) + f" | {group['fit_s'].mean():.1f} |"
        )
    return "\n".join(lines)


def main() -> None:
    """Run the grid and write the table."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--scale", default="small")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--real", type=Path, default=None, help="a data dir of real data")
    parser.add_argument("--holdout-days", type=int, default=14)
    parser.add_argument("--targets", nargs="+", default=["agent", "customer"])
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=list(ROWS))
    parser.add_argument("--workdir", type=Path, default=Path("var/bench"))
    parser.add_argument("--out", type=Path, default=Path("docs/benchmarks-models.md"))
    args = parser.parse_args()

    rows = []
    if args.real is not None:
        cases = [(args.real, 0)]
    else:
        from recsys.simulation.config import SimConfig
        from recsys.simulation.simulate import existing_outputs, write_simulation

        cases = []
        for seed in args.seeds:
            data = args.workdir / f"{args.scale}-seed{seed}"
            if not existing_outputs(data):
                write_simulation(SimConfig.preset(args.scale), seed, data, progress=False)
            cases.append((data, seed))
    for data, seed in cases:
        for target in args.targets:
            for key in args.models:
                row = run_case(data, key, target, seed, args.holdout_days)
                rows.append(row)
                print(json.dumps(row), flush=True)
    frame = pd.DataFrame(rows)
    args.workdir.mkdir(parents=True, exist_ok=True)
    frame.to_csv(args.workdir / f"models-{args.scale if args.real is None else 'real'}.csv")
    source = str(args.real) if args.real is not None else f"{args.scale}, seeds {args.seeds}"
    text = (
        f"## Model quality: {source} (holdout {args.holdout_days} days)\n\n"
        f"Measured {time.strftime('%Y-%m-%d')} on {os.cpu_count()} cores; mean ± sd over seeds.\n\n"
        + table(frame)
        + "\n"
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with open(args.out, "a") as fh:
        fh.write(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
