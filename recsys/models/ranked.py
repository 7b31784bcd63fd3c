"""Sell-with-confidence picks: candidates → learned P(bought) × (1 − P(return)) × value → rules.

`RankedRecommender` is a `BaseRecommender` (registered as `ranked`), so `recsys train --model
ranked` evaluates and logs it like any model and `recsys publish` publishes it unchanged
(issue 5). Fitting, on an agent dataset built with its tables (`features.dataset.build_dataset`):

1. state at an inner cutoff (`inner_days` before the cutoff): sub-models and profiles
   (recsys/ranking/state.py);
2. the ranker learns P(bought through her | candidate) from the purchases in
   [inner cutoff, cutoff) (recsys/ranking/ranker.py);
3. the return-risk model learns P(return | line) from the lines of that window
   (recsys/ranking/return_risk.py);
4. the quality circuit breaker runs on the log at the cutoff: suspended SKUs are never proposed
   (recsys/quality/);
5. state at the cutoff, which `recommend` scores from.

Scoring a batch of agents: candidates (about 110 each) → features → ranker and return risk →
the share ranker on her `refine_top` best → score = P(bought) · value · (1 − (1 + return_cost) ·
P(return)) → rules → top k, under one thread cap (recsys/ranking/threads.py). With
`return_cost` = 0 the score is the expected kept value; a positive cost also charges each return
(in fresh food one return eats the profit of about five orders: docs/sell-with-confidence.md).
"""

from __future__ import annotations

import os
import time
from typing import Any, ClassVar, Literal

import numpy as np
import pandas as pd

from recsys.data.dataset import Dataset
from recsys.exceptions import EmptyDataError
from recsys.models.base import BaseRecommender, batches
from recsys.ranking.ranker import LABELS
from recsys.ranking.threads import thread_limit

Value = Literal["purchases", "units", "gmv"]
VALUES: tuple[str, ...] = ("purchases", "units", "gmv")


class RankedRecommender(BaseRecommender):
    """Return-aware, audience-aware two-stage ranker with business rules (issue 5).

    Parameters
    ----------
    inner_days
        Length of the inner holdout the ranker and the return model learn from.
    label
        What the ranker learns: "bought" (P(any purchase through her)), "kept" (P(a unit
        kept)), "purchases" (E[purchase lines], Poisson regression) or "units" (E[units]).
    share_weight
        Weight of a second ranker that learns E[purchases (units) after she shares it] from her
        shares: the final P is (1 − w) · ranker + w · share ranker, both counts of the same
        kind (needs `label` "purchases" or "units"). 0 = no share ranker.
    label_lag_days
        Lines of the last days before the cutoff are left out of the return model's training
        (their returns have not had time to arrive).
    value
        What a purchase is worth: "purchases" (1), "units" (the SKU's units per line) or "gmv"
        (units per line × price). With `label="units"` the ranker already counts units: "units"
        is then 1 per unit, "gmv" the price, "purchases" 1 / units per line.
    return_cost
        Extra cost of a return in units of the pick's value (0 = expected kept value).
    return_unit
        What the return-risk model predicts: "pick" (the agent's pick draws any return) or
        "line" (a purchase line is returned).
    als_factors, als_regularization, als_alpha, als_iterations
        The agent ALS candidate model.
    knn_neighbours
        Neighbours of the item-kNN candidate model.
    audience_factors
        Factors of the item-to-customer ALS behind the audience score.
    use_audience
        Read her customers' own histories (audience score, customers who bought); False ranks
        from her own history only (the ablation of docs/benchmarks.md).
    candidates, rules, quality
        Overrides of `CandidateConfig`, `RuleConfig` and `BreakerConfig` fields (dicts).
    quality_check
        Run the quality circuit breaker at the cutoff and never propose suspended SKUs.
    max_train_agents
        Agents drawn for the ranker's training set.
    ranker_iter, ranker_learning_rate, ranker_leaves
        The HistGradientBoosting rankers (trees, step, leaves).
    return_iter
        Trees of the return-risk model (7 leaves each, step 4 / return_iter).
    refine_top
        The share ranker scores only each agent's `refine_top` best candidates by the ranker
        and the return risk (the others leave her list); None = every candidate.
    batch_size
        Agents scored at once (memory is bounded by batch_size × SKUs floats).
    num_threads
        OpenMP threads of the boosters (1: deterministic and fastest on a busy 2-core box).
    score_threads
        Batches of agents `recommend` scores at once, each on one thread (0: one per core).
        The picks are the same for any value; memory grows with it times `batch_size`.
    random_state
        Seed of every sub-model and of the agent sample.
    """

    name: ClassVar[str] = "ranked"
    scores_cold_users: ClassVar[bool] = True

    def __init__(
        self,
        inner_days: int = 21,
        label: str = "purchases",
        share_weight: float = 0.3,
        label_lag_days: float = 7.0,
        value: str = "purchases",
        return_cost: float = 5.0,
        return_unit: str = "pick",
        als_factors: int = 64,
        als_regularization: float = 0.1,
        als_alpha: float = 2.0,
        als_iterations: int = 15,
        knn_neighbours: int = 100,
        audience_factors: int = 32,
        use_audience: bool = True,
        candidates: dict[str, Any] | None = None,
        rules: dict[str, Any] | None = None,
        quality: dict[str, Any] | None = None,
        quality_check: bool = True,
        max_train_agents: int = 3000,
        ranker_iter: int = 50,
        ranker_learning_rate: float = 0.15,
        ranker_leaves: int = 31,
        return_iter: int = 25,
        refine_top: int | None = 40,
        batch_size: int = 256,
        num_threads: int = 1,
        score_threads: int = 0,
        random_state: int = 0,
    ) -> None:
        self.inner_days = inner_days
        self.label = label
        self.share_weight = share_weight
        self.label_lag_days = label_lag_days
        self.value = value
        self.return_cost = return_cost
        self.return_unit = return_unit
        self.als_factors = als_factors
        self.als_regularization = als_regularization
        self.als_alpha = als_alpha
        self.als_iterations = als_iterations
        self.knn_neighbours = knn_neighbours
        self.audience_factors = audience_factors
        self.use_audience = use_audience
        self.candidates = candidates
        self.rules = rules
        self.quality = quality
        self.quality_check = quality_check
        self.max_train_agents = max_train_agents
        self.ranker_iter = ranker_iter
        self.ranker_learning_rate = ranker_learning_rate
        self.ranker_leaves = ranker_leaves
        self.return_iter = return_iter
        self.refine_top = refine_top
        self.batch_size = batch_size
        self.num_threads = num_threads
        self.score_threads = score_threads
        self.random_state = random_state

    # ---- fitting ---------------------------------------------------------------------------
    def _check_params(self) -> None:
        if self.value not in VALUES:
            raise ValueError(f"value must be one of {VALUES}, got {self.value!r}")
        if self.return_unit not in ("pick", "line"):
            raise ValueError(f"return_unit must be 'pick' or 'line', got {self.return_unit!r}")
        if self.label not in LABELS:
            raise ValueError(f"label must be one of {LABELS}, got {self.label!r}")
        names = (
            "inner_days",
            "batch_size",
            "max_train_agents",
            "als_factors",
            "num_threads",
            "ranker_iter",
            "return_iter",
        )
        for name in names:
            value = getattr(self, name)
            if not isinstance(value, (int, np.integer)) or value < 1:
                raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
        if not isinstance(self.score_threads, (int, np.integer)) or self.score_threads < 0:
            raise ValueError(f"score_threads must be an integer >= 0, got {self.score_threads!r}")
        if self.refine_top is not None and (
            not isinstance(self.refine_top, (int, np.integer)) or self.refine_top < 1
        ):
            raise ValueError(f"refine_top must be an integer >= 1 or None, got {self.refine_top!r}")
        if not 0.0 <= self.share_weight <= 1.0:
            raise ValueError(f"share_weight must be in [0, 1], got {self.share_weight!r}")
        if self.share_weight > 0 and self.label not in ("units", "purchases"):
            raise ValueError(
                "share_weight > 0 mixes counts: it needs label='purchases' or 'units', "
                f"got {self.label!r}"
            )
        if not self.return_cost >= 0:
            raise ValueError(f"return_cost must be >= 0, got {self.return_cost!r}")
        if not 0 <= self.label_lag_days < self.inner_days:
            raise ValueError(
                f"label_lag_days must be in [0, inner_days={self.inner_days}), "
                f"got {self.label_lag_days!r}"
            )

    def _state_kwargs(self) -> dict[str, Any]:
        return {
            "als_params": {
                "factors": self.als_factors,
                "regularization": self.als_regularization,
                "alpha": self.als_alpha,
                "iterations": self.als_iterations,
            },
            "knn_params": {"k_neighbours": self.knn_neighbours},
            "audience_params": {"factors": self.audience_factors, "enabled": self.use_audience},
            "random_state": self.random_state,
            "num_threads": self.num_threads,
        }

    @property
    def needs_side_features(self) -> bool:
        """The ranking state reads the SKU side features (content score, explorer profiles)."""
        return True

    def _fit(self, dataset: Dataset) -> None:
        # the boosters and ALS run OpenMP threads; on a shared 2-core box more threads than
        # cores spin against each other (3x slower measured), so the count is a parameter
        with thread_limit(int(self.num_threads)):
            self._fit_parts(dataset)

    def _fit_parts(self, dataset: Dataset) -> None:
        from recsys.ranking.candidates import CandidateConfig, sku_allowed
        from recsys.ranking.lookup import PairLookup
        from recsys.ranking.ranker import Ranker
        from recsys.ranking.return_risk import ReturnRiskModel
        from recsys.ranking.rules import RuleConfig
        from recsys.ranking.state import RankingState
        from recsys.ranking.tables import ranking_tables

        self._check_params()
        self.candidate_config_ = CandidateConfig(**(self.candidates or {}))
        self.rule_config_ = RuleConfig(**(self.rules or {}))
        tables = ranking_tables(dataset)
        weights = dict(dataset.meta.get("weights") or {})
        kwargs = self._state_kwargs()
        if self.candidate_config_.n_bpr:
            kwargs["bpr_params"] = {"factors": self.als_factors}
        timings: dict[str, float] = {}
        t0 = time.perf_counter()
        inner_cutoff = dataset.cutoff - pd.Timedelta(days=int(self.inner_days))
        rank_params = {
            "max_iter": self.ranker_iter,
            "learning_rate": self.ranker_learning_rate,
            "max_leaf_nodes": self.ranker_leaves,
            "random_state": self.random_state,
        }
        self.ranker_ = Ranker(label=self.label, **rank_params)  # type: ignore[arg-type]
        self.share_ranker_ = Ranker(label=self._share_label(), **rank_params)
        self.return_model_ = ReturnRiskModel(
            max_iter=self.return_iter, random_state=self.random_state
        )
        self.diagnostics_: dict[str, float] = {}
        try:
            inner = RankingState.build(tables, inner_cutoff, weights=weights, **kwargs)
        except EmptyDataError:
            inner = None  # too little history before the inner cutoff: fallback scoring
        timings["inner_state_s"] = time.perf_counter() - t0
        if inner is not None:
            self._learn(tables, inner, dataset.cutoff, timings)
        t3 = time.perf_counter()
        self.suspended_ = self._suspended(tables, dataset) if self.quality_check else []
        self.state_ = RankingState.build(
            tables, dataset.cutoff, agent_dataset=dataset, weights=weights, **kwargs
        )
        suspended_idx = self.skus_.to_index(self.suspended_, on_unknown="ignore")
        suspended_idx = suspended_idx[suspended_idx >= 0]
        self.allowed_ = sku_allowed(self.state_, suspended_idx)
        # the popularity fallback of the base class must not bring them back either
        self.available_ = self.available_.copy()
        self.available_[suspended_idx] = False
        timings["state_s"] = time.perf_counter() - t3
        self.seen_at_ = PairLookup(self.seen_)
        self.timings_ = timings

    def _share_label(self) -> Any:
        """The share ranker counts what the main ranker counts."""
        return "shared_units" if self.label == "units" else "shared_purchases"

    def _learn(
        self, tables: Any, inner: Any, cutoff: pd.Timestamp, timings: dict[str, float]
    ) -> None:
        """Fit the rankers and the return-risk model on the window [inner cutoff, cutoff)."""
        from recsys.ranking.candidates import sku_allowed
        from recsys.ranking.ranker import training_rows
        from recsys.ranking.return_risk import fit_return_risk

        t1 = time.perf_counter()
        common = {
            "config": self.candidate_config_,
            "max_agents": self.max_train_agents,
            "random_state": self.random_state,
        }
        rows = training_rows(
            tables,
            inner,
            cutoff,
            sku_allowed(inner),
            label=self.label,  # type: ignore[arg-type]
            batch_size=self.batch_size,
            **common,
        )
        self.ranker_.fit(rows)
        self.diagnostics_.update(
            {
                "ranker_rows": float(len(rows.y)),
                "ranker_positives": float((rows.y > 0).sum()),
                "candidate_recall": rows.candidate_recall,
            }
        )
        if self.share_weight > 0:
            shared = training_rows(
                tables, inner, cutoff, sku_allowed(inner), label=self._share_label(), **common
            )
            self.share_ranker_.fit(shared)
            self.diagnostics_["share_ranker_rows"] = float(len(shared.y))
        timings["ranker_s"] = time.perf_counter() - t1
        t2 = time.perf_counter()
        self.return_model_, lines = fit_return_risk(
            tables,
            inner,
            cutoff,
            max_iter=self.return_iter,
            label_lag_days=self.label_lag_days,
            unit=self.return_unit,  # type: ignore[arg-type]
            random_state=self.random_state,
        )
        self.diagnostics_.update(
            {"return_lines": float(len(lines)), "return_rate": self.return_model_.base_rate_}
        )
        timings["return_model_s"] = time.perf_counter() - t2

    def _suspended(self, tables: Any, dataset: Dataset) -> list[str]:
        """SKUs the quality circuit breaker suspends at the cutoff."""
        from recsys.quality.breaker import BreakerConfig, QualityLog, check_quality, suspensions

        config = BreakerConfig(**(self.quality or {}))
        log = QualityLog.from_tables(tables, config.fault_reasons)
        if len(log.line_ts) == 0:
            return []
        found = suspensions(check_quality(log, dataset.cutoff, config))
        return [str(s) for s in found["sku_id"]]

    # ---- scoring ---------------------------------------------------------------------------
    def source_tables(self, num_threads: int | None = None) -> Any:
        """The candidate sources' shared tables (`recsys.ranking.candidates.SourceTables`);
        their top-k selections run `num_threads` threads (default: the model's)."""
        from recsys.ranking.candidates import source_tables

        threads = int(self.num_threads if num_threads is None else num_threads)
        return source_tables(self.state_, self.allowed_, self.candidate_config_, threads)

    def score_candidates(
        self,
        agent_idx: np.ndarray,
        exclude_seen: bool = False,
        tables: Any = None,
        timings: dict[str, float] | None = None,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict[str, np.ndarray]]:
        """Scored candidates of a batch: (row in batch, SKU index, final score, parts).

        `parts` holds the factors of each score: `p_bought`, `p_return` and `value`. `tables`
        (from `source_tables()`) saves rebuilding the sources' shared tables per batch;
        `timings` (if given) adds the seconds of each stage (candidates, features, models) and
        the number of candidate pairs (`candidate_pairs`).
        """
        from recsys.ranking.candidates import generate
        from recsys.ranking.lookup import first_per_row
        from recsys.ranking.ranker import ranker_matrix
        from recsys.ranking.rules import exclusion_mask

        clock = _StageClock(timings)
        state = self.state_
        tables = tables if tables is not None else self.source_tables()
        cands = generate(state, agent_idx, self.allowed_, self.candidate_config_, tables)
        agents = agent_idx[cands.rows]
        keep = exclusion_mask(state, agents, cands.skus, self.rule_config_)
        if exclude_seen:
            keep &= self.seen_at_(agents, cands.skus) == 0
        kept = cands.subset(keep)
        rows, skus = kept.rows, kept.skus
        clock.lap("candidates")
        clock.add("candidate_pairs", len(rows))
        X = ranker_matrix(state, agent_idx, kept)
        clock.lap("features")
        p_bought = self.ranker_.predict(X)
        p_return = self.return_model_.predict(X)  # reads its FEATURES columns
        value = self._values(skus)
        # a ranker without a model (e.g. a log with no shares) scores on another scale: no mix
        both = self.ranker_.model_ is not None and self.share_ranker_.model_ is not None
        if self.share_weight > 0 and both:
            if self.refine_top is not None:
                # the share ranker reads only her best candidates by the ranker and the risk
                first = p_bought * value * (1.0 - (1.0 + self.return_cost) * p_return)
                best = first_per_row(rows, first, skus, int(self.refine_top))
                rows, skus, X = rows[best], skus[best], X[best]
                p_bought, value, p_return = p_bought[best], value[best], p_return[best]
            w = float(self.share_weight)
            p_bought = (1.0 - w) * p_bought + w * self.share_ranker_.predict(X)
        score = p_bought * value * (1.0 - (1.0 + self.return_cost) * p_return)
        clock.lap("models")
        parts = {"p_bought": p_bought, "p_return": p_return, "value": value}
        return rows, skus, score.astype(np.float32), parts

    def _values(self, skus: np.ndarray) -> np.ndarray:
        sku = self.state_.sku
        counts_units = self.label in ("units", "shared_units")  # predictions already in units
        per_line = 1.0 / sku.mean_qty[skus] if counts_units else np.ones(len(skus))
        if self.value == "purchases":
            return per_line
        if self.value == "units":
            return per_line * sku.mean_qty[skus]
        return per_line * sku.mean_qty[skus] * sku.price[skus]

    def pick_reasons(
        self, agent_ids: np.ndarray, sku_ids: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Reason ids (n × 3 uint8) and parameters (n × 3 uint16) of aligned picks.

        Each reason is true for its pick at the model's cutoff (recsys/ranking/reasons.py);
        `recsys publish` stores them with the picks. Unknown agents and SKUs get only what is
        true without them (`picked_for_you` at least).
        """
        from recsys.ranking.reasons import MAX_PICK_REASONS, pick_reasons

        self.check_fitted()
        agents = self.users_.to_index(np.asarray(agent_ids, dtype=object), on_unknown="ignore")
        skus = self.skus_.to_index(np.asarray(sku_ids, dtype=object), on_unknown="ignore")
        ids = np.zeros((len(skus), MAX_PICK_REASONS), dtype=np.uint8)
        params = np.zeros((len(skus), MAX_PICK_REASONS), dtype=np.uint16)
        known = skus >= 0
        if known.any():
            ids[known], params[known] = pick_reasons(self.state_, agents[known], skus[known])
        if (~known).any():
            from recsys.reasons import reason_id

            ids[~known, 0] = reason_id("picked_for_you")
        return ids, params

    def explain(self, reco: pd.DataFrame) -> pd.DataFrame:
        """`reco` with the reasons of each pick: reason_1, param_1, ... reason_3, param_3."""
        from recsys.columns import Columns
        from recsys.ranking.reasons import reasons_frame

        ids, params = self.pick_reasons(
            reco[Columns.AGENT_ID].to_numpy(dtype=object),
            reco[Columns.SKU_ID].to_numpy(dtype=object),
        )
        return pd.concat([reco.reset_index(drop=True), reasons_frame(ids, params)], axis=1)

    def _topk(
        self, user_idx: np.ndarray, k: int, exclude_seen: bool
    ) -> tuple[np.ndarray, np.ndarray]:
        workers = min(self._score_workers(), -(-len(user_idx) // int(self.batch_size)))
        if workers <= 1:
            with thread_limit(int(self.num_threads)):
                return self._topk_batches(user_idx, k, exclude_seen)
        # the compiled trees and kNN, implicit's top-k and numpy release the GIL: batches run
        # in parallel threads, each single-threaded so they do not compete for the cores
        with thread_limit(1):
            return self._topk_batches(user_idx, k, exclude_seen, workers)

    def _score_workers(self) -> int:
        """Threads scoring batches in parallel (`score_threads`, 0 = the usable cores)."""
        wanted = int(getattr(self, "score_threads", 1))  # models pickled before: one
        if wanted > 0:
            return wanted
        try:
            return len(os.sched_getaffinity(0))
        except AttributeError:  # not on Linux
            return os.cpu_count() or 1

    def _topk_batches(
        self, user_idx: np.ndarray, k: int, exclude_seen: bool, workers: int = 1
    ) -> tuple[np.ndarray, np.ndarray]:
        from concurrent.futures import ThreadPoolExecutor

        from recsys.ranking.rules import select_top_k

        out_idx = np.full((len(user_idx), k), -1, dtype=np.int64)
        out_val = np.full((len(user_idx), k), -np.inf, dtype=np.float32)
        tables = self.source_tables() if workers <= 1 else self.source_tables(num_threads=1)

        def top(sl: slice) -> tuple[slice, np.ndarray, np.ndarray]:
            agents = np.asarray(user_idx[sl], dtype=np.int64)
            rows, skus, score, _ = self.score_candidates(agents, exclude_seen, tables)
            idx, val = select_top_k(
                self.state_, rows, skus, score, len(agents), k, self.rule_config_
            )
            return sl, idx, val

        slices = list(batches(len(user_idx), int(self.batch_size)))
        if workers <= 1 or len(slices) <= 1:
            results = map(top, slices)
        else:
            # the first batch alone builds the lookups the state caches on first use
            first = top(slices[0])
            with ThreadPoolExecutor(workers, thread_name_prefix="ranked-score") as pool:
                results = [first, *pool.map(top, slices[1:])]
        for sl, idx, val in results:
            out_idx[sl], out_val[sl] = idx, val
        return out_idx, out_val

    def _score(self, user_idx: np.ndarray) -> np.ndarray:
        """Dense scores: each candidate's final score, -inf for SKUs that are not candidates."""
        out = np.full((len(user_idx), len(self.skus_)), -np.inf, dtype=np.float32)
        with thread_limit(int(self.num_threads)):
            rows, skus, score, _ = self.score_candidates(np.asarray(user_idx, dtype=np.int64))
        out[rows, skus] = score
        return out


class _StageClock:
    """Adds the seconds since the previous lap to a stage's total (nothing without a dict)."""

    def __init__(self, timings: dict[str, float] | None) -> None:
        self.timings = timings
        self.last = time.perf_counter()

    def add(self, key: str, amount: float) -> None:
        """Add `amount` to a total that is not a time."""
        if self.timings is not None:
            self.timings[key] = self.timings.get(key, 0.0) + amount

    def lap(self, stage: str) -> None:
        """Charge the time since the previous lap to `stage`."""
        if self.timings is None:
            return
        now = time.perf_counter()
        self.timings[stage] = self.timings.get(stage, 0.0) + now - self.last
        self.last = now
