"""Paired bootstrap: known answers, determinism, and agreement with scipy."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.testing import assert_allclose
from scipy import stats

from recsys.evaluation import bootstrap
from recsys.evaluation.bootstrap import beats, paired_bootstrap, paired_differences
from recsys.exceptions import EmptyDataError


def per_user(values: np.ndarray, prefix: str = "u") -> pd.Series:
    return pd.Series(values, index=[f"{prefix}{i:04d}" for i in range(len(values))])


@pytest.fixture()
def champion() -> pd.Series:
    return per_user(np.random.default_rng(1).uniform(0, 1, 400))


def test_bootstrap_of_identical_series_is_zero_and_does_not_beat(champion):
    result = paired_bootstrap(champion, champion.copy())
    assert (result.mean_diff, result.ci_low, result.ci_high, result.p_better) == (0, 0, 0, 0)
    assert result.n_users == 400
    assert not beats(result)


def test_bootstrap_of_a_clearly_better_series_beats(champion):
    noise = np.random.default_rng(2).normal(0, 0.05, len(champion))
    result = paired_bootstrap(champion + 0.1 + noise, champion)
    assert_allclose(result.mean_diff, 0.1 + noise.mean())
    assert 0 < result.ci_low < result.mean_diff < result.ci_high
    assert result.p_better == 1.0
    assert beats(result)
    assert not beats(paired_bootstrap(champion, champion + 0.1 + noise))


def test_bootstrap_of_noise_around_zero_does_not_beat(champion):
    noise = np.random.default_rng(3).normal(0, 0.2, len(champion))
    result = paired_bootstrap(champion + noise - noise.mean(), champion)
    assert result.ci_low < 0 < result.ci_high
    assert 0.2 < result.p_better < 0.8
    assert not beats(result)


def test_bootstrap_is_deterministic_for_a_seed(champion):
    challenger = champion + np.random.default_rng(4).normal(0.01, 0.1, len(champion))
    first = paired_bootstrap(challenger, champion, random_state=7)
    assert paired_bootstrap(challenger, champion, random_state=7) == first
    # row order is not an input: the users are aligned by id
    assert paired_bootstrap(
        challenger.sample(frac=1, random_state=0), champion, random_state=7
    ) == (first)
    assert paired_bootstrap(challenger, champion, random_state=8) != first


def test_bootstrap_blocks_do_not_change_the_result(champion, monkeypatch):
    challenger = champion + np.random.default_rng(5).normal(0.01, 0.1, len(champion))
    expected = paired_bootstrap(challenger, champion, n_resamples=500)
    monkeypatch.setattr(bootstrap, "MAX_DRAWS", 3 * len(champion))  # blocks of 3 resamples
    assert paired_bootstrap(challenger, champion, n_resamples=500) == expected


def test_bootstrap_agrees_with_scipy(champion):
    challenger = champion + np.random.default_rng(6).normal(0.02, 0.15, len(champion))
    ours = paired_bootstrap(challenger, champion, n_resamples=5000, random_state=0)
    theirs = stats.bootstrap(
        (challenger.to_numpy(), champion.to_numpy()),
        lambda x, y, axis: np.mean(x - y, axis=axis),
        paired=True,
        vectorized=True,
        n_resamples=5000,
        confidence_level=0.95,
        method="percentile",
        rng=np.random.default_rng(12345),  # independent draws: a real Monte Carlo check
    )
    width = theirs.confidence_interval.high - theirs.confidence_interval.low
    # two estimates of the same quantiles from 5000 resamples each: a few % of the width apart
    assert_allclose(ours.ci_low, theirs.confidence_interval.low, atol=0.05 * width)
    assert_allclose(ours.ci_high, theirs.confidence_interval.high, atol=0.05 * width)
    assert_allclose(ours.ci_high - ours.ci_low, width, rtol=0.05)


def test_missing_users_count_zero_on_their_side():
    challenger = pd.Series({"a": 1.0, "b": 0.5})
    champion = pd.Series({"b": 0.25, "c": 1.0})
    diff = paired_differences(challenger, champion)
    assert diff.to_dict() == {"a": 1.0, "b": 0.25, "c": -1.0}
    assert paired_bootstrap(challenger, champion).n_users == 3
    assert_allclose(paired_bootstrap(challenger, champion).mean_diff, (1.0 + 0.25 - 1.0) / 3)


def test_describe_names_the_numbers(champion):
    text = paired_bootstrap(champion + 0.1, champion, n_resamples=100).describe()
    assert text == (
        "mean improvement +0.10000, 95% CI [+0.10000, +0.10000], P(better) 1.000, "
        "400 users, 100 resamples"
    )


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"n_resamples": 0}, "n_resamples must be an integer >= 1, got 0"),
        ({"confidence": 1.0}, r"confidence must be in \(0, 1\), got 1.0"),
    ],
)
def test_bootstrap_rejects_bad_arguments(champion, kwargs, match):
    with pytest.raises(ValueError, match=match):
        paired_bootstrap(champion, champion, **kwargs)


def test_bootstrap_rejects_bad_series(champion):
    with pytest.raises(ValueError, match="challenger must have one value per user, got 'u0000'"):
        paired_bootstrap(pd.concat([champion, champion.iloc[:1]]), champion)
    with pytest.raises(ValueError, match="champion has missing values for 1 users"):
        paired_bootstrap(champion, champion.where(champion.index != "u0003"))
    with pytest.raises(EmptyDataError, match="no users"):
        paired_bootstrap(champion.iloc[:0], champion.iloc[:0])


@settings(max_examples=40, deadline=None)
@given(
    st.lists(st.floats(0, 1), min_size=1, max_size=30),
    st.lists(st.floats(0, 1), min_size=1, max_size=30),
    st.integers(0, 2**16),
)
def test_swapping_the_models_mirrors_the_interval(a, b, seed):
    n = min(len(a), len(b))
    x, y = per_user(np.array(a[:n])), per_user(np.array(b[:n]))
    forward = paired_bootstrap(x, y, n_resamples=200, random_state=seed)
    backward = paired_bootstrap(y, x, n_resamples=200, random_state=seed)
    assert forward.ci_low <= forward.ci_high
    assert 0 <= forward.p_better <= 1
    assert_allclose(backward.mean_diff, -forward.mean_diff, atol=1e-12)
    assert_allclose(
        [backward.ci_low, backward.ci_high], [-forward.ci_high, -forward.ci_low], atol=1e-12
    )
