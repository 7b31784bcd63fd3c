"""The latent state of a simulated world: SKUs, regions, agents and customers as numpy arrays.

Everything the event dynamics need lives here, so a `World` rebuilt from `truth/` (see
`recsys.simulation.truth`) drives the same purchase and return model as the run that wrote it.
Time is measured in days since the period start (fractions allowed; negative = before it).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from recsys.simulation.config import SimConfig

SECONDS_PER_DAY = 86_400
END_ACTIVE, END_SUSPENDED, END_DISCONTINUED = 0, 1, 2
STATUS_NAMES: tuple[str, ...] = ("active", "suspended", "discontinued")


@dataclass
class Skus:
    """Catalogue: attributes (visible in `skus`) and latent traits (truth only)."""

    ids: np.ndarray  # str
    category: np.ndarray  # int16 index into config.categories
    brand: np.ndarray  # int32, global brand index
    series: np.ndarray  # int32, global series index; -1 = no series
    price: np.ndarray  # float64, list price
    log_rel_price: np.ndarray  # float32, log(price / category median)
    latent: np.ndarray  # (n, latent_dim) float32
    appeal: np.ndarray  # float32, popularity every customer feels
    quality: np.ndarray  # float32, ~N(0, 1); low quality drives quality/damaged returns
    launch_day: np.ndarray  # float64
    end_day: np.ndarray  # float64, day it stops being sold; inf = never
    end_status: np.ndarray  # int8, status after end_day (END_SUSPENDED or END_DISCONTINUED)
    region_mask: np.ndarray  # int32, bit g set = sold in region g
    incident_onset: np.ndarray  # float64, day a quality incident starts; inf = none
    incident_rate: np.ndarray  # float32, extra return probability once the incident runs

    def __len__(self) -> int:
        return len(self.ids)


@dataclass
class Regions:
    """Regional tastes: a latent offset, category preferences and a price level."""

    names: np.ndarray  # str
    taste: np.ndarray  # (n_regions, latent_dim) float32
    category_pref: np.ndarray  # (n_regions, n_categories) float32, logit offsets
    price_level: np.ndarray  # float32, log-price offset of the region's agents

    def __len__(self) -> int:
        return len(self.names)


@dataclass
class Agents:
    """Agents; each owns the contiguous customer index range [customer_start, customer_stop)."""

    ids: np.ndarray  # str
    region: np.ndarray  # int16
    taste: np.ndarray  # (n, latent_dim) float32
    perceived_taste: np.ndarray  # (n, latent_dim) float32, what she shares by
    price_band: np.ndarray  # float32, log price (relative to category median) she sells at
    activity: np.ndarray  # float32, chance she shares on a given day
    share_rate: np.ndarray  # float32, mean extra shares on an active day
    push_rate: np.ndarray  # float32, share of her shares taken from the platform push list
    repeat_rate: np.ndarray  # float32, share of her shares re-sharing SKUs that sold for her
    joined_day: np.ndarray  # float64
    customer_start: np.ndarray  # int64
    customer_stop: np.ndarray  # int64
    initial_tier: np.ndarray  # int8

    def __len__(self) -> int:
        return len(self.ids)


@dataclass
class Customers:
    """Customers, sorted by their bound agent."""

    ids: np.ndarray  # str
    agent: np.ndarray  # int32, bound agent index
    region: np.ndarray  # int16
    taste: np.ndarray  # (n, latent_dim) float32
    price_ref: np.ndarray  # float32, preferred log relative price
    price_sensitivity: np.ndarray  # float32
    view_rate: np.ndarray  # float32, chance she sees a share posted to her group
    storefront_rate: np.ndarray  # float32, chance factor of buying a shared SKU later
    loyalty: np.ndarray  # float32, logit offset of rebuying consumables
    joined_day: np.ndarray  # float64

    def __len__(self) -> int:
        return len(self.ids)


@dataclass
class CatalogText:
    """Visible text of the catalogue (titles, tags, names); not needed by the dynamics."""

    titles: np.ndarray  # str
    tags: list[list[str]]
    brand_names: np.ndarray  # str, by brand index
    series_names: np.ndarray  # str, by series index


@dataclass
class World:
    """The complete latent state the day step and the ground truth work on."""

    config: SimConfig
    seed: int
    skus: Skus
    regions: Regions
    agents: Agents
    customers: Customers
    # mean and sd of the raw mismatch among bought pairs, so mismatch returns average out to the
    # category's configured share of the base rate
    mismatch_mu: float
    mismatch_sd: float
    text: CatalogText | None = None
    _region_index: tuple[np.ndarray, np.ndarray] | None = field(default=None, repr=False)
    _hosts: tuple[np.ndarray, np.ndarray, np.ndarray] | None = field(default=None, repr=False)

    @property
    def start(self) -> pd.Timestamp:
        """Start of the simulated period (UTC)."""
        return pd.Timestamp(self.config.start, tz="UTC")

    @property
    def start_seconds(self) -> int:
        """Start of the period in seconds since the Unix epoch."""
        return int(self.start.timestamp())

    def day_of(self, at: Any) -> float:
        """Days since the period start of a timestamp; None means the end of the period."""
        if at is None:
            return float(self.config.n_days)
        ts = pd.Timestamp(at)
        ts = ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")
        return (ts - self.start).total_seconds() / SECONDS_PER_DAY

    def hosts(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Who an inherited group bought through before its agent joined.

        An agent whose customers joined before her brought them along (config
        `inherited_group_share`); until she joins they are guests of her host, an established
        agent of her region (of any region if hers has none), drawn from the world's seed so a
        resumed world finds the same one. Returns `host` by agent (-1: none) and, as CSR arrays
        by host, `guest_ptr` (n_agents + 1) and `guest_customers` (customers who joined before
        their own agent, hosted until she joins).
        """
        if self._hosts is None:
            agents, customers = self.agents, self.customers
            n = len(agents)
            early = customers.joined_day < agents.joined_day[customers.agent]
            brought = np.zeros(n, dtype=bool)
            brought[customers.agent[early]] = True
            brought &= agents.joined_day >= 0
            host = np.full(n, -1, dtype=np.int64)
            rng = np.random.default_rng(np.random.SeedSequence([self.seed, 1]))
            established = np.flatnonzero(agents.joined_day < 0)
            for a in np.flatnonzero(brought):
                mine = established[agents.region[established] == agents.region[a]]
                pool = mine if len(mine) else established
                if len(pool):
                    host[a] = pool[rng.integers(len(pool))]
            guests = np.flatnonzero(early & (host[customers.agent] >= 0))
            owner = host[customers.agent[guests]]
            order = np.argsort(owner, kind="stable")
            ptr = np.concatenate([[0], np.cumsum(np.bincount(owner, minlength=n))])
            self._hosts = (host, ptr.astype(np.int64), guests[order].astype(np.int64))
        return self._hosts

    def agent_at(self, cust: np.ndarray, ts: np.ndarray | int) -> np.ndarray:
        """The agent customer `cust` buys through at `ts` (seconds): her host before her own
        agent joined (an inherited group), else her bound agent."""
        bound = self.customers.agent[cust].astype(np.int64)
        if len(self.hosts()[2]) == 0:
            return bound  # no inherited group: every customer buys through her own agent
        host = self.hosts()[0][bound]
        joined_ts = self.start_seconds + self.agents.joined_day[bound] * SECONDS_PER_DAY
        return np.where((host >= 0) & (ts < joined_ts), host, bound)

    def customers_by_region(self) -> tuple[np.ndarray, np.ndarray]:
        """Customer indices sorted by region and the offsets of each region's slice."""
        if self._region_index is None:
            order = np.argsort(self.customers.region, kind="stable")
            counts = np.bincount(self.customers.region, minlength=len(self.regions))
            offsets = np.concatenate([[0], np.cumsum(counts)])
            self._region_index = (order, offsets)
        return self._region_index


E = TypeVar("E", Skus, Regions, Agents, Customers)


def entity_to_table(entity: Skus | Regions | Agents | Customers) -> pa.Table:
    """An entity's arrays as an Arrow table (2-D arrays become fixed-size list columns)."""
    columns: dict[str, pa.Array] = {}
    for f in dataclasses.fields(entity):
        values = np.asarray(getattr(entity, f.name))
        if values.ndim == 2:
            flat = pa.array(values.reshape(-1))
            columns[f.name] = pa.FixedSizeListArray.from_arrays(flat, values.shape[1])
        elif values.dtype == object:
            columns[f.name] = pa.array(values, type=pa.string())
        else:
            columns[f.name] = pa.array(values)
    return pa.table(columns)


def entity_from_table(cls: type[E], table: pa.Table) -> E:
    """Rebuild an entity written by `entity_to_table`."""
    values: dict[str, np.ndarray] = {}
    for f in dataclasses.fields(cls):
        column = table.column(f.name).combine_chunks()
        if pa.types.is_fixed_size_list(column.type):
            width = column.type.list_size
            values[f.name] = column.flatten().to_numpy().reshape(-1, width)
        elif pa.types.is_string(column.type) or pa.types.is_large_string(column.type):
            values[f.name] = column.to_numpy(zero_copy_only=False).astype(object)
        else:
            values[f.name] = column.to_numpy()
    return cls(**values)


def write_entity(entity: Skus | Regions | Agents | Customers, path: Path) -> None:
    """Write an entity as a Parquet file (deterministic bytes)."""
    pq.write_table(entity_to_table(entity), path, compression="zstd")


def read_entity(cls: type[E], path: Path) -> E:
    """Read an entity written by `write_entity`."""
    return entity_from_table(cls, pq.read_table(path))


def format_ids(prefix: str, numbers: np.ndarray, width: int) -> np.ndarray:
    """Ids like `S00042` for 1-based numbers, widened when a number needs more digits."""
    numbers = np.asarray(numbers, dtype=np.int64)
    if len(numbers):
        width = max(width, len(str(int(numbers.max()))))
    digits = pc.utf8_lpad(pa.array(numbers).cast(pa.string()), width, "0")
    joined = pc.binary_join_element_wise(prefix, digits, "")
    return joined.to_numpy(zero_copy_only=False).astype(object)


def expand_ranges(start: np.ndarray, size: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Owner row and value of every element of the integer ranges [start, start + size)."""
    size = np.asarray(size, dtype=np.int64)
    owner = np.repeat(np.arange(len(size)), size)
    offset = np.arange(len(owner)) - np.repeat(np.cumsum(size) - size, size)
    return owner, np.asarray(start, dtype=np.int64)[owner] + offset
