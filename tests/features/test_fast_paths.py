"""Fast paths of the feature builders give exactly what the plain ones give."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from features.dataset import build_dataset
from features.interactions import time_order
from recsys.contract.io import write_table
from recsys.contract.loader import load_tables_cached
from tests.features.tiny import random_tables


def reference_order(ts: np.ndarray, *keys: np.ndarray) -> np.ndarray:
    """One stable lexsort by time, then the keys in order."""
    return np.lexsort([*reversed(keys), ts])


@settings(max_examples=60, deadline=None)
@given(
    n=st.integers(0, 400),
    n_times=st.integers(1, 50),
    wide=st.booleans(),
    seed=st.integers(0, 2**32 - 1),
)
def test_time_order_matches_a_full_lexsort(n: int, n_times: int, wide: bool, seed: int) -> None:
    rng = np.random.default_rng(seed)
    ts = rng.integers(0, n_times, n) * 3_600_000_000_000
    users = rng.integers(-2, 5, n)
    skus = rng.integers(0, 2**40 if wide else 4, n)  # wide keys cannot be packed together
    qty = rng.integers(1, 3, n)
    price = rng.choice([9.5, 10.0, 12.25], n)
    flags = rng.integers(0, 2, n)
    keys = (users, skus, qty, price, flags)
    assert np.array_equal(time_order(ts, *keys), reference_order(ts, *keys))
    assert np.array_equal(time_order(ts, price, users), reference_order(ts, price, users))


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("target", ["agent", "customer"])
def test_dataset_from_arrow_ids_equals_dataset_from_str(
    seed: int, target: str, tmp_path: Path
) -> None:
    for name, frame in random_tables(seed, n_purchases=400, n_shares=100).items():
        write_table(frame, tmp_path / f"{name}.parquet", name)
    loaded = load_tables_cached(tmp_path, now="2024-06-01", on_quarantine="raise")
    assert loaded.arrow  # the ids came with their Arrow twins
    cutoff = pd.Timestamp("2024-01-20", tz="UTC")
    plain = build_dataset(loaded.tables, target, cutoff=cutoff, fingerprint="x")
    fast = build_dataset(
        loaded.tables, target, cutoff=cutoff, fingerprint="x", arrow_columns=loaded.arrow
    )
    assert (plain.interactions != fast.interactions).nnz == 0
    assert np.array_equal(plain.interactions.data, fast.interactions.data)
    pd.testing.assert_frame_equal(plain.events, fast.events)
    pd.testing.assert_frame_equal(plain.user_features, fast.user_features)
    pd.testing.assert_frame_equal(plain.sku_features, fast.sku_features)
    assert plain.meta == fast.meta
