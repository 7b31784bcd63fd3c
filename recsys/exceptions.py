"""Exceptions raised by the library, each naming what went wrong and where."""

from __future__ import annotations


class RecsysError(Exception):
    """Base class of the project's own errors."""


class SchemaError(RecsysError):
    """A file is unreadable or lacks a required column (validation exit code 2)."""

    def __init__(self, message: str, *, path: str | None = None, column: str | None = None):
        super().__init__(message)
        self.path = path
        self.column = column


class NotFittedError(RecsysError, ValueError):
    """A model was used before `fit` was called."""


class ModelFitError(RecsysError):
    """Fitting produced an unusable model (e.g. NaN factors)."""


class EmptyDataError(RecsysError, ValueError):
    """There is nothing to train or evaluate on (no rows, or no interactions for the target)."""
