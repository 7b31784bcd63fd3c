"""Choosing k servable picks from ranked lists (with refill) and writing them as JSON bytes.

The hot path builds the response from pre-rendered fragments (a SKU's `{"sku_id":..,"score":`
head, a pick's `,"reasons":[..]}` tail) instead of dicts through FastAPI's encoder, which was
the slowest thing measured (docs/benchmarks-serving.md).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from serving.served import PickEntry, ServedSnapshot

MAX_K = 100
RANKS: tuple[bytes, ...] = tuple(b',"rank":%d' % i for i in range(MAX_K + 1))

Selection = list[tuple[PickEntry, list[int]]]


def select(lists: Sequence[PickEntry], allowed: np.ndarray, k: int) -> Selection:
    """Positions of the first k allowed, distinct SKUs, walking `lists` in order (refill).

    The first list is taken as is (it has no repeats); later lists only add SKUs not taken yet.
    """
    if not lists:
        return []
    first = lists[0]
    pos = np.flatnonzero(allowed[first.rows])
    if len(pos) >= k or len(lists) == 1:
        return [(first, pos[:k].tolist())]
    out: Selection = [(first, pos.tolist())] if len(pos) else []
    taken = set(first.rows[pos].tolist())
    need = k - len(pos)
    for entry in lists[1:]:
        rows = entry.rows.tolist()
        chosen = []
        for i in np.flatnonzero(allowed[entry.rows]).tolist():
            row = rows[i]
            if row not in taken:
                taken.add(row)
                chosen.append(i)
                need -= 1
                if need == 0:
                    break
        if chosen:
            out.append((entry, chosen))
        if need == 0:
            break
    return out


def render(snapshot: ServedSnapshot, selection: Selection) -> tuple[bytes, list[int]]:
    """The JSON array body of the chosen picks (ranks 1..n) and their SKU-table rows."""
    heads = snapshot.heads
    tail = snapshot.tails.tail
    parts: list[bytes] = [b"["]
    append = parts.append
    rows_out: list[int] = []
    rank = 0
    for entry, positions in selection:
        rows = entry.rows[positions].tolist()
        scores = entry.scores[positions].tolist()
        keys = entry.reason_keys[positions].tolist()
        for row, score, key in zip(rows, scores, keys, strict=True):
            rank += 1
            if rank > 1:
                append(b",")
            append(heads[row])
            append(b"%.4g" % score)
            append(RANKS[rank])
            append(tail(key))
        rows_out += rows
    append(b"]")
    return b"".join(parts), rows_out
