"""Console output shared by the CLI commands: rich tables on stdout, errors on stderr."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import NoReturn

import typer
from rich.console import Console

console = Console()
err_console = Console(stderr=True)


def fail(message: str, code: int = 1) -> NoReturn:
    """Print `message` in red on stderr and exit with `code` (no traceback)."""
    err_console.print(f"[bold red]error:[/] {message}", highlight=False)
    raise typer.Exit(code)


@contextmanager
def user_errors(code: int = 1, extra: tuple[type[BaseException], ...] = ()) -> Iterator[None]:
    """Turn the project's own errors and bad-input errors into a message and an exit code."""
    from recsys.exceptions import RecsysError, SchemaError

    try:
        yield
    except SchemaError as exc:
        fail(str(exc), 2)
    except (RecsysError, ValueError, KeyError, FileNotFoundError, *extra) as exc:
        fail(str(exc).strip("'\""), code)


def progress_columns() -> list[Callable[..., object]]:
    """Columns of the project's progress bars (description, bar, counts, time)."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    return [
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    ]
