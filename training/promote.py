"""`recsys promote`: move @champion to @challenger only if it beats the champion on one holdout.

The comparison is a paired bootstrap over users of the primary metric (kept NDCG@20 by default):
the challenger wins when the 95% interval of its mean improvement lies above zero. With no
champion yet, the challenger must beat the popularity baseline evaluated in the same run.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pandas as pd

from training.config import REGISTERED_NAMES, TrainConfig
from training.registry import (
    CHALLENGER,
    CHAMPION,
    PREVIOUS,
    get_version,
    load_per_user,
    load_recommender,
)


@dataclass
class Decision:
    """The outcome of a promotion attempt, with the numbers behind it."""

    promoted: bool
    reason: str
    name: str
    challenger_version: str | None
    champion_version: str | None
    metric: str
    mean_diff: float = float("nan")
    ci_low: float = float("nan")
    ci_high: float = float("nan")
    n_users: int = 0
    forced: bool = False

    def as_dict(self) -> dict[str, Any]:
        """The decision as plain data (for logging and JSON output)."""
        return dict(self.__dict__)


def _run_config(run_id: str) -> TrainConfig:
    import mlflow

    path = mlflow.artifacts.download_artifacts(
        run_id=run_id, artifact_path="evaluation/config.json"
    )
    with open(path) as fh:
        return TrainConfig(**json.load(fh))


def champion_on_challenger_holdout(
    challenger_run: str, champion_run: str, metric: str
) -> pd.Series:
    """Per-user `metric` of the champion's model, evaluated on the challenger's holdout."""
    from mlflow import MlflowClient

    client = MlflowClient()
    ch, cp = (client.get_run(r).data for r in (challenger_run, champion_run))
    same = all(
        ch.tags.get(t) == cp.tags.get(t) and ch.tags.get(t) for t in ("data_fingerprint", "cutoff")
    )
    # the same holdout users too: a run evaluated on a sample (`eval_users`) scored only those
    same = same and ch.params.get("eval_users", "None") == cp.params.get("eval_users", "None")
    if same:
        frame = load_per_user(champion_run)
        if metric in frame.columns:
            return frame[metric]
    from training.train import evaluate_model, prepare

    config = _run_config(challenger_run).model_copy(update={"primary_metric": metric})
    _, split, dataset = prepare(config)
    model = load_recommender(champion_run)
    _, per_user, _ = evaluate_model(
        model, dataset, split.truth(config.target), split.segments(config.target), config
    )
    return per_user[metric]


def promote(
    target: str,
    *,
    force: bool = False,
    metric: str | None = None,
    n_resamples: int = 2000,
    random_state: int = 0,
) -> Decision:
    """Promote `{target}`'s @challenger to @champion if it wins (or `force`), else say why not."""
    from mlflow import MlflowClient

    from recsys.evaluation.bootstrap import beats, paired_bootstrap

    if target not in REGISTERED_NAMES:
        raise ValueError(f"target must be one of {sorted(REGISTERED_NAMES)}, got {target!r}")
    name = REGISTERED_NAMES[target]
    challenger = get_version(name, CHALLENGER)
    if challenger is None:
        raise ValueError(f"{name} has no @{CHALLENGER}: run `recsys train --target {target}` first")
    champion = get_version(name, CHAMPION)
    config = _run_config(challenger.run_id)
    metric = metric or config.primary_metric
    decision = Decision(
        promoted=False,
        reason="",
        name=name,
        challenger_version=str(challenger.version),
        champion_version=str(champion.version) if champion else None,
        metric=metric,
    )
    if champion is not None and str(champion.version) == str(challenger.version):
        decision.reason = f"{name} v{challenger.version} is already @{CHAMPION}"
        return decision

    ch_frame = load_per_user(challenger.run_id)
    if metric not in ch_frame.columns:
        raise ValueError(f"run {challenger.run_id} logged no per-user {metric!r}")
    ch_values = ch_frame[metric]
    if champion is None:
        opponent_label = "the popularity baseline"
        base_col = f"popular.{metric}"
        if base_col not in ch_frame.columns:
            raise ValueError(f"run {challenger.run_id} logged no popularity baseline {base_col!r}")
        opponent = ch_frame[base_col]
    else:
        opponent_label = f"@{CHAMPION} v{champion.version}"
        opponent = champion_on_challenger_holdout(challenger.run_id, champion.run_id, metric)

    result = paired_bootstrap(
        ch_values, opponent, n_resamples=n_resamples, random_state=random_state
    )
    decision.mean_diff, decision.ci_low, decision.ci_high = (
        result.mean_diff,
        result.ci_low,
        result.ci_high,
    )
    decision.n_users = result.n_users
    numbers = (
        f"{metric}: mean improvement {result.mean_diff:+.5f}, 95% CI "
        f"[{result.ci_low:+.5f}, {result.ci_high:+.5f}] over {result.n_users} users"
    )
    won = beats(result)
    if not won and not force:
        decision.reason = (
            f"refused: v{challenger.version} does not beat {opponent_label} ({numbers})"
        )
        return decision
    client = MlflowClient()
    if champion is not None:
        client.set_registered_model_alias(name, PREVIOUS, str(champion.version))
    client.set_registered_model_alias(name, CHAMPION, str(challenger.version))
    client.set_model_version_tag(name, str(challenger.version), "promotion", numbers)
    decision.promoted = True
    decision.forced = force and not won
    verb = "FORCED over" if decision.forced else "beats"
    decision.reason = f"promoted v{challenger.version}: {verb} {opponent_label} ({numbers})"
    return decision
