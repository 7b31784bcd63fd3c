"""A sparse product read at chosen cells equals scipy's whole product there, exactly."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st

from recsys.ranking.lookup import product_at


def _sparse(rows: int, cols: int, density: float, seed: int) -> sp.csr_matrix:
    return sp.random(rows, cols, density=density, format="csr", dtype=np.float32, rng=seed)


def _expected(a: sp.csr_matrix, b: sp.csr_matrix, a_rows, rows, cols) -> np.ndarray:
    whole = (a[a_rows] @ b).toarray()
    return whole[rows, cols].astype(np.float64)


@settings(max_examples=40, deadline=None)
@given(
    n=st.integers(1, 30),
    k=st.integers(1, 40),
    m=st.integers(1, 30),
    density=st.floats(0.0, 0.6),
    seed=st.integers(0, 10_000),
    shuffle=st.booleans(),
)
def test_equals_scipy_product_bit_for_bit(
    n: int, k: int, m: int, density: float, seed: int, shuffle: bool
) -> None:
    a, b = _sparse(n, k, density, seed), _sparse(k, m, density, seed + 1)
    rng = np.random.default_rng(seed)
    a_rows = rng.integers(0, n, size=max(n // 2, 1))
    rows = np.sort(rng.integers(0, len(a_rows), size=50))
    cols = rng.integers(0, m, size=50)
    if shuffle:  # pairs not grouped by row are read through a sorted copy
        order = rng.permutation(50)
        rows, cols = rows[order], cols[order]
    got = product_at(a, sp.csr_matrix(b.T), a_rows, rows, cols)
    assert got.dtype == np.float64
    assert np.array_equal(got, _expected(a, b, a_rows, rows, cols))


def test_known_numbers_and_unsorted_indices() -> None:
    # her row [1, 2, 0] times B: column 0 = 1*3 + 2*5 = 13, column 1 = 1*4 + 0 = 4
    a = sp.csr_matrix(np.array([[1.0, 2.0, 0.0], [0.0, 0.0, 7.0]], dtype=np.float32))
    b = sp.csr_matrix(np.array([[3.0, 4.0], [5.0, 0.0], [1.0, 1.0]], dtype=np.float32))
    # the same A with row 0's cells stored out of order
    scrambled = sp.csr_matrix(
        (np.array([2.0, 1.0, 7.0], np.float32), np.array([1, 0, 2]), np.array([0, 2, 3])),
        shape=(2, 3),
    )
    assert not scrambled.has_sorted_indices
    for left in (a, scrambled):
        got = product_at(
            left, sp.csr_matrix(b.T), np.array([0, 1]), np.array([0, 0, 1]), np.array([0, 1, 1])
        )
        assert got.tolist() == [13.0, 4.0, 7.0]


def test_misaligned_inputs_are_refused() -> None:
    a, b = _sparse(4, 5, 0.5, 0), _sparse(6, 3, 0.5, 1)
    with pytest.raises(ValueError, match="do not align"):
        product_at(a, sp.csr_matrix(b.T), np.arange(4), np.zeros(2, int), np.zeros(2, int))
    b = _sparse(5, 3, 0.5, 1)
    with pytest.raises(ValueError, match="do not align"):
        product_at(a, sp.csr_matrix(b.T), np.arange(4), np.zeros(2, int), np.zeros(3, int))
    empty = product_at(a, sp.csr_matrix(b.T), np.arange(4), np.zeros(0, int), np.zeros(0, int))
    assert empty.shape == (0,)
