"""SKU, agent and customer side features on the tiny log, worked out by hand."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_allclose

from features.encoding import (
    FeatureConfig,
    band_edges,
    band_of,
    mix,
    multi_hot,
    one_hot,
    percentile_of,
    smoothed_rate,
    top_values,
)
from features.interactions import sku_id_map, user_id_map
from features.item_features import build_sku_features
from features.user_features import build_user_features
from tests.features.tiny import CUTOFF, tiny_tables

# Units before the cutoff: bought 10 (s1: 3+1+2+1, s2: 2+1), returned 3 (r1, r2, r3).
GLOBAL_RATE = 3 / 10
A = 20.0  # default return_prior_units


def sku_features(**config: object) -> pd.DataFrame:
    tables = tiny_tables()
    return build_sku_features(tables, sku_id_map(tables), CUTOFF, FeatureConfig(**config))


def user_features(target: str, **config: object) -> pd.DataFrame:
    tables = tiny_tables()
    users, skus = user_id_map(tables, target), sku_id_map(tables)
    return build_user_features(tables, target, users, skus, CUTOFF, FeatureConfig(**config))


def test_sku_features_aligned_numeric_no_nan() -> None:
    feats = sku_features()
    assert list(feats.index) == ["s1", "s2", "s3", "s4"]
    assert (feats.dtypes == np.float32).all()
    assert not feats.isna().any().any()


def test_sku_features_one_hot_and_capped_vocab() -> None:
    feats = sku_features(max_brands=1, max_tags=1)
    # brand A is on two SKUs, B and C on one each: A is kept, the rest are `_other`.
    assert feats["brand=A"].tolist() == [1, 0, 1, 0]
    assert feats["brand=_other"].tolist() == [0, 1, 0, 1]
    assert "brand=B" not in feats.columns
    assert feats["tag=organic"].tolist() == [1, 1, 0, 0]  # organic (2) beats gift (1)
    assert "tag=gift" not in feats.columns
    assert feats["category=snacks"].tolist() == [1, 0, 1, 0]
    assert feats["series=daily"].tolist() == [1, 0, 1, 0]
    assert feats["series=_other"].tolist() == [0, 0, 0, 0]  # a missing series is no series


def test_sku_features_price_bands_and_level() -> None:
    feats = sku_features(n_price_bands=2)
    # prices 10, 50, 20, 100: the median edge is 35
    assert feats["price_band=0"].tolist() == [1, 0, 1, 0]
    assert feats["price_band=1"].tolist() == [0, 1, 0, 1]
    assert_allclose(feats["price_level"], [1 / 4, 3 / 4, 2 / 4, 4 / 4])


def test_sku_features_age_and_not_launched() -> None:
    feats = sku_features(age_horizon_days=365)
    # s1 launched 01-01, 60 days before the cutoff; s2 01-15, 46 days; s3 after the cutoff.
    assert feats.loc["s1", "age"] == pytest.approx(math.log1p(60) / math.log1p(365), rel=1e-6)
    assert feats.loc["s2", "age"] == pytest.approx(math.log1p(46) / math.log1p(365), rel=1e-6)
    assert feats.loc["s3", "age"] == 0
    assert feats["not_launched"].tolist() == [0, 0, 1, 0]


def test_sku_features_smoothed_return_rates() -> None:
    feats = sku_features(return_prior_units=5)
    # snacks: s1 bought 7, returned 1 (r1) → category 1/7; beauty: s2 bought 3, returned 2 → 2/3
    snacks, beauty = 1 / 7, 2 / 3
    assert feats.loc["s1", "return_rate"] == pytest.approx((1 + 5 * snacks) / (7 + 5), rel=1e-6)
    assert feats.loc["s2", "return_rate"] == pytest.approx((2 + 5 * beauty) / (3 + 5), rel=1e-6)
    assert feats.loc["s3", "return_rate"] == pytest.approx(snacks, rel=1e-6)  # no sales: prior
    assert feats.loc["s4", "return_rate"] == pytest.approx(beauty, rel=1e-6)
    # both of s2's returns were faults (quality, not_as_described); s1's was not
    assert feats.loc["s2", "fault_return_rate"] == pytest.approx(beauty, rel=1e-6)
    assert feats.loc["s1", "fault_return_rate"] == 0


def test_sku_features_region_availability_empty_means_all() -> None:
    feats = sku_features()
    assert feats["region=north"].tolist() == [1, 1, 0, 1]
    assert feats["region=south"].tolist() == [1, 0, 1, 1]


def test_agent_features_by_hand() -> None:
    feats = user_features("agent", n_price_bands=2)
    assert list(feats.index) == ["a1", "a2"]
    assert (feats.dtypes == np.float32).all() and not feats.isna().any().any()
    assert feats["region=north"].tolist() == [1, 0]
    assert feats["tier=2"].tolist() == [1, 0] and feats["tier=4"].tolist() == [0, 1]
    assert_allclose(feats["tier_level"], [(2 - 1) / 4, (4 - 1) / 4])
    # a1's customers bought s1 ×5 (band 0) and s2 ×2 (band 1); a2's s1 ×2 and s2 ×1
    assert_allclose(feats["category=snacks"], [5 / 7, 2 / 3], rtol=1e-6)
    assert_allclose(feats["price_band=1"], [2 / 7, 1 / 3], rtol=1e-6)
    assert_allclose(feats["price_level"], [(5 * 0.25 + 2 * 0.75) / 7, (2 * 0.25 + 0.75) / 3])
    # a1 has c1, c2; a2 has c3 (c4 joins after the cutoff)
    assert_allclose(feats["audience_size"], [1.0, math.log1p(1) / math.log1p(2)], rtol=1e-6)
    # returned units: a1 2 of 7 (r1, r2), a2 1 of 3 (r3)
    assert_allclose(
        feats["audience_return_rate"],
        [(2 + A * GLOBAL_RATE) / (7 + A), (1 + A * GLOBAL_RATE) / (3 + A)],
        rtol=1e-6,
    )


def test_customer_features_by_hand() -> None:
    feats = user_features("customer")
    assert list(feats.index) == ["c1", "c2", "c3", "c4"]
    assert not feats.isna().any().any()
    assert_allclose(feats["category=beauty"], [2 / 6, 0, 1 / 3, 0], rtol=1e-6)
    assert feats["has_purchases"].tolist() == [1, 1, 1, 0]
    # c4 has bought nothing: no mix, and the global return rate as prior
    assert feats.loc["c4", "return_rate"] == pytest.approx(GLOBAL_RATE, rel=1e-6)
    assert feats.loc["c1", "return_rate"] == pytest.approx((2 + A * 0.3) / (6 + A), rel=1e-6)
    assert "audience_size" not in feats.columns and "tier_level" not in feats.columns


def test_smoothed_rate_by_hand() -> None:
    got = smoothed_rate(np.array([3.0, 0.0]), np.array([10.0, 0.0]), 0.1, 2.0)
    assert_allclose(got, [(3 + 2 * 0.1) / (10 + 2), 0.1])
    assert_allclose(smoothed_rate(np.array([1.0]), np.array([4.0]), 0.5, 0.0), [1 / 4])


def test_encoders_by_hand() -> None:
    s = pd.Series(["b", "a", None, "z"])
    oh = one_hot(s, ["a", "b"], "x", other=True)
    assert oh.to_numpy().tolist() == [[0, 1, 0], [1, 0, 0], [0, 0, 0], [0, 0, 1]]
    mh = multi_hot(pd.Series([["a", "q"], [], None]), ["a", "q"], "t", empty_means_all=True)
    assert mh.to_numpy().tolist() == [[1, 1], [1, 1], [1, 1]]
    assert top_values(pd.Series(["b", "a", "b", "a", "c"]), 2) == ["a", "b"]  # tie → by name
    edges = band_edges(np.array([1.0, 2.0, 3.0, 4.0]), 2)
    assert band_of(np.array([1.0, 2.5, 4.0]), edges).tolist() == [0, 1, 1]
    assert_allclose(percentile_of(np.array([2.0, 9.0]), np.array([1.0, 2.0, 3.0, 4.0])), [0.5, 1])
    shares = mix(np.array([0, 0, 1]), 3, np.array([1, 0, 1]), 2, np.array([1.0, 3.0, 2.0]))
    assert_allclose(shares, [[3 / 4, 1 / 4], [0, 1], [0, 0]])
