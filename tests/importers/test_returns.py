"""Greedy matching of returns to earlier purchases."""

from __future__ import annotations

import numpy as np
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from recsys.contract.importers.returns import (
    MATCHED_QTY,
    PIECE,
    PURCHASE_POS,
    RETURN_POS,
    UNMATCHED_QTY,
    match_returns,
)
from recsys.contract.importers.source import LogColumns as L


def lines(rows: list[tuple[str, str, int, int]]) -> pd.DataFrame:
    """(buyer, stock code, day, quantity) rows as a log frame."""
    frame = pd.DataFrame(rows, columns=[L.BUYER, L.STOCK_CODE, "day", L.QUANTITY])
    return pd.DataFrame(
        {
            L.BUYER: frame[L.BUYER],
            L.STOCK_CODE: frame[L.STOCK_CODE],
            L.TS: pd.Timestamp("2010-01-01", tz="UTC") + pd.to_timedelta(frame["day"], unit="D"),
            L.QUANTITY: frame[L.QUANTITY].astype(float),
            L.ROW: np.arange(1, len(frame) + 1),
        }
    )


def test_match_returns_most_recent_first_then_split() -> None:
    purchases = lines([("a", "X", 1, 6), ("a", "X", 5, 4), ("a", "Y", 2, 3), ("b", "X", 3, 9)])
    returns = lines([("a", "X", 6, -7), ("a", "X", 7, -5), ("a", "Y", 1, -1), ("c", "X", 9, -1)])
    got = match_returns(purchases, returns)
    # 7 units on day 6: 4 from the day-5 purchase, then 3 from the day-1 one.
    # 5 units on day 7: only 3 left (day 1) -> 3 matched, 2 unmatched.
    # Y on day 1 precedes its purchase (day 2); buyer c never bought X.
    assert got.matched.to_dict("list") == {
        RETURN_POS: [0, 0, 1],
        PURCHASE_POS: [1, 0, 0],
        PIECE: [1, 2, 1],
        MATCHED_QTY: [4, 3, 3],
    }
    assert got.unmatched.to_dict("list") == {
        RETURN_POS: [2, 1, 3],  # in time order of the returns
        MATCHED_QTY: [0, 3, 0],
        UNMATCHED_QTY: [1, 2, 1],
    }


def test_match_returns_same_time_counts_as_earlier() -> None:
    got = match_returns(lines([("a", "X", 1, 2)]), lines([("a", "X", 1, -2)]))
    assert got.matched[MATCHED_QTY].tolist() == [2]
    assert got.unmatched.empty


def test_match_returns_no_returns() -> None:
    got = match_returns(lines([("a", "X", 1, 2)]), lines([]))
    assert got.matched.empty and got.unmatched.empty


event = st.tuples(
    st.sampled_from(["a", "b"]), st.sampled_from(["X", "Y"]), st.integers(0, 5), st.integers(1, 6)
)


@settings(max_examples=80, deadline=None)
@given(st.lists(event, max_size=12), st.lists(event, max_size=8))
def test_match_returns_invariants(
    bought: list[tuple[str, str, int, int]], sent_back: list[tuple[str, str, int, int]]
) -> None:
    got = match_returns(lines(bought), lines([(b, s, d, -q) for b, s, d, q in sent_back]))
    m = got.matched.to_numpy()
    u = got.unmatched.to_numpy()
    p_key = [(b, s) for b, s, _, _ in bought]
    r_key = [(b, s) for b, s, _, _ in sent_back]

    # each return is fully accounted: matched pieces + unmatched rest = its quantity
    taken = np.bincount(m[:, 0], weights=m[:, 3], minlength=len(sent_back))
    rest = np.zeros(len(sent_back))
    rest[u[:, 0]] = u[:, 2]
    assert (taken + rest == [q for *_, q in sent_back]).all()
    assert (u[:, 1] == taken[u[:, 0]]).all()

    for r, p, _, qty in m:
        assert p_key[p] == r_key[r]
        assert bought[p][2] <= sent_back[r][2]  # never returned before it was bought
        assert qty > 0
    used = np.bincount(m[:, 1], weights=m[:, 3], minlength=len(bought))
    left = np.array([q for *_, q in bought]) - used
    assert (left >= 0).all()

    # greedy: a return is left (partly) unmatched only if every purchase it could take from
    # is used up by the end (what is used up never comes back)
    for r in u[:, 0]:
        eligible = [
            i for i, k in enumerate(p_key) if k == r_key[r] and bought[i][2] <= sent_back[r][2]
        ]
        assert left[eligible].sum() == 0
