"""A handmade Online Retail II log that exercises every import rule, with its expected outputs."""

from __future__ import annotations

import numpy as np
import pandas as pd

HEART_W = "WHITE HANGING HEART T-LIGHT HOLDER"
HEART_R = "RED HANGING HEART T-LIGHT HOLDER"
CAKESTAND = "REGENCY CAKESTAND 3 TIER"
BIRD = "ASSORTED COLOUR BIRD ORNAMENT"
UK = "United Kingdom"

# (Invoice, StockCode, Description, Quantity, InvoiceDate, Price, Customer ID, Country);
# the comment says what each source row (1-based) must become.
ROWS: list[tuple[object, ...]] = [
    ("500001", "85123A", HEART_W, 6, "2010-03-01 10:00:00", 2.55, 100.0, UK),  # 1 purchase
    ("500001", "22423", CAKESTAND, 2, "2010-03-01 10:00:00", 12.75, 100.0, UK),  # 2 purchase
    ("500001", "POST", "POSTAGE", 1, "2010-03-01 10:00:00", 18.0, 100.0, UK),  # 3 non-product
    ("500002", "85123A", HEART_W, 4, "2010-03-26 12:00:00", 2.95, 100.0, UK),  # 4 GMT purchase
    ("500003", "85123B", HEART_R, 3, "2010-03-29 12:00:00", 2.95, 200.0, "France"),  # 5 BST
    ("C500004", "85123A", HEART_W, -5, "2010-04-01 09:00:00", 2.95, 100.0, UK),  # 6 split 4 + 1
    ("C500004", "22423", CAKESTAND, -1, "2010-04-01 09:00:00", 12.75, 100.0, UK),  # 7 return
    ("C500005", "85123A", HEART_W, -10, "2010-04-02 10:00:00", 2.55, 100.0, UK),  # 8 5 of 10
    ("C500006", "85123B", HEART_R, -1, "2010-03-20 10:00:00", 2.95, 200.0, "France"),  # 9 early
    ("500007", "84879", "damaged", -12, "2010-03-02 10:00:00", 0.0, np.nan, UK),  # 10 adjustment
    ("500008", "84879", BIRD, 8, "2010-03-02 11:00:00", 1.69, np.nan, UK),  # 11 no buyer
    ("500009", "22423", CAKESTAND, 1, "2010-03-03 10:00:00", 0.0, 300.0, UK),  # 12 zero price
    ("500010", "84879", BIRD, 8, "2010-10-30 12:00:00", 1.69, 300.0, UK),  # 13 BST purchase
    ("500010", "84879", BIRD, 8, "2010-10-30 12:00:00", 1.69, 300.0, UK),  # 14 duplicate
    ("500011", "84879", BIRD, 8, "2010-11-01 12:00:00", 1.69, 300.0, UK),  # 15 GMT purchase
    ("500011", "85123a", HEART_W, 1, "2010-11-01 12:00:00", 2.55, 300.0, "Germany"),  # 16 case
    ("C500013", "22423", CAKESTAND, 1, "2010-11-02 10:00:00", 12.75, 300.0, UK),  # 17 C, qty>0
    ("500014", None, "mystery", 2, "2010-11-02 10:00:00", 1.0, 300.0, UK),  # 18 no stock code
]
COLUMNS_II = [
    "Invoice",
    "StockCode",
    "Description",
    "Quantity",
    "InvoiceDate",
    "Price",
    "Customer ID",
    "Country",
]
# The older release's spelling of the same columns.
COLUMNS_I = ["InvoiceNo", "StockCode", "Description", "Quantity", "InvoiceDate", "UnitPrice",
             "CustomerID", "Country"]  # fmt: skip

EXPECTED_QUARANTINE: list[tuple[int, str, int]] = [  # (source row, reason code, quantity)
    (3, "non_product_code", 1),
    (8, "partly_unmatched_return", -5),
    (9, "unmatched_return", -1),
    (10, "stock_adjustment", -12),
    (11, "missing_buyer", 8),
    (12, "nonpositive_price", 1),
    (14, "duplicate_line", 8),
    (17, "positive_return_qty", 1),
    (18, "invalid_value", 2),
]


def sample_log(columns: list[str] = COLUMNS_II) -> pd.DataFrame:
    """The handmade log, under the given column names."""
    return pd.DataFrame(ROWS, columns=columns)
