"""Lower confidence bounds of a rate: known values and properties."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from numpy.testing import assert_allclose
from scipy import stats

from recsys.quality.bounds import beta_lower, wilson_lower


def test_wilson_lower_matches_the_textbook_interval() -> None:
    # 5 of 10 at 95% two-sided (z = 1.96): the interval is [0.2366, 0.7634]
    assert_allclose(wilson_lower(5, 10, 0.975), [0.2366], atol=1e-4)
    # no trials: no evidence, bound 0
    assert_allclose(wilson_lower([0, 3], [0, 3], 0.99)[0], 0.0)


def test_beta_lower_is_the_posterior_quantile() -> None:
    got = beta_lower([7, 0], [14, 20], [0.05, 0.2], prior_strength=10.0, confidence=0.99)
    want = [
        stats.beta.ppf(0.01, 0.05 * 10 + 7, 0.95 * 10 + 7),
        stats.beta.ppf(0.01, 0.2 * 10 + 0, 0.8 * 10 + 20),
    ]
    assert_allclose(got, want, rtol=1e-9)


counts = st.integers(min_value=1, max_value=2000).flatmap(
    lambda n: st.tuples(st.integers(min_value=0, max_value=n), st.just(n))
)


@given(counts, st.floats(min_value=0.5, max_value=0.999))
def test_wilson_lower_lies_below_the_rate(kn: tuple[int, int], confidence: float) -> None:
    k, n = kn
    lower = wilson_lower(k, n, confidence)[0]
    assert 0.0 <= lower <= k / n + 1e-12


@given(counts)
def test_bounds_grow_with_evidence_at_the_same_rate(kn: tuple[int, int]) -> None:
    k, n = kn
    assert wilson_lower(2 * k, 2 * n)[0] >= wilson_lower(k, n)[0] - 1e-12
    small, large = beta_lower([k, 2 * k], [n, 2 * n], 0.05, 10.0)
    if k / n > 0.05:
        assert large >= small - 1e-12


@given(counts, st.floats(min_value=0.01, max_value=0.5))
def test_beta_lower_lies_below_the_posterior_mean(kn: tuple[int, int], prior: float) -> None:
    k, n = kn
    mean = (prior * 10 + k) / (10 + n)
    assert 0.0 <= beta_lower(k, n, prior, 10.0)[0] <= mean


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: wilson_lower(1, 2, 1.0), "confidence"),
        (lambda: wilson_lower(3, 2), "successes must be <= trials"),
        (lambda: wilson_lower(-1, 2), ">= 0"),
        (lambda: beta_lower(1, 2, 0.0), "prior_rate"),
        (lambda: beta_lower(1, 2, 0.1, prior_strength=0.0), "prior_strength"),
    ],
)
def test_bounds_reject_bad_input(call: object, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        call()  # type: ignore[operator]


def test_bounds_are_vectorised() -> None:
    k, n = np.array([0, 5, 50]), np.array([10, 10, 100])
    assert wilson_lower(k, n).shape == (3,)
    assert beta_lower(k, n, np.array([0.1, 0.1, 0.1])).shape == (3,)
