"""Every error the package raises on purpose, under one base class.

``except UrmError`` catches any of them (a refusal of this package, not a bug). Each keeps the
builtin base it always had (``ValueError`` for input that cannot be read or used as given,
``RuntimeError`` for a state of the world: a lock held, a store down), so no ``except ValueError``
or ``except RuntimeError`` changes meaning. Modules raise them from here; each is also reachable
where it used to be defined (``data.validation.DataValidationError``, ``models.ConvergenceError``, ...).
"""

from __future__ import annotations

__all__ = [
    "UrmError",
    "ConventionError",
    "DataValidationError",
    "ErasureLogError",
    "SettingsError",
    "RefreshLocked",
    "DatabaseUnavailable",
    "SparkUnavailable",
    "ConvergenceError",
    "RemoteStore",
    "StoreUnavailable",
    "PublishError",
    "RefreshError",
    "UsageError",
]


class UrmError(Exception):
    """The base of every error of urm-models."""


# data in (data/)
class ConventionError(UrmError, ValueError):
    """A column that cannot be read without guessing a convention; ``option`` settles it."""

    def __init__(self, message: str, *, n_rows: int, option: str, check: str):
        super().__init__(message)
        self.n_rows = n_rows
        self.option = option
        self.check = check


class DataValidationError(UrmError, ValueError):
    """Input data breaks the data contract. ``failures`` holds one row per (column, check)."""

    def __init__(self, message: str, *, source: str | None = None, failures=None):
        super().__init__(message)
        self.source = source
        if failures is None:
            import pandas as pd  # here: the errors module is imported by the command line, which needs no pandas

            failures = pd.DataFrame()
        self.failures = failures


class ErasureLogError(UrmError, RuntimeError):
    """The erasure log is damaged, or was written under another pseudonym key."""


# the project and its team setting (core/)
class SettingsError(UrmError, ValueError):
    """The team file cannot be read as a mapping of the known settings."""


class RefreshLocked(UrmError, RuntimeError):
    """Another refresh (or ``urm score``, ``urm forget``, ``urm prune``) holds the lock: the
    project home's lock file, or the data set's lock in the team database."""


class DatabaseUnavailable(UrmError, RuntimeError):
    """The team's database cannot be reached: the message names it (without its password)."""


class SparkUnavailable(UrmError, RuntimeError):
    """pyspark or Java is missing: the message names what to install."""


# models (models/)
class ConvergenceError(UrmError, RuntimeError):
    """The optimiser did not reach a maximum; the message says what to try."""


# the MLflow store and the published table (serve/)
class RemoteStore(UrmError, ValueError):
    """The store is a server elsewhere: nothing to start locally."""


class StoreUnavailable(UrmError, RuntimeError):
    """The tracking store does not answer, or refuses this machine: the message says which
    store (without its password) and what to do."""


class PublishError(UrmError, RuntimeError):
    """The team database did not take the table (unreachable, refused, full): the message names
    the database (without its password) and what it said."""


# jobs and the command line
class RefreshError(UrmError, RuntimeError):
    """A refresh step failed; the message names the notebook and cell."""


class UsageError(UrmError, ValueError):
    """A bad argument: the command exits 2 with this message."""
