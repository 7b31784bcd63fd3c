from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError
from scipy import stats

from recsys.ab import Experiment, Variant, assign_many, unit_point


def _exp(weights: list[float], salt: str = "s1") -> Experiment:
    return Experiment(
        name="exp",
        salt=salt,
        variants=[Variant(name=f"v{i}", weight=w) for i, w in enumerate(weights)],
    )


def test_assign_is_deterministic_and_matches_batch() -> None:
    exp = _exp([1, 1])
    ids = [f"A{i:05d}" for i in range(500)]
    single = [exp.assign(i).name for i in ids]
    assert single == [exp.assign(i).name for i in ids]
    assert single == assign_many(exp, ids)


def test_assign_matches_weights_over_100k_ids() -> None:
    exp = _exp([0.2, 0.3, 0.5])
    ids = [f"A{i:07d}" for i in range(100_000)]
    names = assign_many(exp, ids)
    counts = np.array([names.count(f"v{i}") for i in range(3)])
    # chi-square goodness of fit: a correct hash passes at any sane level
    p = stats.chisquare(counts, exp.probabilities * len(ids)).pvalue
    assert p > 0.001
    np.testing.assert_allclose(counts / len(ids), [0.2, 0.3, 0.5], atol=0.01)


def test_assign_depends_on_salt() -> None:
    ids = [f"A{i}" for i in range(2000)]
    a = assign_many(_exp([1, 1], "salt-a"), ids)
    b = assign_many(_exp([1, 1], "salt-b"), ids)
    agree = np.mean([x == y for x, y in zip(a, b, strict=True)])
    assert 0.4 < agree < 0.6  # independent salts: about half agree


@given(st.text(min_size=1, max_size=20), st.text(max_size=40))
def test_unit_point_in_unit_interval(salt: str, unit: str) -> None:
    assert 0.0 <= unit_point(salt, unit) < 1.0


def test_experiment_rejects_duplicate_variants_and_bad_weights() -> None:
    with pytest.raises(ValidationError, match="unique"):
        Experiment(name="e", salt="s", variants=[Variant(name="a", weight=1)] * 2)
    with pytest.raises(ValidationError, match="greater than 0"):
        Variant(name="a", weight=0)
    with pytest.raises(ValidationError):
        Variant(name="bad name!", weight=1)
