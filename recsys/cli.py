"""The `recsys` command line: one entry point that fronts every job.

Each area owns its commands in its own `cli` module with a `register(app)` function; this module
only composes them. Command modules import heavy libraries inside the commands, so `--help` is fast.
"""

from __future__ import annotations

import importlib

import typer

app = typer.Typer(
    name="recsys",
    help="Sell-with-confidence recommendations for social e-commerce: "
    "simulate or import logs, validate, train, publish to Redis, serve, report.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

COMMAND_MODULES: tuple[str, ...] = (
    "recsys.simulation.cli",
    "recsys.contract.cli",
    "recsys.contract.importers.cli",
    "training.cli",
    "training.publish_cli",
    "training.quality_cli",
    "training.ab_report_cli",
    "training.sink_cli",
    "training.simulate_ab_cli",
    "serving.cli",
)

for _name in COMMAND_MODULES:
    importlib.import_module(_name).register(app)

# Long-running services keep the allocator's default (they give memory back to the system).
SERVICE_COMMANDS = frozenset({"serve", "sink"})


@app.callback()
def _batch_setup(ctx: typer.Context) -> None:
    """Sell-with-confidence recommendations for social e-commerce."""
    if ctx.invoked_subcommand not in SERVICE_COMMANDS:
        from recsys.allocator import reuse_freed_memory

        reuse_freed_memory()


def main() -> None:
    """Run the CLI."""
    app()


if __name__ == "__main__":
    main()
