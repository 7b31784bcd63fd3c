"""Paired bootstrap of a per-user metric: does the challenger beat the champion? (issue 3, 4).

Both models are scored on the same holdout users; the statistic is the mean over users of
challenger − champion. Resampling users (not lines) keeps each user's two values paired, so the
interval reflects how consistently the challenger is better across users.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from recsys.exceptions import EmptyDataError

# Upper bound on resampled user indices drawn at once (8 bytes each: 32 MB).
MAX_DRAWS = 4_000_000
MAX_BLOCK = 200  # resamples per block


@dataclass(frozen=True)
class BootstrapResult:
    """Mean improvement of challenger over champion and its percentile interval."""

    mean_diff: float  # observed mean over users of challenger − champion
    ci_low: float
    ci_high: float
    p_better: float  # share of resamples whose mean difference is > 0
    n_users: int
    confidence: float = 0.95
    n_resamples: int = 0

    def describe(self) -> str:
        """One line with the numbers, for promotion logs and refusals."""
        return (
            f"mean improvement {self.mean_diff:+.5f}, {self.confidence:.0%} CI "
            f"[{self.ci_low:+.5f}, {self.ci_high:+.5f}], P(better) {self.p_better:.3f}, "
            f"{self.n_users} users, {self.n_resamples} resamples"
        )


def paired_differences(challenger: pd.Series, champion: pd.Series) -> pd.Series:
    """Challenger − champion per user over the union of users (a missing user scores 0).

    A user missing from one side had no picks or no score there, which counts as 0 for a
    per-user metric; dropping them instead would favour the model that skips hard users.

    Raises
    ------
    ValueError
        If either Series has duplicated users or missing values.
    """
    for name, values in (("challenger", challenger), ("champion", champion)):
        if not isinstance(values, pd.Series):
            raise TypeError(f"{name} must be a Series indexed by user id, got {type(values)}")
        if values.index.has_duplicates:
            dupe = values.index[values.index.duplicated()][0]
            raise ValueError(f"{name} must have one value per user, got {dupe!r} twice or more")
        if values.isna().any():
            raise ValueError(f"{name} has missing values for {int(values.isna().sum())} users")
    users = challenger.index.union(champion.index)  # sorted, so row order does not matter
    ahead = challenger.reindex(users, fill_value=0.0).astype(np.float64)
    return ahead - champion.reindex(users, fill_value=0.0).astype(np.float64)


def paired_bootstrap(
    challenger: pd.Series,
    champion: pd.Series,
    n_resamples: int = 2000,
    confidence: float = 0.95,
    random_state: int = 0,
) -> BootstrapResult:
    """Percentile bootstrap interval of the mean per-user improvement of challenger over champion.

    Parameters
    ----------
    challenger, champion
        Per-user metric values indexed by user id (e.g. from `evaluate_per_user`).
    n_resamples
        Number of bootstrap resamples of the users.
    confidence
        Two-sided confidence level of the interval.
    random_state
        Seed; the same inputs and seed give the same result.

    Raises
    ------
    ValueError
        If `n_resamples` < 1 or `confidence` is not in (0, 1).
    EmptyDataError
        If there is no user in either Series.
    """
    is_int = isinstance(n_resamples, (int, np.integer)) and not isinstance(n_resamples, bool)
    if not is_int or n_resamples < 1:
        raise ValueError(f"n_resamples must be an integer >= 1, got {n_resamples!r}")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence!r}")
    diff = paired_differences(challenger, champion).to_numpy()
    n_users = len(diff)
    if n_users == 0:
        raise EmptyDataError("challenger and champion have no users: nothing to compare")
    rng = np.random.default_rng(random_state)
    means = np.empty(n_resamples)
    # resample in blocks so memory stays at MAX_DRAWS indices whatever the number of users
    block = max(1, min(MAX_BLOCK, MAX_DRAWS // n_users))
    for start in range(0, n_resamples, block):
        stop = min(start + block, n_resamples)
        idx = rng.integers(0, n_users, size=(stop - start, n_users))
        means[start:stop] = diff[idx].mean(axis=1)
    tail = (1 - confidence) / 2
    ci_low, ci_high = np.quantile(means, [tail, 1 - tail])
    return BootstrapResult(
        mean_diff=float(diff.mean()),
        ci_low=float(ci_low),
        ci_high=float(ci_high),
        p_better=float((means > 0).mean()),
        n_users=n_users,
        confidence=float(confidence),
        n_resamples=int(n_resamples),
    )


def beats(result: BootstrapResult) -> bool:
    """True if the whole interval of the improvement lies above zero."""
    return result.ci_low > 0
