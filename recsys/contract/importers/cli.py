"""The `recsys import` commands: turn real logs into a contract data directory."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer

if TYPE_CHECKING:
    from rich.console import Console

    from recsys.contract.importers.online_retail import ImportReport

import_app = typer.Typer(
    name="import",
    help="Import a real log into the data contract (tables + quarantine of what cannot be used).",
    no_args_is_help=True,
    add_completion=False,
)


def render_report(report: ImportReport, console: Console) -> None:
    """Print what an import read, wrote and quarantined, and whether every line is accounted."""
    from rich.table import Table

    console.print(f"Imported {report.source} into {report.out_dir}", highlight=False)
    tables = Table()
    tables.add_column("table")
    tables.add_column("rows", justify="right")
    for name, n in report.table_rows.items():
        tables.add_row(name, f"{n:,}")
    console.print(tables)

    categories = Table()
    categories.add_column("sku category")
    categories.add_column("skus", justify="right")
    n_skus = max(sum(report.categories.values()), 1)
    for name, n in report.categories.items():
        categories.add_row(name, f"{n:,} ({n / n_skus:.0%})")
    console.print(categories)

    lines = Table()
    lines.add_column("source lines")
    lines.add_column("lines", justify="right")
    lines.add_row("read", f"{report.rows_read:,}")
    lines.add_row("purchase lines", f"{report.purchase_lines:,}")
    lines.add_row("return lines (matched at least in part)", f"{report.return_lines:,}")
    for code, n in report.quarantined_lines.items():
        lines.add_row(f"quarantined: {code}", f"{n:,}")
    console.print(lines)
    if report.partly_unmatched_lines:
        console.print(
            f"{report.partly_unmatched_lines:,} return lines were matched only in part; their "
            "unmatched rest is in the quarantine file as partly_unmatched_return."
        )
    balanced = report.lines_accounted == report.rows_read
    mark = "[green]OK[/green]" if balanced else "[red]MISMATCH[/red]"
    console.print(
        f"{mark} read {report.rows_read:,} = {report.purchase_lines:,} purchase + "
        f"{report.return_lines:,} return + {sum(report.quarantined_lines.values()):,} "
        f"quarantined lines ({report.seconds:.1f} s); quarantined lines: {report.quarantine_path}",
        highlight=False,
    )


@import_app.command("online-retail")
def online_retail(
    file: Path = typer.Argument(
        ..., help="The UCI Online Retail (II) log: .parquet, .csv or .xlsx (needs openpyxl)."
    ),
    out: Path = typer.Option(..., "--out", help="Data directory to write the tables into."),
    sheet: str = typer.Option("0", "--sheet", help="xlsx only: sheet name or 0-based index."),
) -> None:
    """Import the Online Retail (II) log: buyers become agents and customers, C invoices returns."""
    from rich.console import Console

    from recsys.contract.importers.online_retail import import_online_retail
    from recsys.exceptions import RecsysError

    try:
        report = import_online_retail(file, out, sheet=int(sheet) if sheet.isdigit() else sheet)
    except (RecsysError, ValueError, OSError) as exc:
        Console(stderr=True, soft_wrap=True).print(f"[red]error:[/red] {exc}", highlight=False)
        raise typer.Exit(code=2) from None
    render_report(report, Console())


def register(app: typer.Typer) -> None:
    """Add this area's commands (`recsys import ...`) to the `recsys` app."""
    app.add_typer(import_app, name="import")
