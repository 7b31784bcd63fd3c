"""Fast lookups of many (row, column) cells of a sparse matrix, and row-wise top-n helpers."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp


class PairLookup:
    """Values of a CSR matrix at arbitrary (row, col) pairs, 0 where nothing is stored.

    The stored cells are keyed row × n_cols + col; a CSR matrix with sorted indices has them in
    ascending order, so a query is one `searchsorted` over the keys (no dense rows).
    """

    def __init__(self, matrix: sp.spmatrix) -> None:
        csr = sp.csr_matrix(matrix, copy=True)
        csr.sum_duplicates()
        csr.sort_indices()
        self.shape: tuple[int, int] = csr.shape
        rows = np.repeat(np.arange(csr.shape[0], dtype=np.int64), np.diff(csr.indptr))
        self.keys: np.ndarray = rows * csr.shape[1] + csr.indices.astype(np.int64)
        self.values: np.ndarray = csr.data.astype(np.float64)

    def __call__(self, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
        """float64 values at (rows[i], cols[i])."""
        query = np.asarray(rows, dtype=np.int64) * self.shape[1] + np.asarray(cols, dtype=np.int64)
        if len(self.keys) == 0:
            return np.zeros(len(query))
        at = np.minimum(np.searchsorted(self.keys, query), len(self.keys) - 1)
        return np.where(self.keys[at] == query, self.values[at], 0.0)


def top_n_dense(scores: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """(row, col) of the n largest finite values of each row of a dense block (unordered)."""
    n_rows, n_cols = scores.shape
    n = min(n, n_cols)
    if n <= 0 or n_rows == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    cols = np.argpartition(-scores, n - 1, axis=1)[:, :n] if n < n_cols else None
    if cols is None:
        cols = np.tile(np.arange(n_cols), (n_rows, 1))
    rows = np.repeat(np.arange(n_rows), cols.shape[1])
    cols = cols.ravel()
    keep = np.isfinite(scores[rows, cols])
    return rows[keep], cols[keep].astype(np.int64)


def top_n_sparse(matrix: sp.csr_matrix, n: int) -> tuple[np.ndarray, np.ndarray]:
    """(row, col) of the n largest stored positive values of each row of a CSR block."""
    csr = sp.csr_matrix(matrix)
    counts = np.diff(csr.indptr)
    if csr.nnz == 0 or n <= 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    rows = np.repeat(np.arange(csr.shape[0], dtype=np.int64), counts)
    # order by row, then value descending; keep the first n of each row
    order = np.lexsort((-csr.data, rows))
    rows_sorted = rows[order]
    start = np.repeat(csr.indptr[:-1], counts)
    position = np.arange(csr.nnz) - start
    keep = (position < n) & (csr.data[order] > 0)
    return rows_sorted[keep], csr.indices[order][keep].astype(np.int64)
