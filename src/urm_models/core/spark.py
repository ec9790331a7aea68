"""The Spark engine: the same feature SQL on a Spark session (docs/scaling.md).

Every feature query is written once, in DuckDB's dialect; on Spark it runs as sqlglot's
transpilation of that text against a temporary view ``transactions``. pyspark is the optional
extra ``urm-models[spark]`` and needs Java 17+; nothing here is imported unless a Spark
DataFrame or ``engine="spark"`` asks for it.

Conventions the parity suite (tests/test_spark.py) holds to: timestamps are read as
``TIMESTAMP_NTZ`` (wall-clock, as the data contract defines them, so a date never shifts with
a time zone), the session time zone is UTC, and Spark's scratch files (raw rows) go under
``data/tmp/spark/``, owner-only.
"""

from __future__ import annotations

import logging
import os
import shutil
import sys
from pathlib import Path

import pandas as pd

from . import paths
from .errors import SparkUnavailable
from .io import make_dirs, policy_umask

ENGINES = ("duckdb", "spark")
EXTRA = "urm-models[spark]"


def is_spark_dataframe(obj) -> bool:
    """True for a pyspark DataFrame (classic or Connect), without importing pyspark."""
    return any(c.__module__.startswith("pyspark.sql") and c.__name__ == "DataFrame" for c in type(obj).__mro__)


def resolve_engine(transactions, engine: str | None) -> str:
    """``"spark"`` for a Spark DataFrame or when asked, else ``"duckdb"``; a contradiction is refused."""
    if engine is not None and engine not in ENGINES:
        raise ValueError(f"engine must be one of {list(ENGINES)} or None, not {engine!r}")
    if is_spark_dataframe(transactions):
        if engine == "duckdb":
            raise ValueError(
                "transactions is a Spark DataFrame: run it with engine='spark' (or None), "
                "or collect it with .toPandas() for DuckDB"
            )
        return "spark"
    return engine or "duckdb"


def scratch_dir() -> Path:
    return paths.project_root() / "data" / "tmp" / "spark"


def session(master: str | None = None):
    """The active Spark session, or a new local one (``URM_SPARK_MASTER``, default ``local[2]``)
    configured as the module docstring says. A session that already exists (spark-submit,
    Databricks) is used as it is, with the timestamp and time-zone settings applied."""
    try:
        from pyspark.sql import SparkSession
    except ImportError:
        raise SparkUnavailable(
            f"the Spark engine needs pyspark: install the extra {EXTRA!r} "
            f"(pip install '{EXTRA}', or uv sync --extra spark)"
        ) from None
    # py4j (pyspark's bridge to the JVM) logs every connection it opens and closes at INFO,
    # which the CLI's logging would print; its warnings and errors still show
    logging.getLogger("py4j").setLevel(logging.WARNING)
    active = SparkSession.getActiveSession()
    if active is None:
        if not (os.environ.get("JAVA_HOME") or shutil.which("java")):
            raise SparkUnavailable(
                "the Spark engine needs Java 17 or later (java on PATH or JAVA_HOME set); "
                f"pyspark itself comes with the extra {EXTRA!r}"
            )

        # Spark's Python workers must run this interpreter (the one with urm_models installed)
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
        os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
        local = scratch_dir()
        make_dirs(local)
        # scratch files hold raw rows: under data/ (the environment variable, not spark.local.dir,
        # which makes Spark warn that a cluster manager may override it)
        os.environ.setdefault("SPARK_LOCAL_DIRS", str(local))
        log4j = Path(__file__).with_name("log4j2-spark.properties").as_uri()

        umask = policy_umask()  # files Spark writes (Hadoop's FileSystem) follow the policy too
        extra = os.environ.get("URM_SPARK_JAVA_OPTIONS", "").strip()  # docs/scaling.md
        java_opts = f"-Duser.timezone=UTC -Dlog4j2.configurationFile={log4j}" + (f" {extra}" if extra else "")
        builder = (
            SparkSession.builder.master(master or os.environ.get("URM_SPARK_MASTER", "local[2]"))
            .appName("urm-models")
            .config("spark.ui.enabled", "false")
            .config("spark.sql.shuffle.partitions", "4")
            .config("spark.ui.showConsoleProgress", "false")
            # local mode runs everything in the driver's JVM: Spark's default 1 GB heap
            # loses task results when 10M purchases are reduced to 1M users
            .config("spark.driver.memory", os.environ.get("URM_SPARK_DRIVER_MEMORY", "4g"))
            .config("spark.driver.maxResultSize", "0")
            .config("spark.hadoop.fs.permissions.umask-mode", f"{umask:03o}")
            .config("spark.sql.execution.arrow.pyspark.enabled", "true")
            .config("spark.driver.extraJavaOptions", java_opts)
            .config("spark.executor.extraJavaOptions", java_opts)
        )
        active = _quietly(builder.getOrCreate, local / "jvm.log")
        active.sparkContext.setLogLevel("ERROR")
    active.conf.set("spark.sql.session.timeZone", "UTC")
    active.conf.set("spark.sql.timestampType", "TIMESTAMP_NTZ")
    return active


def _quietly(start, log: Path):
    """Call ``start`` (which launches the JVM) with file descriptor 2 pointing at ``log``: the
    JVM keeps it, so its start-up notices ("Using incubator modules", the shell's log level) and
    anything it writes to stderr later go to ``data/tmp/spark/jvm.log`` instead of every notebook
    and job. Errors still reach Python as exceptions with Spark's message."""
    sys.stderr.flush()
    fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    saved = os.dup(2)
    try:
        os.dup2(fd, 2)
        return start()
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(fd)


def transpile(sql: str) -> str:
    """DuckDB SQL -> Spark SQL (sqlglot): the one definition, run by the other engine."""
    import sqlglot

    return sqlglot.transpile(sql, read="duckdb", write="spark")[0]


def as_spark_dataframe(spark, transactions):
    """``transactions`` as a Spark DataFrame with ``user_id, ts, amount``."""
    if is_spark_dataframe(transactions):
        df = transactions
    elif isinstance(transactions, (str, Path)):
        from pyspark.errors import AnalysisException

        try:
            df = spark.read.parquet(str(transactions))
            df.schema  # noqa: B018 (resolves the files' schema now, where the error can be named)
        except AnalysisException as exc:
            if "TIMESTAMP(NANOS" in str(exc):
                raise ValueError(
                    f"{transactions}: Spark cannot read timestamps in nanoseconds (pandas' default "
                    f"for Parquet); write the file with df.to_parquet(path, coerce_timestamps='us', "
                    f"allow_truncated_timestamps=True)"
                ) from None
            raise
    elif isinstance(transactions, pd.DataFrame):
        frame = transactions[["user_id", "ts", "amount"]].copy()
        frame["ts"] = pd.to_datetime(frame["ts"]).astype("datetime64[us]")  # naive: TIMESTAMP_NTZ
        df = spark.createDataFrame(frame)
    else:
        raise TypeError(
            f"the Spark engine reads a Spark DataFrame, a pandas DataFrame or a Parquet path, "
            f"not {type(transactions).__name__}"
        )
    missing = [c for c in ("user_id", "ts", "amount") if c not in df.columns]
    if missing:
        raise ValueError(f"transactions lack column(s) {missing}; expected user_id, ts, amount")
    return df


def sql_frame(transactions, sql: str):
    """The Spark DataFrame of ``sql`` (DuckDB dialect) over ``transactions``: lazy, for results
    that stay in Spark (scoring writes them as Parquet)."""
    spark = session()
    as_spark_dataframe(spark, transactions).createOrReplaceTempView("transactions")
    return spark.sql(transpile(sql))


def query(transactions, sql: str) -> pd.DataFrame:
    """:func:`sql_frame` collected to pandas (the result of a feature query: one row per user)."""
    out = sql_frame(transactions, sql).toPandas()
    for c in out.columns:  # DATE columns arrive as Python dates
        if out[c].dtype == object and len(out) and type(out[c].iloc[0]).__name__ == "date":
            out[c] = pd.to_datetime(out[c])
    return out
