"""Discrete-time summaries: which calendar periods (years, quarters, months, weeks) each user
was active in, for models of discrete transaction opportunities (BG/BB).

A user's first period is the one of their first purchase; each later period up to the cut-off
is a transaction opportunity, active or not. ``frequency`` counts the active ones, ``recency``
is the index of the last active one (1 = the period after the first; 0 for none) and
``n_periods`` the opportunities observed. The cut-off (and ``holdout_end``) must end a period:
a period cut in two would count as a missed opportunity that was only half observed.
"""

from __future__ import annotations

import pandas as pd

from ..core.sql import as_day, run_sql

#: period code -> DuckDB date part, and how to tell that a day ends one
PERIODS = {"Y": "year", "Q": "quarter", "M": "month", "W": "week"}


def _period_end(day: pd.Timestamp, period: str) -> bool:
    nxt = day + pd.Timedelta(days=1)
    return {
        "Y": nxt.dayofyear == 1,
        "Q": nxt.day == 1 and nxt.month in (1, 4, 7, 10),
        "M": nxt.day == 1,
        "W": nxt.dayofweek == 0,
    }[period]


def period_summary(
    transactions, cutoff, period: str = "Y", holdout_end=None, engine: str | None = None
) -> pd.DataFrame:
    """Per-user ``frequency, recency, n_periods`` in calendar ``period`` units (``"Y"``,
    ``"Q"``, ``"M"``, ``"W"``: ISO weeks, Monday first) up to ``cutoff``; with ``holdout_end``
    also ``frequency_holdout`` (active periods after the cut-off) and ``n_periods_holdout``.
    Users whose first purchase falls in the cut-off's period have ``n_periods`` 0.
    """
    if period not in PERIODS:
        raise ValueError(f"period must be one of {sorted(PERIODS)}, not {period!r}")
    part = PERIODS[period]
    cut = as_day(cutoff, "cutoff")
    ends = [("cutoff", cut)]
    end = None
    if holdout_end is not None:
        end = as_day(holdout_end, "holdout_end")
        if end <= cut:
            raise ValueError(f"holdout_end {end:%Y-%m-%d} must be after the cutoff {cut:%Y-%m-%d}")
        ends.append(("holdout_end", end))
    for name, day in ends:
        if not _period_end(day, period):
            raise ValueError(
                f"{name} {day:%Y-%m-%d} does not end a {part}: a {part} cut in two would count "
                f"as a half-observed opportunity; pass the last day of a {part}"
            )
    last = f"DATE '{(end or cut):%Y-%m-%d}'"
    cut_sql = f"DATE '{cut:%Y-%m-%d}'"
    holdout = ""
    if end is not None:
        holdout = (
            f",\n       COUNT(*) FILTER (WHERE a.per > DATE_TRUNC('{part}', {cut_sql})) AS frequency_holdout,"
            f"\n       DATE_DIFF('{part}', DATE_TRUNC('{part}', {cut_sql}), DATE_TRUNC('{part}', {last}))"
            f" AS n_periods_holdout"
        )
    sql = f"""
WITH active AS (
    SELECT CAST(user_id AS VARCHAR) AS user_id, DATE_TRUNC('{part}', CAST(ts AS DATE)) AS per
    FROM transactions WHERE CAST(ts AS DATE) <= {last} GROUP BY 1, 2
),
firsts AS (
    SELECT user_id, MIN(per) AS first FROM active GROUP BY 1
    HAVING MIN(per) <= DATE_TRUNC('{part}', {cut_sql})
)
SELECT f.user_id,
       COUNT(*) FILTER (WHERE a.per > f.first AND a.per <= DATE_TRUNC('{part}', {cut_sql})) AS frequency,
       COALESCE(MAX(DATE_DIFF('{part}', f.first, a.per))
                FILTER (WHERE a.per > f.first AND a.per <= DATE_TRUNC('{part}', {cut_sql})), 0) AS recency,
       DATE_DIFF('{part}', f.first, DATE_TRUNC('{part}', {cut_sql})) AS n_periods{holdout}
FROM firsts f JOIN active a ON a.user_id = f.user_id
GROUP BY f.user_id, f.first
ORDER BY f.user_id"""
    out = run_sql(transactions, sql, engine).set_index("user_id")
    for c in out.columns:
        out[c] = out[c].astype("int64")
    out.attrs["period"] = period
    return out
