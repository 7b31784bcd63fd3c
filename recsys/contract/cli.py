"""`recsys validate`: check a data directory against the contract and quarantine bad rows."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer

if TYPE_CHECKING:
    from rich.console import Console

    from recsys.contract.validate import ValidationResult

EXIT_CLEAN, EXIT_QUARANTINED, EXIT_UNREADABLE = 0, 1, 2
EPILOG = (
    "Exit codes: 0 every row kept; 1 rows quarantined; 2 a table missing or unreadable, or a "
    "required column missing. See docs/data-contract.md."
)


def _print_summary(console: Console, result: ValidationResult) -> None:
    """Rows read / kept / quarantined per table, then quarantined rows per reason."""
    from rich.markup import escape
    from rich.table import Table

    summary = result.summary()
    per_table = Table(title="Rows per table")
    for name in ("table", "read", "kept", "quarantined"):
        per_table.add_column(name, justify="left" if name == "table" else "right")
    for row in summary.itertuples(index=False):
        style = "red" if row.quarantined else ""
        per_table.add_row(
            row.table, f"{row.read:,}", f"{row.kept:,}", f"{row.quarantined:,}", style=style
        )
    console.print(per_table)
    if result.quarantine.empty:
        return
    per_reason = Table(title="Quarantined rows per reason")
    per_reason.add_column("table")
    per_reason.add_column("reason_code")
    per_reason.add_column("rows", justify="right")
    per_reason.add_column("first reason", overflow="fold")
    groups = result.quarantine.groupby(["table", "reason_code"], sort=False)
    for (table, code), rows in groups:
        per_reason.add_row(table, code, f"{len(rows):,}", escape(str(rows["reason"].iat[0])))
    console.print(per_reason)


def validate(
    data_dir: Path = typer.Argument(
        ..., help="Data directory holding skus, agents, customers, shares, purchases, returns."
    ),
    quarantine: Path | None = typer.Option(
        None,
        "--quarantine",
        help="Folder for the quarantine files (one <table>.csv per table with rejected rows). "
        "Default: DATA_DIR/quarantine.",
    ),
    now: str | None = typer.Option(
        None,
        "--now",
        help="ISO-8601 moment timestamps may not pass by more than a day. Default: now.",
    ),
    min_ts: str = typer.Option(
        "2000-01-01", "--min-ts", help="Earliest accepted timestamp (naive values are UTC)."
    ),
) -> None:
    """Check a data directory against the contract; quarantine bad rows, each with a reason."""
    from rich.console import Console
    from rich.markup import escape

    from recsys.contract.validate import validate_dir
    from recsys.exceptions import SchemaError

    console = Console()
    target = quarantine if quarantine is not None else data_dir / "quarantine"
    try:
        result = validate_dir(data_dir, quarantine_dir=target, now=now, min_ts=min_ts)
    except (SchemaError, ValueError) as exc:
        Console(stderr=True).print(f"[bold red]error:[/] {escape(str(exc))}")
        raise typer.Exit(EXIT_UNREADABLE) from None
    except OSError as exc:
        # the quarantine folder could not be written (e.g. a file of that name)
        Console(stderr=True).print(
            f"[bold red]error:[/] cannot write quarantine files to {escape(str(target))}: "
            f"{escape(str(exc))}"
        )
        raise typer.Exit(EXIT_UNREADABLE) from None
    _print_summary(console, result)
    if result.exit_code == EXIT_CLEAN:
        total = sum(result.rows_read.values())
        console.print(f"[green]All {total:,} rows kept; nothing quarantined.[/]")
        raise typer.Exit(EXIT_CLEAN)
    written = ", ".join(
        escape(str(target / f"{t}.csv")) for t in result.rows_read if (result.n_quarantined(t))
    )
    console.print(
        f"[red]{len(result.quarantine):,} rows quarantined[/]; each with its source file, row "
        f"and reason in: {written}"
    )
    raise typer.Exit(EXIT_QUARANTINED)


def register(app: typer.Typer) -> None:
    """Add this area's commands to the `recsys` app."""
    app.command("validate", epilog=EPILOG)(validate)
