"""Local engine against Spark: quality on the same split, and time and memory as data grow.

    python bench/bench_scaling.py quality --data var/data/small            # kept NDCG@20, both
    python bench/bench_scaling.py scale --sizes 1m                         # train + publish
    python bench/bench_scaling.py scale --sizes 1m 5m 20m --engines spark --master local[2]

`quality` trains `implicit` ALS (local engine) and MLlib ALS (Spark engine) with the same
parameters on the same data and prints both engines' holdout metrics (docs/spark.md).

`scale` simulates each size once under `var/bench-scaling/` (seed 0), then for each engine runs
`recsys train` (item-to-agent ALS, registered in a private MLflow store) and `recsys publish`
(into a private Redis server) as separate processes, sampling the resident memory of each
process tree (Python, and the JVM for Spark) every 0.2 s. Prints a markdown table and, unless
`--no-write`, writes it with the date and the machine to docs/scaling.md (between markers),
together with the rows of earlier runs kept in var/bench-scaling/results.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "scaling.md"
DATA_ROOT = ROOT / "var" / "bench-scaling"
RESULTS = DATA_ROOT / "results.json"
BEGIN, END = "<!-- bench_scaling:begin -->", "<!-- bench_scaling:end -->"
# name -> (simulator preset, overrides): about 1M, 5M and 20M purchase lines
SIZES: dict[str, tuple[str, dict[str, int]]] = {
    "1m": ("small", {"n_agents": 3300, "n_skus": 5000}),
    "5m": ("medium", {}),
    "20m": ("medium", {"n_agents": 38000, "n_skus": 25000}),
}


@dataclass
class Step:
    """One measured command: wall time, peak resident memory of its process tree, its output."""

    seconds: float
    peak_mib: float
    output: str
    ok: bool


def _tree_rss(pid: int) -> int:
    """Resident bytes of a process and all its descendants (0 once it is gone)."""
    import psutil

    try:
        proc = psutil.Process(pid)
        procs = [proc, *proc.children(recursive=True)]
    except psutil.NoSuchProcess:
        return 0
    total = 0
    for p in procs:
        try:
            total += p.memory_info().rss
        except psutil.NoSuchProcess:
            continue
    return total


def run_step(args: list[str], env: dict[str, str]) -> Step:
    """Run one command, sampling its process tree's memory until it exits."""
    start = time.perf_counter()
    proc = subprocess.Popen(
        args, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=ROOT
    )
    peak = 0
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.is_set():
            peak = max(peak, _tree_rss(proc.pid))
            time.sleep(0.2)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    output, _ = proc.communicate()
    done.set()
    sampler.join()
    return Step(time.perf_counter() - start, peak / 2**20, output, proc.returncode == 0)


def ensure_data(size: str, seed: int = 0) -> tuple[Path, int]:
    """The simulated data of `size` (made once), and its number of purchase lines."""
    import pyarrow.dataset as pads

    out = DATA_ROOT / f"{size}-seed{seed}"
    if not (out / "skus.parquet").exists():
        from recsys.simulation.config import SimConfig
        from recsys.simulation.simulate import write_simulation

        preset, overrides = SIZES[size]
        print(f"simulating {size} ({preset}, {overrides}) into {out}", flush=True)
        write_simulation(SimConfig.preset(preset, **overrides), seed, out, progress=False)
    purchases = out / "purchases"
    source = purchases if purchases.is_dir() else out / "purchases.parquet"
    return out, pads.dataset(source, format="parquet").count_rows()


def _recsys(*args: str) -> list[str]:
    return [sys.executable, "-m", "recsys", *args]


def scale(sizes: list[str], engines: list[str], master: str, write: bool) -> None:
    """Train and publish each size with each engine; print (and write) the table."""
    from recsys.cache.server import start_redis_server

    rows = []
    server = start_redis_server()
    try:
        for size in sizes:
            data, n_lines = ensure_data(size)
            for engine in engines:
                with tempfile.TemporaryDirectory() as mlruns:
                    env = {
                        **os.environ,
                        "RECSYS_MLRUNS": mlruns,
                        "OPENBLAS_NUM_THREADS": "1",
                        "COLUMNS": "200",  # one line per message: the output is parsed
                    }
                    env.pop("MLFLOW_TRACKING_URI", None)
                    spark = ["--engine", engine] + (
                        ["--spark-master", master] if engine == "spark" else []
                    )
                    print(f"{size} {engine}: train", flush=True)
                    train = run_step(
                        _recsys("train", "--data", str(data), "--target", "agent", *spark), env
                    )
                    text = re.sub(r"\s+", " ", train.output)
                    version = re.search(r"item-to-agent v(\d+)", text)
                    run = re.search(r"MLflow run (\w+);", text)
                    publish = Step(float("nan"), float("nan"), "", False)
                    if train.ok and version:
                        print(f"{size} {engine}: publish", flush=True)
                        publish = run_step(
                            _recsys(
                                "publish",
                                "--target",
                                "agent",
                                "--model",
                                f"models:/item-to-agent/{version.group(1)}",
                                "--redis-url",
                                server.url,
                                "--no-progress",
                                *spark,
                            ),
                            env,
                        )
                    for step, name in ((train, "train"), (publish, "publish")):
                        if not step.ok:
                            print(f"{size} {engine} {name} failed:\n{step.output[-3000:]}")
                    rows.append(
                        {
                            "size": size,
                            "lines": n_lines,
                            "engine": engine,
                            "train_s": train.seconds,
                            "train_mib": train.peak_mib,
                            "publish_s": publish.seconds,
                            "publish_mib": publish.peak_mib,
                            "kept_ndcg_at_20": _kept_ndcg(mlruns, run.group(1) if run else None),
                            "ok": train.ok and publish.ok,
                        }
                    )
                    print(json.dumps(rows[-1]), flush=True)
    finally:
        server.stop()
    rows = _merge(rows)
    table = _table(rows, master)
    print(table)
    if write:
        _write_doc(table)


def _merge(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Earlier runs' rows (var/bench-scaling/results.json) updated with these, by size and engine.

    Sizes take hours at the top end, so they are measured in separate runs and tabled together.
    """
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    known = json.loads(RESULTS.read_text()) if RESULTS.exists() else []
    merged = {(r["size"], r["engine"]): r for r in [*known, *rows]}
    order = {name: i for i, name in enumerate(SIZES)}
    out = sorted(merged.values(), key=lambda r: (order.get(r["size"], 99), r["engine"]))
    RESULTS.write_text(json.dumps(out, indent=2))
    return out


def _kept_ndcg(mlruns: str, run_id: str | None) -> float:
    """The kept NDCG@20 a training run logged in the private MLflow store (NaN if none)."""
    if run_id is None:
        return float("nan")
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=f"sqlite:///{Path(mlruns).resolve() / 'mlflow.db'}")
    return float(client.get_run(run_id).data.metrics.get("kept_ndcg_at_20", float("nan")))


def _table(rows: list[dict[str, Any]], master: str) -> str:
    """The measured rows as a markdown table with a header line naming the machine."""
    head = (
        f"`python bench/bench_scaling.py scale` on {datetime.now(UTC):%Y-%m-%d}, "
        f"{os.cpu_count()} cores, {platform.processor() or platform.machine()}, Python "
        f"{platform.python_version()}; Spark master `{master}`. Peak memory is the resident "
        "memory of the whole process tree (the JVM included for Spark), sampled every 0.2 s.\n\n"
        "| size | purchase lines | engine | train (s) | train peak (MiB) | publish (s) "
        "| publish peak (MiB) | kept NDCG@20 |\n|---|---:|---|---:|---:|---:|---:|---:|\n"
    )
    lines = [
        f"| {r['size']} | {r['lines']:,} | {r['engine']} | {r['train_s']:.0f} | "
        f"{r['train_mib']:,.0f} | {r['publish_s']:.0f} | {r['publish_mib']:,.0f} | "
        f"{r['kept_ndcg_at_20']:.4f} |" + ("" if r["ok"] else " (failed)")
        for r in rows
    ]
    return head + "\n".join(lines) + "\n"


def _write_doc(table: str) -> None:
    """Put `table` between the markers of docs/scaling.md (appending the markers if absent)."""
    text = DOC.read_text() if DOC.exists() else "# Scaling\n\n"
    block = f"{BEGIN}\n{table}{END}"
    if BEGIN in text and END in text:
        text = text[: text.index(BEGIN)] + block + text[text.index(END) + len(END) :]
    else:
        text = text.rstrip("\n") + "\n\n" + block + "\n"
    DOC.write_text(text)


def quality(data: str, targets: list[str], params: dict[str, Any], master: str) -> None:
    """Both engines' holdout metrics with the same parameters on the same data."""
    from training.config import load_config
    from training.spark.train import run_spark_training
    from training.train import run_training

    keys = ("kept_ndcg_at_20", "ndcg_at_20", "recall_at_20", "oracle_share_at_20")
    print("| target | engine | " + " | ".join(keys) + " | seconds |")
    print("|---|---|" + "---:|" * (len(keys) + 1))
    for target in targets:
        config = load_config(None, data=data, model="als", target=target, params=params)
        for engine in ("local", "spark"):
            start = time.perf_counter()
            if engine == "local":
                result = run_training(config, log_to_mlflow=False)
            else:
                result = run_spark_training(config, master=master, log_to_mlflow=False)
            values = " | ".join(f"{result.metrics.get(k, float('nan')):.4f}" for k in keys)
            print(f"| {target} | {engine} | {values} | {time.perf_counter() - start:.0f} |")


def main() -> None:
    """Parse the command line and run the chosen benchmark."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    q = sub.add_parser("quality", help="kept NDCG@20 of both engines on one data set")
    q.add_argument("--data", required=True)
    q.add_argument("--targets", nargs="+", default=["agent", "customer"])
    q.add_argument("-p", "--param", action="append", default=[], help="ALS parameter name=value")
    q.add_argument("--master", default="local[*]")
    s = sub.add_parser("scale", help="time and peak memory of train and publish per size")
    s.add_argument("--sizes", nargs="+", default=["1m"], choices=sorted(SIZES))
    s.add_argument("--engines", nargs="+", default=["local", "spark"], choices=["local", "spark"])
    s.add_argument("--master", default="local[*]")
    s.add_argument("--no-write", action="store_true", help="do not update docs/scaling.md")
    args = parser.parse_args()
    if args.command == "quality":
        from training.config import parse_param

        quality(args.data, args.targets, dict(parse_param(p) for p in args.param), args.master)
    else:
        scale(args.sizes, args.engines, args.master, not args.no_write)


if __name__ == "__main__":
    main()
