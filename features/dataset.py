"""Build the `Dataset` a recommender fits on: id maps, interaction matrix, events, side features."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from features.encoding import FeatureConfig
from features.fingerprint import DIGEST, fingerprint_tables
from features.interactions import (
    USER_TABLE,
    build_events_frame,
    matrix_from_events,
    share_events,
    sku_id_map,
    user_id_map,
)
from features.item_features import aligned_skus, build_sku_features
from features.logs import ArrowColumns, TimeLike, require_tables, resolve_cutoff
from features.user_features import aligned_users, build_user_features
from features.weights import InteractionWeights, as_weights
from recsys.columns import Columns, Tables
from recsys.data.dataset import TARGETS, Dataset, Target
from recsys.exceptions import EmptyDataError

C = Columns


def build_dataset(
    tables: Mapping[str, pd.DataFrame],
    target: str,
    *,
    cutoff: TimeLike | None = None,
    weights: InteractionWeights | dict[str, Any] | None = None,
    with_features: bool = True,
    feature_config: FeatureConfig | dict[str, Any] | None = None,
    fingerprint: str | None = None,
    arrow_columns: ArrowColumns | None = None,
) -> Dataset:
    """Everything a recommender of `target` may learn from, using only events before `cutoff`.

    Parameters
    ----------
    tables
        Typed contract tables (`recsys.contract.loader.load_tables`): skus, agents, customers,
        shares, purchases, returns. Tables may hold later events; they are ignored.
    target
        "agent" (item-to-agent) or "customer" (item-to-customer).
    cutoff
        "Now" for the model: only shares, purchases and returns with `ts < cutoff` are used.
        None = just after the last event (all of the log).
    weights
        Interaction weights (InteractionWeights or a dict of its fields; None = defaults).
    with_features
        Also build the SKU and user side-feature tables.
    feature_config
        Knobs of the side features (FeatureConfig or a dict of its fields; None = defaults).
    fingerprint
        The data fingerprint digest (`fingerprint_tables(tables)["digest"]`) when the caller has
        already computed it; None = compute it (seconds on millions of rows).
    arrow_columns
        Id columns of `tables` in Arrow, same values (`LoadedTables.arrow` of the loader), so
        ids are looked up without converting millions of `str`; None = convert them.

    Raises
    ------
    ValueError
        If `target` is unknown or a table is missing.
    EmptyDataError
        If there are no users, no SKUs, or no interactions of the target before the cutoff.
    """
    if target not in TARGETS:
        raise ValueError(f"target must be one of {TARGETS}, got {target!r}")
    require_tables(tables, Tables.ALL)
    w = as_weights(weights)
    cfg = (
        feature_config
        if isinstance(feature_config, FeatureConfig)
        else FeatureConfig.model_validate(feature_config or {})
    )
    cutoff_ts = resolve_cutoff(tables, cutoff)
    users = user_id_map(tables, target)
    skus = sku_id_map(tables)
    if len(users) == 0 or len(skus) == 0:
        raise EmptyDataError(
            f"no {USER_TABLE[target]} or no skus in the tables ({len(users)} users, "
            f"{len(skus)} skus): nothing to train the {target} target on"
        )

    events = build_events_frame(tables, target, users, skus, cutoff_ts, arrow_columns)
    shares = (
        share_events(tables, users, skus, cutoff_ts, arrow_columns) if target == "agent" else None
    )
    matrix = matrix_from_events(events, shares, (len(users), len(skus)), w, cutoff_ts)
    if matrix.nnz == 0:
        raise EmptyDataError(
            f"target {target!r} has no interactions before the cutoff {cutoff_ts.isoformat()} "
            f"({len(events)} purchase lines, "
            f"{0 if shares is None else len(shares)} shares; net-negative pairs are dropped)"
        )

    sku_table = aligned_skus(tables, skus).reset_index(drop=True)
    user_table = aligned_users(tables, target, users).reset_index(drop=True)
    sku_features = user_features = None
    if with_features:
        sku_features = build_sku_features(tables, skus, cutoff_ts, cfg, lines=events)
        user_features = build_user_features(
            tables, target, users, skus, cutoff_ts, cfg, events=events
        )
    available = (sku_table[C.STATUS].astype(str) == "active").to_numpy(dtype=bool)
    data_fp = fingerprint if fingerprint is not None else fingerprint_tables(tables)[DIGEST]
    target_name: Target = "agent" if target == "agent" else "customer"
    return Dataset(
        target=target_name,
        users=users,
        skus=skus,
        interactions=matrix,
        events=events,
        user_table=user_table,
        sku_table=sku_table,
        cutoff=cutoff_ts,
        sku_available=available,
        user_features=user_features,
        sku_features=sku_features,
        fingerprint=data_fp,
        tables=tables,
        meta={
            "weights": w.model_dump(),
            "features": cfg.model_dump() if with_features else None,
            "n_events": int(len(events)),
            "n_shares": 0 if shares is None else int(len(shares)),
            "n_interactions": int(matrix.nnz),
            "n_users_with_interactions": int(np.count_nonzero(np.diff(matrix.indptr))),
        },
    )
