"""The packed pick encoding: exact layout, round trips and every documented rejection."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from recsys.cache.codec import (
    HEADER_SIZE,
    SKU24_LIMIT,
    decode_arrays,
    decode_picks,
    encode_batch,
    encode_picks,
)


def test_encode_picks_matches_the_documented_layout() -> None:
    # One pick: SKU 5, score 1.0 (exp -14: 1.0 * 2**14 = 16384 = f16 0x7400), reason 2, param 3.
    blob = encode_picks([5], [1.0], [2], [3], n_skus=10)
    header = bytes([1, 0, 1, 0, 0, 0, 0xF2, 0])
    record = bytes([5, 0, 0, 0x00, 0x74, 2, 3, 0])
    assert blob == header + record


def test_encode_picks_costs_808_bytes_per_100_picks_plus_5_per_extra_reason() -> None:
    sku, score = np.arange(100), np.linspace(1.0, 0.01, 100)
    one = encode_picks(sku, score, np.ones(100, dtype=int), np.full(100, 7), n_skus=1000)
    assert len(one) == HEADER_SIZE + 100 * 8 == 808
    two = np.zeros((100, 2), dtype=int)
    two[:, 0], two[:30, 1] = 1, 9
    assert len(encode_picks(sku, score, two, n_skus=1000)) == 808 + 30 * 5
    wide = encode_picks(sku, score, np.ones(100, dtype=int), n_skus=SKU24_LIMIT + 1)
    assert len(wide) == HEADER_SIZE + 100 * 9


def test_decode_picks_returns_reasons_in_slot_order() -> None:
    reasons = np.array([[1, 9, 4], [2, 0, 0], [0, 0, 0]])
    params = np.array([[0, 12, 3], [5, 0, 0], [0, 0, 0]])
    picks = decode_picks(encode_picks([7, 0, 3], [3.0, 2.0, -1.5], reasons, params, n_skus=8))
    assert [p.sku_index for p in picks] == [7, 0, 3]
    assert [p.score for p in picks] == [3.0, 2.0, -1.5]
    assert [p.reasons for p in picks] == [((1, 0), (9, 12), (4, 3)), ((2, 5),), ()]


def test_encode_batch_handles_empty_lists() -> None:
    values = encode_batch(np.array([0, 0, 2, 2]), np.array([1, 2]), np.array([1.0, 0.5]), n_skus=3)
    assert [len(v) for v in values] == [HEADER_SIZE, HEADER_SIZE + 16, HEADER_SIZE]
    assert decode_picks(values[0]) == [] and decode_picks(values[2]) == []
    assert [p.sku_index for p in decode_picks(values[1])] == [1, 2]
    assert encode_batch(np.array([0]), np.array([], dtype=int), np.array([]), n_skus=1) == []


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
def test_encode_batch_rejects_non_finite_scores(bad: float) -> None:
    with pytest.raises(ValueError, match=r"scores must be finite, got .* \(list 1, pick 0"):
        encode_batch(np.array([0, 1, 2]), np.array([0, 1]), np.array([1.0, bad]), n_skus=2)


@pytest.mark.parametrize("sku", [2, -1, 10**9])
def test_encode_batch_rejects_sku_index_out_of_range(sku: int) -> None:
    with pytest.raises(ValueError, match=r"sku_index out of range 0\.\.1"):
        encode_picks([0, sku], [1.0, 0.5], n_skus=2)


def test_encode_batch_rejects_malformed_reasons() -> None:
    with pytest.raises(ValueError, match="left-packed"):
        encode_picks([0], [1.0], np.array([[0, 3]]), n_skus=1)
    with pytest.raises(ValueError, match="params must be 0 where there is no reason"):
        encode_picks([0], [1.0], np.array([[1, 0]]), np.array([[0, 4]]), n_skus=1)
    with pytest.raises(ValueError, match=r"reasons must be in 0\.\.255"):
        encode_picks([0], [1.0], np.array([256]), n_skus=1)
    with pytest.raises(ValueError, match=r"params must be in 0\.\.65535"):
        encode_picks([0], [1.0], np.array([1]), np.array([70_000]), n_skus=1)
    with pytest.raises(ValueError, match="shape"):
        encode_picks([0], [1.0], np.ones((1, 4), dtype=int), n_skus=1)


def test_encode_batch_rejects_bad_offsets_and_sizes() -> None:
    with pytest.raises(ValueError, match="offsets must run from 0 to 2"):
        encode_batch(np.array([0, 1]), np.array([0, 1]), np.array([1.0, 1.0]), n_skus=2)
    with pytest.raises(ValueError, match="n_skus must be an integer >= 1"):
        encode_picks([0], [1.0], n_skus=0)
    with pytest.raises(ValueError, match="score. must be below"):
        encode_picks([0], [2.0**127], n_skus=1)


def test_encode_keeps_huge_and_tiny_scores_without_overflow() -> None:
    picks = decode_picks(encode_picks([0, 1, 2], [1e30, 3e29, 1e27], n_skus=3))
    np.testing.assert_allclose([p.score for p in picks], [1e30, 3e29, 1e27], rtol=2**-10)
    tiny = decode_picks(encode_picks([0, 1], [3e-30, 1e-30], n_skus=2))
    np.testing.assert_allclose([p.score for p in tiny], [3e-30, 1e-30], rtol=2**-10)


def test_decode_arrays_rejects_damaged_bytes() -> None:
    blob = encode_picks([1, 2], [1.0, 0.5], [1, 1], n_skus=3)
    with pytest.raises(ValueError, match="at least 8 bytes"):
        decode_arrays(blob[:5])
    with pytest.raises(ValueError, match="header says"):
        decode_arrays(blob[:-1])
    with pytest.raises(ValueError, match="unsupported pick encoding version 2"):
        decode_arrays(bytes([2]) + blob[1:])
    with pytest.raises(ValueError, match="unknown pick encoding flags"):
        decode_arrays(blob[:1] + bytes([0x80]) + blob[2:])


@st.composite
def pick_batches(draw: st.DrawFn) -> tuple[np.ndarray, ...]:
    """Random batches: ragged lists, finite scores over a wide range, left-packed reasons."""
    n_skus = draw(st.sampled_from([1, 7, 300, SKU24_LIMIT + 5]))
    counts = draw(st.lists(st.integers(0, 40), min_size=0, max_size=6))
    scale = draw(st.sampled_from([0.0, 1e-30, 1e-6, 1.0, 1e4, 1e30]))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    n = sum(counts)
    sku = rng.integers(0, n_skus, n)
    # mixed magnitudes: some scores far below the list's largest, some exactly zero
    scores = rng.normal(size=n) * scale * 10.0 ** rng.integers(-12, 1, n) * (rng.random(n) > 0.1)
    n_reasons = rng.integers(0, 4, n)
    filled = np.arange(3)[None, :] < n_reasons[:, None]
    reasons = np.where(filled, rng.integers(1, 256, (n, 3)), 0)
    params = np.where(filled & (rng.random((n, 3)) < 0.7), rng.integers(0, 65536, (n, 3)), 0)
    offsets = np.concatenate([[0], np.cumsum(counts)]).astype(int)
    return offsets, sku, scores, reasons, params, np.array(n_skus)


@settings(max_examples=150, deadline=None)
@given(pick_batches())
def test_encode_decode_round_trip(batch: tuple[np.ndarray, ...]) -> None:
    offsets, sku, scores, reasons, params, n_skus = batch
    values = encode_batch(offsets, sku, scores, reasons, params, n_skus=int(n_skus))
    assert len(values) == len(offsets) - 1
    for i, blob in enumerate(values):
        sl = slice(offsets[i], offsets[i + 1])
        out = decode_arrays(blob)
        np.testing.assert_array_equal(out.sku_index, sku[sl])
        np.testing.assert_array_equal(out.reasons, reasons[sl])
        np.testing.assert_array_equal(out.params, params[sl])
        # float16 after a power-of-two scale: 11 significant bits, relative to the list's max
        absmax = float(np.abs(scores[sl]).max()) if sl.stop > sl.start else 0.0
        tol = np.maximum(np.abs(scores[sl]) * (2**-11 + 2**-20), absmax * 2**-38) + 2**-110
        assert (np.abs(out.score - scores[sl]) <= tol).all()
        # rounding is monotone: a ranked list stays ranked
        order = np.argsort(-scores[sl], kind="stable")
        assert (np.diff(out.score[order]) <= 0).all()


def test_encode_batch_pads_extras_within_a_block_of_equal_lists() -> None:
    # three lists of 2 picks, second reasons on 0, 1 and 2 picks: one block, ragged extras
    reasons = np.array([[1, 0], [1, 0], [1, 9], [1, 0], [1, 9], [1, 9]])
    params = np.array([[0, 0], [0, 0], [0, 4], [0, 0], [0, 5], [0, 6]])
    values = encode_batch(
        np.array([0, 2, 4, 6]), np.arange(6), np.ones(6), reasons, params, n_skus=6
    )
    assert [len(v) for v in values] == [24, 29, 34]
    assert [p.reasons for p in decode_picks(values[2])] == [((1, 0), (9, 5)), ((1, 0), (9, 6))]
    assert [p.reasons for p in decode_picks(values[1])] == [((1, 0), (9, 4)), ((1, 0),)]
