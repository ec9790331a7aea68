"""Cohorts and relationship KPIs per calendar period.

The per-user-period activity and its sums per cohort and period are one SQL query in DuckDB's
dialect (transpilable to Spark with sqlglot); the calendar alignment of the small per-period
result happens in pandas.
A user's cohort is the calendar period of their first purchase.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..core.sql import as_day, run_sql
from ..core.units import FREQ, REPORT_FREQ, UNIT_DAYS
from .rfm import days_cte

_TRUNC = {"D": "day", "W": "week", "M": "month"}
_STEP = {"D": "INTERVAL 1 DAY", "W": "INTERVAL 7 DAY", "M": "INTERVAL 1 MONTH"}
_PANDAS_FREQ = {"D": "D", "W": "W-SUN", "M": "M"}  # DuckDB weeks start on Monday (ISO)


def _cut_literal(cutoff) -> str | None:
    return f"DATE '{as_day(cutoff, 'cutoff'):%Y-%m-%d}'" if cutoff is not None else None


def period_activity_sql(
    freq: str = REPORT_FREQ, cutoff=None, source: str = "transactions", dialect: str = "duckdb"
) -> str:
    """One row per (user, period) with activity: cohort, revenue, purchase days, flags."""
    if freq not in _TRUNC:
        raise ValueError(f"freq must be one of {sorted(_TRUNC)}, not {freq!r}")
    u = _TRUNC[freq]
    sql = f"""WITH {days_cte(source, _cut_literal(cutoff))},
act AS (
    SELECT user_id, CAST(DATE_TRUNC('{u}', d) AS DATE) AS period, SUM(amount) AS revenue,
           COUNT(*) AS purchase_days
    FROM days GROUP BY user_id, CAST(DATE_TRUNC('{u}', d) AS DATE)
),
firsts AS (
    SELECT user_id, MIN(period) AS cohort FROM act GROUP BY user_id
),
ranked AS (
    SELECT user_id, d, ROW_NUMBER() OVER (PARTITION BY user_id ORDER BY d) AS rn FROM days
),
seconds AS (
    SELECT user_id, CAST(DATE_TRUNC('{u}', d) AS DATE) AS second_period FROM ranked WHERE rn = 2
)
SELECT a.user_id, a.period, f.cohort, a.revenue, a.purchase_days,
       CASE WHEN a.period = f.cohort THEN 1 ELSE 0 END AS is_new,
       CASE WHEN prev.user_id IS NULL THEN 0 ELSE 1 END AS was_active_prev,
       CASE WHEN s.second_period = a.period THEN 1 ELSE 0 END AS becomes_repeat
FROM act AS a
JOIN firsts AS f ON a.user_id = f.user_id
LEFT JOIN act AS prev ON prev.user_id = a.user_id AND prev.period = CAST(a.period - {_STEP[freq]} AS DATE)
LEFT JOIN seconds AS s ON s.user_id = a.user_id"""
    if dialect == "duckdb":
        return sql
    import sqlglot

    return sqlglot.transpile(sql, read="duckdb", write=dialect, pretty=True)[0]


def _totals(transactions, freq: str, cutoff, engine: str | None = None) -> pd.DataFrame:
    """One row per (cohort, period) with activity, summed in SQL: active, new, retained and
    newly repeating users, revenue, purchase days. The engine returns cohorts x periods rows, not
    one per user and period (on Spark nothing larger reaches the driver)."""
    sql = f"""SELECT cohort, period, CAST(COUNT(*) AS BIGINT) AS active_users,
       CAST(SUM(is_new) AS BIGINT) AS new_users, CAST(SUM(was_active_prev) AS BIGINT) AS retained_users,
       CAST(SUM(becomes_repeat) AS BIGINT) AS new_repeaters, SUM(revenue) AS revenue,
       CAST(SUM(purchase_days) AS BIGINT) AS purchase_days
FROM ({period_activity_sql(freq, cutoff)}) AS per_user
GROUP BY cohort, period
ORDER BY cohort, period"""
    tot = run_sql(transactions, sql, engine)
    for c in ("period", "cohort"):
        tot[c] = pd.to_datetime(tot[c])
    return tot


def _label(ts: pd.Series | pd.DatetimeIndex, freq: str):
    idx = pd.DatetimeIndex(ts)
    if freq == "M":
        return idx.strftime("%Y-%m")
    return idx.strftime("%Y-%m-%d")


def _offset(a: pd.Series, b: pd.Series, freq: str) -> pd.Series:
    """Whole periods from b to a."""
    if freq == "M":
        return (a.dt.year - b.dt.year) * 12 + (a.dt.month - b.dt.month)
    days = (a - b).dt.days
    return days // 7 if freq == "W" else days


def cohort_retention(
    transactions, freq: str = REPORT_FREQ, cutoff=None, counts: bool = False, engine: str | None = None
) -> pd.DataFrame:
    """Cohort x period matrix: the share of each cohort active in each period since its start.

    Rows are cohorts (label of the first-purchase period), columns the number of periods since
    the cohort's first period (0, 1, ...). Column 0 is 1.0 by construction. ``counts=True``
    gives active user counts instead (column 0 = cohort size). Cells after the data end are NaN.
    ``engine``: as :func:`features.rfm_summary`.
    """
    tot = _totals(transactions, freq, cutoff, engine)
    tot["k"] = _offset(tot["period"], tot["cohort"], freq)
    mat = tot.groupby(["cohort", "k"])["active_users"].sum().unstack("k", fill_value=0).sort_index()
    last = tot["period"].max()
    horizon = _offset(pd.Series(last, index=mat.index), pd.Series(mat.index, index=mat.index), freq)
    cols = np.arange(mat.columns.max() + 1) if len(mat.columns) else np.arange(1)
    mat = mat.reindex(columns=cols, fill_value=0).astype(float)
    mat = mat.where(np.asarray(cols)[None, :] <= horizon.to_numpy()[:, None])
    if not counts:
        mat = mat.div(mat[0], axis=0)
    mat.index = pd.Index(_label(mat.index, freq), name="cohort")
    mat.columns.name = "period"
    return mat


def nps(feedback: pd.DataFrame, freq: str | None = None) -> pd.Series | float:
    """Net promoter score in percent: share of scores 9-10 minus share of scores 0-6.

    With ``freq``, one value per calendar period of the feedback's ``ts``.
    """
    if "score" not in feedback:
        raise ValueError("feedback lacks column 'score' (load it with datasets.load_feedback)")
    s = feedback["score"].astype(float)
    if ((s < 0) | (s > 10)).any():
        raise ValueError(f"feedback scores must lie in 0-10; {int(((s < 0) | (s > 10)).sum())} do not")
    val = 100.0 * ((s >= 9).astype(float) - (s <= 6).astype(float))
    if freq is None:
        return float(val.mean()) if len(val) else float("nan")
    period = pd.to_datetime(feedback["ts"]).dt.to_period(_PANDAS_FREQ[freq]).dt.start_time
    return val.groupby(period.to_numpy()).mean().rename("nps")


def kpis(
    transactions,
    freq: str = REPORT_FREQ,
    cutoff=None,
    by: str | None = None,
    feedback: pd.DataFrame | None = None,
    engine: str | None = None,
) -> pd.DataFrame:
    """Relationship KPIs per calendar period (``by=None``) or per cohort and period (``by="cohort"``).

    Columns: ``active_users``, ``new_users``, ``retained_users`` (active in this period and the
    one before), ``retention_rate`` (retained / active in the period before), ``churn_rate``
    (1 - retention_rate), ``repeat_purchase_rate`` (users with two or more purchase days so far /
    users acquired so far), ``revenue``, ``revenue_per_user`` (per active user) and, with a
    feedback table, ``nps``. Per cohort, also ``cohort_size`` and ``active_share``.
    ``engine``: as :func:`features.rfm_summary`.
    """
    if by not in (None, "cohort"):
        raise ValueError(f"by must be None or 'cohort', not {by!r}")
    tot = _totals(transactions, freq, cutoff, engine)
    if tot.empty:
        raise ValueError("no transactions on or before the cutoff")
    keys = ["period"] if by is None else ["cohort", "period"]
    g = tot.groupby(keys)[
        ["active_users", "new_users", "retained_users", "new_repeaters", "revenue", "purchase_days"]
    ].sum()
    start, end = tot["period"].min(), tot["period"].max()
    # W-SUN periods start on Monday, as DuckDB's week truncation does
    pidx = pd.DatetimeIndex(pd.period_range(start, end, freq=_PANDAS_FREQ[freq]).start_time)

    def finish(t: pd.DataFrame) -> pd.DataFrame:
        t = t.reindex(pidx, fill_value=0)
        t.index.name = "period"
        prev_active = t["active_users"].shift(1)
        t["retention_rate"] = t["retained_users"] / prev_active.where(prev_active > 0)
        t["churn_rate"] = 1.0 - t["retention_rate"]
        acquired = t["new_users"].cumsum()
        t["repeat_purchase_rate"] = t["new_repeaters"].cumsum() / acquired.where(acquired > 0)
        t["revenue_per_user"] = t["revenue"] / t["active_users"].where(t["active_users"] > 0)
        return t

    if by is None:
        out = finish(g)
    else:
        parts = []
        for cohort, t in g.groupby(level="cohort"):
            t = finish(t.droplevel("cohort"))
            t = t[t.index >= cohort]
            t["cohort_size"] = int(t["new_users"].iloc[0])
            t["active_share"] = t["active_users"] / t["cohort_size"]
            t["cohort"] = cohort
            parts.append(t.reset_index())
        out = pd.concat(parts, ignore_index=True).set_index(["cohort", "period"])
    if feedback is not None:
        fb = feedback.copy()
        fb["period"] = pd.to_datetime(fb["ts"]).dt.to_period(_PANDAS_FREQ[freq]).dt.start_time
        val = 100.0 * ((fb["score"] >= 9).astype(float) - (fb["score"] <= 6).astype(float))
        fb["nps_value"] = val
        if by is None:
            out["nps"] = fb.groupby("period")["nps_value"].mean().reindex(out.index)
        else:
            first = run_sql(
                transactions,
                f"""WITH {days_cte("transactions", _cut_literal(cutoff))}
                SELECT user_id, CAST(DATE_TRUNC('{_TRUNC[freq]}', MIN(d)) AS DATE) AS cohort FROM days
                GROUP BY user_id""",
                engine,
            )
            cohorts = pd.Series(pd.to_datetime(first["cohort"]).to_numpy(), index=first["user_id"].astype(str))
            fb["cohort"] = fb["user_id"].astype(str).map(cohorts)
            s = fb.dropna(subset=["cohort"]).groupby(["cohort", "period"])["nps_value"].mean()
            out["nps"] = s.reindex(out.index)
    out = out.drop(columns=["new_repeaters"])
    if by is None:
        out.index = pd.Index(_label(out.index, freq), name="period")
    else:
        out.index = pd.MultiIndex.from_arrays(
            [_label(out.index.get_level_values(0), freq), _label(out.index.get_level_values(1), freq)],
            names=["cohort", "period"],
        )
    return out


def overview(transactions: pd.DataFrame, rfm: pd.DataFrame | None = None) -> dict:
    """Headline numbers of a transactions table (and of its RFM summary, when given)."""
    ts = pd.to_datetime(transactions["ts"])
    out = {
        "n_users": int(transactions["user_id"].nunique()),
        "n_transactions": int(len(transactions)),
        "n_purchase_days": int(transactions.assign(_d=ts.dt.normalize()).drop_duplicates(["user_id", "_d"]).shape[0]),
        "revenue": float(transactions["amount"].sum()),
        "first_ts": ts.min().isoformat(),
        "last_ts": ts.max().isoformat(),
    }
    if rfm is not None:
        out.update(
            {
                "rfm_users": int(len(rfm)),
                "calibration_repeat_purchases": int(rfm["frequency"].sum()),
                "repeat_customers": int((rfm["frequency"] > 0).sum()),
                "share_repeat_customers": float((rfm["frequency"] > 0).mean()),
                "mean_monetary_repeaters": float(rfm.loc[rfm["frequency"] > 0, "monetary"].mean()),
            }
        )
        if "frequency_holdout" in rfm:
            out["holdout_purchases"] = int(rfm["frequency_holdout"].sum())
    return out


def cohort_of(age: pd.Series, as_of, freq: str = FREQ, cohort_freq: str = REPORT_FREQ) -> pd.Series:
    """Acquisition cohort label (``"1997-01"`` for months) of each user from their age at
    ``as_of`` (BTYD ``T``, in ``freq`` units, as rfm_summary / activity_features return it)."""
    if freq not in UNIT_DAYS:
        raise ValueError(f"freq must be one of {sorted(UNIT_DAYS)}, not {freq!r}")
    ages, at = pd.factorize(age.to_numpy(float))  # a million users have some hundreds of ages
    first = as_day(as_of, "as_of") - pd.to_timedelta(np.asarray(at, float) * UNIT_DAYS[freq], unit="D")
    start = pd.DatetimeIndex(first).round("D").to_period(_PANDAS_FREQ[cohort_freq]).start_time
    codes, uniques = pd.factorize(start)  # and format each distinct period once
    labels = np.asarray(_label(uniques, cohort_freq), dtype=object)[codes]
    return pd.Series(labels[ages], index=age.index, name="cohort")
