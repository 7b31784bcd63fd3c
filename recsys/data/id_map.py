"""Stable mapping between external ids (strings) and dense internal indices."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd


class IdMap:
    """External id ↔ index, in a fixed order that is saved with every model."""

    def __init__(self, external_ids: Iterable[str]) -> None:
        ids = np.asarray(
            list(external_ids) if not isinstance(external_ids, np.ndarray) else external_ids,
            dtype=object,
        )
        index = pd.Index(ids)
        if not index.is_unique:
            dupes = index[index.duplicated()].unique()[:5].tolist()
            raise ValueError(f"external ids must be unique, got duplicates {dupes}")
        self._index = index
        self.external_ids = ids

    @classmethod
    def from_values(cls, values: Iterable[str]) -> IdMap:
        """An IdMap over the sorted unique values (sorted, so the order does not depend on rows)."""
        return cls(
            np.sort(
                pd.unique(
                    pd.Series(
                        list(values) if not isinstance(values, (pd.Series, np.ndarray)) else values,
                        dtype=object,
                    )
                )
            )
        )

    def __len__(self) -> int:
        return len(self.external_ids)

    def __contains__(self, external_id: object) -> bool:
        return external_id in self._index

    def to_index(
        self,
        ids: Iterable[str],
        on_unknown: Literal["raise", "ignore"] = "raise",
    ) -> np.ndarray:
        """Indices of `ids`; unknown ids raise KeyError, or map to -1 with `on_unknown="ignore"`."""
        arr = ids if isinstance(ids, (np.ndarray, pd.Series, pd.Index)) else list(ids)
        idx = self._index.get_indexer(arr)
        if on_unknown == "raise" and (idx < 0).any():
            unknown = pd.Series(arr)[idx < 0].unique()[:5].tolist()
            raise KeyError(f"{int((idx < 0).sum())} unknown ids, e.g. {unknown}")
        return idx.astype(np.int64)

    def to_external(self, index: np.ndarray) -> np.ndarray:
        """External ids of the given indices."""
        return self.external_ids[np.asarray(index, dtype=np.int64)]

    def extend(self, new_ids: Iterable[str]) -> IdMap:
        """A new IdMap with unseen ids appended (existing indices are unchanged)."""
        extra = pd.Index(pd.unique(pd.Series(list(new_ids), dtype=object)))
        extra = extra[~extra.isin(self._index)]
        return IdMap(np.concatenate([self.external_ids, np.sort(extra.to_numpy(dtype=object))]))

    def save(self, path: Path) -> None:
        """Write the ids in index order to a Parquet file."""
        pd.DataFrame({"external_id": self.external_ids.astype(str)}).to_parquet(path, index=False)

    @classmethod
    def load(cls, path: Path) -> IdMap:
        """Read an IdMap written by `save`."""
        return cls(pd.read_parquet(path)["external_id"].to_numpy(dtype=object))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, IdMap) and np.array_equal(self.external_ids, other.external_ids)

    def __repr__(self) -> str:
        return f"IdMap(n={len(self)})"
