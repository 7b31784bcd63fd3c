"""Suspension records in Redis: written by the breaker, listed, lifted by an admin.

Suspensions live in the `SUSPENDED` hash (`recsys.cache.keys`: sku_id → JSON record), which
serving re-reads every refresh interval and applies to every feed at once. A record keeps the
breaker's numbers (the admin API lists them). Lifts are remembered in `LIFTS` (sku_id → JSON with
`lifted_at`), so the next check suspends a lifted SKU again only on evidence gathered since.

`LIFTS` carries `SUSPENDED`'s whole name as its hash tag, so both hashes sit in one slot of a
Redis Cluster and a lift (field out of one, record into the other) is one atomic script there as
on one server; `SUSPENDED`'s own name, which serving reads, stays as the cache contract has it.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

import orjson
import pandas as pd

from recsys.cache.keys import PREFIX, SUSPENDED
from recsys.columns import Columns
from recsys.quality.breaker import (
    BOUND,
    CATEGORY_RATE,
    FAULT_RETURNS,
    RATE,
    THRESHOLD,
    UNITS,
    WINDOW_END,
    WINDOW_START,
    BreakerConfig,
    TimeLike,
    to_utc,
)

C = Columns
# The hash tag {reco:v1:suspended} hashes like the key `reco:v1:suspended`: same cluster slot.
LIFTS = f"{PREFIX}:suspension-lifts:{{{SUSPENDED}}}"
# Where lifts were kept before they moved next to SUSPENDED: still read, never written.
LEGACY_LIFTS = f"{PREFIX}:suspension-lifts"
SOURCE = "quality-check"

# KEYS[1] SUSPENDED, KEYS[2] LIFTS (one slot); ARGV[1] SKU id, ARGV[2] the lift record,
# ARGV[3] "1" to record the lift even when the SKU was not suspended. Returns 1 when it was.
LIFT_SCRIPT = """
local removed = redis.call('HDEL', KEYS[1], ARGV[1])
if removed == 1 or ARGV[3] == '1' then
  redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
end
return removed
"""


def suspension_record(row: Mapping[str, Any], config: BreakerConfig) -> dict[str, Any]:
    """The JSON record of one suspension: plain words, the numbers behind them, and when."""
    units, faults = int(row[UNITS]), int(row[FAULT_RETURNS])
    rate, cat_rate = float(row[RATE]), float(row[CATEGORY_RATE])
    reason = (
        f"{faults} of {units} units bought in the last {config.window_days:g} days came back as "
        f"faulty ({rate:.0%}); the {row[C.CATEGORY]} category's normal level is {cat_rate:.1%}"
    )
    return {
        "reason": reason,
        "numbers": {
            "window_days": float(config.window_days),
            "units": float(units),
            "fault_returns": float(faults),
            "rate": rate,
            "bound": float(row[BOUND]),
            "category_rate": cat_rate,
            "threshold": float(row[THRESHOLD]),
            "confidence": float(config.confidence),
        },
        "category": str(row[C.CATEGORY]),
        "method": config.method,
        "window_start": to_utc(row[WINDOW_START]).isoformat(),
        "detected_at": to_utc(row[WINDOW_END]).isoformat(),
        "suspended_at": time.time(),
        "by": SOURCE,
    }


def write_suspensions(
    client: Any, found: pd.DataFrame, config: BreakerConfig
) -> tuple[list[str], list[str]]:
    """Write the breaker's suspensions to Redis; return (newly suspended, already suspended).

    A SKU already in the hash keeps its record (the first detection, or an admin's own words).
    """
    if found.empty:
        return [], []
    pipe = client.pipeline(transaction=False)
    ids = [str(s) for s in found[C.SKU_ID]]
    for sku, row in zip(ids, found.to_dict("records"), strict=True):
        pipe.hsetnx(SUSPENDED, sku, orjson.dumps(suspension_record(row, config)))
    created = pipe.execute()
    new = [s for s, c in zip(ids, created, strict=True) if c]
    old = [s for s, c in zip(ids, created, strict=True) if not c]
    return new, old


def read_suspensions(client: Any) -> dict[str, dict[str, Any]]:
    """Every suspended SKU with its record (records that are not JSON come back as text)."""
    out: dict[str, dict[str, Any]] = {}
    for key, value in client.hgetall(SUSPENDED).items():
        try:
            record = orjson.loads(value)
        except orjson.JSONDecodeError:
            record = {"reason": value.decode(errors="replace")}
        out[key.decode()] = record if isinstance(record, dict) else {"reason": str(record)}
    return out


def lift_call(
    sku_id: str, *, by: str, at: TimeLike | None = None, always_record: bool = True
) -> tuple[list[str], list[Any]]:
    """KEYS and ARGV of one `LIFT_SCRIPT` call (for sync and asyncio clients alike).

    Raises
    ------
    ValueError
        If `sku_id` is empty.
    """
    if not sku_id:
        raise ValueError(f"sku_id must be a non-empty SKU id, got {sku_id!r}")
    when = to_utc(at) if at is not None else pd.Timestamp.now(tz="UTC")
    record = orjson.dumps({"lifted_at": when.isoformat(), "by": by})
    return [SUSPENDED, LIFTS], [sku_id, record, "1" if always_record else "0"]


def lift_suspension(
    client: Any, sku_id: str, *, at: TimeLike | None = None, by: str = "admin"
) -> bool:
    """Serve `sku_id` again and remember when (even if it was not suspended); True when it was.

    One script over two hashes of one slot: atomic on one server and on a Redis Cluster.

    Raises
    ------
    ValueError
        If `sku_id` is empty.
    """
    keys, args = lift_call(sku_id, by=by, at=at)
    return bool(client.register_script(LIFT_SCRIPT)(keys=keys, args=args))


def read_lifts(client: Any) -> dict[str, pd.Timestamp]:
    """sku_id → when its suspension was last lifted (for `check_quality(lifted=...)`)."""
    pipe = client.pipeline(transaction=False)  # two slots on a cluster: no MULTI
    pipe.hgetall(LEGACY_LIFTS)
    pipe.hgetall(LIFTS)
    out: dict[str, pd.Timestamp] = {}
    for records in pipe.execute():
        for key, value in records.items():
            try:
                when = to_utc(orjson.loads(value)["lifted_at"])
            except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
                continue  # a record we cannot read must not stop the check
            sku = key.decode()
            out[sku] = max(when, out.get(sku, when))
    return out
