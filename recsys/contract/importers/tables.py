"""Building the six contract tables from the cleaned purchase lines and matched returns."""

from __future__ import annotations

import numpy as np
import pandas as pd

from recsys.columns import TIERS, Columns, Tables
from recsys.contract.importers.catalog import categorise, series_of, tags_of
from recsys.contract.importers.source import LogColumns as L
from recsys.contract.schema import empty_table

C = Columns
BRAND = "unbranded"  # the log names no brands
RETURN_REASON = "other"  # the log records no reason for a return
STATUS = "active"


def _most_frequent(frame: pd.DataFrame, key: str, value: str) -> pd.Series:
    """Most frequent non-null `value` per `key`, ties broken by the smallest value."""
    counts = frame.dropna(subset=[value]).groupby([key, value], sort=False).size()
    counts = (
        counts.rename("n")
        .reset_index()
        .sort_values(["n", value], ascending=[False, True], kind="stable")
    )
    return counts.drop_duplicates(key).set_index(key)[value]


def build_purchases(lines: pd.DataFrame) -> pd.DataFrame:
    """The purchases table: one row per imported purchase line, in source order."""
    buyer = lines[L.BUYER].astype(str)
    return pd.DataFrame(
        {
            C.PURCHASE_ID: lines[C.PURCHASE_ID].to_numpy(),
            C.ORDER_ID: lines[L.INVOICE].astype(str).to_numpy(),
            C.TS: lines[L.TS].array,
            C.CUSTOMER_ID: buyer.to_numpy(),
            C.AGENT_ID: buyer.to_numpy(),
            C.SKU_ID: lines[L.STOCK_CODE].astype(str).to_numpy(),
            C.QTY: lines[L.QUANTITY].astype(np.int64).to_numpy(),
            C.UNIT_PRICE: lines[L.PRICE].astype(float).to_numpy(),
            C.SHARE_ID: pd.array([pd.NA] * len(lines), dtype="string"),
        }
    ).astype({C.TS: "datetime64[ns, UTC]"})


def build_returns(pieces: pd.DataFrame) -> pd.DataFrame:
    """The returns table from matched pieces (`return_id`, `ts`, `purchase_id`, `qty`)."""
    return pd.DataFrame(
        {
            C.RETURN_ID: pieces[C.RETURN_ID].astype(str).to_numpy(),
            C.TS: pieces[C.TS].array,
            C.PURCHASE_ID: pieces[C.PURCHASE_ID].astype(str).to_numpy(),
            C.QTY: pieces[C.QTY].astype(np.int64).to_numpy(),
            C.REASON: RETURN_REASON,
        }
    ).astype({C.TS: "datetime64[ns, UTC]"})


def build_skus(lines: pd.DataFrame) -> pd.DataFrame:
    """The SKU table: one row per product bought at least once, sorted by `sku_id`."""
    by_sku = lines.groupby(L.STOCK_CODE, sort=True)
    skus = pd.DataFrame(
        {
            C.PRICE: by_sku[L.PRICE].median(),
            C.LAUNCHED_AT: by_sku[L.TS].min(),
        }
    )
    titles = _most_frequent(lines, L.STOCK_CODE, L.DESCRIPTION).reindex(skus.index)
    # A product sold only on lines without a description is named by its code.
    titles = titles.fillna(pd.Series(skus.index, index=skus.index))
    sku_ids = pd.Series(skus.index, index=skus.index)
    return pd.DataFrame(
        {
            C.SKU_ID: skus.index.astype(str),
            C.TITLE: titles.to_numpy(),
            C.CATEGORY: [categorise(t) for t in titles],
            C.SERIES: series_of(sku_ids).to_numpy(),
            C.BRAND: BRAND,
            C.PRICE: skus[C.PRICE].to_numpy(),
            C.TAGS: [tags_of(t) for t in titles],
            C.LAUNCHED_AT: skus[C.LAUNCHED_AT].array,
            C.REGIONS: [[] for _ in range(len(skus))],
            C.STATUS: STATUS,
        }
    ).astype({C.LAUNCHED_AT: "datetime64[ns, UTC]"})


def tiers_by_spend(net_spend: pd.Series) -> pd.Series:
    """Tier 1..5 by quintile of net spend (5 = the top fifth), ties broken by id.

    Buyers are ranked by (net spend, id) ascending; the buyer at 0-based rank r of n gets tier
    1 + floor(5 r / n), so each tier holds a fifth of the buyers (up to one).
    """
    n_tiers = len(TIERS)
    order = pd.DataFrame({"spend": net_spend.to_numpy(), "id": net_spend.index.astype(str)})
    order = order.sort_values(["spend", "id"], kind="stable")
    rank = np.empty(len(order), dtype=np.int64)
    rank[order.index.to_numpy()] = np.arange(len(order))
    tiers = 1 + (rank * n_tiers) // max(len(order), 1)
    return pd.Series(tiers.astype(np.int64), index=net_spend.index)


def build_people(
    purchases: pd.DataFrame, returns: pd.DataFrame, countries: pd.Series
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The agents and customers tables: every buyer is both, sorted by id.

    `countries` holds the country of each purchase line (aligned with `purchases`). Region is
    the buyer's most frequent country over her purchase lines (ties: alphabetically first),
    joined_at her first purchase, and an agent's tier the quintile of her net spend (the value
    of what she bought minus the value, at purchase price, of what she returned).
    """
    bought = purchases[[C.PURCHASE_ID, C.AGENT_ID, C.QTY, C.UNIT_PRICE]]
    returned = returns[[C.PURCHASE_ID, C.QTY]].merge(
        bought.drop(columns=C.QTY), on=C.PURCHASE_ID, how="left", validate="many_to_one"
    )
    spend = (bought[C.QTY] * bought[C.UNIT_PRICE]).groupby(bought[C.AGENT_ID]).sum()
    refund = (returned[C.QTY] * returned[C.UNIT_PRICE]).groupby(returned[C.AGENT_ID]).sum()
    net = spend.sub(refund, fill_value=0.0).reindex(spend.index).sort_index()
    people = pd.DataFrame(
        {C.AGENT_ID: purchases[C.AGENT_ID].to_numpy(), C.REGION: countries.to_numpy()}
    )
    region = _most_frequent(people, C.AGENT_ID, C.REGION)
    joined = purchases.groupby(C.AGENT_ID)[C.TS].min()
    ids = net.index
    agents = pd.DataFrame(
        {
            C.AGENT_ID: ids.to_numpy(),
            C.REGION: region.reindex(ids).to_numpy(),
            C.TIER: tiers_by_spend(net).to_numpy(),
            C.JOINED_AT: joined.reindex(ids).array,
        }
    ).astype({C.JOINED_AT: "datetime64[ns, UTC]"})
    customers = pd.DataFrame(
        {
            C.CUSTOMER_ID: agents[C.AGENT_ID].to_numpy(),
            C.REGION: agents[C.REGION].to_numpy(),
            C.AGENT_ID: agents[C.AGENT_ID].to_numpy(),
            C.JOINED_AT: agents[C.JOINED_AT],
        }
    )
    return agents, customers


def empty_shares() -> pd.DataFrame:
    """The shares table with no rows (the log has none) but the contract's columns and types."""
    return empty_table(Tables.SHARES)
