"""Contract tables for the ranker: the dataset's own, or minimal ones rebuilt from a bare Dataset.

`build_dataset` keeps the tables it was built from (`Dataset.tables`); a Dataset made by hand
(tests, notebooks) has none, so the ranker rebuilds the least it needs from the dataset itself:
each agent's purchase lines become lines of one stand-in customer of hers, returned units become
returns filed just after their line (fault units with reason `quality`), and the catalogue gets
neutral attributes (one category, no series, price from the lines). Everything still happens
before the dataset's cutoff.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from recsys.columns import Columns, Tables
from recsys.data.dataset import FAULT_RETURNED_QTY, RETURNED_QTY, Dataset

C = Columns
STAND_IN_PREFIX = "~"  # stand-in customer ids: "~" + agent id


def ranking_tables(dataset: Dataset) -> Mapping[str, pd.DataFrame]:
    """The dataset's tables, or minimal stand-ins when it carries none.

    Raises
    ------
    ValueError
        If the dataset is not of the agent target.
    """
    if dataset.target != "agent":
        raise ValueError(f"the ranked model serves agents; got a {dataset.target!r} dataset")
    if dataset.tables is not None:
        return dataset.tables
    return stand_in_tables(dataset)


def _column(frame: pd.DataFrame, name: str, default: object) -> pd.Series:
    if name in frame.columns:
        return frame[name]
    return pd.Series([default] * len(frame), index=frame.index, dtype=object)


def stand_in_tables(dataset: Dataset) -> dict[str, pd.DataFrame]:
    """Minimal contract tables equivalent to a hand-made agent Dataset (see module docstring)."""
    ev = dataset.events
    first = ev[C.TS].min() if len(ev) else dataset.cutoff - pd.Timedelta(days=1)
    early = min(first, dataset.cutoff) - pd.Timedelta(days=1)
    skus = dataset.sku_table.reset_index(drop=True)
    mean_price = ev.groupby(C.SKU_ID)[C.UNIT_PRICE].mean() if len(ev) else pd.Series(dtype=float)
    price = mean_price.reindex(skus[C.SKU_ID]).fillna(1.0).clip(lower=0.01).to_numpy()
    catalogue = pd.DataFrame(
        {
            C.SKU_ID: skus[C.SKU_ID].to_numpy(dtype=object),
            C.TITLE: skus[C.SKU_ID].to_numpy(dtype=object),
            C.CATEGORY: _column(skus, C.CATEGORY, "all").fillna("all").to_numpy(dtype=object),
            C.SERIES: _column(skus, C.SERIES, None).to_numpy(dtype=object),
            C.BRAND: _column(skus, C.BRAND, "").fillna("").to_numpy(dtype=object),
            C.PRICE: _column(skus, C.PRICE, np.nan).astype(float).fillna(pd.Series(price)).values,
            C.TAGS: [[] for _ in range(len(skus))],
            C.LAUNCHED_AT: pd.to_datetime(_column(skus, C.LAUNCHED_AT, early), utc=True).fillna(
                early
            ),
            C.REGIONS: [[] for _ in range(len(skus))],
            C.STATUS: _column(skus, C.STATUS, "active").fillna("active").to_numpy(dtype=object),
        }
    )
    users = dataset.user_table.reset_index(drop=True)
    agent_ids = users[C.AGENT_ID].to_numpy(dtype=object)
    agents = pd.DataFrame(
        {
            C.AGENT_ID: agent_ids,
            C.REGION: _column(users, C.REGION, "unknown").fillna("unknown").astype(str).values,
            C.TIER: pd.to_numeric(_column(users, C.TIER, 1), errors="coerce")
            .fillna(1)
            .astype(np.int64),
            C.JOINED_AT: early,
        }
    )
    customers = pd.DataFrame(
        {
            C.CUSTOMER_ID: np.array([STAND_IN_PREFIX + str(a) for a in agent_ids], dtype=object),
            C.REGION: agents[C.REGION].to_numpy(dtype=object),
            C.AGENT_ID: agent_ids,
            C.JOINED_AT: early,
        }
    )
    ids = np.array([f"L{i}" for i in range(len(ev))], dtype=object)
    purchases = pd.DataFrame(
        {
            C.PURCHASE_ID: ids,
            C.ORDER_ID: ids,
            C.TS: ev[C.TS].to_numpy(),
            C.CUSTOMER_ID: np.array(
                [STAND_IN_PREFIX + str(a) for a in ev[C.AGENT_ID]], dtype=object
            ),
            C.AGENT_ID: ev[C.AGENT_ID].to_numpy(dtype=object),
            C.SKU_ID: ev[C.SKU_ID].to_numpy(dtype=object),
            C.QTY: ev[C.QTY].to_numpy(dtype=np.int64),
            C.UNIT_PRICE: ev[C.UNIT_PRICE].to_numpy(dtype=np.float64),
            C.SHARE_ID: None,
        }
    )
    purchases[C.TS] = pd.to_datetime(purchases[C.TS], utc=True)
    returns = _returns(ev, ids)
    shares = pd.DataFrame(
        {
            C.SHARE_ID: pd.Series([], dtype=object),
            C.TS: pd.Series([], dtype="datetime64[ns, UTC]"),
            C.AGENT_ID: pd.Series([], dtype=object),
            C.SKU_ID: pd.Series([], dtype=object),
            C.CHANNEL: pd.Series([], dtype=object),
            C.AUDIENCE_SIZE: pd.Series([], dtype="Int64"),
        }
    )
    return {
        Tables.SKUS: catalogue,
        Tables.AGENTS: agents,
        Tables.CUSTOMERS: customers,
        Tables.SHARES: shares,
        Tables.PURCHASES: purchases,
        Tables.RETURNS: returns,
    }


def _returns(ev: pd.DataFrame, ids: np.ndarray) -> pd.DataFrame:
    """Returns of the lines' returned units, filed 1 µs after the line (fault units as quality)."""
    fault = ev[FAULT_RETURNED_QTY].to_numpy(dtype=np.int64)
    other = ev[RETURNED_QTY].to_numpy(dtype=np.int64) - fault
    ts = pd.to_datetime(ev[C.TS], utc=True) + pd.Timedelta(microseconds=1)
    frames = []
    for units, reason in ((fault, "quality"), (other, "other")):
        rows = np.flatnonzero(units > 0)
        frames.append(
            pd.DataFrame(
                {
                    C.RETURN_ID: np.array([f"R{reason[0]}{i}" for i in rows], dtype=object),
                    C.TS: ts.to_numpy()[rows],
                    C.PURCHASE_ID: ids[rows],
                    C.QTY: units[rows],
                    C.REASON: reason,
                }
            )
        )
    out = pd.concat(frames, ignore_index=True)
    out[C.TS] = pd.to_datetime(out[C.TS], utc=True)
    return out
