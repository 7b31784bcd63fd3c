"""Turning a world and its index-level events into the six contract tables, written in chunks."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

from recsys.columns import RETURN_REASONS, Columns, Tables
from recsys.contract.io import write_table
from recsys.simulation.events import (
    CHANNEL_NAMES,
    NO_SHARE,
    PurchaseRows,
    ReturnRows,
    ShareRows,
    empty_rows,
)
from recsys.simulation.world import SECONDS_PER_DAY, STATUS_NAMES, World, format_ids

C = Columns
Format = Literal["parquet", "csv"]
FORMATS: tuple[str, ...] = ("parquet", "csv")


def _timestamps(seconds: np.ndarray) -> pd.Series:
    return pd.Series(pd.to_datetime(np.asarray(seconds, dtype=np.int64), unit="s", utc=True))


def _day_timestamps(world: World, days: np.ndarray) -> pd.Series:
    seconds = world.start_seconds + np.floor(np.asarray(days) * SECONDS_PER_DAY)
    return _timestamps(seconds.astype(np.int64))


def skus_frame(world: World) -> pd.DataFrame:
    """The `skus` table: attributes only, status as of the end of the period."""
    skus, text, cfg = world.skus, world.text, world.config
    if text is None:
        raise ValueError("world.text is None: the skus table needs a world from build_world")
    cat_names = np.array([c.name for c in cfg.categories], dtype=object)
    region_names = list(cfg.regions)
    everywhere = (1 << cfg.n_regions) - 1
    regions = [
        [] if m == everywhere else [region_names[g] for g in range(cfg.n_regions) if m >> g & 1]
        for m in skus.region_mask.tolist()
    ]
    ended = skus.end_day <= cfg.n_days
    status = np.where(ended, skus.end_status, 0)
    series = np.where(skus.series >= 0, text.series_names[np.maximum(skus.series, 0)], None)
    return pd.DataFrame(
        {
            C.SKU_ID: skus.ids,
            C.TITLE: text.titles,
            C.CATEGORY: cat_names[skus.category],
            C.SERIES: series,
            C.BRAND: text.brand_names[skus.brand],
            C.PRICE: skus.price,
            C.TAGS: text.tags,
            C.LAUNCHED_AT: _day_timestamps(world, skus.launch_day),
            C.REGIONS: regions,
            C.STATUS: np.array(STATUS_NAMES, dtype=object)[status],
        }
    )


def agents_frame(world: World, tier: np.ndarray) -> pd.DataFrame:
    """The `agents` table with each agent's latest tier."""
    agents = world.agents
    return pd.DataFrame(
        {
            C.AGENT_ID: agents.ids,
            C.REGION: world.regions.names[agents.region],
            C.TIER: tier.astype(np.int64),
            C.JOINED_AT: _day_timestamps(world, agents.joined_day),
        }
    )


def customers_frame(world: World) -> pd.DataFrame:
    """The `customers` table, in id order."""
    cust = world.customers
    order = np.argsort(cust.ids.astype(str), kind="stable")
    return pd.DataFrame(
        {
            C.CUSTOMER_ID: cust.ids[order],
            C.REGION: world.regions.names[cust.region[order]],
            C.AGENT_ID: world.agents.ids[cust.agent[order]],
            C.JOINED_AT: _day_timestamps(world, cust.joined_day[order]),
        }
    )


def share_ids(numbers: np.ndarray) -> np.ndarray:
    """String ids of shares (`SH000000001`)."""
    return format_ids("SH", numbers, 9)


def purchase_ids(numbers: np.ndarray) -> np.ndarray:
    """String ids of purchase lines (`P0000000001`)."""
    return format_ids("P", numbers, 10)


def shares_frame(world: World, rows: ShareRows) -> pd.DataFrame:
    """The `shares` table; moments shares have no audience count."""
    audience = pd.array(rows.audience, dtype="Int64")
    audience[rows.audience == NO_SHARE] = pd.NA
    return pd.DataFrame(
        {
            C.SHARE_ID: share_ids(rows.share_id),
            C.TS: _timestamps(rows.ts),
            C.AGENT_ID: world.agents.ids[rows.agent],
            C.SKU_ID: world.skus.ids[rows.sku],
            C.CHANNEL: np.array(CHANNEL_NAMES, dtype=object)[rows.channel],
            C.AUDIENCE_SIZE: audience,
        }
    )


def purchases_frame(world: World, rows: PurchaseRows) -> pd.DataFrame:
    """The `purchases` table; storefront lines have no share_id."""
    share = share_ids(np.maximum(rows.share_id, 0))
    share[rows.share_id == NO_SHARE] = None
    return pd.DataFrame(
        {
            C.PURCHASE_ID: purchase_ids(rows.purchase_id),
            C.ORDER_ID: format_ids("O", rows.order_id, 10),
            C.TS: _timestamps(rows.ts),
            C.CUSTOMER_ID: world.customers.ids[rows.customer],
            C.AGENT_ID: world.agents.ids[rows.agent],
            C.SKU_ID: world.skus.ids[rows.sku],
            C.QTY: rows.qty.astype(np.int64),
            C.UNIT_PRICE: rows.unit_price.astype(np.float64),
            C.SHARE_ID: share,
        }
    )


def returns_frame(world: World, rows: ReturnRows) -> pd.DataFrame:
    """The `returns` table (the cause the simulator drew stays out of it)."""
    return pd.DataFrame(
        {
            C.RETURN_ID: format_ids("R", rows.return_id, 9),
            C.TS: _timestamps(rows.ts),
            C.PURCHASE_ID: purchase_ids(rows.purchase_id),
            C.QTY: rows.qty.astype(np.int64),
            C.REASON: np.array(RETURN_REASONS, dtype=object)[rows.reason],
        }
    )


ROWS = {Tables.SHARES: ShareRows, Tables.PURCHASES: PurchaseRows, Tables.RETURNS: ReturnRows}
EVENT_FRAMES = {
    Tables.SHARES: shares_frame,
    Tables.PURCHASES: purchases_frame,
    Tables.RETURNS: returns_frame,
}


class ChunkedTableWriter:
    """Buffers event rows and writes them as `table.ext`, or as `table/part-NNNNN.ext` parts once
    they outgrow one chunk, so memory stays bounded however long the run."""

    def __init__(self, world: World, out: Path, table: str, fmt: Format, chunk_rows: int) -> None:
        if fmt not in FORMATS:
            raise ValueError(f"fmt must be one of {', '.join(FORMATS)}, got {fmt!r}")
        self.world, self.out, self.table, self.fmt = world, Path(out), table, fmt
        self.chunk_rows = chunk_rows
        self._buffer: list[ShareRows | PurchaseRows | ReturnRows] = []
        self._buffered = 0
        self._parts = 0
        self.rows_written = 0

    def add(self, rows: ShareRows | PurchaseRows | ReturnRows) -> None:
        """Buffer rows; write a part when the buffer reaches `chunk_rows`."""
        self._buffer.append(rows)
        self._buffered += len(rows)
        if self._buffered >= self.chunk_rows:
            self._write(self.out / self.table / f"part-{self._parts:05d}.{self.fmt}")

    def close(self) -> None:
        """Write what is left (a single file if nothing was written yet)."""
        if self._parts == 0:
            self._write(self.out / f"{self.table}.{self.fmt}")
        elif self._buffered:
            self._write(self.out / self.table / f"part-{self._parts:05d}.{self.fmt}")

    def _write(self, path: Path) -> None:
        cls = ROWS[self.table]
        rows = cls.concat(self._buffer) if self._buffer else empty_rows(cls)
        frame = EVENT_FRAMES[self.table](self.world, rows)  # type: ignore[operator]
        write_table(frame, path, self.table)
        self.rows_written += len(frame)
        self._buffer, self._buffered = [], 0
        self._parts += 1
