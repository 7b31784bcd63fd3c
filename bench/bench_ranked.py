"""Sell-with-confidence proof (issue 5, sections 3 and 4): docs/benchmarks.md.

    python bench/bench_ranked.py quality --scale small --seeds 0 1 2 3 4 5
    python bench/bench_ranked.py models --scale small --seeds 0 1 2
    python bench/bench_ranked.py speed --scale medium --seeds 0
    python bench/bench_ranked.py real --data var/data/retail --holdout-days 35

`quality` replays the circuit breaker day by day against the simulator's incidents; `models`
trains the ranked model and the single models on the same split (the settings of
bench/bench_models.py) and scores them with the metrics of docs/metrics.md, plus the share of
returned units among hits, new agents' kept NDCG and the return-risk model's calibration
(docs/benchmarks.md, "Sell-with-confidence ranker: quality"); `speed` times scoring every agent
against plain ALS `recommend` in the same rounds (docs/benchmarks.md, "Sell-with-confidence
ranker: speed"); `real` is `models` on the Online Retail import (no oracle there). Simulated
data is written to --workdir when missing.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

sys.path.insert(0, str(Path(__file__).parent))
from bench_models import MODELS as SINGLE_MODELS  # noqa: E402

from recsys.columns import Columns  # noqa: E402

C = Columns
K = 20
LOG = {"log_scale": True}
SINGLES = ("popular_region", "repeat", "itemknn", "als", "lightfm", "blend")
# name -> RankedRecommender parameters: the default (return cost 5), the return-cost curve of
# docs/benchmarks.md (0 to 12, a line's risk, a P(kept) ranker), the ablations it discusses (no
# audience, units), and its speed settings (twice the trees, item-kNN as a source or not at
# all, share ranker on all)
RANKED: dict[str, dict[str, Any]] = {
    "ranked": {},
    "ranked_no_return_cost": {"return_cost": 0.0},
    "ranked_return_cost_2": {"return_cost": 2.0},
    "ranked_return_cost_3": {"return_cost": 3.0},
    "ranked_return_cost_8": {"return_cost": 8.0},
    "ranked_return_cost_10": {"return_cost": 10.0},
    "ranked_return_cost_12": {"return_cost": 12.0},
    "ranked_line_risk_cost_8": {"return_cost": 8.0, "return_unit": "line"},
    "ranked_kept_cost_5": {"label": "kept", "share_weight": 0.0, "return_cost": 5.0},
    "ranked_no_audience": {"use_audience": False},
    "ranked_units": {"label": "units", "value": "units"},
    "ranked_line_risk": {"return_unit": "line"},
    "ranked_100_trees": {"ranker_iter": 100, "ranker_learning_rate": 0.1},
    "ranked_knn_source": {"candidates": {"n_knn": 40}},
    "ranked_bpr_source": {"candidates": {"n_bpr": 40}},
    "ranked_no_knn": {"candidates": {"knn_scores": False}},
    "ranked_share_on_all": {"refine_top": None},
}
COLUMNS = (
    "kept_ndcg_at_20", "kept_recall_at_20", "return_rate_at_20", "unit_return_rate_at_20",
    "oracle_share_at_20", "new_agents.kept_ndcg_at_20", "few_shares.kept_ndcg_at_20",
    "few_shares.n", "coverage_at_20", "new_ndcg_at_20",
)  # fmt: skip


def sim_dir(workdir: Path, scale: str, seed: int, sim_set: dict[str, Any] | None = None) -> Path:
    """The simulated data directory of (scale, seed, preset overrides), written when missing."""
    from recsys.simulation.config import SimConfig
    from recsys.simulation.simulate import existing_outputs, write_simulation

    extra = "".join(f"-{k}={v}" for k, v in sorted((sim_set or {}).items()))
    data = workdir / f"{scale}-seed{seed}{extra}"
    if not existing_outputs(data):
        write_simulation(SimConfig.preset(scale, **(sim_set or {})), seed, data, progress=False)
    return data


def sim_overrides(pairs: list[str]) -> dict[str, Any]:
    """`--sim-set key=value` pairs as preset overrides (values parsed as JSON when they can be)."""
    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep:
            raise SystemExit(f"--sim-set wants key=value, got {pair!r}")
        try:
            out[key] = json.loads(value)
        except json.JSONDecodeError:
            out[key] = value
    return out


def markdown(frame: pd.DataFrame) -> str:
    """A frame as a markdown table (no extra dependency)."""
    head = "| " + " | ".join(map(str, frame.columns)) + " |"
    rule = "|" + "---|" * len(frame.columns)
    body = ["| " + " | ".join(map(str, row)) + " |" for row in frame.itertuples(index=False)]
    return "\n".join([head, rule, *body])


# ---- quality circuit breaker -------------------------------------------------------------
def fault_return_floor(tables: dict[str, pd.DataFrame], incidents: pd.DataFrame) -> pd.DataFrame:
    """Days from each onset until the 3rd and 5th fault return of a line bought after it."""
    from recsys.columns import FAULT_RETURN_REASONS

    p, r = tables["purchases"], tables["returns"]
    r = r[r[C.REASON].isin(FAULT_RETURN_REASONS)].merge(
        p[[C.PURCHASE_ID, C.SKU_ID, C.TS]].rename(columns={C.TS: "bought"}), on=C.PURCHASE_ID
    )
    rows = []
    for sku, onset in incidents[[C.SKU_ID, "onset_at"]].itertuples(index=False):
        mine = r[(r[C.SKU_ID] == sku) & (r["bought"] >= onset)].sort_values(C.TS)
        units = mine[C.QTY].cumsum().to_numpy()
        when = {}
        for n in (3, 5):
            at = int(np.searchsorted(units, n))
            when[f"fault_{n}_days"] = (
                (mine[C.TS].iloc[at] - onset).total_seconds() / 86_400
                if at < len(units)
                else np.nan
            )
        rows.append({C.SKU_ID: sku, **when})
    return pd.DataFrame(rows)


def run_quality(args: argparse.Namespace) -> None:
    """Replay the breaker over each seed's log; print the detection table."""
    from recsys.contract.loader import load_tables
    from recsys.quality.breaker import BreakerConfig, QualityLog
    from recsys.quality.replay import detection_report, replay
    from recsys.simulation.truth import load_truth

    config = BreakerConfig()
    rows = []
    for seed in args.seeds:
        data = sim_dir(args.workdir, args.scale, seed, args.sim_set)
        tables = load_tables(data, on_quarantine="ignore")
        truth = load_truth(data)
        incidents = truth.incidents()
        start_t = time.perf_counter()
        log = QualityLog.from_tables(tables, config.fault_reasons)
        start = pd.Timestamp(log.line_ts.min(), tz="UTC").normalize() + pd.Timedelta(days=14)
        events = replay(log, start, log.end(), config)
        report = detection_report(events, incidents, log.n_skus, start, log.end())
        seconds = time.perf_counter() - start_t
        quality = truth.world.skus.quality
        bottom = set(truth.world.skus.ids[quality <= np.quantile(quality, 0.1)])
        floor = fault_return_floor(tables, incidents)
        row = {"seed": seed, **report.summary(), "seconds": seconds}
        row["false_low_quality"] = float(len(set(report.false_skus) & bottom))
        row["floor_fault_3_median"] = float(floor["fault_3_days"].median())
        row["floor_fault_5_median"] = float(floor["fault_5_days"].median())
        rows.append(row)
        print(json.dumps(row), flush=True)
    frame = pd.DataFrame(rows)
    print(markdown(frame.round(2)))


# ---- models ----------------------------------------------------------------------------------
def new_agents(split: Any) -> np.ndarray:
    """New agents: joined in the 30 days before the cutoff, or at most 3 shares and sales before
    it (`Split.segments`, the project's `new_user` segment)."""
    segments = split.segments("agent")
    return segments.loc[segments["new_user"].to_numpy(dtype=bool), C.AGENT_ID].to_numpy(object)


def few_shares(split: Any, most: int = 3) -> np.ndarray:
    """Agents with at most `most` shares of their own before the cutoff (issue 5's new agents)."""
    shares = split.tables["shares"]
    before = shares[(pd.to_datetime(shares[C.TS], utc=True) < split.cutoff).to_numpy()]
    counts = before.groupby(C.AGENT_ID).size()
    agents = split.tables["agents"][C.AGENT_ID].to_numpy(object)
    return agents[counts.reindex(agents).fillna(0).to_numpy() <= most]


def score(
    reco: pd.DataFrame, truth: pd.DataFrame, split: Any, data: Path, oracle: bool, new: np.ndarray
) -> dict[str, float]:
    """The COLUMNS of one reco table."""
    from recsys.evaluation.metrics import evaluate, evaluate_per_user
    from training.train import oracle_metrics

    out = evaluate(reco, truth, (K,), catalog_size=int(split.tables["skus"].shape[0]))
    hits = reco[reco[C.RANK] <= K].merge(truth, on=[C.AGENT_ID, C.SKU_ID])
    out["unit_return_rate_at_20"] = float(hits["returned_qty"].sum() / max(hits[C.QTY].sum(), 1))
    per_user = evaluate_per_user(reco, truth, metric="kept_ndcg", k=K)
    mine = per_user[per_user.index.isin(new)]
    out["new_agents.kept_ndcg_at_20"] = float(mine.mean()) if len(mine) else float("nan")
    out["new_agents.n"] = float(len(mine))
    # the issue's own definition: at most 3 shares of her own before the cutoff
    few = per_user[per_user.index.isin(few_shares(split))]
    out["few_shares.kept_ndcg_at_20"] = float(few.mean()) if len(few) else float("nan")
    out["few_shares.n"] = float(len(few))
    if oracle:
        out.update(oracle_metrics(data, "agent", reco, split.cutoff, (K,), 14))
    return out


def return_risk_report(model: Any, tables: dict, split: Any, png: Path | None) -> dict[str, float]:
    """AUC and calibration of the model's return risk on holdout picks (first 7 days)."""
    from recsys.ranking.features import pair_features
    from recsys.ranking.return_risk import calibration_report, reliability_plot, return_lines

    far = pd.Timestamp("2200-01-01", tz="UTC")
    last = split.cutoff + pd.Timedelta(days=7)
    picks = return_lines(tables, model.state_, last, label_end=far, unit=model.return_unit)
    X = pair_features(model.state_, picks.agents, picks.skus)
    p = model.return_model_.predict(X)
    if png is not None:
        reliability_plot(picks.returned, p, png, "return risk of holdout picks (first 7 days)")
    report = calibration_report(picks.returned, p)
    base = calibration_report(picks.returned, model.state_.sku.return_rate[picks.skus])
    return {**{f"risk.{k}": v for k, v in report.items()}, "risk.sku_rate_auc": base["auc"]}


def run_models(args: argparse.Namespace) -> None:
    """Single models and ranked variants on each seed (or the real data); print the table."""
    from features.dataset import build_dataset
    from recsys.contract.loader import load_tables
    from recsys.evaluation.splitters import temporal_split
    from recsys.models import make_model

    cases = [(args.data, 0)] if args.data else [
        (sim_dir(args.workdir, args.scale, s, args.sim_set), s) for s in args.seeds
    ]  # fmt: skip
    rows = []
    for data, seed in cases:
        tables = load_tables(data, on_quarantine="ignore")
        split = temporal_split(tables, holdout_days=args.holdout_days)
        truth = split.truth("agent")
        users = truth[C.AGENT_ID].unique()
        new = new_agents(split)
        oracle = (Path(data) / "truth").is_dir()
        datasets: dict[str, Any] = {}
        names = [*args.singles, *args.ranked]
        for name in names:
            params, weights = SINGLE_MODELS[name] if name in SINGLE_MODELS else (RANKED[name], LOG)
            key = json.dumps(weights, sort_keys=True)
            if key not in datasets:
                datasets[key] = build_dataset(
                    split.tables, "agent", cutoff=split.cutoff, weights=weights, fingerprint="b"
                )
            model_name = "ranked" if name in RANKED else name.split("_")[0]
            t0 = time.perf_counter()
            model = make_model(model_name, random_state=seed, **params).fit(datasets[key])
            fit_s = time.perf_counter() - t0
            t1 = time.perf_counter()
            reco = model.recommend(users, k=K)
            row = {"seed": seed, "model": name, "fit_s": fit_s, "reco_s": time.perf_counter() - t1}
            row.update(score(reco, truth, split, Path(data), oracle, new))
            if name in ("ranked", "ranked_line_risk"):
                png = args.plot if seed == cases[0][1] and name == "ranked" else None
                row.update(return_risk_report(model, tables, split, png))
                row.update({f"diag.{k}": v for k, v in model.diagnostics_.items()})
            rows.append(row)
            print(json.dumps(row), flush=True)
    frame = pd.DataFrame(rows)
    args.workdir.mkdir(parents=True, exist_ok=True)
    extra = "".join(f"-{k}={v}" for k, v in sorted(args.sim_set.items()))
    name = "real" if args.data else f"{args.scale}{extra}"
    frame.to_csv(args.workdir / f"ranked-{name}.csv", index=False)
    cols = [c for c in COLUMNS if c in frame and frame[c].notna().any()]
    summary = frame.groupby("model", sort=False)[cols + ["fit_s", "reco_s"]].agg(["mean", "std"])
    summary.columns = [f"{a} {b}" for a, b in summary.columns]
    print(markdown(summary.round(4).reset_index()))


# ---- speed -------------------------------------------------------------------------------
SPEED_VARIANTS: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {
    # name -> (fit parameters, scoring settings changed on the fitted model); one fit per
    # distinct fit parameters, every variant timed in the same rounds as ALS
    "ranked": ({}, {}),  # batches on every core (`score_threads` 0), as ALS uses every core
    "ranked_one_thread": ({}, {"score_threads": 1}),
    "ranked_share_on_all": ({}, {"refine_top": None}),  # the share ranker on every candidate
    "ranked_no_knn": ({"candidates": {"knn_scores": False}}, {}),  # no item-kNN feature
}


def run_speed(args: argparse.Namespace) -> None:
    """Score every agent with plain ALS and with the ranked model; print times and the ratio."""
    from features.dataset import build_dataset
    from recsys.contract.loader import load_tables
    from recsys.evaluation.splitters import temporal_split
    from recsys.models import make_model

    data = args.data or sim_dir(args.workdir, args.scale, args.seeds[0], args.sim_set)
    tables = load_tables(data, on_quarantine="ignore")
    split = temporal_split(tables, holdout_days=args.holdout_days)
    ds = build_dataset(split.tables, "agent", cutoff=split.cutoff, weights=LOG, fingerprint="b")
    agents = ds.users.external_ids
    als = make_model("als", **SINGLE_MODELS["als"][0]).fit(ds)
    fitted: dict[str, Any] = {}
    fit_s: dict[str, float] = {}
    rss_fit = 0.0
    for fit_params, _ in SPEED_VARIANTS.values():
        key = json.dumps(fit_params, sort_keys=True)
        if key not in fitted:
            t = time.perf_counter()
            fitted[key] = make_model("ranked", **fit_params).fit(ds)
            fit_s[key] = time.perf_counter() - t
            rss_fit = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    ranked = fitted[json.dumps({})]
    times: dict[str, list[float]] = {"als": [], **{name: [] for name in SPEED_VARIANTS}}
    cpu: dict[str, list[float]] = {name: [] for name in times}
    # rounds interleave the models, so a busy spell on the shared machine hits all of them
    for _ in range(args.repeat):
        for name in times:
            model, saved = als, {}
            if name != "als":
                fit_params, settings = SPEED_VARIANTS[name]
                model = fitted[json.dumps(fit_params, sort_keys=True)]
                saved = {key: getattr(model, key) for key in settings}
                for key, value in settings.items():
                    setattr(model, key, value)
            t, c = time.perf_counter(), time.process_time()
            model.recommend(agents, k=K)
            times[name].append(time.perf_counter() - t)
            cpu[name].append(time.process_time() - c)
            for key, value in saved.items():
                setattr(model, key, value)
    stages = stage_times(ranked, ranked.users_.to_index(agents))
    best = {name: min(values) for name, values in times.items()}
    out = {
        "agents": len(agents),
        "skus": ds.n_skus,
        "als_recommend_s": best["als"],
        **{f"{name}_recommend_s": best[name] for name in SPEED_VARIANTS},
        **{f"{name}_ratio": best[name] / best["als"] for name in SPEED_VARIANTS},
        **{f"{name}_cpu_s": min(values) for name, values in cpu.items()},
        "load_average": os.getloadavg()[0],
        "ranked_fit_s": fit_s[json.dumps({})],
        **{f"fit_s.{key}": value for key, value in fit_s.items()},
        "peak_rss_mib_after_fit": rss_fit,
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        **{f"stage.{k}": v for k, v in stages.items()},
        **{f"fit.{k}": v for k, v in ranked.timings_.items()},
        **{f"diag.{k}": v for k, v in ranked.diagnostics_.items()},
    }
    print(json.dumps(out, indent=1))


def stage_times(model: Any, agent_idx: np.ndarray) -> dict[str, float]:
    """Seconds per stage of scoring every agent (candidates, features, models, rules), with the
    model's own thread limit, and the candidates scored per agent."""
    from recsys.ranking.rules import select_top_k
    from recsys.ranking.threads import thread_limit

    out = dict.fromkeys(("candidates", "features", "models", "rules", "candidate_pairs"), 0.0)
    n_scored = 0
    with thread_limit(model.num_threads):
        tables = model.source_tables()
        for lo in range(0, len(agent_idx), model.batch_size):
            agents = agent_idx[lo : lo + model.batch_size]
            rows, skus, score, _ = model.score_candidates(agents, tables=tables, timings=out)
            t0 = time.perf_counter()
            select_top_k(model.state_, rows, skus, score, len(agents), K, model.rule_config_)
            out["rules"] += time.perf_counter() - t0
            n_scored += len(rows)
    out["candidates_per_agent"] = out.pop("candidate_pairs") / max(len(agent_idx), 1)
    out["share_ranked_per_agent"] = n_scored / max(len(agent_idx), 1)
    return out


def main() -> None:
    """Parse the command line and run one part."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("part", choices=("quality", "models", "speed", "real"))
    parser.add_argument("--scale", default="small")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--data", type=Path, default=None, help="a data dir instead of a sim")
    parser.add_argument("--holdout-days", type=int, default=14)
    parser.add_argument("--singles", nargs="*", default=list(SINGLES))
    parser.add_argument("--ranked", nargs="*", default=list(RANKED))
    parser.add_argument("--repeat", type=int, default=2, help="timing rounds (best is kept)")
    parser.add_argument("--workdir", type=Path, default=Path("var/bench"))
    parser.add_argument(
        "--sim-set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="simulator preset override, e.g. inherited_group_share=0.5 (repeatable)",
    )
    parser.add_argument("--plot", type=Path, default=Path("docs/img/return-risk-reliability.png"))
    args = parser.parse_args()
    args.sim_set = sim_overrides(args.sim_set)
    if args.part == "quality":
        run_quality(args)
    elif args.part == "speed":
        run_speed(args)
    else:
        if args.part == "real" and args.data is None:
            parser.error("real needs --data (an imported Online Retail directory)")
        run_models(args)


if __name__ == "__main__":
    main()
