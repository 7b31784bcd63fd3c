"""One row per exposed agent: what happened in her attribution window and before the experiment.

The agent is the unit of randomisation, so every metric is built from per-agent sums. Her window
opens at her first exposure in the experiment, `t0`, and lasts `window_days`; a purchase line
counts when it is attributed to her and falls in the window, and its returns count when they come
within `return_days` of the purchase. The same sums over the `pre_days` before the experiment
starts are the CUPED covariates (docs/ab-testing.md defines each column).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from recsys.ab import Experiment, assign_many
from recsys.abtest.data import ExperimentData
from recsys.exceptions import EmptyDataError

DAY = pd.Timedelta(days=1)
# Per-agent sums in the window; `_pre` versions of SALES and REACH columns are the covariates.
WINDOW_COLUMNS: tuple[str, ...] = (
    "n_exposures",
    "exposed_skus",
    "shared_skus",
    "any_purchase",
    "gmv",
    "returned_value",
    "net_gmv",
    "buyers",
    "repeat_buyers",
    "customers",
    "reached",
    "acted",
    "rec_gmv",
    "customer_spend",
)
PRE_COLUMNS: tuple[str, ...] = (
    "shares_pre",
    "any_purchase_pre",
    "gmv_pre",
    "returned_value_pre",
    "net_gmv_pre",
    "buyers_pre",
    "repeat_buyers_pre",
    "customers_pre",
    "reached_pre",
    "acted_pre",
)


@dataclass(frozen=True)
class OutcomeSettings:
    """Which exposures count and how long outcomes are followed."""

    window_days: float = 7.0
    return_days: float = 30.0
    pre_days: float = 28.0
    start: pd.Timestamp | None = None  # exposures from this moment (default: the first one)
    end: pd.Timestamp | None = None  # up to this moment, exclusive (default: after the last one)

    def __post_init__(self) -> None:
        for name in ("window_days", "return_days", "pre_days"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)}")
        if self.start is not None and self.end is not None and self.end <= self.start:
            raise ValueError(f"end {self.end} must be after start {self.start}")


@dataclass
class Outcomes:
    """The per-agent table and what was left out of it, with the periods it covers."""

    table: pd.DataFrame  # one row per analysed agent: agent_id, variant, first_exposure, sums
    start: pd.Timestamp
    end: pd.Timestamp
    pre_start: pd.Timestamp
    observed_until: pd.Timestamp
    lines: pd.DataFrame  # window purchase lines: agent_id, ts, value (for daily curves)
    refunds: pd.DataFrame  # their counted returns: agent_id, ts, value
    integrity: dict[str, int] = field(default_factory=dict)


def _experiment_exposures(
    data: ExperimentData, experiment: Experiment, settings: OutcomeSettings
) -> tuple[pd.DataFrame, pd.Timestamp, pd.Timestamp]:
    """Exposures of this experiment in [start, end), with the period actually covered."""
    exp = data.exposures
    exp = exp[(exp["experiment"] == experiment.name) & (exp["target"] == "agent")]
    if settings.start is not None:
        exp = exp[exp["ts"] >= settings.start]
    if settings.end is not None:
        exp = exp[exp["ts"] < settings.end]
    if exp.empty:
        period = "".join(
            f" {word} {ts}"
            for word, ts in (("from", settings.start), ("before", settings.end))
            if ts is not None
        )
        raise EmptyDataError(
            f"no exposures of experiment {experiment.name!r} (target agent){period} in the "
            f"data ({len(data.exposures)} exposure records in all)"
        )
    start = settings.start if settings.start is not None else exp["ts"].min().floor("D")
    end = settings.end if settings.end is not None else exp["ts"].max()
    return exp, start, end


def _units(
    exp: pd.DataFrame, experiment: Experiment, window: pd.Timedelta
) -> tuple[pd.DataFrame, dict[str, int]]:
    """Agents with one known variant (first exposure, window end, exposures), and the dropped."""
    known = {v.name for v in experiment.variants}
    per_agent = exp.groupby("agent_id", sort=True).agg(
        variant=("variant", "first"),
        n_variants=("variant", "nunique"),
        first_exposure=("ts", "min"),
        n_exposures=("ts", "size"),
    )
    mixed = per_agent["n_variants"] > 1
    unknown = ~per_agent["variant"].isin(known) & ~mixed
    units = per_agent[~mixed & ~unknown].drop(columns="n_variants").reset_index()
    expected = assign_many(experiment, units["agent_id"].tolist())
    integrity = {
        "agents_exposed": int(len(per_agent)),
        "agents_in_several_variants": int(mixed.sum()),
        "agents_in_unknown_variants": int(unknown.sum()),
        "agents_not_in_their_assigned_variant": int((units["variant"] != expected).sum()),
    }
    units["window_end"] = units["first_exposure"] + window
    return units, integrity


def _exposed_pairs(exp: pd.DataFrame, units: pd.DataFrame) -> pd.DataFrame:
    """(agent, SKU) pairs served in her window, with the first time each was served."""
    exp = exp.merge(units[["agent_id", "window_end"]], on="agent_id")
    exp = exp[exp["ts"] < exp["window_end"]]
    pairs = exp[["agent_id", "ts", "sku_ids", "window_end"]].explode("sku_ids")
    pairs = pairs.dropna(subset=["sku_ids"]).rename(columns={"sku_ids": "sku_id"})
    pairs["sku_id"] = pairs["sku_id"].astype(str)
    return pairs.groupby(["agent_id", "sku_id"], as_index=False, sort=False).agg(
        served=("ts", "min"), window_end=("window_end", "first")
    )


def _sales(
    lines: pd.DataFrame, returns: pd.DataFrame, return_days: float, until: pd.Series | None = None
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Per agent: GMV, counted returned value, buyers and repeat buyers; and the counted refunds.

    `lines` holds purchase lines of the period with `agent_id`; a return counts when it comes
    within `return_days` of its line (and before the line's `until`, when given).
    """
    lines = lines.assign(value=lines["qty"] * lines["unit_price"])
    limit = lines["ts"] + pd.Timedelta(days=return_days)
    if until is not None:
        limit = limit.where(limit <= until, until)
    lines = lines.assign(limit=limit)
    ret = returns.merge(
        lines[["purchase_id", "agent_id", "unit_price", "limit"]], on="purchase_id", how="inner"
    )
    ret = ret[ret["ts"] <= ret["limit"]]
    refunds = pd.DataFrame(
        {"agent_id": ret["agent_id"], "ts": ret["ts"], "value": ret["qty"] * ret["unit_price"]}
    )
    by_agent = lines.groupby("agent_id")
    orders = lines.groupby(["agent_id", "customer_id"])["order_id"].nunique()
    out = pd.DataFrame(
        {
            "gmv": by_agent["value"].sum(),
            "buyers": orders.groupby(level="agent_id").size(),
            "repeat_buyers": (orders >= 2).groupby(level="agent_id").sum(),
        }
    )
    out["returned_value"] = refunds.groupby("agent_id")["value"].sum()
    return out.fillna(0.0), refunds


def _in_period(
    frame: pd.DataFrame, lo: pd.Series | pd.Timestamp, hi: pd.Series | pd.Timestamp
) -> pd.DataFrame:
    """Rows with `lo <= ts < hi`."""
    return frame[(frame["ts"] >= lo) & (frame["ts"] < hi)]


def _reached(data: ExperimentData, bound: pd.DataFrame, buyers: pd.DataFrame) -> pd.Series:
    """Distinct customers bound to each agent who clicked in her storefront or bought through her.

    `bound` holds (customer_id, agent_id, lo, hi) of the period; `buyers` the period's lines.
    """
    clicks = data.clicks[["agent_id", "customer_id", "ts"]].merge(
        bound, on=["customer_id", "agent_id"]
    )
    clicks = clicks[(clicks["ts"] >= clicks["lo"]) & (clicks["ts"] < clicks["hi"])]
    bought = buyers[["agent_id", "customer_id"]].merge(
        bound[["customer_id", "agent_id"]], on=["customer_id", "agent_id"]
    )
    both = pd.concat([clicks[["agent_id", "customer_id"]], bought], ignore_index=True)
    return both.drop_duplicates().groupby("agent_id").size()


def _window_outcomes(
    data: ExperimentData, units: pd.DataFrame, pairs: pd.DataFrame, settings: OutcomeSettings
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Window sums per agent (indexed by agent_id), the window lines and their counted refunds."""
    u = units.set_index("agent_id")
    bounds = units[["agent_id", "first_exposure", "window_end"]]
    lines = data.purchases.merge(bounds, on="agent_id")
    lines = lines[(lines["ts"] >= lines["first_exposure"]) & (lines["ts"] < lines["window_end"])]
    sales, refunds = _sales(lines, data.returns, settings.return_days)
    out = pd.DataFrame(index=u.index)
    out["n_exposures"] = u["n_exposures"]
    out["exposed_skus"] = pairs.groupby("agent_id").size()
    shared = data.shares[["agent_id", "sku_id", "ts"]].merge(pairs, on=["agent_id", "sku_id"])
    shared = shared[(shared["ts"] >= shared["served"]) & (shared["ts"] < shared["window_end"])]
    out["shared_skus"] = shared.drop_duplicates(["agent_id", "sku_id"]).groupby("agent_id").size()
    out = out.join(sales)
    out["any_purchase"] = lines.groupby("agent_id").size().reindex(out.index, fill_value=0).gt(0)
    out["net_gmv"] = out["gmv"].fillna(0.0) - out["returned_value"].fillna(0.0)
    # Customers bound to her who had joined by the end of her window.
    bound = data.customers.merge(bounds, on="agent_id")
    bound = bound[bound["joined_at"] < bound["window_end"]]
    out["customers"] = bound.groupby("agent_id").size()
    bound = bound.rename(columns={"first_exposure": "lo", "window_end": "hi"})[
        ["customer_id", "agent_id", "lo", "hi"]
    ]
    out["reached"] = _reached(data, bound, lines)
    # Lines of SKUs recommended to her, bought after she was first served them.
    rec = lines.merge(pairs[["agent_id", "sku_id", "served"]], on=["agent_id", "sku_id"])
    rec = rec[rec["ts"] >= rec["served"]]
    sold_rec = rec.groupby("agent_id").size().reindex(out.index, fill_value=0)
    out["acted"] = out["shared_skus"].fillna(0).gt(0) | sold_rec.gt(0)
    own = rec.merge(bound[["customer_id", "agent_id"]], on=["customer_id", "agent_id"])
    out["rec_gmv"] = (own["qty"] * own["unit_price"]).groupby(own["agent_id"]).sum()
    # Her customers' spend in her window, through any agent.
    spend = data.purchases.merge(
        bound.rename(columns={"agent_id": "bound_agent"}), on="customer_id"
    )
    spend = spend[(spend["ts"] >= spend["lo"]) & (spend["ts"] < spend["hi"])]
    out["customer_spend"] = (spend["qty"] * spend["unit_price"]).groupby(spend["bound_agent"]).sum()
    window_lines = pd.DataFrame(
        {
            "agent_id": lines["agent_id"],
            "ts": lines["ts"],
            "value": lines["qty"] * lines["unit_price"],
        }
    )
    return out, window_lines, refunds


def _pre_outcomes(
    data: ExperimentData,
    agents: pd.Index,
    pre_start: pd.Timestamp,
    start: pd.Timestamp,
    return_days: float,
) -> pd.DataFrame:
    """The same sums over [pre_start, start) for the analysed agents (returns seen before start)."""
    out = pd.DataFrame(index=agents)
    mine = data.purchases[data.purchases["agent_id"].isin(agents)]
    lines = _in_period(mine, pre_start, start)
    sales, _ = _sales(lines, data.returns, return_days, until=pd.Series(start, index=lines.index))
    out = out.join(sales.add_suffix("_pre"))
    out["net_gmv_pre"] = out["gmv_pre"].fillna(0.0) - out["returned_value_pre"].fillna(0.0)
    n_lines = lines.groupby("agent_id").size().reindex(agents, fill_value=0)
    out["any_purchase_pre"] = n_lines.gt(0)
    shares = _in_period(data.shares[data.shares["agent_id"].isin(agents)], pre_start, start)
    out["shares_pre"] = shares.groupby("agent_id").size().reindex(agents, fill_value=0)
    out["acted_pre"] = out["shares_pre"].gt(0) | n_lines.gt(0)
    bound = data.customers[
        data.customers["agent_id"].isin(agents) & (data.customers["joined_at"] < start)
    ]
    out["customers_pre"] = bound.groupby("agent_id").size()
    bound = bound[["customer_id", "agent_id"]].assign(lo=pre_start, hi=start)
    out["reached_pre"] = _reached(data, bound, lines)
    return out


def build_outcomes(
    data: ExperimentData, experiment: Experiment, settings: OutcomeSettings | None = None
) -> Outcomes:
    """The per-agent outcome table of `experiment` (see the module docstring).

    Raises
    ------
    EmptyDataError
        If the experiment has no agent exposures in the period, or none in a known variant.
    """
    settings = settings or OutcomeSettings()
    exp, start, end = _experiment_exposures(data, experiment, settings)
    units, integrity = _units(exp, experiment, pd.Timedelta(days=settings.window_days))
    if units.empty:
        raise EmptyDataError(
            f"no agent of experiment {experiment.name!r} was exposed to exactly one known variant "
            f"({integrity})"
        )
    pairs = _exposed_pairs(exp, units)
    window, lines, refunds = _window_outcomes(data, units, pairs, settings)
    pre_start = start - pd.Timedelta(days=settings.pre_days)
    pre = _pre_outcomes(data, window.index, pre_start, start, settings.return_days)
    table = units.set_index("agent_id")[["variant", "first_exposure"]].join(window).join(pre)
    table[list(WINDOW_COLUMNS + PRE_COLUMNS)] = (
        table[list(WINDOW_COLUMNS + PRE_COLUMNS)].fillna(0).astype(np.float64)
    )
    observed = data.observed_until() or end
    window_end = table["first_exposure"] + pd.Timedelta(days=settings.window_days)
    integrity["agents_with_open_window"] = int((window_end > observed).sum())
    integrity["agents_with_immature_returns"] = int(
        (window_end + pd.Timedelta(days=settings.return_days) > observed).sum()
    )
    return Outcomes(
        table=table.reset_index(),
        start=start,
        end=end,
        pre_start=pre_start,
        observed_until=observed,
        lines=lines,
        refunds=refunds,
        integrity=integrity,
    )
