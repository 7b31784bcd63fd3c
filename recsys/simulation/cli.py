"""`recsys simulate`: write a simulated data directory with its ground truth."""

from __future__ import annotations

import json
from enum import StrEnum
from pathlib import Path
from typing import Any

import typer


class ScaleChoice(StrEnum):
    """Preset sizes (about 20k, 300k, 5M and 50M purchase lines)."""

    tiny = "tiny"
    small = "small"
    medium = "medium"
    large = "large"


class FormatChoice(StrEnum):
    """File format of the written tables."""

    parquet = "parquet"
    csv = "csv"


def parse_overrides(items: list[str]) -> dict[str, Any]:
    """`KEY=VALUE` strings to a dict; values are read as JSON when they parse, else as text.

    Raises
    ------
    typer.BadParameter
        If an item has no `=`.
    """
    overrides: dict[str, Any] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise typer.BadParameter(f"--set expects KEY=VALUE, got {item!r}")
        try:
            value = json.loads(raw)
        except json.JSONDecodeError:
            value = raw
        overrides[key.strip()] = tuple(value) if isinstance(value, list) else value
    return overrides


def register(app: typer.Typer) -> None:
    """Add this area's commands to the `recsys` app."""

    @app.command("simulate")
    def simulate_command(
        out: Path = typer.Option(..., "--out", help="Data directory to write (created if absent)."),
        scale: ScaleChoice = typer.Option(ScaleChoice.small, "--scale", help="Preset size."),
        seed: int = typer.Option(0, "--seed", help="Random seed: same seed, same bytes."),
        fmt: FormatChoice = typer.Option(FormatChoice.parquet, "--format", help="Table format."),
        overrides: list[str] = typer.Option(
            [],
            "--set",
            help="Override a SimConfig field, KEY=VALUE (JSON values; repeatable), "
            "e.g. --set n_days=60 --set incident_return_rate=[0.4,0.6].",
        ),
        overwrite: bool = typer.Option(
            False, "--overwrite", help="Replace the tables and truth/ of a previous run in OUT."
        ),
        quiet: bool = typer.Option(False, "--quiet", help="No progress bar and no summary."),
    ) -> None:
        """Simulate agents, customers and SKUs and write the six tables plus truth/.

        truth/ holds the ground truth: evaluation may read it, training code never.
        """
        from recsys.simulation.config import SimConfig
        from recsys.simulation.simulate import existing_outputs, write_simulation

        try:
            config = SimConfig.preset(scale.value, **parse_overrides(overrides))
        except (TypeError, ValueError) as exc:
            raise typer.BadParameter(str(exc), param_hint="--set") from exc
        previous = existing_outputs(out)
        if previous and not overwrite:
            names = ", ".join(p.name for p in previous)
            typer.echo(f"error: --out {out} already holds {names}; pass --overwrite", err=True)
            raise typer.Exit(code=1)
        summary = write_simulation(
            config, seed, out, fmt=fmt.value, progress=not quiet, overwrite=overwrite
        )
        if quiet:
            return
        from rich.console import Console
        from rich.table import Table

        typer.echo(f"simulated {scale.value} (seed {seed}) into {out}")
        table = Table()
        table.add_column("table")
        table.add_column("rows", justify="right")
        for name, rows in summary.rows.items():
            table.add_row(name, f"{rows:,}")
        Console().print(table)
        typer.echo(f"done in {summary.seconds:.1f} s; ground truth in {out / 'truth'}")
