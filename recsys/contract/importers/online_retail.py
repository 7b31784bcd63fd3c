"""Import of the UCI Online Retail (II) log into a contract data directory (issue 3, section 5).

Every buyer becomes both an agent and a customer; positive lines become purchases, `C` invoice
lines become returns matched to earlier purchases; everything else is quarantined with a reason,
so that every line read is accounted for. The rules are documented in docs/real-data.md.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from recsys.columns import Columns, Tables
from recsys.contract.importers import returns as ret
from recsys.contract.importers.rules import REASON_TEXT, Reason, line_reasons
from recsys.contract.importers.source import LogColumns as L
from recsys.contract.importers.source import parse_log, read_log
from recsys.contract.importers.tables import (
    build_people,
    build_purchases,
    build_returns,
    build_skus,
    empty_shares,
)
from recsys.contract.io import write_table

C = Columns
QUARANTINE_FILE = Path("quarantine") / "import.csv"


class QuarantineColumns:
    """Columns of `quarantine/import.csv`: where a line is, what it is, and why it was kept out."""

    SOURCE_ROW = "source_row"  # 1-based data row of the source file (header not counted)
    INVOICE = "invoice"
    STOCK_CODE = "stock_code"
    CUSTOMER_ID = "customer_id"
    QUANTITY = "quantity"  # the quantity kept out, signed as in the log
    REASON_CODE = "reason_code"
    REASON = "reason"

    ALL: tuple[str, ...] = (
        SOURCE_ROW,
        INVOICE,
        STOCK_CODE,
        CUSTOMER_ID,
        QUANTITY,
        REASON_CODE,
        REASON,
    )


Q = QuarantineColumns


@dataclass(frozen=True)
class ImportReport:
    """What an import read, wrote and kept out.

    Every line read is exactly one of: a purchase line, a return line (matched at least in
    part) or a quarantined line. A return line matched only in part is a return line; its
    unmatched rest is also listed in the quarantine file (`partly_unmatched_lines`).
    """

    source: Path
    out_dir: Path
    rows_read: int
    purchase_lines: int
    return_lines: int
    quarantined_lines: dict[str, int]
    partly_unmatched_lines: int
    table_rows: dict[str, int]
    categories: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def lines_accounted(self) -> int:
        """Purchase lines + return lines + wholly quarantined lines."""
        return self.purchase_lines + self.return_lines + sum(self.quarantined_lines.values())

    @property
    def quarantine_path(self) -> Path:
        """Where the quarantined lines were written."""
        return self.out_dir / QUARANTINE_FILE


def _check_out_dir(out_dir: Path) -> None:
    """Refuse a directory holding a table in a form other than the Parquet file written here."""
    for table in Tables.ALL:
        for other in (out_dir / f"{table}.csv", out_dir / table):
            if other.exists():
                raise ValueError(
                    f"out_dir {str(out_dir)!r} already holds {other.name!r}; the import writes "
                    f"{table}.parquet and a table may have only one form: use an empty directory"
                )


def _quarantine_frame(
    log: pd.DataFrame, reason: pd.Series, unmatched: pd.DataFrame
) -> pd.DataFrame:
    """Quarantined lines (whole lines and the unmatched rest of partly matched returns)."""
    whole = log[reason.notna()]
    parts = [
        pd.DataFrame(
            {
                Q.SOURCE_ROW: whole[L.ROW].to_numpy(),
                Q.INVOICE: whole[L.INVOICE].to_numpy(),
                Q.STOCK_CODE: whole[L.STOCK_CODE].to_numpy(),
                Q.CUSTOMER_ID: whole[L.BUYER].to_numpy(),
                Q.QUANTITY: whole[L.QUANTITY].to_numpy(),
                Q.REASON_CODE: reason[reason.notna()].to_numpy(),
            }
        )
    ]
    if len(unmatched):
        lines = log.iloc[unmatched[ret.RETURN_POS].to_numpy()]
        partly = unmatched[ret.MATCHED_QTY].to_numpy() > 0
        parts.append(
            pd.DataFrame(
                {
                    Q.SOURCE_ROW: lines[L.ROW].to_numpy(),
                    Q.INVOICE: lines[L.INVOICE].to_numpy(),
                    Q.STOCK_CODE: lines[L.STOCK_CODE].to_numpy(),
                    Q.CUSTOMER_ID: lines[L.BUYER].to_numpy(),
                    Q.QUANTITY: -unmatched[ret.UNMATCHED_QTY].to_numpy().astype(float),
                    Q.REASON_CODE: np.where(
                        partly, Reason.PARTLY_UNMATCHED_RETURN, Reason.UNMATCHED_RETURN
                    ),
                }
            )
        )
    out = pd.concat(parts, ignore_index=True).sort_values(Q.SOURCE_ROW, kind="stable")
    out[Q.QUANTITY] = out[Q.QUANTITY].astype("Int64")
    out[Q.REASON] = out[Q.REASON_CODE].map(REASON_TEXT)
    return out.reset_index(drop=True)[list(Q.ALL)]


def import_online_retail(
    path: Path | str, out_dir: Path | str, sheet: int | str = 0
) -> ImportReport:
    """Import an Online Retail (II) log into contract tables in `out_dir`.

    Writes `skus`, `agents`, `customers`, `shares` (empty), `purchases` and `returns` as Parquet
    and the kept-out lines to `quarantine/import.csv`; `sheet` picks the sheet of an xlsx file.

    Raises
    ------
    SchemaError
        If the file is missing, unreadable or lacks a column.
    ValueError
        If `out_dir` already holds a table in another form (CSV file or folder).
    """
    started = time.perf_counter()
    path, out_dir = Path(path), Path(out_dir)
    _check_out_dir(out_dir)
    raw = read_log(path, sheet=sheet)
    log = parse_log(raw)
    reason = line_reasons(log, raw)
    ok = reason.isna().to_numpy()
    is_return = log[L.IS_RETURN].to_numpy()

    lines = log[ok & ~is_return].copy()
    lines[C.PURCHASE_ID] = lines[L.INVOICE] + "-" + lines[L.LINE_NO].astype(str)
    return_pos = np.flatnonzero(ok & is_return)
    return_lines = log.iloc[return_pos]
    match = ret.match_returns(lines, return_lines)

    matched = match.matched
    by_return = return_lines.iloc[matched[ret.RETURN_POS].to_numpy()]
    pieces = pd.DataFrame(
        {
            C.RETURN_ID: (
                by_return[L.INVOICE].to_numpy()
                + "-"
                + by_return[L.LINE_NO].astype(str).to_numpy()
                + "-"
                + matched[ret.PIECE].astype(str).to_numpy()
            ),
            C.TS: by_return[L.TS].array,
            C.PURCHASE_ID: lines[C.PURCHASE_ID].to_numpy()[matched[ret.PURCHASE_POS].to_numpy()],
            C.QTY: matched[ret.MATCHED_QTY].to_numpy(),
            L.ROW: by_return[L.ROW].to_numpy(),
            ret.PIECE: matched[ret.PIECE].to_numpy(),
        }
    ).sort_values([L.ROW, ret.PIECE])  # source order of the return lines, then piece

    unmatched = match.unmatched.assign(
        **{ret.RETURN_POS: return_pos[match.unmatched[ret.RETURN_POS].to_numpy()]}
    )
    quarantine = _quarantine_frame(log, reason, unmatched)

    purchases = build_purchases(lines)
    returns = build_returns(pieces)
    agents, customers = build_people(purchases, returns, lines[L.COUNTRY])
    tables = {
        Tables.SKUS: build_skus(lines),
        Tables.AGENTS: agents,
        Tables.CUSTOMERS: customers,
        Tables.SHARES: empty_shares(),
        Tables.PURCHASES: purchases,
        Tables.RETURNS: returns,
    }
    partly = (quarantine[Q.REASON_CODE] == Reason.PARTLY_UNMATCHED_RETURN).to_numpy()
    _check_accounted(
        len(raw), lines[L.ROW].to_numpy(), pieces[L.ROW].to_numpy(), quarantine, partly
    )

    for name, frame in tables.items():
        write_table(frame, out_dir / f"{name}.parquet", name)
    (out_dir / QUARANTINE_FILE).parent.mkdir(parents=True, exist_ok=True)
    quarantine.to_csv(out_dir / QUARANTINE_FILE, index=False)

    whole = quarantine.loc[~partly, Q.REASON_CODE].value_counts().sort_index()
    return ImportReport(
        source=path,
        out_dir=out_dir,
        rows_read=len(raw),
        purchase_lines=len(purchases),
        return_lines=int(pieces[L.ROW].nunique()),
        quarantined_lines={str(k): int(v) for k, v in whole.items()},
        partly_unmatched_lines=int(partly.sum()),
        table_rows={name: len(frame) for name, frame in tables.items()},
        categories={k: int(v) for k, v in tables[Tables.SKUS][C.CATEGORY].value_counts().items()},
        seconds=time.perf_counter() - started,
    )


def _check_accounted(
    n_read: int,
    purchase_rows: np.ndarray,
    return_rows: np.ndarray,
    quarantine: pd.DataFrame,
    partly: np.ndarray,
) -> None:
    """Check that each source row is exactly one purchase line, return line or quarantined line.

    Raises
    ------
    RuntimeError
        If a row is missing or counted twice; it cannot happen by construction, but an import
        that lost lines must not pass silently.
    """
    rows = np.concatenate(
        [
            purchase_rows,
            np.unique(return_rows),
            quarantine[Q.SOURCE_ROW].to_numpy()[~partly],
        ]
    )
    if len(rows) != n_read or not np.array_equal(np.sort(rows), np.arange(1, n_read + 1)):
        raise RuntimeError(
            f"import lost or double-counted lines: read {n_read}, accounted for {len(rows)} "
            f"({len(np.unique(rows))} distinct)"
        )
