"""Reading the UCI Online Retail (II) log from Parquet, CSV or xlsx into typed columns.

Both namings of the source are accepted (`Invoice`/`InvoiceNo`, `Price`/`UnitPrice`,
`Customer ID`/`CustomerID`); names are matched ignoring case, spaces and underscores.
"""

from __future__ import annotations

import importlib.util
import re
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

from recsys.exceptions import SchemaError

SOURCE_TZ = "Europe/London"
UNKNOWN_COUNTRY = "Unspecified"
# Tried in this order; the one that parses the most rows is used for the whole column.
DATE_FORMATS: tuple[str, ...] = (
    "%Y-%m-%d %H:%M:%S",
    "%Y-%m-%d %H:%M",
    "%m/%d/%Y %H:%M",
    "%d/%m/%Y %H:%M",
    "%m/%d/%Y %H:%M:%S",
    "%d/%m/%Y %H:%M:%S",
)


class RetailColumns:
    """Canonical names of the source columns (the Online Retail II spelling)."""

    INVOICE = "Invoice"
    STOCK_CODE = "StockCode"
    DESCRIPTION = "Description"
    QUANTITY = "Quantity"
    INVOICE_DATE = "InvoiceDate"
    PRICE = "Price"
    CUSTOMER_ID = "Customer ID"
    COUNTRY = "Country"

    ALL: tuple[str, ...] = (
        INVOICE,
        STOCK_CODE,
        DESCRIPTION,
        QUANTITY,
        INVOICE_DATE,
        PRICE,
        CUSTOMER_ID,
        COUNTRY,
    )
    # Other spellings seen in the older "Online Retail" release of the same source.
    ALIASES: dict[str, str] = {
        "InvoiceNo": INVOICE,
        "UnitPrice": PRICE,
        "CustomerID": CUSTOMER_ID,
    }


class LogColumns:
    """Names of the typed working columns produced by `parse_log`."""

    ROW = "source_row"
    LINE_NO = "line_no"
    INVOICE = "invoice"
    STOCK_CODE = "stock_code"
    DESCRIPTION = "description"
    QUANTITY = "quantity"
    TS = "ts"
    PRICE = "price"
    BUYER = "buyer"
    COUNTRY = "country"
    IS_RETURN = "is_return"


def _key(name: str) -> str:
    return re.sub(r"[\s_]", "", str(name)).lower()


def canonical_columns(frame: pd.DataFrame, path: Path | str = "<frame>") -> pd.DataFrame:
    """The eight source columns under their canonical names, in canonical order.

    Raises
    ------
    SchemaError
        If a column is missing (naming every one and its accepted spellings) or present twice.
    """
    wanted = {_key(c): c for c in RetailColumns.ALL}
    wanted.update({_key(alias): c for alias, c in RetailColumns.ALIASES.items()})
    found: dict[str, str] = {}
    for col in frame.columns:
        canonical = wanted.get(_key(col))
        if canonical is None:
            continue
        if canonical in found:
            raise SchemaError(
                f"{path}: column {canonical!r} appears twice (as {found[canonical]!r} and {col!r})",
                path=str(path),
                column=canonical,
            )
        found[canonical] = col
    missing = [c for c in RetailColumns.ALL if c not in found]
    if missing:
        spellings = {v: k for k, v in RetailColumns.ALIASES.items()}
        named = [f"{c!r} (or {spellings[c]!r})" if c in spellings else repr(c) for c in missing]
        raise SchemaError(
            f"{path}: missing column(s) {', '.join(named)}; "
            f"found: {', '.join(map(repr, frame.columns))}",
            path=str(path),
            column=missing[0],
        )
    out = frame[[found[c] for c in RetailColumns.ALL]]
    out.columns = list(RetailColumns.ALL)
    return out.reset_index(drop=True)


def read_log(path: Path | str, sheet: int | str = 0) -> pd.DataFrame:
    """Read the raw log (`.parquet`, `.csv` or `.xlsx`) with its columns under canonical names.

    Raises
    ------
    SchemaError
        If the file is missing, of an unsupported kind, unreadable, or lacks a column.
    """
    path = Path(path)
    if not path.is_file():
        raise SchemaError(f"path {str(path)!r} is not a file", path=str(path))
    suffix = path.suffix.lower()
    try:
        if suffix == ".parquet":
            frame = pd.read_parquet(path)
        elif suffix == ".csv":
            frame = _read_csv(path)
        elif suffix == ".xlsx":
            if importlib.util.find_spec("openpyxl") is None:
                raise SchemaError(
                    f"reading {path.name} needs the package openpyxl, which is not installed "
                    "(pip install openpyxl), or convert the sheet to CSV or Parquet first",
                    path=str(path),
                )
            frame = pd.read_excel(path, sheet_name=sheet, dtype=object)
        else:
            raise SchemaError(
                f"path {str(path)!r}: unsupported suffix {path.suffix!r} "
                "(expected .parquet, .csv or .xlsx)",
                path=str(path),
            )
    except (OSError, ValueError) as exc:
        raise SchemaError(f"cannot read {path}: {exc}", path=str(path)) from exc
    return canonical_columns(frame, path)


def _read_csv(path: Path) -> pd.DataFrame:
    # Text only, so stock codes and ids keep their spelling; the older release is Latin-1.
    try:
        return pd.read_csv(path, dtype=str, keep_default_na=False, na_values=[""])
    except UnicodeDecodeError:
        return pd.read_csv(
            path, dtype=str, keep_default_na=False, na_values=[""], encoding="latin-1"
        )


def _id_of(value: object) -> str | None:
    """One id as text: floats without ".0" (13085.0 -> "13085"), text stripped; None if missing."""
    if value is None or value is pd.NA:
        return None
    if isinstance(value, float | np.floating):
        if np.isnan(value):
            return None
        if float(value).is_integer():
            return str(int(value))
    if isinstance(value, int | np.integer):
        return str(int(value))
    text = re.sub(r"\.0+$", "", str(value).strip())
    return None if text in ("", "nan", "NaN", "None") else text


def _text_of(value: object) -> str | None:
    """Free text stripped; None if missing or blank."""
    if value is None or value is pd.NA or (isinstance(value, float) and np.isnan(value)):
        return None
    text = str(value).strip()
    return text or None


def map_unique(values: pd.Series, func: Callable[[object], object]) -> pd.Series:
    """`func` applied once per distinct value (logs repeat few values over many rows)."""
    codes, uniques = pd.factorize(values, use_na_sentinel=True)
    # Missing values get code -1, which picks the last entry: func(None).
    mapped = np.array([func(v) for v in uniques] + [func(None)], dtype=object)
    return pd.Series(mapped[codes], index=values.index, dtype=object)


def id_text(values: pd.Series) -> pd.Series:
    """Ids as stripped text without a float's `.0` (13085.0 -> "13085"); missing ones are None."""
    return map_unique(values, _id_of)


def parse_times(values: pd.Series) -> pd.Series:
    """Invoice times as UTC, reading naive times as UK local time; unparseable ones are NaT.

    Times in the repeated autumn hour are read as the first (summer-time) occurrence and times
    in the skipped spring hour are moved forward; the shop's log has neither (it trades by day).
    """
    if isinstance(values.dtype, pd.DatetimeTZDtype):
        return values.dt.tz_convert("UTC")
    if pd.api.types.is_datetime64_dtype(values):
        local = values
    else:
        # Invoices share a time, so parse each distinct text once.
        codes, uniques = pd.factorize(values.astype(object).where(values.notna(), None))
        texts = pd.Series(uniques, dtype=object).astype(str).str.strip()
        best = pd.to_datetime(texts, format=DATE_FORMATS[0], errors="coerce")
        for fmt in DATE_FORMATS[1:]:
            if best.notna().all():
                break
            parsed = pd.to_datetime(texts, format=fmt, errors="coerce")
            if parsed.notna().sum() > best.notna().sum():
                best = parsed
        local_uniques = best.to_numpy()
        local = pd.Series(
            np.where(codes >= 0, local_uniques[np.maximum(codes, 0)], np.datetime64("NaT")),
            index=values.index,
            dtype="datetime64[ns]",
        )
    ambiguous = np.ones(len(local), dtype=bool)
    utc = local.dt.tz_localize(SOURCE_TZ, ambiguous=ambiguous, nonexistent="shift_forward")
    return utc.dt.tz_convert("UTC")


def parse_log(raw: pd.DataFrame) -> pd.DataFrame:
    """Typed working columns (see `LogColumns`) of a raw log with canonical column names."""
    R, L = RetailColumns, LogColumns
    invoice = id_text(raw[R.INVOICE])
    stock_code = map_unique(raw[R.STOCK_CODE], lambda v: (_id_of(v) or "").upper() or None)
    country = map_unique(raw[R.COUNTRY], lambda v: _text_of(v) or UNKNOWN_COUNTRY)
    invoice_codes = pd.factorize(invoice, use_na_sentinel=False)[0]
    return pd.DataFrame(
        {
            L.ROW: np.arange(1, len(raw) + 1, dtype=np.int64),
            # 1-based position of the line within its invoice, counting every line of the file.
            L.LINE_NO: pd.Series(invoice_codes).groupby(invoice_codes).cumcount().to_numpy() + 1,
            L.INVOICE: invoice,
            L.STOCK_CODE: stock_code,
            L.DESCRIPTION: map_unique(raw[R.DESCRIPTION], _text_of),
            L.QUANTITY: pd.to_numeric(raw[R.QUANTITY], errors="coerce").astype(float),
            L.TS: parse_times(raw[R.INVOICE_DATE]),
            L.PRICE: pd.to_numeric(raw[R.PRICE], errors="coerce").astype(float),
            L.BUYER: id_text(raw[R.CUSTOMER_ID]),
            L.COUNTRY: country,
            L.IS_RETURN: map_unique(invoice, lambda v: str(v or "").upper().startswith("C")).astype(
                bool
            ),
        }
    )
