"""Local engine against Spark: quality on the same split, and time and memory as data grow.

    python bench/bench_scaling.py quality --data var/data/small            # kept NDCG@20, both
    python bench/bench_scaling.py scale --sizes 1m                         # train + publish
    python bench/bench_scaling.py scale --sizes 1m 5m 20m --engines spark --master local[2]
    python bench/bench_scaling.py scale --sizes 50m --engines spark --master local[2]
    python bench/bench_scaling.py redis-memory                           # bytes per user in Redis
    python bench/bench_scaling.py unit-costs --master local[2]           # scoring and ALS costs

`quality` trains `implicit` ALS (local engine) and MLlib ALS (Spark engine) with the same
parameters on the same data and prints both engines' holdout metrics (docs/spark.md).

`scale` simulates each size once under `var/bench-scaling/` (seed 0, `recsys simulate` as a
measured process of its own: the simulator streams the event tables to parts of
`chunk_rows` lines, `purchases/part-00000.parquet`, ..., so its memory is bounded by a chunk and
the world, not by the log; `50m` is the `large` preset widened to 68,000 agents), then for each
engine runs
`recsys train` (item-to-agent ALS, registered in a private MLflow store) and `recsys publish`
(into a private Redis server) as separate processes, sampling the resident memory and CPU time
of each process tree (Python, and the JVM for Spark) every 0.2 s. Prints a markdown table and,
unless `--no-write`, writes it with the date and the machine to docs/scaling.md (between
markers), together with the rows of earlier runs kept in var/bench-scaling/results.json (which
also hold each run's CPU seconds, the stage timings `recsys train` and `recsys publish` printed,
the CPU seconds of each training stage (`stage_cpu`), the counts `recsys publish` printed and the
time and peak memory of the data's generation; when that file is
missing, the rows already tabled in docs/scaling.md are kept as they stand there).

`redis-memory` simulates `small`, trains an ALS per target (local engine), publishes both into
a private Redis and sums `MEMORY USAGE` of every key of each live snapshot by kind (picks
buckets, agent profiles, similar SKUs, SKU table, ...): the per-user figures of the sizing model.

`unit-costs` times the two kernels the sizing model extrapolates: the executors' scoring of one
batch of users against a catalogue of 25k and 200k SKUs (the publish's own `ModelSource` on a
`SparkALSRecommender`, one thread), and MLlib ALS iterations on random pairs (the training's own
`fit_spark_als`, on `--master`, fitted twice with different iteration counts so that the fixed
costs cancel; CPU read from the process tree, JVM included). Rows also go to
var/bench-scaling/unit-costs.json.
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
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "scaling.md"
DATA_ROOT = ROOT / "var" / "bench-scaling"
RESULTS = DATA_ROOT / "results.json"
BEGIN, END = "<!-- bench_scaling:begin -->", "<!-- bench_scaling:end -->"
MEMORY_MARKERS = ("<!-- bench_scaling_memory:begin -->", "<!-- bench_scaling_memory:end -->")
COSTS_MARKERS = ("<!-- bench_scaling_costs:begin -->", "<!-- bench_scaling_costs:end -->")
# name -> (simulator preset, overrides): about 0.3M, 1M, 5M, 20M and 50M+ purchase lines
SIZES: dict[str, tuple[str, dict[str, int]]] = {
    "small": ("small", {}),
    "1m": ("small", {"n_agents": 3300, "n_skus": 5000}),
    "5m": ("medium", {}),
    "20m": ("medium", {"n_agents": 38000, "n_skus": 25000}),
    # `large` alone gives 48.0M lines at 63,000 agents; lines grow with the agents (their groups)
    "50m": ("large", {"n_agents": 68000}),
}
# written last by the simulator: a directory without it is an interrupted run, made again
COMPLETE_MARK = Path("truth") / "tier_history.parquet"
GENERATION = DATA_ROOT / "generation.json"


@dataclass
class Step:
    """One measured command: wall time, peak memory and CPU of its process tree, its output."""

    seconds: float
    peak_mib: float
    output: str
    ok: bool
    cpu_s: float = float("nan")  # CPU of the tree, each process at its last 0.2 s sample
    # (seconds since start, CPU seconds of the tree so far) at every sample
    timeline: list[tuple[float, float]] = field(default_factory=list)


def _tree_sample(pid: int, cpu: dict[int, float]) -> int:
    """Resident bytes of a process and all its descendants (0 once it is gone).

    Also records each process's CPU seconds so far in `cpu` (by pid), so that the CPU of
    processes that exit between samples (Spark's Python workers) is kept at its last reading.
    """
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
            times = p.cpu_times()
        except psutil.NoSuchProcess:
            continue
        cpu[p.pid] = times.user + times.system
    return total


def run_step(args: list[str], env: dict[str, str]) -> Step:
    """Run one command, sampling its process tree's memory and CPU until it exits."""
    start = time.perf_counter()
    proc = subprocess.Popen(
        args, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=ROOT
    )
    peak = 0
    cpu: dict[int, float] = {}
    timeline: list[tuple[float, float]] = []
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.is_set():
            peak = max(peak, _tree_sample(proc.pid, cpu))
            timeline.append((time.perf_counter() - start, sum(cpu.values())))
            time.sleep(0.2)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    output, _ = proc.communicate()
    done.set()
    sampler.join()
    seconds = time.perf_counter() - start
    ok = proc.returncode == 0
    return Step(seconds, peak / 2**20, output, ok, sum(cpu.values()), timeline)


def stage_cpu(step: Step, timings: dict[str, float]) -> dict[str, float]:
    """CPU seconds of the process tree in each of the training's stages.

    `recsys train` prints how long each stage took, one after the other, ending with `total_s`
    just before the process exits; the stages are placed on the sampled timeline by aligning
    that end with the process's, so each stage's CPU is known to within the few seconds the
    process spends after it (printing, stopping Spark). Time in `total_s` not covered by the
    named stages is the MLflow logging, reported as `log`.
    """
    if not step.timeline or "total_s" not in timings:
        return {}
    times = [t for t, _ in step.timeline]
    cpus = [c for _, c in step.timeline]

    def cpu_at(t: float) -> float:
        import bisect

        i = min(bisect.bisect_left(times, t), len(times) - 1)
        return cpus[i]

    start = step.seconds - timings["total_s"]
    out: dict[str, float] = {}
    stages = [k for k in timings if k != "total_s"]
    for name in stages:
        end = start + timings[name]
        out[name.removesuffix("_s")] = cpu_at(end) - cpu_at(start)
        start = end
    out["log"] = cpu_at(step.seconds) - cpu_at(start)
    return out


def ensure_data(size: str, seed: int = 0) -> tuple[Path, int]:
    """The simulated data of `size` (made once, by a measured `recsys simulate` process).

    Returns the data directory and its number of purchase lines. The generation's wall time,
    peak memory and CPU go to var/bench-scaling/generation.json.
    """
    import pyarrow.dataset as pads

    out = DATA_ROOT / f"{size}-seed{seed}"
    if not (out / COMPLETE_MARK).exists():
        preset, overrides = SIZES[size]
        print(f"simulating {size} ({preset}, {overrides}) into {out}", flush=True)
        sets = [a for k, v in overrides.items() for a in ("--set", f"{k}={json.dumps(v)}")]
        args = ["simulate", "--out", str(out), "--scale", preset, "--seed", str(seed), *sets]
        step = run_step(_recsys(*args, "--overwrite", "--quiet"), dict(os.environ))
        if not step.ok:
            raise SystemExit(f"simulating {size} failed:\n{step.output[-3000:]}")
        record = {"seconds": step.seconds, "peak_mib": step.peak_mib, "cpu_s": step.cpu_s}
        print(f"simulated {size}: {json.dumps(record)}", flush=True)
        DATA_ROOT.mkdir(parents=True, exist_ok=True)
        known = json.loads(GENERATION.read_text()) if GENERATION.exists() else {}
        GENERATION.write_text(json.dumps({**known, f"{size}-seed{seed}": record}, indent=2))
    purchases = out / "purchases"
    source = purchases if purchases.is_dir() else out / "purchases.parquet"
    return out, pads.dataset(source, format="parquet").count_rows()


def _recsys(*args: str) -> list[str]:
    return [sys.executable, "-m", "recsys", *args]


def scale(
    sizes: list[str], engines: list[str], master: str, write: bool, spark_conf: list[str]
) -> None:
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
                    conf = [a for c in spark_conf for a in ("--spark-conf", c)]
                    spark = ["--engine", engine] + (
                        ["--spark-master", master, *conf] if engine == "spark" else []
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
                            **_step_details(train.output, publish.output),
                            "size": size,
                            "lines": n_lines,
                            "engine": engine,
                            "master": master if engine == "spark" else None,
                            "spark_conf": spark_conf if engine == "spark" else None,
                            "train_s": train.seconds,
                            "train_mib": train.peak_mib,
                            "train_cpu_s": train.cpu_s,
                            "train_stage_cpu_s": stage_cpu(
                                train, _step_details(train.output, "").get("train_timings", {})
                            ),
                            "publish_cpu_s": publish.cpu_s,
                            "publish_s": publish.seconds,
                            "publish_mib": publish.peak_mib,
                            "kept_ndcg_at_20": _kept_ndcg(mlruns, run.group(1) if run else None),
                            "ok": train.ok and publish.ok,
                            "date": f"{datetime.now(UTC):%Y-%m-%d}",
                            "generation": _generation(size),
                        }
                    )
                    print(json.dumps(rows[-1]), flush=True)
    finally:
        server.stop()
    rows = _merge(rows)
    table = _table(rows)
    print(table)
    if write:
        _write_doc(table)


def _step_details(train_output: str, publish_output: str) -> dict[str, Any]:
    """The stage timings `recsys train` and `recsys publish` printed, and the publish's counts."""
    out: dict[str, Any] = {}
    timings = re.search(r"timings: (.*)", train_output)
    if timings:
        out["train_timings"] = {
            name: float(value) for name, value in re.findall(r"(\w+) ([\d.]+)s", timings.group(1))
        }
    published = re.search(r"timings: (.*)", publish_output)
    if published:
        out["publish_timings"] = {
            name: float(value) for name, value in re.findall(r"(\w+) ([\d.]+)s", published.group(1))
        }
    counts = re.search(
        r"(\d+) users \((\d+) without picks\), (\d+) picks, (\d+) B per user", publish_output
    )
    if counts:
        users, empty, picks, per_user = (int(g) for g in counts.groups())
        out["publish_counts"] = {
            "users": users,
            "users_without_picks": empty,
            "picks": picks,
            "value_bytes_per_user": per_user,
        }
    return out


def _generation(size: str, seed: int = 0) -> dict[str, float] | None:
    """Time, peak memory and CPU of the simulation that made `size` (None if not recorded)."""
    known = json.loads(GENERATION.read_text()) if GENERATION.exists() else {}
    return known.get(f"{size}-seed{seed}")


def _rows_from_doc() -> list[dict[str, Any]]:
    """The rows tabled in docs/scaling.md, as far as the table holds them (no CPU or timings).

    Used when var/bench-scaling/results.json is missing (a fresh checkout), so that a run of one
    size does not drop the sizes measured before from the table.
    """
    text = DOC.read_text() if DOC.exists() else ""
    if BEGIN not in text or END not in text:
        return []
    block = text[text.index(BEGIN) : text.index(END)]
    dated = re.search(r"scale` on (\d{4}-\d{2}-\d{2})", block)
    rows = []
    for line in block.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) != 8 or cells[0] not in SIZES or cells[2] not in ("local", "spark"):
            continue
        size, lines, engine, train_s, train_mib, publish_s, publish_mib, ndcg = cells
        ok = not ndcg.endswith("(failed)")
        rows.append(
            {
                "size": size,
                "lines": int(lines.replace(",", "")),
                "engine": engine,
                "master": None,
                "train_s": float(train_s),
                "train_mib": float(train_mib.replace(",", "")),
                "publish_s": float(publish_s),
                "publish_mib": float(publish_mib.replace(",", "")),
                "kept_ndcg_at_20": float(ndcg.split()[0]),
                "ok": ok,
                "date": dated.group(1) if dated else None,
                "from_doc": True,
            }
        )
    masters = re.search(r"Spark master `([^`]+)`", block)
    for row in rows:
        if row["engine"] == "spark" and masters:
            row["master"] = masters.group(1)
    return rows


def _merge(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Earlier runs' rows (var/bench-scaling/results.json) updated with these, by size and engine.

    Sizes take hours at the top end, so they are measured in separate runs and tabled together.
    """
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    known = json.loads(RESULTS.read_text()) if RESULTS.exists() else _rows_from_doc()
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


def _table(rows: list[dict[str, Any]]) -> str:
    """The measured rows as a markdown table with a header line naming the machine."""
    masters = sorted({r.get("master") or "unrecorded" for r in rows if r["engine"] == "spark"})
    by_date: dict[str, list[str]] = {}
    for r in rows:
        sizes = by_date.setdefault(r.get("date") or "an unrecorded date", [])
        if r["size"] not in sizes:
            sizes.append(r["size"])
    dates = (
        next(iter(by_date))
        if len(by_date) == 1
        else " and ".join(f"{d} ({', '.join(s)})" for d, s in by_date.items())
    )
    head = (
        f"`python bench/bench_scaling.py scale` on {dates}, "
        f"{os.cpu_count()} cores, {platform.processor() or platform.machine()}, Python "
        f"{platform.python_version()}; Spark master {', '.join(f'`{m}`' for m in masters)}. "
        "Peak memory is the resident "
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


def _write_doc(table: str, markers: tuple[str, str] = (BEGIN, END)) -> None:
    """Put `table` between `markers` in docs/scaling.md (appending the markers if absent)."""
    begin, end = markers
    text = DOC.read_text() if DOC.exists() else "# Scaling\n\n"
    block = f"{begin}\n{table}{end}"
    if begin in text and end in text:
        text = text[: text.index(begin)] + block + text[text.index(end) + len(end) :]
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


def _key_kind(name: str, snapshot: str) -> str:
    """The kind of a snapshot key: its name after the snapshot id, bucket numbers as <b>."""
    tail = name.split(f"{snapshot}:", 1)[1]
    return re.sub(r"(?<=:)\d+(?=:|$)", "<b>", tail)


def _measure_snapshot(client: Any, target: str) -> dict[str, dict[str, int]]:
    """Keys, fields, value bytes and `MEMORY USAGE` of the live snapshot of `target`, by kind."""
    from recsys.cache.keys import CacheKeys
    from training.publish_writer import snapshot_key_names

    keys = CacheKeys(target)
    snapshot = client.get(keys.pointer()).decode()
    names = snapshot_key_names(client, keys, snapshot)
    if names is None:
        raise SystemExit(f"the live {target} snapshot {snapshot} has no meta record")
    kinds: dict[str, dict[str, int]] = {}
    for name in names:
        kind = kinds.setdefault(
            _key_kind(name, snapshot), {"keys": 0, "fields": 0, "value_bytes": 0, "memory": 0}
        )
        kind_type = client.type(name).decode()
        if kind_type == "none":
            continue
        kind["keys"] += 1
        kind["memory"] += int(client.memory_usage(name, samples=0) or 0)
        if kind_type == "hash":
            values = client.hvals(name)
            kind["fields"] += len(values)
            kind["value_bytes"] += sum(map(len, values))
        else:
            kind["fields"] += 1
            kind["value_bytes"] += int(client.strlen(name))
    return kinds


def _tree_cpu(pid: int) -> float:
    """CPU seconds (user + system) used so far by a process and its descendants (the JVM)."""
    import psutil

    proc = psutil.Process(pid)
    total = 0.0
    for p in [proc, *proc.children(recursive=True)]:
        try:
            times = p.cpu_times()
        except psutil.NoSuchProcess:
            continue
        total += times.user + times.system
    return total


def _tree_bytes(root: Path) -> int:
    """Bytes of every file under `root` except the tracking database (the logged artifacts)."""
    return sum(f.stat().st_size for f in root.rglob("*") if f.is_file() and f.suffix != ".db")


def redis_memory(write: bool) -> None:
    """Publish `small` for both targets into a private Redis; print what each snapshot holds."""
    import redis

    from recsys.cache.server import start_redis_server

    data, n_lines = ensure_data("small")
    server = start_redis_server()
    lines = []
    summary = []
    try:
        client = redis.Redis.from_url(server.url)
        redis_version = client.info("server")["redis_version"]
        with tempfile.TemporaryDirectory() as mlruns:
            env = {**os.environ, "RECSYS_MLRUNS": mlruns, "COLUMNS": "200"}
            env.pop("MLFLOW_TRACKING_URI", None)
            for target in ("agent", "customer"):
                logged = _tree_bytes(Path(mlruns))
                train = run_step(_recsys("train", "--data", str(data), "--target", target), env)
                version = re.search(rf"item-to-{target} v(\d+)", re.sub(r"\s+", " ", train.output))
                if not train.ok or version is None:
                    raise SystemExit(f"training for {target} failed:\n{train.output[-3000:]}")
                artifact = _tree_bytes(Path(mlruns)) - logged
                before = int(client.info("memory")["used_memory"])
                model = f"models:/item-to-{target}/{version.group(1)}"
                publish = run_step(
                    _recsys(
                        "publish",
                        "--target",
                        target,
                        "--model",
                        model,
                        "--redis-url",
                        server.url,
                        "--no-progress",
                    ),
                    env,
                )
                if not publish.ok:
                    raise SystemExit(f"publish for {target} failed:\n{publish.output[-3000:]}")
                grown = int(client.info("memory")["used_memory"]) - before
                kinds = _measure_snapshot(client, target)
                users = kinds["picks:<b>"]["fields"]
                picks = _step_details("", publish.output).get("publish_counts", {}).get("picks", 0)
                for kind, k in sorted(kinds.items()):
                    per = k["memory"] / max(k["fields"], 1)
                    lines.append(
                        f"| {target} | `{kind}` | {k['keys']:,} | {k['fields']:,} | "
                        f"{k['value_bytes'] / max(k['fields'], 1):,.0f} | {k['memory']:,} | "
                        f"{per:,.0f} |"
                    )
                total = sum(k["memory"] for k in kinds.values())
                summary.append(
                    f"| {target} | {users:,} | {kinds['picks:<b>']['keys']:,} | "
                    f"{picks / max(users, 1):.1f} | "
                    f"{kinds['picks:<b>']['memory'] / max(users, 1):,.0f} | "
                    f"{total / max(users, 1):,.0f} | {grown / max(users, 1):,.0f} | "
                    f"{artifact / 2**20:,.1f} |"
                )
    finally:
        server.stop()
    table = (
        f"`python bench/bench_scaling.py redis-memory` on {datetime.now(UTC):%Y-%m-%d}: "
        f"simulated `small` (seed 0, {n_lines:,} purchase lines), an ALS per target with its "
        f"default parameters, `recsys publish` (100 picks per user) into redis-server "
        f"{redis_version}; `MEMORY USAGE key SAMPLES 0` of every key of the live snapshot.\n\n"
        "| target | key kind | keys | fields | value bytes per field | MEMORY USAGE bytes "
        "| bytes per field |\n|---|---|---:|---:|---:|---:|---:|\n"
        + "\n".join(lines)
        + "\n\n| target | users | picks buckets | picks per user | picks bytes per user "
        "| whole snapshot bytes per user | `used_memory` growth per user | model artifact MiB |\n"
        "|---|---:|---:|---:|---:|---:|---:|---:|\n" + "\n".join(summary) + "\n"
    )
    print(table)
    if write:
        _write_doc(table, MEMORY_MARKERS)


class _GivenFactors:
    """Builds a fitted `SparkALSRecommender` from given factors (to time its scoring)."""

    @staticmethod
    def model(user_factors: Any, item_factors: Any) -> Any:
        """A `SparkALSRecommender` fitted on a matrix that makes every user and SKU warm."""
        import numpy as np
        import pandas as pd
        import scipy.sparse as sp

        from recsys.data.dataset import Dataset
        from recsys.data.id_map import IdMap
        from recsys.models.implicit_models import positive_interactions
        from recsys.models.spark_als import SparkALSRecommender

        class Given(SparkALSRecommender):
            def _fit(self, dataset: Dataset) -> None:
                positive = positive_interactions(dataset.interactions)
                self._set_factors(user_factors, item_factors, positive)

        n_users, n_skus = len(user_factors), len(item_factors)
        rows = np.concatenate([np.arange(n_skus) % n_users, np.arange(n_users)])
        cols = np.concatenate([np.arange(n_skus), np.arange(n_users) % n_skus])
        matrix = sp.csr_matrix(
            (np.ones(len(rows), dtype=np.float32), (rows, cols)), shape=(n_users, n_skus)
        )
        matrix.sum_duplicates()
        dataset = Dataset(
            target="agent",
            users=IdMap(np.array([f"u{i}" for i in range(n_users)], dtype=object)),
            skus=IdMap(np.array([f"s{i}" for i in range(n_skus)], dtype=object)),
            interactions=matrix,
            events=pd.DataFrame(),
            user_table=pd.DataFrame(),
            sku_table=pd.DataFrame(),
            cutoff=pd.Timestamp("2026-01-01"),
            sku_available=np.ones(n_skus, dtype=bool),
        )
        return Given(factors=user_factors.shape[1]).fit(dataset)


def scoring_cost(n_skus: int, n_users: int, factors: int, top_n: int = 100) -> dict[str, float]:
    """Seconds (wall and CPU, one thread) the executors' scoring takes for `n_users` users."""
    import numpy as np
    import pandas as pd
    from threadpoolctl import threadpool_limits

    from training.publish_source import ModelSource

    rng = np.random.default_rng(0)
    users = rng.normal(0, 0.1, (n_users, factors)).astype(np.float32)
    items = rng.normal(0, 0.1, (n_skus, factors)).astype(np.float32)
    model = _GivenFactors.model(users, items)
    ids = model.users_.external_ids
    # what an executor holds: the SKU side, then one batch's users with their factors
    slim = model.item_side().for_users(ids, users, np.ones(n_users, dtype=bool))
    source = ModelSource(slim, "agent", pd.Index(model.skus_.external_ids))
    with threadpool_limits(1):
        source.picks_for(ids[:50], top_n)  # warm-up
        wall, cpu = time.perf_counter(), time.process_time()
        picks = source.picks_for(ids, top_n)
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    if len(picks.sku_index) != n_users * top_n:
        raise SystemExit(f"expected {n_users * top_n} picks, got {len(picks.sku_index)}")
    return {
        "skus": n_skus,
        "users": n_users,
        "factors": factors,
        "wall_s": wall,
        "cpu_s": cpu,
        "cpu_us_per_user": cpu / n_users * 1e6,
        "cpu_ns_per_user_sku": cpu / (n_users * n_skus) * 1e9,
    }


def als_cost(
    master: str, n_pairs: int, n_users: int, n_skus: int, factors: int, iterations: tuple[int, int]
) -> dict[str, float]:
    """Seconds per MLlib ALS iteration on random pairs (SKU popularity skewed like sales)."""
    import numpy as np
    import pandas as pd

    from recsys.models.spark_als import ITEM, RATING, USER, fit_spark_als
    from training.spark.session import spark_session

    rng = np.random.default_rng(0)
    popularity = 1.0 / (np.arange(n_skus) + 10.0) ** 0.9
    users = rng.integers(0, n_users, n_pairs, dtype=np.int64)
    skus = rng.choice(n_skus, n_pairs, p=popularity / popularity.sum())
    pairs = np.unique(users * n_skus + skus)
    frame = pd.DataFrame(
        {
            USER: (pairs // n_skus).astype(np.int32),
            ITEM: (pairs % n_skus).astype(np.int32),
            RATING: rng.exponential(2.0, len(pairs)).astype(np.float32) + 0.3,
        }
    )
    spark = spark_session(master)
    ratings = spark.createDataFrame(frame).repartition(spark.sparkContext.defaultParallelism)
    ratings = ratings.persist()
    ratings.count()
    seconds, cpu = {}, {}
    for n in iterations:
        start, start_cpu = time.perf_counter(), _tree_cpu(os.getpid())
        fit_spark_als(
            ratings,
            n_users,
            n_skus,
            factors=factors,
            regularization=0.01,
            alpha=1.0,
            iterations=n,
            random_state=0,
        )
        seconds[n] = time.perf_counter() - start
        cpu[n] = _tree_cpu(os.getpid()) - start_cpu
        print(f"ALS {n} iterations: {seconds[n]:.1f} s, {cpu[n]:.1f} CPU s", flush=True)
    low, high = iterations
    per_iteration = (seconds[high] - seconds[low]) / (high - low)
    cpu_per_iteration = (cpu[high] - cpu[low]) / (high - low)
    # normal equations of every pair on both sides, plus a Cholesky solve per user and SKU
    flops = 2 * len(pairs) * factors**2 + (n_users + n_skus) * factors**3 / 3
    cores = spark.sparkContext.defaultParallelism
    return {
        "pairs": len(pairs),
        "users": n_users,
        "skus": n_skus,
        "factors": factors,
        "cores": cores,
        **{f"fit_{n}_s": seconds[n] for n in iterations},
        **{f"fit_{n}_cpu_s": cpu[n] for n in iterations},
        "s_per_iteration": per_iteration,
        "cpu_s_per_iteration": cpu_per_iteration,
        "gflop_per_iteration": flops / 1e9,
        "cpu_s_per_gflop": cpu_per_iteration / (flops / 1e9),
    }


def unit_costs(
    master: str,
    n_users: int,
    sku_counts: list[int],
    factors: int,
    pairs: int,
    iterations: tuple[int, int],
    write: bool,
) -> None:
    """Time the scoring kernel and MLlib ALS; print (and write) the per-unit costs."""
    scores = [scoring_cost(n, n_users, factors) for n in sku_counts]
    for row in scores:
        print(json.dumps(row), flush=True)
    low, high = iterations
    als = als_cost(master, pairs, max(1, pairs // 100), 25_000, factors, (low, high))
    print(json.dumps(als), flush=True)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    (DATA_ROOT / "unit-costs.json").write_text(
        json.dumps({"scoring": scores, "als": als}, indent=2)
    )
    table = (
        f"`python bench/bench_scaling.py unit-costs --master '{master}'` on "
        f"{datetime.now(UTC):%Y-%m-%d}, {os.cpu_count()} cores (shared; load average "
        f"{os.getloadavg()[0]:.1f} at the end).\n\n"
        "| kernel | shape | wall s | CPU s | per unit |\n|---|---|---:|---:|---|\n"
        + "".join(
            f"| publish scoring, top-100 (one thread) | {r['users']:,} users × {r['skus']:,} SKUs "
            f"× {r['factors']} factors | {r['wall_s']:.1f} | {r['cpu_s']:.1f} | "
            f"{r['cpu_us_per_user']:,.0f} µs CPU per user = {r['cpu_ns_per_user_sku']:.2f} ns per "
            "user × SKU |\n"
            for r in scores
        )
        + f"| MLlib ALS iteration (`{master}`) | {als['pairs']:,} pairs, "
        f"{als['users']:,} users × {als['skus']:,} SKUs × {als['factors']} factors | "
        f"{als['s_per_iteration']:.1f} | {als['cpu_s_per_iteration']:.1f} | "
        f"{als['cpu_s_per_gflop']:.2f} CPU s per GFLOP ({als['gflop_per_iteration']:.1f} GFLOP "
        f"per iteration; fits of {low} and {high} iterations: {als[f'fit_{low}_s']:.0f} and "
        f"{als[f'fit_{high}_s']:.0f} s wall, {als[f'fit_{low}_cpu_s']:.0f} and "
        f"{als[f'fit_{high}_cpu_s']:.0f} s CPU) |\n"
    )
    print(table)
    if write:
        _write_doc(table, COSTS_MARKERS)


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
    s.add_argument("--spark-conf", action="append", default=[], help="key=value, repeatable")
    s.add_argument("--no-write", action="store_true", help="do not update docs/scaling.md")
    m = sub.add_parser("redis-memory", help="bytes per user of published snapshots in Redis")
    m.add_argument("--no-write", action="store_true", help="do not update docs/scaling.md")
    u = sub.add_parser("unit-costs", help="time the scoring kernel and MLlib ALS iterations")
    u.add_argument("--master", default="local[*]")
    u.add_argument("--users", type=int, default=2000, help="users scored per catalogue size")
    u.add_argument("--skus", type=int, nargs="+", default=[25_000, 200_000])
    u.add_argument("--factors", type=int, default=64)
    u.add_argument("--pairs", type=int, default=4_000_000, help="random pairs drawn for ALS")
    u.add_argument("--iterations", type=int, nargs=2, default=[1, 4], help="two ALS fits")
    u.add_argument("--no-write", action="store_true", help="do not update docs/scaling.md")
    args = parser.parse_args()
    if args.command == "redis-memory":
        redis_memory(not args.no_write)
    elif args.command == "unit-costs":
        unit_costs(
            args.master,
            args.users,
            args.skus,
            args.factors,
            args.pairs,
            tuple(args.iterations),
            not args.no_write,
        )
    elif args.command == "quality":
        from training.config import parse_param

        quality(args.data, args.targets, dict(parse_param(p) for p in args.param), args.master)
    else:
        scale(args.sizes, args.engines, args.master, not args.no_write, args.spark_conf)


if __name__ == "__main__":
    main()
