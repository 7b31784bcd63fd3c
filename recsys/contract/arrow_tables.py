"""Typed contract tables to Arrow and back, value for value (the format of the table cache).

A typed table is what validation keeps: text and ids as Python `str` (None when missing), event
ids (`ColumnSpec.event_id`) as pandas' Arrow-backed `str` dtype (NaN when missing), floats
as float64, ints as int64 (`Int64` when nullable), timestamps as datetime64[ns, UTC], lists as
Python lists of str. Text columns with many repeats (foreign keys, categories) are stored
dictionary-encoded, so reading them back builds each distinct `str` once and shares it between
rows, which is most of what makes a cached load fast.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from recsys.contract.schema import EVENT_ID_DTYPE, SCHEMAS, ColumnSpec

# Dictionary-encode a text column when a sample of it holds at most this share of distinct values.
DICTIONARY_MAX_SHARE = 0.5
SAMPLE_ROWS = 10_000
_ARROW_TYPES: dict[str, pa.DataType] = {
    "id": pa.string(),
    "str": pa.string(),
    "float": pa.float64(),
    "int": pa.int64(),
    "ts": pa.timestamp("ns", tz="UTC"),
    "list": pa.list_(pa.string()),
}


def event_ids(values: pa.Array | pa.ChunkedArray) -> pd.Series:
    """Arrow strings (plain or dictionary) as an `EVENT_ID_DTYPE` column, without a `str` each."""
    if pa.types.is_dictionary(values.type):
        values = values.cast(pa.string())
    return pd.Series(values, dtype=EVENT_ID_DTYPE, copy=False)


def arrow_strings(
    values: pd.Series | pd.api.extensions.ExtensionArray | np.ndarray | pa.Array | pa.ChunkedArray,
) -> pa.Array:
    """Text values as one Arrow array; an Arrow-backed column is handed over without a copy.

    Raises
    ------
    pyarrow.ArrowInvalid, pyarrow.ArrowTypeError
        If `values` hold something else than strings and missing values.
    """
    if isinstance(values, pa.ChunkedArray):
        return _one_array(values)
    if isinstance(values, pa.Array):
        return values
    if isinstance(values, pd.Series):
        values = values.array
    if isinstance(values.dtype, pd.StringDtype) and values.dtype.storage == "pyarrow":
        return _one_array(values.__arrow_array__())
    return pa.array(np.asarray(values, dtype=object), type=pa.string(), from_pandas=True)


def with_event_ids(
    name: str, frame: pd.DataFrame, arrow: Mapping[str, pa.Array] | None = None
) -> pd.DataFrame:
    """`frame` (a typed table of `name`), its event-id columns set to `EVENT_ID_DTYPE` in place.

    `arrow` may hold some columns already in Arrow (same values, null where missing): they are
    used as they are instead of converting the Python `str` of the frame.
    """
    given = arrow or {}
    for spec in SCHEMAS[name].columns:
        if not spec.event_id or spec.name not in frame.columns:
            continue
        if isinstance(frame[spec.name].dtype, pd.StringDtype):
            continue
        twin = given.get(spec.name)
        if twin is None or len(twin) != len(frame):
            twin = arrow_strings(frame[spec.name])
        frame[spec.name] = event_ids(twin).set_axis(frame.index)
    return frame


def encode_text(arr: pa.Array) -> pa.Array:
    """A string array, dictionary-encoded when a sample of it repeats values a lot."""
    if len(arr) == 0 or not (pa.types.is_string(arr.type) or pa.types.is_large_string(arr.type)):
        return arr
    sample = arr.slice(0, SAMPLE_ROWS)
    if len(pc.unique(sample)) <= DICTIONARY_MAX_SHARE * len(sample):
        return arr.dictionary_encode()
    return arr


def encode_text_chunks(column: pa.ChunkedArray, max_distinct: int | None = None) -> pa.Array:
    """`encode_text` of a chunked string column, as one array; repeated values never copied.

    `max_distinct` bounds the number of distinct values when it is known (a foreign key has no
    more than its table has rows): a sample cannot tell 500k customers from 20M distinct ids,
    and hashing a nearly unique column into a dictionary costs gigabytes.
    """
    n = len(column)
    if max_distinct is not None:
        repeats = 0 < n and max_distinct <= DICTIONARY_MAX_SHARE * n
    elif n == 0:
        repeats = False
    else:
        sample = column.slice(0, SAMPLE_ROWS).combine_chunks()
        repeats = len(pc.unique(sample)) <= DICTIONARY_MAX_SHARE * len(sample)
    if not repeats:
        return column.chunk(0) if column.num_chunks == 1 else column.combine_chunks()
    encoded = pc.dictionary_encode(column)
    if encoded.num_chunks == 1:
        return encoded.chunk(0)
    return encoded.unify_dictionaries().combine_chunks()


def _text_to_arrow(values: pd.Series) -> pa.Array:
    """A str/None column as Arrow strings, dictionary-encoded when values repeat a lot."""
    return encode_text(arrow_strings(values))


def index_in(values: pa.Array, keys: pa.Array) -> np.ndarray:
    """Position of each value among `keys` (-1 where absent or null), as int64.

    A dictionary-encoded `values` is looked up once per distinct value, then spread by its codes.
    """
    if pa.types.is_dictionary(values.type):
        words = pc.index_in(values.dictionary, value_set=keys).fill_null(-1).to_numpy()
        codes = values.indices.fill_null(-1).to_numpy(zero_copy_only=False)
        # code -1 (a null) picks the trailing -1
        return np.append(words, -1).astype(np.int64)[codes]
    found = pc.index_in(values, value_set=keys).fill_null(-1)
    return found.to_numpy(zero_copy_only=False).astype(np.int64)


def id_columns(name: str, table: pa.Table) -> dict[str, pa.Array]:
    """The id columns of a cached table, as single Arrow arrays (for lookups without `str`)."""
    spec = SCHEMAS[name]
    return {c.name: _one_array(table.column(c.name)) for c in spec.columns if c.kind == "id"}


def _one_array(column: pa.ChunkedArray) -> pa.Array:
    """A chunked column as one array; a single chunk as it is (no copy of a mapped file)."""
    return column.chunk(0) if column.num_chunks == 1 else column.combine_chunks()


def _to_arrow(values: pd.Series, spec: ColumnSpec) -> pa.Array:
    """One typed column as an Arrow array of its contract kind."""
    if spec.kind in ("id", "str"):
        return _text_to_arrow(values)
    if spec.kind == "list":
        return pa.array(values.tolist(), type=_ARROW_TYPES["list"])
    if spec.kind == "ts":
        return pa.Array.from_pandas(values, type=_ARROW_TYPES["ts"])
    # from_pandas=False: a NaN price stays a NaN, not a null
    return pa.array(values.to_numpy(), type=_ARROW_TYPES[spec.kind], from_pandas=False)


def table_to_arrow(
    name: str, frame: pd.DataFrame, arrow: Mapping[str, pa.Array] | None = None
) -> pa.Table:
    """A typed contract table (as validation keeps it) as an Arrow table.

    `arrow` may hold some text columns already in Arrow (same values, nulls where missing), which
    are used as they are instead of converting millions of `str` again.

    Raises
    ------
    pyarrow.ArrowException
        If a column holds values of another type than its kind (then it is not a typed table).
    """
    spec = SCHEMAS[name]
    given = arrow or {}
    arrays, fields = [], []
    for col in spec.columns:
        if col.name in given and len(given[col.name]) == len(frame):
            arr = given[col.name]
        elif col.kind == "int" and col.nullable:
            arr = pa.array(frame[col.name], type=pa.int64(), from_pandas=True)
        else:
            arr = _to_arrow(frame[col.name], col)
        arrays.append(arr)
        fields.append(pa.field(col.name, arr.type))
    return pa.Table.from_arrays(arrays, schema=pa.schema(fields))


def text_values(column: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """Arrow strings (plain or dictionary) as an object array of str, None where null.

    A dictionary column builds each distinct `str` once and shares it between rows.
    """
    chunks = column.chunks if isinstance(column, pa.ChunkedArray) else [column]
    out = []
    for chunk in chunks:
        if pa.types.is_dictionary(chunk.type):
            # position -1 (a null) picks the trailing None
            words = np.asarray([*chunk.dictionary.to_pylist(), None], dtype=object)
            out.append(words[chunk.indices.fill_null(-1).to_numpy(zero_copy_only=False)])
        else:
            # no de-duplication: the values are (nearly) distinct, and hashing them costs seconds
            out.append(chunk.to_pandas(deduplicate_objects=False).to_numpy(dtype=object))
    return np.concatenate(out) if out else np.empty(0, dtype=object)


def _from_arrow(column: pa.ChunkedArray, spec: ColumnSpec) -> pd.Series:
    """One Arrow column back as the typed pandas column of its contract kind."""
    if spec.event_id:
        return event_ids(column)
    if spec.kind in ("id", "str"):
        return pd.Series(text_values(column), dtype=object, copy=False)
    if spec.kind == "list":
        return pd.Series(column.to_pylist(), dtype=object)
    if spec.kind == "ts":
        return column.to_pandas().astype("datetime64[ns, UTC]", copy=False)
    if spec.kind == "int" and spec.nullable:
        values = column.fill_null(0).to_numpy().astype(np.int64, copy=False)
        mask = column.is_null().to_numpy(zero_copy_only=False)
        return pd.Series(pd.arrays.IntegerArray(values, mask), copy=False)
    dtype = "int64" if spec.kind == "int" else "float64"
    return pd.Series(column.to_numpy(), dtype=dtype, copy=False)


def table_from_arrow(name: str, table: pa.Table) -> pd.DataFrame:
    """An Arrow table written by `table_to_arrow` as the typed pandas table it came from."""
    spec = SCHEMAS[name]
    columns = {col.name: _from_arrow(table.column(col.name), col) for col in spec.columns}
    # copy=False: the columns are fresh; consolidating millions of pointers costs seconds
    return pd.DataFrame(columns, copy=False)
