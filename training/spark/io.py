"""Reading the six contract tables into Spark DataFrames, typed like the local loader's tables.

A table `name` under a data location (a local folder or any URI Spark reads: `s3a://`, `hdfs://`,
`file:/`, ...) is `name.parquet`, `name.csv`, or a folder `name/` of Parquet or CSV parts at any
depth, as in recsys/contract/io.py. Columns get their contract kind: ids and text as string,
ints as long, floats as double, lists as array<string> (`|`-separated in CSV) and timestamps as
**int64 nanoseconds since the epoch, UTC** (the local engine's unit, so cutoffs compare exactly).

The Spark engine trusts its input: it does not quarantine rows. Run `recsys validate` on a sample
(or the whole set, where it fits) before training on new sources.
"""

from __future__ import annotations

import hashlib
import re
from typing import TYPE_CHECKING, Any

from recsys.columns import Tables
from recsys.contract.io import LIST_SEPARATOR
from recsys.contract.schema import EVENT_ID_DTYPE, SCHEMAS, ColumnSpec
from recsys.exceptions import SchemaError

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame, SparkSession

URI_PATTERN = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:/")
NS_PER_US = 1000


def is_uri(location: str) -> bool:
    """True when `location` names a scheme (`s3a://...`, `file:/...`), not a plain path."""
    return bool(URI_PATTERN.match(str(location)))


def _hadoop_exists(spark: SparkSession, location: str) -> tuple[bool, bool]:
    """(exists, is a directory) for a path or URI, through Hadoop's file system layer."""
    jvm = spark.sparkContext._jvm  # type: ignore[attr-defined]
    conf = spark.sparkContext._jsc.hadoopConfiguration()  # type: ignore[attr-defined]
    path = jvm.org.apache.hadoop.fs.Path(location)
    fs = path.getFileSystem(conf)
    if not fs.exists(path):
        return False, False
    return True, bool(fs.getFileStatus(path).isDirectory())


def table_location(spark: SparkSession, root: str, table: str) -> tuple[str, str]:
    """(path, format) of `table` under `root`: `name.parquet`, `name.csv` or a folder `name/`.

    Raises
    ------
    SchemaError
        If the table is missing or present in more than one form.
    """
    base = str(root).rstrip("/")
    forms = []
    for suffix, fmt in ((".parquet", "parquet"), (".csv", "csv")):
        path = f"{base}/{table}{suffix}"
        if _hadoop_exists(spark, path)[0]:
            forms.append((path, fmt))
    folder = f"{base}/{table}"
    exists, is_dir = _hadoop_exists(spark, folder)
    if exists and is_dir:
        forms.append((folder, "folder"))
    if not forms:
        raise SchemaError(
            f"table {table!r} not found in {root} "
            f"(expected {table}.parquet, {table}.csv or a folder {table}/)",
            path=str(root),
        )
    if len(forms) > 1:
        found = ", ".join(p for p, _ in forms)
        raise SchemaError(
            f"table {table!r} is present in more than one form in {root}: {found}; keep one",
            path=str(root),
        )
    return forms[0]


def _read_raw(spark: SparkSession, path: str, fmt: str, table: str) -> DataFrame:
    """The table's files as read (CSV as text), parts of a folder in either format."""
    from pyspark.sql.utils import AnalysisException

    def csv(glob: str | None = None) -> DataFrame:
        reader = spark.read.option("header", "true").option("inferSchema", "false")
        if glob:
            reader = reader.option("recursiveFileLookup", "true").option("pathGlobFilter", glob)
        return reader.csv(path)

    def parquet(glob: str | None = None) -> DataFrame:
        reader = spark.read
        if glob:
            reader = reader.option("recursiveFileLookup", "true").option("pathGlobFilter", glob)
        return reader.parquet(path)

    try:
        if fmt == "parquet":
            return parquet()
        if fmt == "csv":
            return csv()
        parts = []
        for read, glob in ((parquet, "*.parquet"), (csv, "*.csv")):
            try:
                parts.append(_typed(read(glob), table, path))
            except AnalysisException:
                continue  # no part in this format
        if not parts:
            raise SchemaError(f"folder {path} holds no .parquet or .csv parts", path=path)
        out = parts[0]
        for part in parts[1:]:
            out = out.unionByName(part)
        return out
    except AnalysisException as exc:
        raise SchemaError(f"cannot read {path}: {exc}", path=path) from exc


def _typed_column(frame: DataFrame, spec: ColumnSpec) -> Column:
    """One column cast to its contract kind (timestamps to int64 ns, lists to array<string>)."""
    from pyspark.sql import functions as F
    from pyspark.sql import types as T

    col = F.col(spec.name)
    dtype = frame.schema[spec.name].dataType
    if spec.kind in ("id", "str"):
        return col.cast("string")
    if spec.kind == "int":
        return col.cast("long")
    if spec.kind == "float":
        return col.cast("double")
    if spec.kind == "list":
        if isinstance(dtype, T.ArrayType):
            return F.coalesce(col.cast("array<string>"), F.array().cast("array<string>"))
        text = col.cast("string")
        return F.when(text.isNull() | (text == ""), F.array().cast("array<string>")).otherwise(
            F.split(text, re.escape(LIST_SEPARATOR))
        )
    # timestamps
    if isinstance(dtype, T.LongType):  # Parquet nanoseconds, read with nanosAsLong
        return col
    if isinstance(dtype, T.StringType):
        col = F.to_timestamp(col)
    return F.unix_micros(col.cast("timestamp")) * NS_PER_US


def _typed(frame: DataFrame, table: str, where: str) -> DataFrame:
    """The contract's columns of `frame` in contract order, typed; SchemaError if one is missing."""
    spec = SCHEMAS[table]
    missing = [c for c in spec.column_names if c not in frame.columns]
    if missing:
        raise SchemaError(
            f"{where}: missing required column(s) {', '.join(map(repr, missing))} of table "
            f"{table!r} (expected columns: {', '.join(spec.column_names)})",
            path=where,
            column=missing[0],
        )
    return frame.select([_typed_column(frame, c).alias(c.name) for c in spec.columns])


def read_table(spark: SparkSession, root: str, table: str) -> DataFrame:
    """One contract table of `root`, typed (see the module docstring)."""
    path, fmt = table_location(spark, root, table)
    raw = _read_raw(spark, path, fmt, table)
    return raw if fmt == "folder" else _typed(raw, table, path)


def read_tables(spark: SparkSession, root: str) -> dict[str, DataFrame]:
    """The six contract tables of `root` as typed Spark DataFrames, by table name."""
    return {name: read_table(spark, str(root), name) for name in Tables.ALL}


def fingerprint(tables: dict[str, DataFrame]) -> dict[str, Any]:
    """Row counts, time ranges and an order-independent hash of each table, plus a digest.

    Per table, `hash` is the sum of xxhash64 over the contract columns of every row (as a
    decimal, so it never overflows): the same rows in any order and partitioning give the same
    value. It is not the local engine's fingerprint (that one sorts every row on one machine).
    """
    from pyspark.sql import functions as F

    parts = []
    for name in sorted(tables):
        spec = SCHEMAS[name]
        ts = F.col(spec.time_column) if spec.time_column else F.lit(None).cast("long")
        parts.append(
            tables[name].select(
                F.lit(name).alias("_table"),
                F.xxhash64(*[F.col(c) for c in spec.column_names]).alias("_hash"),
                ts.alias("_ts"),
            )
        )
    union = parts[0]
    for part in parts[1:]:
        union = union.unionByName(part)
    # one job for every table
    rows = union.groupBy("_table").agg(
        F.count(F.lit(1)).alias("rows"),
        F.sum(F.col("_hash").cast("decimal(38,0)")).alias("hash"),
        F.min("_ts").alias("min_ns"),
        F.max("_ts").alias("max_ns"),
    )
    found = {row["_table"]: row for row in rows.collect()}
    out: dict[str, Any] = {}
    for name in sorted(tables):
        row = found.get(name)
        info: dict[str, Any] = {
            "hash": f"spark:{(row['hash'] if row else None) or 0}",
            "rows": int(row["rows"]) if row else 0,
        }
        if SCHEMAS[name].time_column:
            info["min_ts"] = _iso(row["min_ns"] if row else None)
            info["max_ts"] = _iso(row["max_ns"] if row else None)
        out[name] = info
    digest = hashlib.sha256()
    for name, info in out.items():
        digest.update(f"{name}:{info['hash']}:{info['rows']};".encode())
    return {"digest": digest.hexdigest(), "engine": "spark", **out}


def _iso(ns: int | None) -> str | None:
    """ISO-8601 UTC of an int64 ns timestamp (None stays None)."""
    import pandas as pd

    return None if ns is None else pd.Timestamp(int(ns), tz="UTC").isoformat()


def to_local(frame: Any, table: str) -> Any:
    """A collected typed Spark table (pandas) in the local loader's dtypes (UTC times, lists)."""
    import numpy as np
    import pandas as pd

    out = frame.copy()
    for spec in SCHEMAS[table].columns:
        values = out[spec.name]
        if spec.kind == "ts":
            ns = pd.Series(pd.array(values, dtype="Int64"), index=out.index)
            out[spec.name] = pd.to_datetime(ns, unit="ns", utc=True)
        elif spec.kind == "list":
            out[spec.name] = [[] if v is None else [str(x) for x in v] for v in values]
        elif spec.kind == "int":
            out[spec.name] = pd.array(values, dtype="Int64" if spec.nullable else "int64")
        elif spec.kind == "float":
            out[spec.name] = values.astype(np.float64)
        elif spec.event_id:
            out[spec.name] = values.astype(EVENT_ID_DTYPE)
        else:
            out[spec.name] = values.astype(object)
    return out


def collect_table(frame: Any, table: str) -> Any:
    """A typed Spark table collected to the driver in the local loader's dtypes (small tables)."""
    return to_local(frame.toPandas(), table)
