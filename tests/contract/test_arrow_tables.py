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
    index_in,
    table_from_arrow,
    table_to_arrow,
    text_values,
)
from recsys.contract.schema import empty_table
from tests.contract.conftest import valid_tables


@pytest.mark.parametrize("name", T.ALL)
def test_typed_tables_round_trip(name: str) -> None:
    frame = valid_tables()[name]
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
    for name, frame in ((T.SHARES, shares), (T.SKUS, skus)):
        back = table_from_arrow(name, table_to_arrow(name, frame))
        pd.testing.assert_frame_equal(back, frame, check_exact=True)
    assert back[C.SERIES].tolist()[0] is None


def test_repeated_text_is_dictionary_encoded_and_shares_its_str() -> None:
    purchases = pd.concat([valid_tables()[T.PURCHASES]] * 50, ignore_index=True)
    purchases[C.PURCHASE_ID] = [f"P{i}" for i in range(len(purchases))]
    arrow = table_to_arrow(T.PURCHASES, purchases)
    assert pa.types.is_dictionary(arrow.schema.field(C.AGENT_ID).type)
    assert not pa.types.is_dictionary(arrow.schema.field(C.PURCHASE_ID).type)
    back = table_from_arrow(T.PURCHASES, arrow)
    pd.testing.assert_frame_equal(back, purchases, check_exact=True)
    agents = back[C.AGENT_ID].tolist()
    assert agents[0] is agents[4]  # "A1" built once


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
