"""Training-pipeline overhead: `recsys train --model als` end to end vs the bare implicit fit.

    python bench/bench_train.py                                # medium (~5M purchase lines)
    python bench/bench_train.py --interactions 1m 5m 20m --nice 10 --write
    python bench/bench_train.py --scales small medium --repeat 3

Per case (a simulated data directory under `--workdir`, generated when missing), in this order
and each in a fresh process so its peak RSS (`ru_maxrss`) is its own:

1. the bare fit: implicit's `AlternatingLeastSquares.fit` alone, on the very matrix and settings
   the pipeline fits (factors 64, 15 iterations, conjugate gradient), timed with nothing else;
2. `run_training` with a cold table cache (the cache folder deleted first): read, validate,
   split, features, fit, evaluate, MLflow run and registered version;
3. `run_training` again with the cache filled (`--repeat` times; the median run is reported).

The pipeline's overhead is its total minus its own fit; it is divided by the bare fit of the
same case, measured minutes apart on the same machine. The pipeline's own fit shares the CPU with
MLflow's warm-up (`training.tracking.TrackingWarmup`), so the total divided by the bare fit is
shown too. MLflow writes to one temporary sqlite
store created before the first case (creating a store is a one-off, not a per-run cost).
Both runs must report the same metrics; the script fails if they do not.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "benchmarks.md"
START, END = "<!-- bench_train:start -->", "<!-- bench_train:end -->"
# Simulated data sets by size: (data folder name, preset, overrides); "5m" is `medium`.
INTERACTIONS: dict[str, tuple[str, str, dict[str, int]]] = {
    "1m": ("1m", "small", {"n_agents": 3300, "n_skus": 5000}),
    "5m": ("medium", "medium", {}),
    "20m": ("20m", "medium", {"n_agents": 36000, "n_skus": 30000}),
}
PARAMS = {"factors": 64, "iterations": 15}
WEIGHTS = {"log_scale": True}

_COMMON = """
import json, os, resource, sys, time, warnings
warnings.simplefilter("ignore")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
from pathlib import Path
from recsys.allocator import reuse_freed_memory
reuse_freed_memory()  # as the `recsys` command does for its batch jobs
from training.config import load_config
data, out = Path(sys.argv[1]), sys.argv[2]
cfg = load_config(None, data=data, model="als", params=json.loads(sys.argv[3]),
                  weights=json.loads(sys.argv[4]))
def cpu():
    u = resource.getrusage(resource.RUSAGE_SELF)
    return u.ru_utime + u.ru_stime
def peak_mib():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
"""

_BARE = (
    _COMMON
    + """
from implicit.cpu.als import AlternatingLeastSquares
from threadpoolctl import threadpool_limits
from recsys.models.implicit_models import positive_interactions
from training.train import prepare
_, _, dataset = prepare(cfg)
als = cfg.params
matrix = positive_interactions(dataset.interactions)
matrix.data = (1.0 + 1.0 * matrix.data).astype("float32")  # confidence 1 + alpha*w, alpha 1
model = AlternatingLeastSquares(factors=als["factors"], iterations=als["iterations"],
                                regularization=0.01, alpha=1.0, use_cg=True, random_state=0)
with threadpool_limits(limits=1, user_api="blas"):
    c0, t0 = cpu(), time.perf_counter()
    model.fit(matrix, show_progress=False)
    wall, cpu_s = time.perf_counter() - t0, cpu() - c0
json.dump({"fit_s": wall, "fit_cpu_s": cpu_s, "nnz": int(matrix.nnz),
           "shape": list(matrix.shape)}, open(out, "w"))
"""
)

_TRAIN = (
    _COMMON
    + """
from training.train import run_training
c0, t0 = cpu(), time.perf_counter()
result = run_training(cfg, log_to_mlflow=True)
wall, cpu_s = time.perf_counter() - t0, cpu() - c0
json.dump({**result.timings, "wall_s": wall, "cpu_s": cpu_s, "peak_rss_mib": peak_mib(),
           "metrics": result.metrics}, open(out, "w"))
"""
)


@dataclass
class Case:
    """One simulated data set to benchmark."""

    name: str
    folder: str
    preset: str
    overrides: dict[str, int]
    seed: int
    workdir: Path

    @property
    def data(self) -> Path:
        """Its data directory."""
        return self.workdir / f"{self.folder}-seed{self.seed}"


def ensure_data(case: Case) -> int:
    """Simulate the case's data when missing; the number of purchase lines."""
    import pyarrow.dataset as ds

    from recsys.simulation.config import SimConfig
    from recsys.simulation.simulate import existing_outputs, write_simulation

    if not existing_outputs(case.data):
        print(f"simulating {case.name} into {case.data} ...", flush=True)
        config = SimConfig.preset(case.preset, **case.overrides)
        write_simulation(config, case.seed, case.data, progress=False)
    return ds.dataset(case.data / "purchases").count_rows()


class TooBig(RuntimeError):
    """A measured step passed the memory limit and was stopped."""


def _rss_gib(pid: int) -> float:
    """Resident memory of a running process, in GiB (0 once it is gone)."""
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 2**20
    except OSError:
        pass
    return 0.0


def child(script: str, case: Case, env: dict[str, str], nice: int, max_rss_gib: float) -> dict:
    """Run one measured step in a fresh (optionally niced) interpreter; its JSON result.

    The step is stopped when its resident memory passes `max_rss_gib`: the machine is shared, and
    running it out of memory would kill other people's work.
    """
    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as out:
        path = out.name
    args = [str(case.data), path, json.dumps(PARAMS), json.dumps(WEIGHTS)]
    command = [sys.executable, "-c", script, *args]
    if nice:
        command = ["nice", "-n", str(nice), *command]
    with tempfile.TemporaryFile(mode="w+") as err:
        proc = subprocess.Popen(command, env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=err)
        while proc.poll() is None:
            if _rss_gib(proc.pid) > max_rss_gib:
                proc.kill()
                proc.wait()
                raise TooBig(f"{case.name}: stopped above {max_rss_gib:g} GiB resident")
            time.sleep(0.25)
        err.seek(0)
        if proc.returncode != 0:
            raise RuntimeError(f"benchmark step failed for {case.name}:\n{err.read()[-4000:]}")
    result = json.loads(Path(path).read_text())
    os.unlink(path)
    return result


def run_case(case: Case, env: dict[str, str], repeat: int, nice: int, max_rss: float) -> dict:
    """Bare fit, cold run and warm runs of one case."""
    lines = ensure_data(case)
    bare = child(_BARE, case, env, nice, max_rss)
    shutil.rmtree(case.data / ".recsys-cache", ignore_errors=True)
    cold = child(_TRAIN, case, env, nice, max_rss)
    warm_runs = [child(_TRAIN, case, env, nice, max_rss) for _ in range(repeat)]
    for run in warm_runs:
        if run["metrics"] != cold["metrics"]:
            before, after = cold["metrics"], run["metrics"]
            changed = sorted(k for k in before if after.get(k) != before[k])
            raise RuntimeError(f"{case.name}: cached run changed metrics {changed[:10]}")
    warm = sorted(warm_runs, key=lambda r: r["total_s"])[len(warm_runs) // 2]
    return {"case": case.name, "lines": lines, "bare": bare, "cold": cold, "warm": warm}


def _row(result: dict, state: str) -> str:
    """One table row: a run of a case against the case's bare fit."""
    run, bare = result[state], result["bare"]
    overhead = run["total_s"] - run["fit_s"]
    cpu_overhead = run["cpu_s"] - bare["fit_cpu_s"]
    cells = [
        result["case"],
        f"{result['lines']:,}",
        state,
        f"{run['prepare_s']:.1f}",
        f"{run['fit_s']:.1f}",
        f"{run['evaluate_s']:.1f}",
        f"{run.get('log_s', 0.0):.1f}",
        f"{run['total_s']:.1f}",
        f"{bare['fit_s']:.1f}",
        f"**{overhead / bare['fit_s']:.2f}×**",
        f"{run['total_s'] / bare['fit_s']:.2f}×",
        f"{cpu_overhead:.1f} / {bare['fit_cpu_s']:.1f}",
        f"{run['peak_rss_mib']:,.0f}",
    ]
    return "| " + " | ".join(cells) + " |"


def table(results: list[dict]) -> str:
    """The markdown table of all cases, cold and warm."""
    head = (
        "| case | purchase lines | table cache | prepare (load, validate, split, features) s "
        "| fit s | evaluate s | MLflow s | total s | bare implicit fit s | overhead / bare fit "
        "| total / bare fit | CPU s: overhead / bare fit | peak RSS MiB |\n"
        "|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    )
    rows = [_row(r, state) for r in results for state in ("cold", "warm")]
    return "\n".join([head, *rows])


def write_doc(text: str) -> None:
    """Replace the generated table in docs/benchmarks.md (between the bench_train markers)."""
    doc = DOC.read_text()
    if START not in doc or END not in doc:
        raise SystemExit(f"{DOC} has no {START} ... {END} block to replace")
    head, rest = doc.split(START, 1)
    _, tail = rest.split(END, 1)
    DOC.write_text(f"{head}{START}\n{text}\n{END}{tail}")


def main() -> None:
    """Benchmark the requested cases and print (optionally write) the table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--interactions", nargs="*", default=[], choices=sorted(INTERACTIONS))
    parser.add_argument("--scales", nargs="*", default=[], help="simulator presets, e.g. small")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeat", type=int, default=1, help="warm runs per case (median)")
    parser.add_argument("--nice", type=int, default=0, help="niceness of the measured steps")
    parser.add_argument(
        "--max-rss-gib", type=float, default=12.0, help="stop a step using more memory than this"
    )
    parser.add_argument("--workdir", type=Path, default=ROOT / "var" / "bench")
    parser.add_argument("--write", action="store_true", help="update docs/benchmarks.md")
    args = parser.parse_args()
    cases = [Case(name, *INTERACTIONS[name], args.seed, args.workdir) for name in args.interactions]
    cases += [Case(scale, scale, scale, {}, args.seed, args.workdir) for scale in args.scales]
    if not cases:
        cases = [Case("5m", *INTERACTIONS["5m"], args.seed, args.workdir)]

    store = Path(tempfile.mkdtemp(prefix="bench-train-mlruns-"))
    env = {**os.environ, "RECSYS_MLRUNS": str(store), "OPENBLAS_NUM_THREADS": "1"}
    env.pop("MLFLOW_TRACKING_URI", None)
    env.pop("RECSYS_TABLE_CACHE", None)
    # Create the sqlite store once, outside the measurements.
    subprocess.run(
        [
            sys.executable,
            "-c",
            "from training.tracking import configure_tracking, ensure_experiment;"
            "configure_tracking(); ensure_experiment('item-to-agent')",
        ],
        env=env,
        cwd=ROOT,
        check=True,
        capture_output=True,
    )
    results = []
    try:
        for case in cases:
            started = time.perf_counter()
            try:
                results.append(run_case(case, env, args.repeat, args.nice, args.max_rss_gib))
            except TooBig as exc:
                print(f"{exc}; left out of the table", flush=True)
                continue
            print(f"{case.name}: done in {time.perf_counter() - started:.0f} s", flush=True)
            print(table(results[-1:]), flush=True)
    finally:
        shutil.rmtree(store, ignore_errors=True)
    text = table(results)
    load = os.getloadavg()
    text += (
        f"\n\nMeasured {time.strftime('%Y-%m-%d')} on {os.cpu_count()} cores, load average "
        f"{load[0]:.1f} at the end; warm = median of {args.repeat} run(s); niceness "
        f"{args.nice}; metrics of cold and warm runs identical."
    )
    print(text)
    if args.write:
        write_doc(text)


if __name__ == "__main__":
    main()
