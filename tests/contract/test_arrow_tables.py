"""Typed tables to Arrow and back (the table cache's format), value for value."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from recsys.columns import Columns as C
from recsys.columns import Tables as T
from recsys.contract.arrow_tables import (
    encode_text,
    encode_text_chunks,
    event_ids,
    index_in,
    table_from_arrow,
    table_to_arrow,
    text_values,
    with_event_ids,
)
from recsys.contract.schema import EVENT_ID_DTYPE, SCHEMAS, empty_table
from tests.contract.conftest import valid_tables


@pytest.mark.parametrize("name", T.ALL)
def test_typed_tables_round_trip(name: str) -> None:
    frame = with_event_ids(name, valid_tables()[name])
    back = table_from_arrow(name, table_to_arrow(name, frame))
    pd.testing.assert_frame_equal(back, frame, check_exact=True)


@pytest.mark.parametrize("name", T.ALL)
def test_empty_tables_round_trip(name: str) -> None:
    frame = empty_table(name)
    pd.testing.assert_frame_equal(table_from_arrow(name, table_to_arrow(name, frame)), frame)


def test_nulls_nan_and_unicode_survive() -> None:
    shares = valid_tables()[T.SHARES]
    shares[C.CHANNEL] = ["群-小区7", "g-office"]
    skus = valid_tables()[T.SKUS]
    skus[C.SERIES] = [None, None, "é"]
    skus[C.TAGS] = [[], [], ["a|b", "ü"]]
    for name, frame in ((T.SHARES, with_event_ids(T.SHARES, shares)), (T.SKUS, skus)):
        back = table_from_arrow(name, table_to_arrow(name, frame))
        pd.testing.assert_frame_equal(back, frame, check_exact=True)
    assert back[C.SERIES].tolist()[0] is None


def test_repeated_text_is_dictionary_encoded_and_shares_its_str() -> None:
    purchases = pd.concat([valid_tables()[T.PURCHASES]] * 50, ignore_index=True)
    purchases[C.PURCHASE_ID] = [f"P{i}" for i in range(len(purchases))]
    purchases = with_event_ids(T.PURCHASES, purchases)
    arrow = table_to_arrow(T.PURCHASES, purchases)
    assert pa.types.is_dictionary(arrow.schema.field(C.AGENT_ID).type)
    assert not pa.types.is_dictionary(arrow.schema.field(C.PURCHASE_ID).type)
    back = table_from_arrow(T.PURCHASES, arrow)
    pd.testing.assert_frame_equal(back, purchases, check_exact=True)
    agents = back[C.AGENT_ID].tolist()
    assert agents[0] is agents[4]  # "A1" built once


def test_event_ids_stay_in_arrow_with_nan_for_missing() -> None:
    purchases = valid_tables()[T.PURCHASES]
    purchases[C.SHARE_ID] = [None, "S1", None, "S2"][: len(purchases)]
    typed = with_event_ids(T.PURCHASES, purchases.copy())
    events = [c.name for c in SCHEMAS[T.PURCHASES].columns if c.event_id]
    assert events == [C.PURCHASE_ID, C.ORDER_ID, C.SHARE_ID]
    for col in events:
        assert typed[col].dtype == EVENT_ID_DTYPE
        got = typed[col].to_numpy(dtype=object)
        want = purchases[col].to_numpy(dtype=object)
        assert [None if g is np.nan else g for g in got] == list(want)
    # the other ids stay Python str
    assert typed[C.AGENT_ID].dtype == object
    # missing ids compare False and count as missing, like None in an object column
    assert typed[C.SHARE_ID].isna().tolist() == purchases[C.SHARE_ID].isna().tolist()
    assert (typed[C.SHARE_ID] == "S1").tolist() == (purchases[C.SHARE_ID] == "S1").tolist()
    back = table_from_arrow(T.PURCHASES, table_to_arrow(T.PURCHASES, typed))
    pd.testing.assert_frame_equal(back, typed, check_exact=True)
    # a dictionary-encoded column reads back as plain strings of the same values
    encoded = pa.array(["a", None, "a", "b"]).dictionary_encode()
    assert event_ids(encoded).tolist()[::2] == ["a", "a"]
    assert event_ids(encoded).isna().tolist() == [False, True, False, False]


def test_text_values_and_encoding_of_chunks() -> None:
    chunks = pa.chunked_array([["a", None, "b"], ["b", "", "a"]] * 3)
    encoded = encode_text_chunks(chunks)
    assert pa.types.is_dictionary(encoded.type)
    assert text_values(encoded).tolist() == ["a", None, "b", "b", "", "a"] * 3
    assert text_values(chunks).tolist() == ["a", None, "b", "b", "", "a"] * 3
    distinct = pa.array([f"x{i}" for i in range(100)])
    assert encode_text(distinct) is distinct  # nothing repeats: stays plain


def test_index_in_plain_and_dictionary() -> None:
    keys = pa.array(["s2", "s1"])
    plain = pa.array(["s1", None, "s3", "s2"])
    expected = [1, -1, -1, 0]
    assert index_in(plain, keys).tolist() == expected
    assert index_in(plain.dictionary_encode(), keys).tolist() == expected
    assert index_in(plain, keys).dtype == np.int64
