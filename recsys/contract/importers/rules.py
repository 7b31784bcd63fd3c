"""Line-level quarantine rules of the Online Retail importer (see docs/real-data.md).

Each line gets the first reason whose rule it breaks, in the order of `LINE_RULES`; lines that
break none are purchases (positive quantity) or returns (`C` invoices) and go on to matching.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

from recsys.contract.importers.source import LogColumns as L


class Reason:
    """Quarantine reason codes, as written in the `reason_code` column."""

    INVALID_VALUE = "invalid_value"
    NON_PRODUCT_CODE = "non_product_code"
    STOCK_ADJUSTMENT = "stock_adjustment"
    POSITIVE_RETURN_QTY = "positive_return_qty"
    MISSING_BUYER = "missing_buyer"
    NONPOSITIVE_PRICE = "nonpositive_price"
    DUPLICATE_LINE = "duplicate_line"
    UNMATCHED_RETURN = "unmatched_return"
    PARTLY_UNMATCHED_RETURN = "partly_unmatched_return"


REASON_TEXT: dict[str, str] = {
    Reason.INVALID_VALUE: "missing invoice, stock code or price, unreadable date, or a quantity "
    "that is missing, zero or not whole",
    Reason.NON_PRODUCT_CODE: "stock code is not a product (postage, fees, manual entries, "
    "adjustments, test products or gift vouchers)",
    Reason.STOCK_ADJUSTMENT: "negative quantity outside a C invoice: a stock adjustment, "
    "not a customer return",
    Reason.POSITIVE_RETURN_QTY: "positive quantity on a C (cancellation) invoice",
    Reason.MISSING_BUYER: "no customer id",
    Reason.NONPOSITIVE_PRICE: "unit price is zero or negative",
    Reason.DUPLICATE_LINE: "exact duplicate of an earlier line (the first is kept)",
    Reason.UNMATCHED_RETURN: "return with no earlier purchase of this product by this buyer "
    "that still has unreturned quantity",
    Reason.PARTLY_UNMATCHED_RETURN: "part of a return exceeding what this buyer bought earlier "
    "and had not yet returned",
}

# A stock code is not a product when it has no digit (POST, DOT, M, D, S, B, PADS, CRUK,
# BANK CHARGES, AMAZONFEE, ADJUST, ...), is one letter and one or two digits (carriage: C2, C3),
# or starts with TEST (test products), ADJUST (manual adjustments) or GIFT_ (gift vouchers).
NON_PRODUCT_PATTERN = re.compile(r"^(?:\D*|[A-Z]\d{1,2}|TEST.*|ADJUST.*|GIFT_.*)$")


def is_non_product_code(codes: pd.Series) -> pd.Series:
    """Whether each upper-cased stock code names something other than a product."""
    uniques = pd.Series(codes.dropna().unique())
    flagged = {code for code in uniques if NON_PRODUCT_PATTERN.match(code)}
    return codes.isin(flagged)


def line_reasons(log: pd.DataFrame, raw: pd.DataFrame) -> pd.Series:
    """The quarantine reason code of each line of `log` (parsed) / `raw` (as read), or None.

    Rules, first match wins: invalid value, non-product code, stock adjustment, positive
    quantity on a return invoice, missing buyer, non-positive price (purchases only: a return
    carries the price of the purchase it returns), duplicate line.
    """
    qty = log[L.QUANTITY]
    is_return = log[L.IS_RETURN]
    invalid = (
        log[L.INVOICE].isna()
        | log[L.STOCK_CODE].isna()
        | log[L.TS].isna()
        | qty.isna()
        | log[L.PRICE].isna()
        | (qty == 0)
        | (qty != np.round(qty))
    )
    price = log[L.PRICE]
    rules: list[tuple[str, pd.Series]] = [
        (Reason.INVALID_VALUE, invalid),
        (Reason.NON_PRODUCT_CODE, is_non_product_code(log[L.STOCK_CODE])),
        (Reason.STOCK_ADJUSTMENT, (qty < 0) & ~is_return),
        (Reason.POSITIVE_RETURN_QTY, (qty > 0) & is_return),
        (Reason.MISSING_BUYER, log[L.BUYER].isna()),
        (Reason.NONPOSITIVE_PRICE, ~is_return & ~(price > 0)),
        # Exact duplicate of all eight source values as read; the first occurrence is kept.
        (Reason.DUPLICATE_LINE, pd.Series(raw.duplicated(keep="first").to_numpy(), log.index)),
    ]
    reason = pd.Series(None, index=log.index, dtype=object)
    for code, mask in rules:
        reason = reason.mask(reason.isna() & mask.fillna(False).astype(bool), code)
    return reason
