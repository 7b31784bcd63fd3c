"""Hand-built `Dataset`s for model tests: purchase lines in, a Dataset out."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import scipy.sparse as sp

from recsys.columns import Columns
from recsys.data.dataset import (
    FAULT_RETURNED_QTY,
    RETURNED_QTY,
    SKU_IDX,
    USER_IDX,
    Dataset,
    Target,
    user_column,
)
from recsys.data.id_map import IdMap

C = Columns
CUTOFF = pd.Timestamp("2024-06-01", tz="UTC")

# (user, sku, days before the cutoff, qty, returned qty, fault-returned qty)
Line = tuple[str, str, float, int, int, int]


def line(user: str, sku: str, days_ago: float, qty: int = 1, ret: int = 0, fault: int = 0) -> Line:
    """One purchase line, with returned and fault-returned units."""
    return (user, sku, days_ago, qty, ret, fault)


def make_dataset(
    lines: Sequence[Line],
    users: Sequence[str],
    skus: Sequence[str],
    *,
    target: Target = "agent",
    unavailable: Sequence[str] = (),
    regions: dict[str, str] | None = None,
    tiers: dict[str, int] | None = None,
    interactions: np.ndarray | None = None,
) -> Dataset:
    """A Dataset whose interactions are net kept units per pair (unless given densely)."""
    user_map, sku_map = IdMap(users), IdMap(skus)
    ucol = user_column(target)
    frame = pd.DataFrame(lines, columns=[ucol, C.SKU_ID, "days", C.QTY, RETURNED_QTY, "fault"])
    events = pd.DataFrame(
        {
            ucol: frame[ucol].astype(object),
            C.SKU_ID: frame[C.SKU_ID].astype(object),
            C.TS: CUTOFF - pd.to_timedelta(frame["days"].astype(float), unit="D"),
            C.QTY: frame[C.QTY].astype(np.int64),
            C.UNIT_PRICE: np.full(len(frame), 10.0),
            RETURNED_QTY: frame[RETURNED_QTY].astype(np.int64),
            FAULT_RETURNED_QTY: frame["fault"].astype(np.int64),
            USER_IDX: user_map.to_index(frame[ucol].to_numpy(dtype=object)),
            SKU_IDX: sku_map.to_index(frame[C.SKU_ID].to_numpy(dtype=object)),
        }
    )
    events[C.TS] = events[C.TS].astype("datetime64[ns, UTC]")
    shape = (len(users), len(skus))
    if interactions is None:
        net = (events[C.QTY] - events[RETURNED_QTY] - events[FAULT_RETURNED_QTY]).to_numpy()
        matrix = sp.coo_matrix(
            (net.astype(np.float32), (events[USER_IDX], events[SKU_IDX])), shape=shape
        ).tocsr()
    else:
        matrix = sp.csr_matrix(np.asarray(interactions, dtype=np.float32))
    user_table = pd.DataFrame({ucol: list(users)})
    if regions is not None:
        user_table[C.REGION] = [regions.get(u) for u in users]
    if tiers is not None and target == "agent":
        user_table[C.TIER] = pd.array([tiers.get(u) for u in users], dtype="Int64")
    status = ["suspended" if s in set(unavailable) else "active" for s in skus]
    sku_table = pd.DataFrame({C.SKU_ID: list(skus), C.STATUS: status})
    return Dataset(
        target=target,
        users=user_map,
        skus=sku_map,
        interactions=matrix.astype(np.float32),
        events=events,
        user_table=user_table,
        sku_table=sku_table,
        cutoff=CUTOFF,
        sku_available=np.array([s == "active" for s in status]),
    )


def checkerboard_dataset() -> Dataset:
    """Two blocks of agents buying disjoint SKUs; agent a0 lacks s03, which CF must pick first.

    Group B is larger than group A, so popularity would pick a group-B SKU for a0 instead: a
    model passes only by using co-occurrence. s08 is bought by all of group B but suspended;
    s09-s11 were never bought; c0 is a known agent with no history.
    """
    group_a = [f"a{i}" for i in range(6)]
    group_b = [f"b{i}" for i in range(10)]
    skus = [f"s{i:02d}" for i in range(12)]
    lines: list[Line] = []
    for u, user in enumerate(group_a):
        for i in range(4):
            if user == "a0" and i == 3:
                continue
            lines.append(line(user, skus[i], 1 + (3 * u + i) % 20, 1 + (u + i) % 3))
        lines.append(line(user, skus[u % 3], 15 + u, 1))  # a repeat purchase
    for u, user in enumerate(group_b):
        for i in range(4, 9):
            lines.append(line(user, skus[i], 1 + (2 * u + i) % 25, 1 + (u * i) % 2))
    users = [*group_a, *group_b, "c0"]
    regions = {u: "north" for u in group_a} | {u: "south" for u in group_b} | {"c0": "north"}
    tiers = {u: 1 for u in group_a} | {u: 2 for u in group_b} | {"c0": 1}
    return make_dataset(lines, users, skus, unavailable=["s08"], regions=regions, tiers=tiers)
