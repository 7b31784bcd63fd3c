"""Reasons of picks and fallback lists, computed from known counts."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from recsys.cache.codec import decode_arrays
from recsys.columns import Columns
from recsys.reasons import reason_id
from training import publish_reasons
from training.publish_inputs import N_BUYERS, History
from training.publish_reasons import PickReasons, encode_fallbacks

C = Columns
SKUS = pd.Index([f"s{i}" for i in range(6)])
PICKED, REBUY, BOUGHT = (
    reason_id(c) for c in ("picked_for_you", "customers_rebuy", "bought_before")
)
IN_REGION, OVERALL = reason_id("popular_in_region"), reason_id("popular_overall")


def _fallbacks() -> dict[str, pd.DataFrame]:
    def frame(skus: list[str], buyers: list[int]) -> pd.DataFrame:
        return pd.DataFrame({C.SKU_ID: skus, C.SCORE: np.float32(buyers), N_BUYERS: buyers})

    return {
        "global": frame(["s0", "s1", "zz"], [9, 5, 4]),
        "region:north": frame(["s2", "s3"], [7, 3]),
        "region:south": frame(["s3"], [2]),
        "tier:2": frame(["s5"], [1]),
    }


def _history() -> History:
    # u1 has 3 customers who bought s1 and 70_000 who bought s4 (the parameter saturates)
    counts = sp.csr_matrix(([3.0, 70_000.0], ([0, 0], [1, 4])), shape=(2, 6))
    return History(pd.Index(["u1", "u2"]), counts)


@pytest.mark.parametrize("dense_limit", [10**9, 0])
def test_pick_reasons_rebuy_then_region(monkeypatch: pytest.MonkeyPatch, dense_limit: int) -> None:
    monkeypatch.setattr(publish_reasons, "DENSE_LIMIT", dense_limit)  # both lookup paths
    regions = pd.Series({"u1": "north", "u2": "south", "u3": "west"})
    reasons = PickReasons(
        "agent", history=_history(), regions=regions, fallbacks=_fallbacks(), sku_pos=SKUS
    )
    users = np.array(["u1", "u2", "u3"], dtype=object)
    pos = np.array([0, 0, 0, 1, 1, 2])
    sku = np.array([1, 2, 4, 3, 1, 3])
    rsn, prm = reasons.compute(users, pos, sku)
    assert rsn.tolist() == [
        [REBUY, 0],
        [PICKED, IN_REGION],
        [REBUY, 0],
        [PICKED, IN_REGION],
        [PICKED, 0],
        [PICKED, 0],  # u3's region has no list
    ]
    assert prm.tolist() == [[3, 0], [0, 7], [65535, 0], [0, 2], [0, 0], [0, 0]]


def test_pick_reasons_for_customers_and_model_fallback_users() -> None:
    flags = History(_history().user_ids, _history().counts, exact=False)
    reasons = PickReasons("customer", history=flags)
    users = np.array(["u1", "new"], dtype=object)
    rsn, prm = reasons.compute(
        users, np.array([0, 1, 1]), np.array([1, 1, 0]), np.array([0, 1]) > 0
    )
    assert rsn[:, 0].tolist() == [BOUGHT, OVERALL, OVERALL]
    assert prm[:, 0].tolist() == [0, 0, 0]  # 0/1 flags: "bought before" without a number


def test_encode_fallbacks_sets_the_reason_of_each_kind() -> None:
    names, values = encode_fallbacks(_fallbacks(), SKUS)
    lists = dict(zip(names, map(decode_arrays, values), strict=True))
    assert lists["global"].sku_index.tolist() == [0, 1]  # "zz" is not in the SKU table
    assert lists["global"].reasons[:, 0].tolist() == [OVERALL, OVERALL]
    assert lists["global"].params[:, 0].tolist() == [9, 5]
    assert lists["region:north"].params[:, 0].tolist() == [7, 3]
    assert lists["region:north"].reasons[0, 0] == IN_REGION
    assert lists["tier:2"].reasons[0, 0] == reason_id("popular_with_tier")
    assert lists["tier:2"].params[0, 0] == 2


def test_encode_fallbacks_rejects_bad_fields() -> None:
    with pytest.raises(ValueError, match="fallbacks must include a 'global' list"):
        encode_fallbacks({"region:x": _fallbacks()["global"]}, SKUS)
    bad = {**_fallbacks(), "city:x": _fallbacks()["global"]}
    with pytest.raises(ValueError, match="fallback field must be global, region:<r> or tier:<t>"):
        encode_fallbacks(bad, SKUS)
