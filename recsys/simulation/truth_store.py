"""Writing and reading the ground truth folder `DIR/truth/` of a simulated data directory.

The folder holds everything the simulator knew and the logs do not show: latent vectors and
quality of SKUs, incidents with onset dates, category return rates, regional, agent and customer
tastes, price bands, activity, and the tier history. Training code must never read it; evaluation
code reads it through `recsys.simulation.truth`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from recsys.simulation.config import SimConfig
from recsys.simulation.dynamics import category_arrays
from recsys.simulation.events import PurchaseRows
from recsys.simulation.state import SimState
from recsys.simulation.world import (
    SECONDS_PER_DAY,
    Agents,
    Customers,
    Regions,
    Skus,
    World,
    read_entity,
    write_entity,
)

TRUTH_DIR = "truth"
OWNED_DIR = "owned"
FORMAT_VERSION = 1
_ENTITIES: dict[str, type[Skus] | type[Regions] | type[Agents] | type[Customers]] = {
    "skus": Skus,
    "regions": Regions,
    "agents": Agents,
    "customers": Customers,
}
_README = """Ground truth of a simulated data set (recsys simulate).

Never read by training code: it holds what the logs do not show (latent vectors, quality,
incidents, tastes, price bands, activity, tier history, owned non-consumables).
Evaluation reads it with recsys.simulation.truth.load_truth(DATA_DIR).
"""


@dataclass
class Truth:
    """The latent world of a simulated data set, with id lookups and the agents' tier history.

    `owned_keys` / `owned_day` record, for every non-consumable SKU a customer bought, the first
    day she did (keys are customer index * n_skus + SKU index, sorted): she does not buy it again.
    """

    world: World
    tier_history: pd.DataFrame  # agent_id, effective_at, tier, contribution_30d
    owned_keys: np.ndarray
    owned_day: np.ndarray
    path: Path | None = None

    def __post_init__(self) -> None:
        self._agents = pd.Index(self.world.agents.ids)
        self._customers = pd.Index(self.world.customers.ids)
        self._skus = pd.Index(self.world.skus.ids)

    def owned_before(self, cust: np.ndarray, sku: np.ndarray, day: float) -> np.ndarray:
        """Whether each customer bought the (non-consumable) SKU before `day`.

        Takes aligned 1-D index arrays, or a grid as `cust[:, None]` and `sku[None, :]`.
        """
        cust, sku = np.asarray(cust, dtype=np.int64), np.asarray(sku, dtype=np.int64)
        out = np.zeros(np.broadcast_shapes(cust.shape, sku.shape), dtype=bool)
        if len(self.owned_keys) == 0 or out.size == 0:
            return out
        durable = ~category_arrays(self.world.config).consumable[self.world.skus.category[sku]]
        if out.ndim == 2:  # grid: only the non-consumable columns can be owned
            cols = np.flatnonzero(durable.reshape(-1))
            out[:, cols] = self._owned(
                cust * len(self.world.skus) + sku.reshape(1, -1)[:, cols], day
            )
        else:
            rows = np.flatnonzero(np.broadcast_to(durable, out.shape))
            c, s = np.broadcast_to(cust, out.shape)[rows], np.broadcast_to(sku, out.shape)[rows]
            out[rows] = self._owned(c * len(self.world.skus) + s, day)
        return out

    def _owned(self, key: np.ndarray, day: float) -> np.ndarray:
        pos = np.minimum(np.searchsorted(self.owned_keys, key), len(self.owned_keys) - 1)
        return (self.owned_keys[pos] == key) & (self.owned_day[pos] < day)

    def agent_index(self, ids: Any) -> np.ndarray:
        """Indices of agent ids (raises KeyError naming an unknown id)."""
        return _lookup(self._agents, ids, "agent_id")

    def customer_index(self, ids: Any) -> np.ndarray:
        """Indices of customer ids (raises KeyError naming an unknown id)."""
        return _lookup(self._customers, ids, "customer_id")

    def sku_index(self, ids: Any) -> np.ndarray:
        """Indices of SKU ids (raises KeyError naming an unknown id)."""
        return _lookup(self._skus, ids, "sku_id")

    def incidents(self) -> pd.DataFrame:
        """SKUs with a quality incident: sku_id, onset_at, extra_return_rate."""
        return incidents_frame(self.world)


def _lookup(index: pd.Index, ids: Any, name: str) -> np.ndarray:
    values = np.asarray(ids, dtype=object).reshape(-1)
    idx = index.get_indexer(values)
    if (idx < 0).any():
        raise KeyError(f"unknown {name} {values[np.argmax(idx < 0)]!r} (not in the truth)")
    return idx.astype(np.int64)


def incidents_frame(world: World) -> pd.DataFrame:
    """One row per SKU with a quality incident: its onset and extra return probability."""
    skus = world.skus
    idx = np.flatnonzero(np.isfinite(skus.incident_onset))
    onset = world.start_seconds + np.round(skus.incident_onset[idx] * SECONDS_PER_DAY)
    return pd.DataFrame(
        {
            "sku_id": skus.ids[idx],
            "onset_at": pd.to_datetime(onset.astype(np.int64), unit="s", utc=True),
            "extra_return_rate": skus.incident_rate[idx].astype(np.float64),
        }
    )


def tier_history_frame(world: World, state: SimState) -> pd.DataFrame:
    """Tier of every joined agent at the start and after each monthly update."""
    frames = []
    for day, tier, contribution in state.tier_log:
        joined = np.flatnonzero(world.agents.joined_day <= day)
        ts = world.start + pd.Timedelta(days=day)
        frames.append(
            pd.DataFrame(
                {
                    "agent_id": world.agents.ids[joined],
                    "effective_at": pd.Series([ts] * len(joined), dtype="datetime64[ns, UTC]"),
                    "tier": tier[joined].astype(np.int64),
                    "contribution_30d": contribution[joined].astype(np.float64),
                }
            )
        )
    return pd.concat(frames, ignore_index=True)


def save_truth(world: World, state: SimState, data_dir: Path) -> Path:
    """Write `data_dir/truth/` (deterministic bytes for a given world and state)."""
    out = Path(data_dir) / TRUTH_DIR
    out.mkdir(parents=True, exist_ok=True)
    meta = {
        "format_version": FORMAT_VERSION,
        "seed": world.seed,
        "mismatch_mu": world.mismatch_mu,
        "mismatch_sd": world.mismatch_sd,
        "config": world.config.to_dict(),
    }
    (out / "config.json").write_text(json.dumps(meta, sort_keys=True, indent=2) + "\n")
    (out / "README.txt").write_text(_README)
    for name in _ENTITIES:
        write_entity(getattr(world, name), out / f"{name}.parquet")
    cats = pd.DataFrame([c.__dict__ for c in world.config.categories])
    cats["return_band"] = [list(b) for b in cats["return_band"]]
    cats["return_mix"] = [list(m) for m in cats["return_mix"]]
    _write_frame(cats, out / "categories.parquet")
    _write_frame(incidents_frame(world), out / "incidents.parquet")
    _write_frame(tier_history_frame(world, state), out / "tier_history.parquet")
    return out


def owned_index(
    cust: np.ndarray, sku: np.ndarray, day: np.ndarray, n_skus: int
) -> tuple[np.ndarray, np.ndarray]:
    """Sorted unique ownership keys and the first day of each (see `Truth`)."""
    key = np.asarray(cust, dtype=np.int64) * n_skus + np.asarray(sku, dtype=np.int64)
    order = np.lexsort((day, key))
    key, day = key[order], np.asarray(day, dtype=np.float32)[order]
    first = np.r_[True, key[1:] != key[:-1]] if len(key) else np.zeros(0, dtype=bool)
    return key[first], day[first]


class OwnedWriter:
    """Streams the non-consumable purchase lines (customer, SKU, day) to `truth/owned/` parts."""

    def __init__(self, data_dir: Path, chunk_rows: int) -> None:
        self.folder = Path(data_dir) / TRUTH_DIR / OWNED_DIR
        self.chunk_rows = chunk_rows
        self._buffer: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
        self._buffered = 0
        self._parts = 0

    def add(self, world: World, rows: PurchaseRows) -> None:
        """Buffer the day's non-consumable lines; write a part when the buffer is full."""
        durable = ~category_arrays(world.config).consumable[world.skus.category[rows.sku]]
        day = (rows.ts[durable] - world.start_seconds) // SECONDS_PER_DAY
        self._buffer.append((rows.customer[durable], rows.sku[durable], day))
        self._buffered += int(durable.sum())
        if self._buffered >= self.chunk_rows:
            self._flush()

    def close(self) -> None:
        """Write what is left (always at least one part)."""
        if self._buffered or self._parts == 0:
            self._flush()

    def _flush(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        cols = [np.concatenate(c) if c else np.empty(0) for c in zip(*self._buffer, strict=True)]
        if not cols:
            cols = [np.empty(0), np.empty(0), np.empty(0)]
        table = pa.table(
            {
                "customer_index": pa.array(cols[0], type=pa.int32()),
                "sku_index": pa.array(cols[1], type=pa.int32()),
                "day": pa.array(cols[2], type=pa.int32()),
            }
        )
        pq.write_table(table, self.folder / f"part-{self._parts:05d}.parquet", compression="zstd")
        self._buffer, self._buffered = [], 0
        self._parts += 1


def _read_owned(folder: Path, n_skus: int) -> tuple[np.ndarray, np.ndarray]:
    parts = sorted((folder / OWNED_DIR).glob("part-*.parquet"))
    if not parts:
        return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.float32)
    table = pa.concat_tables([pq.read_table(p) for p in parts])
    return owned_index(
        table.column("customer_index").to_numpy(),
        table.column("sku_index").to_numpy(),
        table.column("day").to_numpy(),
        n_skus,
    )


def _write_frame(frame: pd.DataFrame, path: Path) -> None:
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), path, compression="zstd")


def load_truth(data_dir: str | Path) -> Truth:
    """Read the ground truth of a simulated data directory (`DIR/truth/`).

    Raises
    ------
    FileNotFoundError
        If `data_dir` has no `truth/` folder written by `recsys simulate`.
    """
    folder = Path(data_dir) / TRUTH_DIR
    meta_path = folder / "config.json"
    if not meta_path.is_file():
        raise FileNotFoundError(
            f"data_dir {str(data_dir)!r} has no {TRUTH_DIR}/config.json: "
            "ground truth exists only for data written by `recsys simulate`"
        )
    meta = json.loads(meta_path.read_text())
    if meta.get("format_version") != FORMAT_VERSION:
        raise ValueError(
            f"{meta_path}: format_version {meta.get('format_version')!r} is not {FORMAT_VERSION}"
        )
    parts = {name: read_entity(cls, folder / f"{name}.parquet") for name, cls in _ENTITIES.items()}
    world = World(
        config=SimConfig.from_dict(meta["config"]),
        seed=int(meta["seed"]),
        mismatch_mu=float(meta["mismatch_mu"]),
        mismatch_sd=float(meta["mismatch_sd"]),
        **parts,  # type: ignore[arg-type]
    )
    history = pq.read_table(folder / "tier_history.parquet").to_pandas()
    keys, days = _read_owned(folder, len(world.skus))
    return Truth(world=world, tier_history=history, owned_keys=keys, owned_day=days, path=folder)
