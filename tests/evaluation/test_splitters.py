"""Temporal split: window arithmetic, holdout truth by hand, segments, and partition properties."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from recsys.columns import Columns, Tables
from recsys.evaluation.splitters import EPSILON, temporal_split
from recsys.exceptions import EmptyDataError
from tests.features.tiny import random_tables, tiny_tables, ts

C = Columns
TRUTH_COLUMNS = ["qty", "returned_qty", "fault_returned_qty", "kept_qty", "is_new"]


def test_split_window_arithmetic() -> None:
    split = temporal_split(tiny_tables(), holdout_days=10)
    assert split.end == ts("03-03") + EPSILON  # just after the last purchase (p7)
    assert split.cutoff == split.end - pd.Timedelta(days=10)
    assert split.holdout_days == 10.0


def test_split_truth_agent_by_hand() -> None:
    # cutoff 02-22 00:00:00.000001: p4 (02-22 00:00) is training; p5, p6, p7 are the holdout.
    truth = temporal_split(tiny_tables(), holdout_days=10).truth("agent")
    assert list(truth.columns) == [C.AGENT_ID, C.SKU_ID, *TRUTH_COLUMNS]
    rows = truth.set_index([C.AGENT_ID, C.SKU_ID])[TRUTH_COLUMNS].to_dict("index")
    assert rows == {
        # p5: 1 unit, returned 03-02 (r4, other); a1 had sold s1 before
        ("a1", "s1"): dict(qty=1, returned_qty=1, fault_returned_qty=0, kept_qty=0, is_new=False),
        # p7: 1 unit kept; a1 shared and sold s2 before
        ("a1", "s2"): dict(qty=1, returned_qty=0, fault_returned_qty=0, kept_qty=1, is_new=False),
        # p6: returned as not_as_described; a2 never touched s2 before
        ("a2", "s2"): dict(qty=1, returned_qty=1, fault_returned_qty=1, kept_qty=0, is_new=True),
    }


def test_split_truth_customer_users_without_test_purchases_absent() -> None:
    truth = temporal_split(tiny_tables(), holdout_days=10).truth("customer")
    assert sorted(truth[C.CUSTOMER_ID].unique()) == ["c1", "c3"]  # c2, c4 bought nothing
    assert truth.dtypes["kept_qty"] == np.int64 and truth.dtypes["is_new"] == np.dtype(bool)
    assert (truth["kept_qty"] == truth["qty"] - truth["returned_qty"]).all()


def test_split_truth_counts_returns_after_window_end() -> None:
    tables = tiny_tables()
    late = pd.DataFrame(
        {
            C.RETURN_ID: ["r5"],
            C.TS: [ts("04-20")],
            C.PURCHASE_ID: ["p7"],
            C.QTY: [1],
            C.REASON: ["quality"],
        }
    )
    tables[Tables.RETURNS] = pd.concat([tables[Tables.RETURNS], late], ignore_index=True)
    split = temporal_split(tables, holdout_days=10)
    assert split.end < ts("04-20")  # the window ends at the last purchase, not the last return
    row = split.truth("customer").set_index([C.CUSTOMER_ID, C.SKU_ID]).loc[("c1", "s2")]
    assert (row["returned_qty"], row["fault_returned_qty"], row["kept_qty"]) == (1, 1, 0)


def test_split_is_new_counts_agent_shares() -> None:
    # cutoff 02-11 12:00: a1 shared s2 on 02-11 but c1 bought it (p3) only on 02-12.
    split = temporal_split(tiny_tables(), holdout_days=20.5)  # end is 03-03 + EPSILON
    assert split.cutoff == ts("02-11") + pd.Timedelta(hours=12) + EPSILON
    agent = split.truth("agent").set_index([C.AGENT_ID, C.SKU_ID])["is_new"]
    customer = split.truth("customer").set_index([C.CUSTOMER_ID, C.SKU_ID])["is_new"]
    assert not agent[("a1", "s2")]  # her own share came first
    assert customer[("c1", "s2")]  # the customer had never bought it
    assert not customer[("c1", "s1")]  # p1 on 02-02
    assert agent[("a2", "s1")] and agent[("a2", "s2")]


def test_split_train_tables_cut_only_events() -> None:
    tables = tiny_tables()
    split = temporal_split(tables, holdout_days=10)
    train = split.train_tables
    for name in (Tables.SKUS, Tables.AGENTS, Tables.CUSTOMERS):
        assert train[name] is tables[name]  # SKUs launched later stay candidates
    assert sorted(train[Tables.PURCHASES][C.PURCHASE_ID]) == ["p1", "p2", "p3", "p4"]
    assert sorted(train[Tables.RETURNS][C.RETURN_ID]) == ["r1", "r2"]
    assert sorted(train[Tables.SHARES][C.SHARE_ID]) == ["sh1", "sh2", "sh3"]
    assert list(split.new_skus()) == ["s3"]
    assert list(split.new_skus(launched_within_days=40)) == ["s2", "s3"]


def test_split_segments_by_hand() -> None:
    split = temporal_split(tiny_tables(), holdout_days=10)  # cutoff ≈ 02-22
    agents = split.segments("agent")
    assert list(agents.columns) == [C.AGENT_ID, "new_user", C.REGION, C.TIER]
    # a1 joined 2023-12-01, 5 interactions before the cutoff (p1-p3, sh1, sh2); a2 joined 02-20
    assert agents["new_user"].tolist() == [False, True]
    assert agents[C.TIER].tolist() == [2, 4]
    customers = split.segments("customer")
    assert list(customers.columns) == [C.CUSTOMER_ID, "new_user", C.REGION]
    # c1: joined 01-01, 2 lines (p1, p3) ≤ 3 → new; c2 1 line; c3, c4 joined recently
    assert customers["new_user"].tolist() == [True, True, True, True]
    assert split.segments("customer", max_new_interactions=1)["new_user"].tolist() == [
        False, True, True, True,
    ]  # fmt: skip


def test_split_errors_are_clear() -> None:
    tables = tiny_tables()
    with pytest.raises(ValueError, match="holdout_days must be > 0, got 0"):
        temporal_split(tables, holdout_days=0)
    with pytest.raises(ValueError, match="leaves no purchases before the cutoff"):
        temporal_split(tables, holdout_days=60)
    with pytest.raises(EmptyDataError, match="purchases table is empty"):
        temporal_split(dict(tables, purchases=tables[Tables.PURCHASES].iloc[:0]))
    with pytest.raises(ValueError, match="target must be one of"):
        temporal_split(tables, holdout_days=10).truth("shop")


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    n=st.integers(2, 80),
    holdout=st.floats(0.01, 29.0),
)
def test_split_partitions_purchases(seed: int, n: int, holdout: float) -> None:
    tables = random_tables(seed, n_purchases=n, n_returns=n // 3)
    purchases = tables[Tables.PURCHASES]
    try:
        split = temporal_split(tables, holdout_days=holdout)
    except ValueError:
        assert (purchases[C.TS] >= purchases[C.TS].max() - pd.Timedelta(days=holdout)).all()
        return
    train = split.train_tables[Tables.PURCHASES]
    test = split.test_purchases
    ids_train, ids_test = set(train[C.PURCHASE_ID]), set(test[C.PURCHASE_ID])
    assert ids_train | ids_test == set(purchases[C.PURCHASE_ID])
    assert not ids_train & ids_test
    assert (train[C.TS] < split.cutoff).all() and (test[C.TS] >= split.cutoff).all()
    assert (test[C.TS] < split.end).all()
    for target, col in (("agent", C.AGENT_ID), ("customer", C.CUSTOMER_ID)):
        truth = split.truth(target)
        assert truth[C.QTY].sum() == test[C.QTY].sum()
        assert set(truth[col]) == set(test[col])
        assert ((truth["kept_qty"] >= 0) & (truth["kept_qty"] <= truth[C.QTY])).all()
        assert not truth.duplicated([col, C.SKU_ID]).any()
        seen = set(zip(train[col], train[C.SKU_ID], strict=True))
        if target == "agent":
            shares = split.train_tables[Tables.SHARES]
            seen |= set(zip(shares[C.AGENT_ID], shares[C.SKU_ID], strict=True))
        expected_new = [
            (u, s) not in seen for u, s in zip(truth[col], truth[C.SKU_ID], strict=True)
        ]
        assert truth["is_new"].tolist() == expected_new
