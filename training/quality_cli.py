"""`recsys quality-check` and `recsys suspensions list|lift`: the quality circuit breaker's jobs."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any

import typer

from recsys.console import console, user_errors

suspensions_app = typer.Typer(help="SKUs suspended for quality (the Redis hash serving reads).")
RedisUrl = Annotated[str | None, typer.Option(help="Redis URL (default: $REDIS_URL).")]


def quality_check(
    data: Annotated[Path, typer.Option(help="Data directory (the six contract tables).")],
    redis_url: Annotated[
        str | None,
        typer.Option(
            help="Redis to write suspensions to (default: $REDIS_URL; none = print only)."
        ),
    ] = None,
    at: Annotated[
        str | None, typer.Option(help="Check as of this time (ISO-8601; default: end of the log).")
    ] = None,
    window_days: Annotated[float, typer.Option(help="Days of purchases per SKU.")] = 14.0,
    history_days: Annotated[float, typer.Option(help="Days behind the category rate.")] = 90.0,
    margin: Annotated[float, typer.Option(help="Suspend above category rate × margin.")] = 2.0,
    confidence: Annotated[float, typer.Option(help="Confidence of the lower bound.")] = 0.99,
    method: Annotated[str, typer.Option(help="Lower bound: beta or wilson.")] = "beta",
    min_units: Annotated[int, typer.Option(help="Units a SKU must have sold.")] = 10,
    min_fault_returns: Annotated[int, typer.Option(help="Fault returns it must have.")] = 4,
    include_damaged: Annotated[
        bool, typer.Option(help="Count `damaged` returns as the product's fault too.")
    ] = False,
    dry_run: Annotated[bool, typer.Option(help="Print the suspensions, write nothing.")] = False,
) -> None:
    """Suspend SKUs whose fault returns rise above their category's level (written to Redis)."""
    from recsys.contract.loader import load_tables
    from recsys.quality.breaker import BreakerConfig, QualityLog, check_quality, suspensions
    from recsys.quality.store import read_lifts, write_suspensions
    from training.publish_cli import connect_redis

    with user_errors():
        if not data.exists():
            raise FileNotFoundError(f"data directory not found: {data}")
        config = BreakerConfig(
            window_days=window_days,
            history_days=history_days,
            margin=margin,
            confidence=confidence,
            method=method,  # type: ignore[arg-type]
            min_units=min_units,
            min_fault_returns=min_fault_returns,
            include_damaged=include_damaged,
        )
        url = redis_url or os.environ.get("REDIS_URL")
        client = connect_redis(url) if url and not dry_run else None
        tables = load_tables(data, on_quarantine="warn")
        log = QualityLog.from_tables(tables, config.fault_reasons)
        lifted = read_lifts(client) if client is not None else None
        checked = check_quality(log, at, config, lifted=lifted)
        found = suspensions(checked)
        new, old = write_suspensions(client, found, config) if client is not None else ([], [])
    _print_suspensions(found, set(new))
    when = checked["window_end"].iloc[0] if len(checked) else (at or "the end of the log")
    console.print(
        f"checked {len(checked)} SKUs sold in the {window_days:g} days before {when}: "
        f"{len(found)} over the bar"
    )
    if client is None:
        console.print("nothing written (dry run, or no --redis-url / REDIS_URL)")
    else:
        console.print(f"suspended {len(new)} new SKUs; {len(old)} were already suspended")


def _print_suspensions(found: Any, new: set[str]) -> None:
    from rich.table import Table

    from recsys.columns import Columns

    table = Table(title="quality suspensions")
    for name in ("sku", "category", "units", "fault returns", "rate", "bound", "category rate"):
        table.add_column(name, justify="left" if name in ("sku", "category") else "right")
    table.add_column("new")
    for row in found.to_dict("records"):
        sku = str(row[Columns.SKU_ID])
        table.add_row(
            sku,
            str(row[Columns.CATEGORY]),
            str(row["units"]),
            str(row["fault_returns"]),
            f"{row['rate']:.1%}",
            f"{row['bound']:.1%}",
            f"{row['category_rate']:.1%}",
            "yes" if sku in new else "",
        )
    console.print(table)


@suspensions_app.command("list")
def list_suspensions(redis_url: RedisUrl = None) -> None:
    """Every suspended SKU with why (its numbers) and when."""
    from rich.table import Table

    from recsys.quality.store import read_suspensions
    from training.publish_cli import connect_redis

    with user_errors():
        records = read_suspensions(connect_redis(redis_url))
    table = Table(title=f"{len(records)} suspended SKUs")
    for name in ("sku", "by", "detected at", "reason"):
        table.add_column(name)
    for sku, rec in sorted(records.items()):
        when = rec.get("detected_at", rec.get("suspended_at", rec.get("at", "")))
        table.add_row(sku, str(rec.get("by", "")), str(when), str(rec.get("reason", "")))
    console.print(table)


@suspensions_app.command("lift")
def lift(
    sku_id: Annotated[str, typer.Argument(help="The SKU to serve again.")],
    redis_url: RedisUrl = None,
    by: Annotated[str, typer.Option(help="Who lifts it (kept with the lift).")] = "admin",
) -> None:
    """Serve a suspended SKU again (the breaker re-suspends only on evidence after the lift)."""
    from recsys.quality.store import lift_suspension
    from training.publish_cli import connect_redis

    with user_errors():
        lifted = lift_suspension(connect_redis(redis_url), sku_id, by=by)
    if lifted:
        console.print(f"[green]lifted[/] the suspension of {sku_id}")
    else:
        console.print(f"{sku_id} was not suspended (the lift is recorded anyway)")


def register(app: typer.Typer) -> None:
    """Add `quality-check` and `suspensions list|lift` to the `recsys` app."""
    app.command("quality-check")(quality_check)
    app.add_typer(suspensions_app, name="suspensions")
