"""build_dataset: alignment, no leakage past the cutoff, stability, clear errors."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from features.dataset import build_dataset
from features.fingerprint import fingerprint_tables
from recsys.columns import Columns, Tables
from recsys.data.dataset import RETURNED_QTY, Dataset
from recsys.exceptions import EmptyDataError
from tests.features.tiny import CUTOFF, random_tables, shuffled, tiny_tables

C = Columns
EVENT_TABLES = (Tables.SHARES, Tables.PURCHASES, Tables.RETURNS)


def cut(tables: dict[str, pd.DataFrame], cutoff: pd.Timestamp) -> dict[str, pd.DataFrame]:
    """The tables as they were at `cutoff`: events before it only."""
    out = dict(tables)
    for name in EVENT_TABLES:
        out[name] = tables[name][tables[name][C.TS] < cutoff].reset_index(drop=True)
    return out


def assert_same_dataset(a: Dataset, b: Dataset) -> None:
    assert a.users == b.users and a.skus == b.skus
    assert a.cutoff == b.cutoff
    assert (a.interactions != b.interactions).nnz == 0
    pd.testing.assert_frame_equal(a.events, b.events)
    pd.testing.assert_frame_equal(a.user_features, b.user_features)
    pd.testing.assert_frame_equal(a.sku_features, b.sku_features)
    pd.testing.assert_frame_equal(a.user_table, b.user_table)
    pd.testing.assert_frame_equal(a.sku_table, b.sku_table)
    assert np.array_equal(a.sku_available, b.sku_available)


@pytest.mark.parametrize("target", ["agent", "customer"])
def test_build_dataset_aligned_to_id_maps(target: str) -> None:
    ds = build_dataset(tiny_tables(), target, cutoff=CUTOFF)
    assert ds.target == target and ds.cutoff == CUTOFF
    assert ds.interactions.shape == (ds.n_users, 4)
    assert ds.interactions.dtype == np.float32
    assert list(ds.skus.external_ids) == ["s1", "s2", "s3", "s4"]  # s3 launches after the cutoff
    assert list(ds.user_table[ds.user_col]) == list(ds.users.external_ids)
    assert list(ds.sku_table[C.SKU_ID]) == list(ds.skus.external_ids)
    assert list(ds.user_features.index) == list(ds.users.external_ids)
    assert list(ds.sku_features.index) == list(ds.skus.external_ids)
    for feats in (ds.user_features, ds.sku_features):
        assert not feats.isna().any().any() and (feats.dtypes == np.float32).all()
    assert ds.sku_available.tolist() == [True, True, True, False]  # s4 is suspended
    assert ds.fingerprint == fingerprint_tables(tiny_tables())["digest"]
    assert ds.meta["weights"]["share_weight"] == 0.3


def test_build_dataset_default_cutoff_keeps_every_event() -> None:
    tables = tiny_tables()
    ds = build_dataset(tables, "customer")
    # the last event is p7 (03-03); the default cutoff lies just after it
    assert ds.cutoff > pd.Timestamp("2024-03-03", tz="UTC")
    assert len(ds.events) == len(tables[Tables.PURCHASES])
    assert ds.events[RETURNED_QTY].sum() == 4  # r1..r4, one unit each


@pytest.mark.parametrize("target", ["agent", "customer"])
@pytest.mark.parametrize("day", ["02-10", "02-22", "02-25", "03-01", "03-02"])
def test_build_dataset_nothing_at_or_after_cutoff_leaks(target: str, day: str) -> None:
    cutoff = pd.Timestamp(f"2024-{day}", tz="UTC")
    tables = tiny_tables()
    full = build_dataset(tables, target, cutoff=cutoff)
    past_only = build_dataset(cut(tables, cutoff), target, cutoff=cutoff)
    assert_same_dataset(full, past_only)
    assert (full.events[C.TS] < cutoff).all()


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("target", ["agent", "customer"])
def test_build_dataset_no_leak_on_random_logs(seed: int, target: str) -> None:
    tables = random_tables(seed, n_purchases=120, n_shares=40, n_returns=40)
    cutoff = pd.Timestamp("2024-01-20", tz="UTC")
    weights = {"half_life_days": 5.0}
    full = build_dataset(tables, target, cutoff=cutoff, weights=weights)
    past_only = build_dataset(cut(tables, cutoff), target, cutoff=cutoff, weights=weights)
    assert_same_dataset(full, past_only)


@pytest.mark.parametrize("target", ["agent", "customer"])
def test_build_dataset_same_for_shuffled_rows(target: str) -> None:
    tables = random_tables(7, n_purchases=150, n_shares=50, n_returns=40)
    cutoff = pd.Timestamp("2024-01-25", tz="UTC")
    a = build_dataset(tables, target, cutoff=cutoff)
    b = build_dataset(shuffled(tables, 11), target, cutoff=cutoff)
    assert_same_dataset(a, b)
    assert a.fingerprint == b.fingerprint


def test_build_dataset_without_features() -> None:
    ds = build_dataset(tiny_tables(), "agent", cutoff=CUTOFF, with_features=False)
    assert ds.user_features is None and ds.sku_features is None
    assert ds.interactions.nnz == 3


def test_build_dataset_errors_are_clear() -> None:
    tables = tiny_tables()
    with pytest.raises(ValueError, match="target must be one of .* got 'shop'"):
        build_dataset(tables, "shop")
    with pytest.raises(ValueError, match=r"missing table\(s\) \['returns'\]"):
        build_dataset({k: v for k, v in tables.items() if k != Tables.RETURNS}, "agent")
    with pytest.raises(EmptyDataError, match="no interactions before the cutoff"):
        build_dataset(tables, "customer", cutoff="2024-01-01")
    empty = {k: v.iloc[:0] for k, v in tables.items()}
    with pytest.raises(EmptyDataError, match="no shares, purchases or returns"):
        build_dataset(empty, "agent")
    with pytest.raises(ValueError, match="cutoff must be a valid time"):
        build_dataset(tables, "agent", cutoff="NaT")


@pytest.mark.parametrize("dtype", ["category", "string", "string[pyarrow]"])
def test_build_dataset_same_for_other_id_dtypes(dtype: str) -> None:
    tables = tiny_tables()
    other = {name: frame.copy() for name, frame in tables.items()}
    for name in (Tables.SHARES, Tables.PURCHASES, Tables.RETURNS):
        for col in (C.AGENT_ID, C.CUSTOMER_ID, C.SKU_ID, C.PURCHASE_ID):
            if col in other[name].columns:
                other[name][col] = other[name][col].astype(dtype)
    other[Tables.PURCHASES][C.TS] = other[Tables.PURCHASES][C.TS].astype("datetime64[us, UTC]")
    for target in ("agent", "customer"):
        assert_same_dataset(
            build_dataset(tables, target, cutoff=CUTOFF),
            build_dataset(other, target, cutoff=CUTOFF),
        )


def test_build_dataset_refuses_duplicate_catalogue_rows() -> None:
    tables = tiny_tables()
    skus = tables[Tables.SKUS]
    tables[Tables.SKUS] = pd.concat([skus, skus.iloc[:1]], ignore_index=True)
    with pytest.raises(ValueError, match=r"duplicate sku_id values, e.g. \['s1'\]"):
        build_dataset(tables, "agent", cutoff=CUTOFF)
