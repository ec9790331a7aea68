"""The BTYD summary (frequency, recency, T, monetary) and its calibration/holdout split.

One SQL definition in DuckDB's dialect, run by DuckDB here and transpiled by sqlglot for Spark
(:func:`rfm_sql` with ``dialect="spark"``). Conventions (Fader, Hardie & Lee 2005):

* purchases on the same calendar day are one purchase (their amounts summed);
* ``frequency`` is the number of repeat purchase days up to the cut-off (the first is not counted);
* ``recency`` is the time from the first to the last purchase, ``T`` from the first purchase to
  the cut-off, both in ``freq`` units (days, weeks, or months of 365.25/12 days);
* ``monetary`` is the mean value of the repeat purchase days (0 when there are none);
* with ``holdout_end``: ``frequency_holdout`` (purchase days in (cut-off, holdout_end]),
  ``monetary_holdout`` (their mean value, 0 when none) and ``duration_holdout``.

Only users whose first purchase falls on or before the cut-off are included, and no row after
the cut-off reaches a calibration column.
"""

from __future__ import annotations

import pandas as pd

from ..core.sql import as_day, run_sql
from ..core.units import FREQ, UNIT_DAYS

CAL_COLUMNS = ["frequency", "recency", "T", "monetary"]
HOLDOUT_COLUMNS = ["frequency_holdout", "monetary_holdout", "duration_holdout"]


def days_cte(source: str, last_day_sql: str | None) -> str:
    """``days``: one row per user and calendar day (same-day purchases merged, amounts summed),
    up to ``last_day_sql`` (a SQL date expression) when given. Shared by every feature query."""
    where = f"\n    WHERE CAST(ts AS DATE) <= {last_day_sql}" if last_day_sql else ""
    return f"""days AS (
    SELECT CAST(user_id AS VARCHAR) AS user_id, CAST(ts AS DATE) AS d,
           SUM(CAST(amount AS DOUBLE)) AS amount
    FROM {source}{where}
    GROUP BY CAST(user_id AS VARCHAR), CAST(ts AS DATE)
)"""


def rfm_sql(cutoff, freq: str = FREQ, holdout_end=None, source: str = "transactions", dialect: str = "duckdb") -> str:
    """The SQL that computes :func:`rfm_summary` from a table ``source(user_id, ts, amount)``.

    ``dialect`` other than ``"duckdb"`` (e.g. ``"spark"``) is produced by sqlglot from the
    one DuckDB definition.
    """
    if freq not in UNIT_DAYS:
        raise ValueError(f"freq must be one of {sorted(UNIT_DAYS)}, not {freq!r}")
    cut = as_day(cutoff, "cutoff")
    unit = repr(float(UNIT_DAYS[freq]))
    end = as_day(holdout_end, "holdout_end") if holdout_end is not None else cut
    if end < cut:
        raise ValueError(f"holdout_end {end:%Y-%m-%d} is before the cutoff {cut:%Y-%m-%d}")
    c, e = f"DATE '{cut:%Y-%m-%d}'", f"DATE '{end:%Y-%m-%d}'"
    holdout_cte = holdout_select = holdout_join = ""
    if holdout_end is not None:
        holdout_cte = f""",
holdout AS (
    SELECT user_id, COUNT(*) AS n_days, SUM(amount) AS amount
    FROM days
    WHERE d > {c} AND d <= {e}
    GROUP BY user_id
)"""
        holdout_select = f""",
    CAST(COALESCE(h.n_days, 0) AS BIGINT) AS frequency_holdout,
    CASE WHEN h.n_days > 0 THEN h.amount / CAST(h.n_days AS DOUBLE) ELSE 0.0 END AS monetary_holdout,
    CAST(DATE_DIFF('day', {c}, {e}) AS DOUBLE) / {unit} AS duration_holdout"""
        holdout_join = "\nLEFT JOIN holdout AS h ON h.user_id = cal.user_id"
    sql = f"""WITH {days_cte(source, e)},
firsts AS (
    SELECT user_id, MIN(d) AS first_d FROM days WHERE d <= {c} GROUP BY user_id
),
cal AS (
    SELECT days.user_id, firsts.first_d, MAX(days.d) AS last_d, COUNT(*) - 1 AS frequency,
           SUM(CASE WHEN days.d > firsts.first_d THEN days.amount ELSE 0.0 END) AS repeat_amount
    FROM days JOIN firsts ON days.user_id = firsts.user_id
    WHERE days.d <= {c}
    GROUP BY days.user_id, firsts.first_d
){holdout_cte}
SELECT
    cal.user_id AS user_id,
    CAST(cal.frequency AS BIGINT) AS frequency,
    CAST(DATE_DIFF('day', cal.first_d, cal.last_d) AS DOUBLE) / {unit} AS recency,
    CAST(DATE_DIFF('day', cal.first_d, {c}) AS DOUBLE) / {unit} AS T,
    CASE WHEN cal.frequency > 0 THEN cal.repeat_amount / CAST(cal.frequency AS DOUBLE)
         ELSE 0.0 END AS monetary{holdout_select}
FROM cal{holdout_join}
ORDER BY cal.user_id"""
    if dialect == "duckdb":
        return sql
    import sqlglot

    return sqlglot.transpile(sql, read="duckdb", write=dialect, pretty=True)[0]


def rfm_summary(transactions, cutoff, freq: str = FREQ, holdout_end=None, engine: str | None = None) -> pd.DataFrame:
    """Per-user BTYD summary at ``cutoff`` (see the module docstring for the conventions).

    Parameters
    ----------
    transactions : DataFrame, Parquet path or Arrow table
        Canonical transactions (``user_id``, ``ts``, ``amount``).
    cutoff : date-like
        Last day of the calibration period (inclusive).
    freq : {"D", "W", "M"}
        Unit of ``recency``, ``T`` and ``duration_holdout``.
    holdout_end : date-like, optional
        Last day of the holdout period (inclusive).
    engine : None, "duckdb" or "spark"
        Where the query runs: DuckDB unless ``transactions`` is a Spark DataFrame or "spark"
        is asked (the same SQL, transpiled).

    Returns
    -------
    DataFrame indexed by ``user_id`` (sorted) with ``frequency, recency, T, monetary`` and,
    with a holdout, ``frequency_holdout, monetary_holdout, duration_holdout``.
    """
    sql = rfm_sql(cutoff, freq, holdout_end)
    out = run_sql(transactions, sql, engine).set_index("user_id")
    out.attrs["freq"] = freq  # the time unit of recency/T, read by models and CLV
    out["frequency"] = out["frequency"].astype("int64")
    if "frequency_holdout" in out:
        out["frequency_holdout"] = out["frequency_holdout"].astype("int64")
    return out


def first_purchase_sql(cutoff, source: str = "transactions") -> str:
    """The SQL of :func:`first_purchase` (DuckDB dialect)."""
    c = f"DATE '{as_day(cutoff, 'cutoff'):%Y-%m-%d}'"
    return f"""WITH {days_cte(source, c)},
ranked AS (
    SELECT user_id, d, amount, ROW_NUMBER() OVER (PARTITION BY user_id ORDER BY d) AS k
    FROM days
)
SELECT user_id, d AS first_date, amount AS first_amount, LN(1.0 + GREATEST(amount, 0.0)) AS log_first_amount,
       CAST(EXTRACT(MONTH FROM d) AS BIGINT) AS first_month
FROM ranked
WHERE k = 1
ORDER BY user_id"""


def first_purchase(transactions, cutoff, engine: str | None = None) -> pd.DataFrame:
    """Each user's first purchase day up to ``cutoff``: ``first_date``, ``first_amount`` (the
    day's total, as the RFM summary merges same-day purchases), ``log_first_amount``
    (``ln(1 + amount)``: amounts are heavy-tailed) and ``first_month`` (its calendar month,
    1-12). Time-invariant customer covariates for the BTYD models; indexed by ``user_id`` like
    :func:`rfm_summary` at the same cut-off."""
    out = run_sql(transactions, first_purchase_sql(cutoff), engine).set_index("user_id")
    out["first_date"] = pd.to_datetime(out["first_date"]).astype("datetime64[ns]")
    return out
