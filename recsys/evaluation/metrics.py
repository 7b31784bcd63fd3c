"""Offline metrics@k of a reco table against the holdout truth table (issue 3, section 3).

A reco table has a user id column (`agent_id` or `customer_id`), `sku_id`, `score` and `rank`
(1 = best); a truth table has one row per (user, SKU) bought in the holdout with `returned_qty`,
`kept_qty` and `is_new`. Only users with truth rows are scored. Exact definitions and the key
naming scheme are in docs/metrics.md.

The reco table is read `CHUNK_ROWS` rows at a time into two users × max(k) integer grids (the
truth row and the SKU at each (user, rank)); every metric is then accumulated one rank column at a
time, so memory stays bounded by the evaluated lists themselves, never users × SKUs.
"""

from __future__ import annotations

import re as _re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from recsys.columns import Columns
from recsys.data.dataset import RETURNED_QTY
from recsys.evaluation.splitters import IS_NEW, KEPT_QTY
from recsys.exceptions import EmptyDataError

C = Columns
_KEY_UNSAFE = _re.compile(r"[^0-9A-Za-z_.-]")
USER_COLUMNS: tuple[str, ...] = (C.AGENT_ID, C.CUSTOMER_ID)
# Per-user metrics, in key order; "new_" variants use the same names.
RANKING_METRICS: tuple[str, ...] = (
    "precision",
    "recall",
    "ndcg",
    "map",
    "hit_rate",
    "kept_recall",
    "kept_ndcg",
)
CHUNK_ROWS = 1_000_000  # reco rows turned into integer codes at a time


def resolve_user_col(reco: pd.DataFrame, truth: pd.DataFrame, user_col: str | None = None) -> str:
    """The user id column shared by `reco` and `truth` (`agent_id` or `customer_id`).

    Raises
    ------
    ValueError
        If `user_col` is missing from either table, or it is None and the tables do not share
        exactly one of the known user columns.
    """
    if user_col is not None:
        for name, frame in (("reco", reco), ("truth", truth)):
            if user_col not in frame.columns:
                raise ValueError(f"user_col {user_col!r} is not a column of {name}")
        return user_col
    shared = [c for c in USER_COLUMNS if c in reco.columns and c in truth.columns]
    if len(shared) != 1:
        raise ValueError(
            f"cannot tell the user column: reco and truth share {shared} of {list(USER_COLUMNS)}; "
            "pass user_col="
        )
    return shared[0]


def check_ks(ks: int | Iterable[int]) -> tuple[int, ...]:
    """The sorted distinct cut-offs of `ks`, each an integer >= 1."""
    values = [ks] if isinstance(ks, (int, np.integer)) else list(ks)
    if not values:
        raise ValueError("ks must hold at least one k, got none")
    for k in values:
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
            raise ValueError(f"k must be an integer >= 1, got {k!r}")
    return tuple(sorted({int(k) for k in values}))


def _check_catalog_size(catalog_size: int) -> None:
    is_int = isinstance(catalog_size, (int, np.integer)) and not isinstance(catalog_size, bool)
    if not is_int or catalog_size < 1:
        raise ValueError(f"catalog_size must be an integer >= 1, got {catalog_size!r}")


def _require(frame: pd.DataFrame, name: str, columns: Sequence[str]) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValueError(f"{name} lacks columns {missing}; it has {list(frame.columns)}")


def _ranks(values: pd.Series) -> np.ndarray:
    if len(values) == 0:  # an empty table built from no rows has object columns
        return np.zeros(0, dtype=np.int64)
    if not pd.api.types.is_numeric_dtype(values) or pd.api.types.is_bool_dtype(values):
        raise TypeError(f"reco rank must be numeric, got dtype {values.dtype}")
    if pd.api.types.is_integer_dtype(values) and not values.hasnans:
        ranks = values.to_numpy(dtype=np.int64)
        if len(ranks) and ranks.min() < 1:
            raise ValueError(f"reco rank must be an integer >= 1, got {ranks.min()}")
        return ranks
    ranks = values.to_numpy(dtype=np.float64, na_value=np.nan)
    if np.isnan(ranks).any():
        raise ValueError("reco rank has missing values")
    if len(ranks) and ((ranks < 1).any() or (ranks != np.floor(ranks)).any()):
        bad = ranks[(ranks < 1) | (ranks != np.floor(ranks))][0]
        raise ValueError(f"reco rank must be an integer >= 1, got {bad}")
    return ranks.astype(np.int64)


@dataclass(frozen=True)
class _Matched:
    """The top-max(k) lists of the truth users, matched against their truth rows."""

    users: pd.Index  # sorted ids of users with truth rows; code = position
    truth_user: np.ndarray  # user code of each truth row
    truth_sku: np.ndarray  # sku code of each truth row
    kept: np.ndarray  # truth row has kept_qty > 0
    returned: np.ndarray  # truth row has returned_qty > 0
    is_new: np.ndarray  # truth row is a SKU new to the user
    skus: pd.Index  # sku id of each sku code
    # users × max_k grids, column-major so each rank is one contiguous column
    slots: np.ndarray  # truth row at (user, rank), -1 if not bought
    sku_slots: np.ndarray  # sku code at (user, rank), -1 if the list is shorter


def _match(reco: pd.DataFrame, truth: pd.DataFrame, user_col: str, max_k: int) -> _Matched:
    _require(reco, "reco", (user_col, C.SKU_ID, C.RANK))
    _require(truth, "truth", (user_col, C.SKU_ID, RETURNED_QTY, KEPT_QTY, IS_NEW))
    users = pd.Index(pd.unique(truth[user_col].to_numpy()), name=user_col).sort_values()
    truth_user = users.get_indexer(truth[user_col].to_numpy()).astype(np.int64)
    # a missing sku id is a value of its own (never confused with another SKU)
    truth_sku, sku_values = pd.factorize(truth[C.SKU_ID].to_numpy(), use_na_sentinel=False)
    skus = pd.Index(sku_values, name=C.SKU_ID)
    pairs = pd.Index((truth_user << 32) | truth_sku)
    if not pairs.is_unique:
        row = int(np.argmax(pairs.duplicated()))
        pair = (truth[user_col].iloc[row], truth[C.SKU_ID].iloc[row])
        raise ValueError(f"truth must have one row per (user, sku), got {pair} twice or more")

    slots = np.full((len(users), max_k), -1, dtype=np.int32, order="F")
    sku_slots = np.full((len(users), max_k), -1, dtype=np.int32, order="F")
    n_rows = 0
    for start in range(0, len(reco), CHUNK_ROWS):
        chunk = reco.iloc[start : start + CHUNK_ROWS]
        rank = _ranks(chunk[C.RANK])
        user = users.get_indexer(chunk[user_col].to_numpy())
        keep = (user >= 0) & (rank <= max_k)
        user, rank = user[keep].astype(np.int64), rank[keep]
        codes, uniques = pd.factorize(chunk[C.SKU_ID].to_numpy()[keep], use_na_sentinel=False)
        to_global = skus.get_indexer(uniques)
        unseen = to_global < 0
        if unseen.any():
            to_global[unseen] = len(skus) + np.arange(unseen.sum())
            skus = skus.append(pd.Index(uniques[unseen], name=C.SKU_ID))
        sku = to_global[codes].astype(np.int64)
        slots[user, rank - 1] = pairs.get_indexer((user << 32) | sku)
        sku_slots[user, rank - 1] = sku
        n_rows += len(user)
    n_filled = int(np.count_nonzero(sku_slots >= 0))
    if n_filled != n_rows:
        raise ValueError(
            f"reco ranks must be unique per user: {n_rows - n_filled} rows repeat a "
            "(user, rank) of another row"
        )
    # A SKU listed twice for one user is one purchase: it counts at its best rank only.
    flat = slots.ravel(order="F")  # a view, rank-major: a lower rank comes first
    hit_cells = np.flatnonzero(flat >= 0)
    _, first = np.unique(flat[hit_cells], return_index=True)
    if len(first) < len(hit_cells):
        later = np.ones(len(hit_cells), dtype=bool)
        later[first] = False
        flat[hit_cells[later]] = -1
    return _Matched(
        users=users,
        truth_user=truth_user,
        truth_sku=truth_sku,
        kept=truth[KEPT_QTY].to_numpy(dtype=np.float64) > 0,
        returned=truth[RETURNED_QTY].to_numpy(dtype=np.float64) > 0,
        is_new=truth[IS_NEW].to_numpy(dtype=bool),
        skus=skus,
        slots=slots,
        sku_slots=sku_slots,
    )


def _position_sums(
    slots: np.ndarray, relevant: np.ndarray, ks: tuple[int, ...]
) -> dict[str, np.ndarray]:
    """Per-user hits, DCG and AP numerator within the top k, as (len(ks), n_users) arrays."""
    n_users, max_k = slots.shape
    lookup = np.append(relevant, False)  # slot -1 (not bought) reads the trailing False
    hits, dcg, ap = np.zeros(n_users), np.zeros(n_users), np.zeros(n_users)
    out = {name: np.zeros((len(ks), n_users)) for name in ("hits", "dcg", "ap")}
    # one rank at a time: memory stays O(users) whatever the list length
    for r in range(max_k):
        rel = lookup[slots[:, r]]
        hits += rel
        dcg += rel / np.log2(r + 2)
        ap += rel * hits / (r + 1)  # precision@(r+1) at each rank that holds a relevant SKU
        if r + 1 in ks:
            i = ks.index(r + 1)
            out["hits"][i], out["dcg"][i], out["ap"][i] = hits, dcg, ap
    return out


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    return np.divide(num, den, out=np.zeros(len(num)), where=den > 0)


@dataclass(frozen=True)
class _View:
    """Per-user metric arrays over all truth users for one choice of relevant truth rows."""

    scored: np.ndarray  # users with at least one relevant truth row
    names: list[str]  # "{metric}_at_{k}", "n_hits_at_{k}", "n_returned_at_{k}"
    table: np.ndarray  # len(names) × n_users


def _view(m: _Matched, base: np.ndarray, ks: tuple[int, ...]) -> _View:
    """Metrics when the truth rows in `base` are the relevant ones (kept ones for kept_*)."""
    n_users, max_k = m.slots.shape
    ideal = np.concatenate([[0.0], np.cumsum(1.0 / np.log2(np.arange(2, max_k + 2)))])
    values: dict[str, np.ndarray] = {}
    for prefix, relevant in (("", base), ("kept_", base & m.kept)):
        n_rel = np.bincount(m.truth_user[relevant], minlength=n_users)
        sums = _position_sums(m.slots, relevant, ks)
        for i, k in enumerate(ks):
            hits = sums["hits"][i]
            cap = np.minimum(k, n_rel)
            values[f"{prefix}recall_at_{k}"] = _ratio(hits, n_rel)
            values[f"{prefix}ndcg_at_{k}"] = _ratio(sums["dcg"][i], ideal[cap])
            if not prefix:
                values[f"precision_at_{k}"] = hits / k
                values[f"map_at_{k}"] = _ratio(sums["ap"][i], cap)
                values[f"hit_rate_at_{k}"] = (hits > 0).astype(np.float64)
                values[f"n_hits_at_{k}"] = hits
    returned = _position_sums(m.slots, base & m.returned, ks)["hits"]
    for i, k in enumerate(ks):
        values[f"n_returned_at_{k}"] = returned[i]
    scored = np.bincount(m.truth_user[base], minlength=n_users) > 0
    return _View(scored, list(values), np.vstack(list(values.values())))


def _summary(
    view: _View, selected: np.ndarray, ks: tuple[int, ...], prefix: str
) -> dict[str, float]:
    """Means over the scored users in `selected`; pooled return rate; 0.0 over no users."""
    users = view.scored & selected
    n_users = int(users.sum())
    part = view.table[:, users]
    means = dict(
        zip(view.names, part.mean(axis=1) if n_users else np.zeros(len(part)), strict=True)
    )
    sums = dict(zip(view.names, part.sum(axis=1), strict=True))
    out = {f"{prefix}n_users": float(n_users)}
    for k in ks:
        for metric in RANKING_METRICS:
            out[f"{prefix}{metric}_at_{k}"] = float(means[f"{metric}_at_{k}"])
        n_hits, n_returned = float(sums[f"n_hits_at_{k}"]), float(sums[f"n_returned_at_{k}"])
        out[f"{prefix}return_rate_at_{k}"] = n_returned / n_hits if n_hits else 0.0
        out[f"{prefix}n_hits_at_{k}"] = n_hits
    return out


def _information(skus: pd.Index, train_popularity: pd.Series) -> np.ndarray:
    """-log2 of each SKU's share of the train interactions; unseen SKUs count once."""
    if not isinstance(train_popularity, pd.Series):
        raise TypeError(
            f"train_popularity must be a Series of counts indexed by sku_id, "
            f"got {type(train_popularity).__name__}"
        )
    if train_popularity.index.has_duplicates:
        raise ValueError("train_popularity must have one count per sku_id, got duplicated SKUs")
    counts = train_popularity.to_numpy(dtype=np.float64, na_value=0.0)
    if (counts < 0).any():
        raise ValueError(f"train_popularity counts must be >= 0, got {counts.min()}")
    own = train_popularity.reindex(skus).to_numpy(dtype=np.float64, na_value=0.0)
    # total >= every smoothed count, so each share is <= 1 and novelty >= 0
    total = max(float(counts.sum()), 1.0)
    return -np.log2(np.where(own > 0, own, 1.0) / total)


def _novelty(m: _Matched, information: np.ndarray, ks: tuple[int, ...]) -> np.ndarray:
    """(len(ks), n_users) mean information of each user's top k; NaN for users with no picks."""
    n_users, max_k = m.sku_slots.shape
    lookup = np.append(information, 0.0)  # empty slot (-1) adds nothing
    total, count = np.zeros(n_users), np.zeros(n_users)
    out = np.full((len(ks), n_users), np.nan)
    for r in range(max_k):
        total += lookup[m.sku_slots[:, r]]
        count += m.sku_slots[:, r] >= 0
        if r + 1 in ks:
            np.divide(total, count, out=out[ks.index(r + 1)], where=count > 0)
    return out


def _reach(
    m: _Matched,
    selected: np.ndarray,
    ks: tuple[int, ...],
    prefix: str,
    catalog_size: int | None,
    novelty: np.ndarray | None,
) -> dict[str, float]:
    """Catalogue coverage and mean novelty of the top-k lists of the selected users."""
    out: dict[str, float] = {}
    if catalog_size is not None:
        shown = np.zeros(len(m.skus) + 1, dtype=bool)  # last entry absorbs empty slots (-1)
        for r in range(ks[-1]):
            shown[m.sku_slots[:, r][selected]] = True
            if r + 1 in ks:
                out[f"{prefix}coverage_at_{r + 1}"] = float(shown[:-1].sum()) / catalog_size
    if novelty is not None:
        for i, k in enumerate(ks):
            vals = novelty[i][selected]
            vals = vals[~np.isnan(vals)]
            out[f"{prefix}novelty_at_{k}"] = float(vals.mean()) if len(vals) else 0.0
    return out


def _user_segments(
    segments: pd.DataFrame, users: pd.Index, user_col: str
) -> Iterator[tuple[str, np.ndarray]]:
    """("{column}_{value}", mask over `users`) for every value of every segment column.

    The label uses only characters MLflow accepts in metric keys (others become `_`), so the
    same key names appear in MLflow, the JSON output and the docs.
    """
    if not isinstance(segments, pd.DataFrame):
        raise TypeError(f"segments must be a DataFrame keyed by {user_col}, got {type(segments)}")
    frame = segments.set_index(user_col) if user_col in segments.columns else segments
    if frame.index.has_duplicates:
        dupe = frame.index[frame.index.duplicated()][0]
        raise ValueError(f"segments must have one row per {user_col}, got {dupe!r} twice or more")
    aligned = frame.reindex(users)
    for column in aligned.columns:
        values = aligned[column]
        for value in sorted(values.dropna().unique(), key=str):
            label = _KEY_UNSAFE.sub("_", f"{column}_{value}")
            yield label, values.eq(value).fillna(False).to_numpy(dtype=bool)


def _sku_mask(m: _Matched, name: str, sku_ids: Iterable[str]) -> np.ndarray:
    """Truth rows whose SKU is in `sku_ids`."""
    if isinstance(sku_ids, str) or not isinstance(sku_ids, Iterable):
        raise TypeError(f"sku_segments[{name!r}] must be a collection of sku ids, got {sku_ids!r}")
    return m.skus.isin(list(sku_ids))[m.truth_sku]


def evaluate(
    reco: pd.DataFrame,
    truth: pd.DataFrame,
    ks: Iterable[int] = (10, 20, 50),
    *,
    catalog_size: int | None = None,
    train_popularity: pd.Series | None = None,
    segments: pd.DataFrame | None = None,
    sku_segments: Mapping[str, Iterable[str]] | None = None,
    user_col: str | None = None,
) -> dict[str, float]:
    """Every metric at every k as a flat dict keyed as in docs/metrics.md.

    Parameters
    ----------
    reco
        Reco table: user id column, `sku_id`, `rank` (unique per user, 1 = best).
    truth
        Holdout truth: user id column, `sku_id`, `returned_qty`, `kept_qty`, `is_new`.
    ks
        Cut-offs.
    catalog_size
        Number of recommendable SKUs; coverage keys are produced only when given.
    train_popularity
        Train interaction counts indexed by `sku_id`; novelty keys only when given.
    segments
        User segments keyed by user id (index or user id column), one column per breakdown.
    sku_segments
        Name → SKU ids (e.g. ``{"new_sku": ids}``): metrics over truth pairs of those SKUs.
    user_col
        `agent_id` or `customer_id`; detected from the tables when None.

    Raises
    ------
    EmptyDataError
        If `truth` has no rows.
    ValueError
        If a column is missing, a k or `catalog_size` is < 1, ranks repeat within a user or
        truth repeats a (user, sku) pair.
    """
    ks = check_ks(ks)
    user_col = resolve_user_col(reco, truth, user_col)
    if len(truth) == 0:
        raise EmptyDataError("truth has no rows: there is no user to evaluate")
    if catalog_size is not None:
        _check_catalog_size(catalog_size)
    if sku_segments is not None and not isinstance(sku_segments, Mapping):
        raise TypeError(
            f"sku_segments must map a name to sku ids, e.g. {{'new_sku': ids}}, "
            f"got {type(sku_segments).__name__}"
        )
    m = _match(reco, truth, user_col, ks[-1])
    everyone = np.ones(len(m.users), dtype=bool)
    views = {
        "": _view(m, np.ones(len(m.truth_user), dtype=bool), ks),
        "new_": _view(m, m.is_new, ks),
    }
    novelty = None
    if train_popularity is not None:
        novelty = _novelty(m, _information(m.skus, train_popularity), ks)

    def describe(selected: np.ndarray, prefix: str) -> dict[str, float]:
        out: dict[str, float] = {}
        for view_prefix, view in views.items():
            out.update(_summary(view, selected, ks, prefix + view_prefix))
        out.update(_reach(m, selected, ks, prefix, catalog_size, novelty))
        return out

    result = describe(everyone, "")
    for name, sku_ids in (sku_segments or {}).items():
        view = _view(m, _sku_mask(m, name, sku_ids), ks)
        result.update(_summary(view, everyone, ks, f"segment.{name}."))
    if segments is not None:
        for label, selected in _user_segments(segments, m.users, user_col):
            result.update(describe(selected, f"segment.{label}."))
    return result


def evaluate_per_user(
    reco: pd.DataFrame,
    truth: pd.DataFrame,
    metric: str = "kept_ndcg",
    k: int = 20,
    *,
    user_col: str | None = None,
) -> pd.Series:
    """One ranking metric at k per scored user (indexed by user id), e.g. for the bootstrap.

    Raises
    ------
    ValueError
        If `metric` is not one of `RANKING_METRICS`, optionally prefixed ``new_``.
    """
    name = metric.removeprefix("new_")
    if name not in RANKING_METRICS:
        raise ValueError(
            f"metric must be one of {list(RANKING_METRICS)}, optionally prefixed 'new_', "
            f"got {metric!r}"
        )
    (k,) = check_ks(k)
    user_col = resolve_user_col(reco, truth, user_col)
    m = _match(reco, truth, user_col, k)
    base = m.is_new if metric.startswith("new_") else np.ones(len(m.truth_user), dtype=bool)
    view = _view(m, base, (k,))
    return pd.Series(
        view.table[view.names.index(f"{name}_at_{k}")][view.scored],
        index=m.users[view.scored],
        name=f"{metric}_at_{k}",
    )


def precision_at_k(reco: pd.DataFrame, truth: pd.DataFrame, k: int, **kw: str | None) -> pd.Series:
    """Per user: bought SKUs in the top k, divided by k."""
    return evaluate_per_user(reco, truth, "precision", k, **kw)


def recall_at_k(reco: pd.DataFrame, truth: pd.DataFrame, k: int, **kw: str | None) -> pd.Series:
    """Per user: bought SKUs in the top k, divided by the number of bought SKUs."""
    return evaluate_per_user(reco, truth, "recall", k, **kw)


def ndcg_at_k(reco: pd.DataFrame, truth: pd.DataFrame, k: int, **kw: str | None) -> pd.Series:
    """Per user: binary-relevance DCG of the top k over the ideal DCG of min(k, n) hits."""
    return evaluate_per_user(reco, truth, "ndcg", k, **kw)


def map_at_k(reco: pd.DataFrame, truth: pd.DataFrame, k: int, **kw: str | None) -> pd.Series:
    """Per user: sum of precision@i at the hit ranks i <= k, divided by min(k, n)."""
    return evaluate_per_user(reco, truth, "map", k, **kw)


def hit_rate_at_k(reco: pd.DataFrame, truth: pd.DataFrame, k: int, **kw: str | None) -> pd.Series:
    """Per user: 1.0 if any SKU of the top k was bought, else 0.0."""
    return evaluate_per_user(reco, truth, "hit_rate", k, **kw)


def kept_recall_at_k(
    reco: pd.DataFrame, truth: pd.DataFrame, k: int, **kw: str | None
) -> pd.Series:
    """Per user: recall@k where only pairs with kept_qty > 0 are relevant (0 if none kept)."""
    return evaluate_per_user(reco, truth, "kept_recall", k, **kw)


def kept_ndcg_at_k(reco: pd.DataFrame, truth: pd.DataFrame, k: int, **kw: str | None) -> pd.Series:
    """Per user: NDCG@k where only pairs with kept_qty > 0 are relevant (0 if none kept)."""
    return evaluate_per_user(reco, truth, "kept_ndcg", k, **kw)


def return_rate_at_k(
    reco: pd.DataFrame, truth: pd.DataFrame, k: int, *, user_col: str | None = None
) -> float:
    """Share of recommended-and-bought pairs in the top k that were returned, pooled over users.

    0.0 when no recommended SKU was bought (`evaluate` reports that count as `n_hits_at_{k}`).
    """
    (k,) = check_ks(k)
    return evaluate(reco, truth, (k,), user_col=user_col)[f"return_rate_at_{k}"]


def coverage_at_k(reco: pd.DataFrame, k: int, catalog_size: int) -> float:
    """Distinct SKUs in the top k of all lists in `reco`, divided by `catalog_size`."""
    (k,) = check_ks(k)
    _check_catalog_size(catalog_size)
    _require(reco, "reco", (C.SKU_ID, C.RANK))
    top = reco.loc[_ranks(reco[C.RANK]) <= k, C.SKU_ID]
    return top.nunique() / catalog_size


def novelty_at_k(
    reco: pd.DataFrame, k: int, train_popularity: pd.Series, *, user_col: str | None = None
) -> pd.Series:
    """Per user of `reco`: mean -log2 train popularity share of the top-k SKUs."""
    (k,) = check_ks(k)
    user_col = resolve_user_col(reco, reco, user_col)
    _require(reco, "reco", (user_col, C.SKU_ID, C.RANK))
    top = reco.loc[_ranks(reco[C.RANK]) <= k, [user_col, C.SKU_ID]]
    skus = pd.Index(pd.unique(top[C.SKU_ID].to_numpy()))
    information = _information(skus, train_popularity)[skus.get_indexer(top[C.SKU_ID])]
    by_user = pd.Series(information, index=pd.Index(top[user_col].to_numpy(), name=user_col))
    return by_user.groupby(level=0).mean().rename(f"novelty_at_{k}")


def oracle_share(model_value: pd.Series, oracle_value: pd.Series) -> float:
    """Total true expected kept purchases of the model's picks over the oracle picks' total.

    Users missing from one Series count 0 there (union of users).

    Raises
    ------
    ValueError
        If a value is missing or negative, or the oracle total is not > 0.
    """
    for name, values in (("model_value", model_value), ("oracle_value", oracle_value)):
        arr = values.to_numpy(dtype=np.float64, na_value=np.nan)
        if np.isnan(arr).any() or (arr < 0).any():
            raise ValueError(f"{name} must hold values >= 0 with none missing")
    oracle_total = float(oracle_value.sum())
    if oracle_total <= 0:
        raise ValueError(f"oracle_value must sum to > 0, got {oracle_total}")
    return float(model_value.sum()) / oracle_total
