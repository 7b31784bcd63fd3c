"""Checking events one by one with the contract's rules: exact reasons, indexes, typed output."""

from __future__ import annotations

from typing import Any

import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from recsys.events.check import check_events, check_records, time_bounds, to_records
from tests.events.conftest import DAY, click, purchase, ret, share

NOW = DAY + pd.Timedelta(days=9)
D = f"{DAY:%Y-%m-%d}"


def test_good_events_are_kept_typed_and_bad_ones_refused_with_index_and_every_reason() -> None:
    items = [
        purchase(0),
        purchase(1, qty=0, unit_price=True),
        share(2, audience_size=-1, ts="2026-13-45"),
        ret(0, reason="lost"),
        click(3),
        ["not", "an", "object"],
        {"kind": "view", "event_id": "v1"},
        purchase(4, sku_id=None, ts="2031-01-01"),
        {"kind": ["share"], "event_id": "k1"},
    ]
    batch = check_events(items, now=NOW)
    assert [(r.index, r.event_id, r.reason) for r in batch.rejected] == [
        (1, "pu-1", "qty must be >= 1, got 0; unit_price must be a number, got True"),
        (
            2,
            "sh-2",
            "ts must be an ISO-8601 timestamp such as 2025-01-31T08:00:00+00:00, got "
            "'2026-13-45'; audience_size must be >= 0, got -1",
        ),
        (
            3,
            "re-0",
            "reason must be one of 'quality', 'not_as_described', 'damaged', 'fit', "
            "'changed_mind', 'other', got 'lost'",
        ),
        (5, None, "an event must be a JSON object, got list"),
        (6, "v1", "kind must be one of 'share', 'purchase', 'return', 'click', got 'view'"),
        (
            7,
            "pu-4",
            f"ts 2031-01-01 is after the latest accepted {NOW + pd.Timedelta(days=1):%Y-%m-%d}"
            f"T00:00:00+00:00 (now {NOW:%Y-%m-%d}T00:00:00+00:00 + 1 day); sku_id is empty but "
            "required",
        ),
        (
            8,
            "k1",
            "kind must be one of 'share', 'purchase', 'return', 'click', got ['share']",
        ),
    ]
    assert batch.n_accepted == 2
    assert batch.typed["purchase"].positions.tolist() == [0]
    assert batch.typed["click"].positions.tolist() == [4]
    frame = batch.typed["purchase"].frame
    assert frame.dtypes.astype(str).to_dict() == {
        "purchase_id": "object",
        "order_id": "object",
        "ts": "datetime64[ns, UTC]",
        "customer_id": "object",
        "agent_id": "object",
        "sku_id": "object",
        "qty": "int64",
        "unit_price": "float64",
        "share_id": "object",
        "event_id": "object",
    }
    assert to_records(batch.typed["purchase"]) == [
        {
            "purchase_id": "P0",
            "order_id": "O0",
            "ts": f"{D}T01:00:00+00:00",
            "customer_id": "C0",
            "agent_id": "A0",
            "sku_id": "S0",
            "qty": 1,
            "unit_price": 9.5,
            "share_id": "H0",
            "event_id": "pu-0",
        }
    ]


def test_a_repeated_event_id_in_one_batch_refuses_the_later_ones_only() -> None:
    items = [purchase(0), purchase(0, qty=0), share(1, event_id="pu-0"), click(1)]
    batch = check_events(items, now=NOW)
    assert [(r.index, r.reason) for r in batch.rejected] == [
        (1, "qty must be >= 1, got 0; duplicate event_id 'pu-0' (first at index 0)"),
        (2, "duplicate event_id 'pu-0' (first at index 0)"),
    ]
    assert batch.n_accepted == 2


def test_ids_may_be_whole_numbers_timestamps_are_utc_to_the_microsecond() -> None:
    items = [
        click(0, event_id=17, sku_id=13085, ts=f"{D}T10:00:00.1234567+08:00"),
        click(1, event_id="x" * 129),
        click(2, agent_id=1.5),
    ]
    batch = check_events(items, now=NOW)
    assert [(r.index, r.reason) for r in batch.rejected] == [
        (1, "event_id must be at most 128 characters, got 129"),
        (2, "agent_id must be an id (text or a whole number), got 1.5"),
    ]
    (record,) = to_records(batch.typed["click"])
    assert record == {
        "event_id": "17",
        "ts": f"{D}T02:00:00.123456+00:00",
        "agent_id": "A0",
        "customer_id": None,
        "sku_id": "13085",
        "request_id": None,
    }


def test_a_missing_column_and_an_extra_one() -> None:
    event = purchase(0, coupon="SPRING")  # extra: ignored
    del event["order_id"]
    batch = check_events([event, purchase(1, coupon="X")], now=NOW)
    assert [(r.index, r.reason) for r in batch.rejected] == [(0, "order_id is empty but required")]
    assert "coupon" not in batch.typed["purchase"].frame.columns


_value = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-5, 5),
    st.floats(allow_nan=False, allow_infinity=True),
    st.text(max_size=6),
    st.sampled_from(["2026-10-01", "2026-10-01T03:00:00Z", "quality", "S1"]),
    st.lists(st.integers(), max_size=2),
)
_event = st.builds(
    lambda base, changes: {**base, **changes},
    st.sampled_from([purchase(1), share(1), ret(1), click(1)]),
    st.dictionaries(
        st.sampled_from(["ts", "qty", "unit_price", "sku_id", "reason", "audience_size", "kind"]),
        _value,
        max_size=3,
    ),
)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.one_of(_event, _value), max_size=12))
def test_every_item_is_either_kept_or_refused_and_kept_ones_check_again_unchanged(
    items: list[Any],
) -> None:
    items = [
        {**item, "event_id": f"e{i}"} if isinstance(item, dict) else item
        for i, item in enumerate(items)
    ]
    batch = check_events(items, now=NOW)
    kept = sorted(i for t in batch.typed.values() for i in t.positions.tolist())
    refused = [r.index for r in batch.rejected]
    assert sorted(kept + refused) == list(range(len(items)))
    assert all(r.reason for r in batch.rejected)
    for kind, typed in batch.typed.items():
        again, reasons = check_records(kind, to_records(typed), time_bounds(NOW))
        assert reasons == {}
        pd.testing.assert_frame_equal(again.frame, typed.frame)
