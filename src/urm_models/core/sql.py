"""The SQL engine every feature query runs on: DuckDB in this process (memory limit, spill
folder under ``data/``, no progress bar), or Spark for a Spark DataFrame
(:mod:`urm_models.core.spark`, the same SQL transpiled by sqlglot). The queries themselves live with
their features (:mod:`urm_models.features`); this module only runs them.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import duckdb
import pandas as pd

from . import paths, spark
from .io import make_dirs


def as_day(value, name: str) -> pd.Timestamp:
    """``value`` as a calendar day (time and time zone dropped) for a query; ``name`` is the
    parameter a ValueError names."""
    try:
        ts = pd.Timestamp(value)
    except (ValueError, TypeError) as exc:
        raise ValueError(f"{name}={value!r} is not a date") from exc
    if ts.tzinfo is not None:
        ts = ts.tz_localize(None)
    return ts.normalize()


#: DuckDB's memory limit for the feature queries unless URM_DUCKDB_MEMORY_LIMIT says otherwise
#: ("60%" of RAM, or an amount such as "8GB"); beyond it DuckDB spills to disk
DEFAULT_MEMORY_LIMIT = "60%"
_LIMIT = re.compile(r"\d+(\.\d+)?\s*(%|[KMGT]i?B)", re.IGNORECASE)


def memory_limit() -> str:
    """The memory limit every feature query runs under (``URM_DUCKDB_MEMORY_LIMIT``)."""
    value = os.environ.get("URM_DUCKDB_MEMORY_LIMIT", DEFAULT_MEMORY_LIMIT).strip()
    if not _LIMIT.fullmatch(value):
        raise ValueError(
            f"URM_DUCKDB_MEMORY_LIMIT={value!r} is not a memory limit: give a share of RAM "
            f"such as '60%' or an amount such as '8GB'"
        )
    return value


def spill_dir() -> Path:
    """Where DuckDB spills what does not fit in memory: raw rows, so under ``data/`` (owner-only
    like the rest), never DuckDB's default ``.tmp`` in whatever folder a job runs in."""
    return paths.project_root() / "data" / "tmp" / "duckdb"


def connect() -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB connection, quiet (no progress bar in logs and notebooks), under
    :func:`memory_limit` and spilling to :func:`spill_dir`."""
    limit = memory_limit()
    try:
        make_dirs(spill_dir())  # DuckDB creates one folder level only
    except OSError as exc:
        raise RuntimeError(
            f"cannot create DuckDB's spill folder {spill_dir()} ({exc.strerror}): set "
            f"URM_HOME to a writable project folder"
        ) from None
    con = duckdb.connect()
    con.execute(f"SET memory_limit = '{limit}'")
    con.execute(f"SET temp_directory = '{str(spill_dir()).replace(chr(39), chr(39) * 2)}'")
    try:
        con.execute("SET enable_progress_bar = false")
    except duckdb.Error:  # in Jupyter without ipywidgets DuckDB refuses to touch the setting
        pass
    return con


def expose(con: duckdb.DuckDBPyConnection, transactions) -> None:
    """Expose ``transactions`` to ``con`` as the view ``transactions``."""
    if isinstance(transactions, (str, Path)):
        p = Path(transactions)
        if p.suffix.lower() not in {".parquet", ".pq"}:
            raise ValueError(f"{p}: queries read Parquet paths; load CSV files with datasets.load_transactions first")
        con.execute(f"CREATE VIEW transactions AS SELECT * FROM read_parquet('{p.as_posix()}')")
        return
    if isinstance(transactions, pd.DataFrame):
        missing = [c for c in ("user_id", "ts", "amount") if c not in transactions.columns]
        if missing:
            raise ValueError(
                f"transactions lack column(s) {missing}; expected user_id, ts, amount "
                f"(load them with datasets.load_transactions)"
            )
        con.register("transactions", transactions[["user_id", "ts", "amount"]])
        return
    con.register("transactions", transactions)  # arrow tables, duckdb relations


def run_sql(transactions, sql: str, engine: str | None = None) -> pd.DataFrame:
    """Run ``sql`` (DuckDB's dialect) against ``transactions`` (a DataFrame, Parquet path or
    Arrow table exposed as the view ``transactions``) on a fresh quiet connection; return the
    result. A Spark DataFrame, or ``engine="spark"``, runs the same query on Spark
    (:mod:`urm_models.core.spark`)."""
    if spark.resolve_engine(transactions, engine) == "spark":
        return spark.query(transactions, sql)
    con = connect()
    try:
        expose(con, transactions)
        return con.execute(sql).df()
    finally:
        con.close()
