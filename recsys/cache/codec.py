"""Packed binary encoding of a pick list (SKU index, score, reasons), vectorised over users.

One encoded list, little-endian (docs/cache-contract.md has the normative version):

    header  8 B        u8 version=1 | u8 flags | u16 n picks | u16 m extras | i8 exp | u8 0
    picks   n records  sku u24 (u32 with flag SKU32) | score f16 | reason u8 | param u16
    extras  m records  pick u16 | reason u8 | param u16   (2nd/3rd reasons, by pick position)

A pick's score is `f16 * 2**exp`; `exp` is chosen per list so that its largest |score| lands in
[2**14, 2**15): float16 never overflows, and each score keeps 11 significant bits (relative error
about 2**-11) down to about 2**-28 times the list's largest |score|; smaller ones round to
multiples of about max|score| * 2**-38. Decoded scores are float32.
Reason 0 means none. 100 picks with one reason each take 808 bytes; each extra reason 5 more.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

VERSION = 1
HEADER = np.dtype(
    [("version", "u1"), ("flags", "u1"), ("n", "<u2"), ("m", "<u2"), ("exp", "i1"), ("pad", "u1")]
)
PICK24 = np.dtype([("sku", "u1", (3,)), ("score", "<f2"), ("reason", "u1"), ("param", "<u2")])
PICK32 = np.dtype([("sku", "<u4"), ("score", "<f2"), ("reason", "u1"), ("param", "<u2")])
EXTRA = np.dtype([("pick", "<u2"), ("reason", "u1"), ("param", "<u2")])
HEADER_SIZE = HEADER.itemsize
FLAG_SKU32 = 1
MAX_REASONS = 3
MAX_PICKS = 0xFFFF
MAX_PARAM = 0xFFFF
SKU24_LIMIT = 1 << 24
MAX_SCORE = 2.0**127  # decoded scores are float32
_TOP_EXP = 15  # frexp exponent of the largest |score| after scaling: [2**14, 2**15)


class Pick(NamedTuple):
    """One decoded pick: SKU table row, score and (reason id, parameter) pairs."""

    sku_index: int
    score: float
    reasons: tuple[tuple[int, int], ...]


@dataclass(frozen=True)
class PickArrays:
    """A decoded list as arrays: sku_index (u32), score (f32), reasons (n×3 u8), params (n×3)."""

    sku_index: np.ndarray
    score: np.ndarray
    reasons: np.ndarray
    params: np.ndarray

    def __len__(self) -> int:
        return len(self.sku_index)


def _as_2d(name: str, values: np.ndarray | None, n: int, dtype: str) -> np.ndarray:
    """Reasons (u8) or params (u16) as an (n, <=3) array, checking shape and range.

    Arrays already of the target dtype are used as they are (no copy, no range check needed).
    """
    if values is None:
        return np.zeros((n, 1), dtype=dtype)
    arr = np.asarray(values)
    if arr.ndim == 1:
        arr = arr[:, None]
    if arr.ndim != 2 or arr.shape[0] != n or not 1 <= arr.shape[1] <= MAX_REASONS:
        raise ValueError(f"{name} must have shape ({n},) or ({n}, <=3), got {arr.shape}")
    if arr.dtype == np.dtype(dtype):
        return arr
    if arr.size and not np.issubdtype(arr.dtype, np.integer):
        raise ValueError(f"{name} must be integers, got dtype {arr.dtype}")
    limit = np.iinfo(dtype).max
    if arr.size and (arr.min() < 0 or arr.max() > limit):
        raise ValueError(f"{name} must be in 0..{limit}, got values in {arr.min()}..{arr.max()}")
    return arr.astype(dtype)


def _first_bad(offsets: np.ndarray, bad: np.ndarray) -> str:
    """Where the first bad pick is: `list i, pick j; n bad in all`."""
    user = int(np.searchsorted(offsets, bad[0], side="right")) - 1
    return f"list {user}, pick {bad[0] - offsets[user]}; {len(bad)} bad in all"


def _check_inputs(offsets: np.ndarray, sku: np.ndarray, scores: np.ndarray, n_skus: int) -> None:
    n = len(sku)
    if offsets.ndim != 1 or len(offsets) < 1 or offsets[0] != 0 or offsets[-1] != n:
        raise ValueError(f"offsets must run from 0 to {n} (the number of picks), got {offsets}")
    counts = np.diff(offsets)
    if (counts < 0).any():
        raise ValueError("offsets must be non-decreasing")
    if len(counts) and counts.max() > MAX_PICKS:
        raise ValueError(f"at most {MAX_PICKS} picks per list, got {counts.max()}")
    if scores.shape != (n,):
        raise ValueError(f"scores must have shape ({n},) like sku_index, got {scores.shape}")
    if not isinstance(n_skus, (int, np.integer)) or n_skus < 1:
        raise ValueError(f"n_skus must be an integer >= 1, got {n_skus!r}")
    if n and not np.issubdtype(sku.dtype, np.integer):
        raise ValueError(f"sku_index must be integers, got dtype {sku.dtype}")
    if n and (sku.min() < 0 or sku.max() >= n_skus):
        bad = np.flatnonzero((sku < 0) | (sku >= n_skus))
        raise ValueError(
            f"sku_index out of range 0..{n_skus - 1}: {sku[bad[0]]} ({_first_bad(offsets, bad)})"
        )
    if n and not np.isfinite(scores).all():
        bad = np.flatnonzero(~np.isfinite(scores))
        raise ValueError(
            f"scores must be finite, got {scores[bad[0]]} ({_first_bad(offsets, bad)})"
        )


def _widen(values: np.ndarray, width: int) -> np.ndarray:
    """`values` with zero columns appended up to `width`."""
    if values.shape[1] == width:
        return values
    out = np.zeros((len(values), width), dtype=values.dtype)
    out[:, : values.shape[1]] = values
    return out


def encode_batch(
    offsets: np.ndarray,
    sku_index: np.ndarray,
    scores: np.ndarray,
    reasons: np.ndarray | None = None,
    params: np.ndarray | None = None,
    *,
    n_skus: int,
) -> list[bytes]:
    """Encode the pick lists of many users at once (no Python loop over picks).

    Parameters
    ----------
    offsets
        int array of len(users) + 1: the picks of user i are rows offsets[i]:offsets[i + 1].
    sku_index
        Row of each pick in the snapshot's SKU table (0..n_skus - 1).
    scores
        Finite score of each pick.
    reasons, params
        Up to 3 reason ids (0 = none; left-packed) and parameters (0..65535) per pick.
    n_skus
        Size of the SKU table; indices beyond it are rejected.

    Returns
    -------
    list[bytes]
        One encoded list per user.

    Raises
    ------
    ValueError
        If a score is NaN/inf, a SKU index is out of range, or reasons are malformed.
    """
    offsets = np.asarray(offsets, dtype=np.int64)
    sku = np.asarray(sku_index)
    val = np.asarray(scores, dtype=np.float64)
    _check_inputs(offsets, sku, val, n_skus)
    n_picks = len(sku)
    rsn = _as_2d("reasons", reasons, n_picks, "u1")
    prm = _as_2d("params", params, n_picks, "<u2")
    width = max(rsn.shape[1], prm.shape[1])
    rsn, prm = _widen(rsn, width), _widen(prm, width)
    empty = rsn == 0
    if (empty & (prm != 0)).any():
        raise ValueError("params must be 0 where there is no reason")
    extra = ~empty[:, 1:]
    has_extra = extra.any(axis=0)
    if has_extra.any() and (extra & empty[:, :-1]).any():
        raise ValueError("reasons must be left-packed: no reason after an empty (0) slot")

    n_users = len(offsets) - 1
    count = np.diff(offsets)
    user = np.repeat(np.arange(n_users), count)

    # Per-list power-of-two scale: exact, and keeps float16 precision whatever the score range.
    absmax = np.zeros(n_users)
    nonempty = count > 0
    if n_picks:
        absmax[nonempty] = np.maximum.reduceat(np.abs(val), offsets[:-1][nonempty])
    if n_users and absmax.max() >= MAX_SCORE:
        raise ValueError(f"|score| must be below {MAX_SCORE:.3g}, got {absmax.max():g}")
    # Lists whose scores are all below ~1e-34 keep their order but decode to (near) zero.
    exp = np.where(absmax > 0, np.maximum(np.frexp(absmax)[1] - _TOP_EXP, -128), 0)

    if len(exp) and -100 <= exp.min() and exp.max() <= 100:
        # float32 multiply by an exact power of two: 3x faster than float64 ldexp
        scale = np.ldexp(np.float32(1.0), -exp).astype(np.float32)
        f16 = (val.astype(np.float32) * scale[user]).astype("<f2")
    else:
        f16 = np.ldexp(val, -exp[user]).astype("<f2")
    wide = n_skus > SKU24_LIMIT
    if wide:
        rec = np.empty(n_picks, dtype=PICK32)
        rec["sku"], rec["score"], rec["reason"], rec["param"] = sku, f16, rsn[:, 0], prm[:, 0]
    else:
        # the 8-byte record as one little-endian u64: sku | score << 24 | reason << 40 | param << 48
        word = sku.astype("<u8")
        word |= f16.view("<u2").astype("<u8") << np.uint64(24)
        word |= rsn[:, 0].astype("<u8") << np.uint64(40)
        word |= prm[:, 0].astype("<u8") << np.uint64(48)
        rec = word.view(PICK24)

    if has_extra.any():
        x_pick, x_slot = np.nonzero(extra)
    else:
        x_pick = x_slot = np.zeros(0, dtype=np.int64)
    m = np.bincount(user[x_pick], minlength=n_users)
    if n_users and m.max() > MAX_PICKS:
        raise ValueError(f"at most {MAX_PICKS} extra reasons per list, got {m.max()}")
    xrec = np.empty(len(x_pick), dtype=EXTRA)
    xrec["pick"] = x_pick - offsets[user[x_pick]]
    xrec["reason"] = rsn[x_pick, x_slot + 1]
    xrec["param"] = prm[x_pick, x_slot + 1]

    head = np.zeros(n_users, dtype=HEADER)
    head["version"] = VERSION
    head["flags"] = FLAG_SKU32 if wide else 0
    head["n"], head["m"], head["exp"] = count, m, exp

    return _assemble(head, rec, xrec, offsets, m)


def _assemble(
    head: np.ndarray, rec: np.ndarray, xrec: np.ndarray, offsets: np.ndarray, m: np.ndarray
) -> list[bytes]:
    """One bytes object per user: header, pick records, extra records.

    Users with the same number of picks form one 2-D block (extras padded to the group's
    largest count) built with numpy and cut into slices, so the only Python loop is over users.
    """
    n_users = len(head)
    count = np.diff(offsets)
    x_first = np.zeros(n_users + 1, dtype=np.int64)
    np.cumsum(m, out=x_first[1:])
    order = np.argsort(count, kind="stable")
    cuts = np.flatnonzero(np.diff(count[order])) + 1
    out: list[bytes] = [b""] * n_users
    raw_head = head.view(np.uint8).reshape(n_users, HEADER_SIZE)
    for group in np.split(order, cuts) if n_users else []:
        n, size = int(count[group[0]]), len(group)
        body = HEADER_SIZE + n * rec.itemsize
        if size == n_users:  # every list has n picks: the records are already in user order
            picks = rec
        else:
            picks = rec[(offsets[group][:, None] + np.arange(n)).ravel()]
        mg = m[group]
        width = body + int(mg.max(initial=0)) * EXTRA.itemsize
        block = np.empty((size, width), dtype=np.uint8)
        block[:, :HEADER_SIZE] = raw_head[group]
        block[:, HEADER_SIZE:body] = picks.view(np.uint8).reshape(size, body - HEADER_SIZE)
        if mg.any():
            row = np.repeat(np.arange(size), mg)
            slot = np.arange(len(row)) - np.repeat(np.cumsum(mg) - mg, mg)
            extras = np.zeros((size, int(mg.max())), dtype=EXTRA)
            extras[row, slot] = xrec[np.repeat(x_first[group], mg) + slot]
            block[:, body:] = extras.view(np.uint8).reshape(size, width - body)
        data = block.tobytes()
        starts = (np.arange(size) * width).tolist()
        ends = (np.arange(size) * width + body + mg * EXTRA.itemsize).tolist()
        if size == n_users:
            return [data[a:b] for a, b in zip(starts, ends, strict=True)]
        for user, a, b in zip(group.tolist(), starts, ends, strict=True):
            out[user] = data[a:b]
    return out


def encode_picks(
    sku_index: np.ndarray,
    scores: np.ndarray,
    reasons: np.ndarray | None = None,
    params: np.ndarray | None = None,
    *,
    n_skus: int,
) -> bytes:
    """Encode one pick list (see `encode_batch` for the arguments and errors)."""
    n = len(np.asarray(sku_index))
    return encode_batch(np.array([0, n]), sku_index, scores, reasons, params, n_skus=n_skus)[0]


def decode_arrays(blob: bytes) -> PickArrays:
    """Decode one encoded list into arrays (the fast path for serving).

    Raises
    ------
    ValueError
        If the bytes are not a version-1 pick list (wrong version, flags or length).
    """
    if len(blob) < HEADER_SIZE:
        raise ValueError(f"encoded picks must be at least {HEADER_SIZE} bytes, got {len(blob)}")
    head = np.frombuffer(blob, dtype=HEADER, count=1)[0]
    version, flags = int(head["version"]), int(head["flags"])
    if version != VERSION:
        raise ValueError(f"unsupported pick encoding version {version} (this reader knows 1)")
    if flags & ~FLAG_SKU32:
        raise ValueError(f"unknown pick encoding flags {flags:#04x}")
    n, m, exp = int(head["n"]), int(head["m"]), int(head["exp"])
    dtype = PICK32 if flags & FLAG_SKU32 else PICK24
    want = HEADER_SIZE + n * dtype.itemsize + m * EXTRA.itemsize
    if len(blob) != want:
        raise ValueError(f"encoded picks have {len(blob)} bytes, header says {want}")
    rec = np.frombuffer(blob, dtype=dtype, count=n, offset=HEADER_SIZE)
    if flags & FLAG_SKU32:
        sku_index = rec["sku"].astype(np.uint32)
    else:
        wide = np.zeros((n, 4), dtype=np.uint8)
        wide[:, :3] = rec["sku"]
        sku_index = wide.view("<u4").ravel().astype(np.uint32)
    score = np.ldexp(rec["score"].astype(np.float32), exp)
    reasons = np.zeros((n, MAX_REASONS), dtype=np.uint8)
    params = np.zeros((n, MAX_REASONS), dtype=np.uint16)
    reasons[:, 0] = rec["reason"]
    params[:, 0] = rec["param"]
    if m:
        extra = np.frombuffer(blob, dtype=EXTRA, count=m, offset=HEADER_SIZE + n * dtype.itemsize)
        pick = extra["pick"].astype(np.int64)
        slot = 1 + np.arange(m) - np.searchsorted(pick, pick, side="left")
        if (np.diff(pick) < 0).any() or pick.max() >= n or slot.max() >= MAX_REASONS:
            raise ValueError("encoded picks have a malformed extra-reason section")
        reasons[pick, slot] = extra["reason"]
        params[pick, slot] = extra["param"]
    return PickArrays(sku_index, score, reasons, params)


def decode_picks(blob: bytes) -> list[Pick]:
    """Decode one encoded list into `Pick` tuples, best first (see `decode_arrays` for errors)."""
    arrays = decode_arrays(blob)
    out = []
    for sku, score, rsn, prm in zip(
        arrays.sku_index.tolist(),
        arrays.score.tolist(),
        arrays.reasons.tolist(),
        arrays.params.tolist(),
        strict=True,
    ):
        out.append(Pick(sku, score, tuple((r, p) for r, p in zip(rsn, prm, strict=True) if r)))
    return out
