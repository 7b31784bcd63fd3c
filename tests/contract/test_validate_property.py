"""Property: validation keeps exactly the valid rows, whatever is corrupted and where."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from recsys.columns import RETURN_REASONS, SKU_STATUSES
from recsys.columns import Columns as C
from recsys.columns import Tables as T
from recsys.contract.schema import SCHEMAS
from recsys.contract.validate import validate_tables
from tests.contract.conftest import NOW

START = pd.Timestamp("2024-01-01T00:00:00Z")
Row = dict[str, str | None]


def _iso(ts: pd.Timestamp) -> str:
    return ts.isoformat()


@dataclass
class World:
    """Raw text tables (as read from CSV) and, per row, whether it was corrupted."""

    rows: dict[str, list[Row]]
    corrupted: dict[str, list[bool]] = field(default_factory=dict)

    def add(self, table: str, row: Row, corrupted: bool) -> None:
        self.rows[table].append(row)
        self.corrupted[table].append(corrupted)


def _generate(rng: np.random.Generator) -> World:
    """Small valid tables, all text; every id reference resolves, returns never exceed."""

    def when(days: float) -> pd.Timestamp:
        return START + pd.Timedelta(seconds=int(rng.integers(0, days * 86_400)))

    def pick(ids: list[str]) -> str:
        return ids[int(rng.integers(len(ids)))]

    n_skus, n_agents = int(rng.integers(1, 6)), int(rng.integers(1, 4))
    skus = [
        {
            C.SKU_ID: f"S{i}", C.TITLE: f"item {i}", C.CATEGORY: "fresh",
            C.SERIES: None if rng.random() < 0.5 else "sea", C.BRAND: "b",
            C.PRICE: f"{rng.uniform(0.5, 99):.2f}", C.TAGS: pick(["a|b", "gift", None]),
            C.LAUNCHED_AT: _iso(when(300)), C.REGIONS: pick(["east", "east|north", None]),
            C.STATUS: pick(list(SKU_STATUSES)),
        }
        for i in range(n_skus)
    ]  # fmt: skip
    agents = [
        {C.AGENT_ID: f"A{i}", C.REGION: "east", C.TIER: str(rng.integers(1, 6)),
         C.JOINED_AT: _iso(when(300))}
        for i in range(n_agents)
    ]  # fmt: skip
    agent_ids, sku_ids = [a[C.AGENT_ID] for a in agents], [s[C.SKU_ID] for s in skus]
    customers = [
        {C.CUSTOMER_ID: f"C{i}", C.REGION: "east", C.AGENT_ID: pick(agent_ids),
         C.JOINED_AT: _iso(when(300))}
        for i in range(int(rng.integers(1, 6)))
    ]  # fmt: skip
    shares = [
        {C.SHARE_ID: f"H{i}", C.TS: _iso(when(400)), C.AGENT_ID: pick(agent_ids),
         C.SKU_ID: pick(sku_ids), C.CHANNEL: "g1",
         C.AUDIENCE_SIZE: None if rng.random() < 0.3 else str(rng.integers(0, 300))}
        for i in range(int(rng.integers(0, 5)))
    ]  # fmt: skip
    share_ids = [s[C.SHARE_ID] for s in shares]
    purchases, returns = [], []
    for i in range(int(rng.integers(0, 13))):
        bought_at, qty = when(450), int(rng.integers(1, 4))
        purchases.append(
            {C.PURCHASE_ID: f"P{i}", C.ORDER_ID: f"O{i // 2}", C.TS: _iso(bought_at),
             C.CUSTOMER_ID: pick([c[C.CUSTOMER_ID] for c in customers]),
             C.AGENT_ID: pick(agent_ids), C.SKU_ID: pick(sku_ids), C.QTY: str(qty),
             C.UNIT_PRICE: f"{rng.uniform(0, 99):.2f}",
             C.SHARE_ID: pick(share_ids) if share_ids and rng.random() < 0.6 else None}
        )  # fmt: skip
        left = qty
        while left and rng.random() < 0.6:
            back = int(rng.integers(1, left + 1))
            left -= back
            returns.append(
                {C.RETURN_ID: f"R{len(returns)}", C.TS: _iso(bought_at + pd.Timedelta(hours=1)),
                 C.PURCHASE_ID: f"P{i}", C.QTY: str(back), C.REASON: pick(list(RETURN_REASONS))}
            )  # fmt: skip
    rows = {T.SKUS: skus, T.AGENTS: agents, T.CUSTOMERS: customers, T.SHARES: shares,
            T.PURCHASES: purchases, T.RETURNS: returns}  # fmt: skip
    return World(rows, {name: [False] * len(r) for name, r in rows.items()})


def _kinds(table: str) -> list[str]:
    """Corruption kinds that apply to a row of `table`."""
    kinds = ["null", "bad_ts", "old_ts", "future_ts", "duplicate"]
    spec = SCHEMAS[table]
    if any(c.kind in ("float", "int") for c in spec.columns):
        kinds += ["bad_number", "out_of_range"]
    if spec.foreign_keys:
        kinds.append("missing_ref")
    if table == T.SKUS:
        kinds += ["bad_list", "not_allowed"]
    if table == T.RETURNS:
        # twice: rarer chances otherwise, as a return must survive the cascade to test these
        kinds += ["not_allowed"] + ["before_purchase", "over_return"] * 2
    return kinds


RANGE_BREAKERS = {C.PRICE: "0", C.QTY: "0", C.UNIT_PRICE: "-0.5", C.TIER: "9",
                  C.AUDIENCE_SIZE: "-3"}  # fmt: skip


def _corrupt(world: World, rng: np.random.Generator, rates: dict[str, float]) -> None:
    """Corrupt about `rates[table]` of each table's rows in place, each in one random way."""
    # as generated: purchase rows may be corrupted before their returns are
    purchases = {p[C.PURCHASE_ID]: dict(p) for p in world.rows[T.PURCHASES]}
    for table in T.ALL:
        spec = SCHEMAS[table]
        for i in range(len(world.rows[table])):
            if rng.random() >= rates[table]:
                continue
            row = world.rows[table][i]
            kind = str(rng.choice(_kinds(table)))
            numbers = [c.name for c in spec.columns if c.kind in ("float", "int")]
            if kind == "duplicate":
                world.add(table, dict(row), corrupted=True)
                continue
            if kind == "over_return":
                bought = int(purchases[row[C.PURCHASE_ID]][C.QTY])
                extra = dict(row, **{C.RETURN_ID: f"RX{i}", C.QTY: str(bought + 1)})
                world.add(table, extra, corrupted=True)
                continue
            if kind == "null":
                required = [c.name for c in spec.columns if not c.nullable and c.kind != "list"]
                row[str(rng.choice(required))] = None
            elif kind == "bad_ts":
                row[spec.time_column] = "2025-02-30T00:00:00"
            elif kind == "old_ts":
                row[spec.time_column] = "1999-06-01T00:00:00Z"
            elif kind == "future_ts":
                row[spec.time_column] = _iso(NOW + pd.Timedelta(days=2))
            elif kind == "bad_number":
                row[str(rng.choice(numbers))] = "12abc"
            elif kind == "out_of_range":
                column = str(rng.choice([n for n in numbers if n in RANGE_BREAKERS]))
                row[column] = RANGE_BREAKERS[column]
            elif kind == "missing_ref":
                row[str(rng.choice([fk.column for fk in spec.foreign_keys]))] = "NOPE"
            elif kind == "bad_list":
                row[C.TAGS] = "a||b"
            elif kind == "not_allowed":
                row[C.STATUS if table == T.SKUS else C.REASON] = "Gone"
            elif kind == "before_purchase":
                bought_at = pd.Timestamp(purchases[row[C.PURCHASE_ID]][C.TS])
                row[C.TS] = _iso(bought_at - pd.Timedelta(days=1))
            world.corrupted[table][i] = True


def _expected_kept(world: World) -> dict[str, list[bool]]:
    """Rows that must be kept: not corrupted, and every row they refer to kept (cascade)."""
    kept: dict[str, list[bool]] = {}
    kept_ids: dict[str, set[str | None]] = {}
    for table in T.ALL:
        spec = SCHEMAS[table]
        kept[table] = []
        for row, corrupted in zip(world.rows[table], world.corrupted[table], strict=True):
            refs_ok = all(
                row[fk.column] is None
                and SCHEMAS[table].column(fk.column).nullable
                or row[fk.column] in kept_ids[fk.ref_table]
                for fk in spec.foreign_keys
            )
            kept[table].append(not corrupted and refs_ok)
        kept_ids[table] = {
            r[spec.primary_key] for r, k in zip(world.rows[table], kept[table], strict=True) if k
        }
    return kept


def _frames(world: World) -> dict[str, pd.DataFrame]:
    return {
        table: pd.DataFrame(rows, columns=SCHEMAS[table].column_names, dtype=object)
        for table, rows in world.rows.items()
    }


# Per-table rates, so that facts are often corrupted under clean dimensions (and vice versa).
RATES = st.fixed_dictionaries({t: st.sampled_from([0.0, 0.0, 0.1, 0.3, 0.6]) for t in T.ALL})


@settings(max_examples=50, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), rates=RATES)
def test_validate_tables_keeps_exactly_the_uncorrupted_rows(
    seed: int, rates: dict[str, float]
) -> None:
    rng = np.random.default_rng(seed)
    world = _generate(rng)
    _corrupt(world, rng, rates)
    expected = _expected_kept(world)
    result = validate_tables(_frames(world), now=NOW)
    for table in T.ALL:
        spec = SCHEMAS[table]
        rows = world.rows[table]
        kept_ids = [r[spec.primary_key] for r, k in zip(rows, expected[table], strict=True) if k]
        assert result.tables[table][spec.primary_key].tolist() == kept_ids, table
        rejected = {i + 1 for i, k in enumerate(expected[table]) if not k}
        quarantined = result.quarantine[result.quarantine["table"] == table]
        assert set(quarantined["row"]) == rejected, table
        assert len(quarantined) == len(rejected)
        assert quarantined["reason"].str.len().gt(0).all()
        assert result.rows_read[table] == len(rows) == len(kept_ids) + len(quarantined)
    assert result.exit_code == (0 if all(all(k) for k in expected.values()) else 1)
