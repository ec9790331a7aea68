"""Non-contractual churn: labels after a cut-off and activity features up to it.

A user known at the cut-off (first purchase on or before it) is *churned* if they make no
purchase in (cutoff, cutoff + horizon]. Features use only rows on or before the cut-off: the
SQL filters on the cut-off before anything else, so no later row can reach a feature.
"""

from __future__ import annotations

import pandas as pd

from ..core.sql import as_day, run_sql
from ..core.units import FREQ, UNIT_DAYS
from .rfm import days_cte


def churn_labels(transactions, cutoff, horizon: float, freq: str = FREQ, engine: str | None = None) -> pd.Series:
    """1 if the user makes no purchase in (cutoff, cutoff + horizon ``freq`` periods], else 0."""
    if freq not in UNIT_DAYS:
        raise ValueError(f"freq must be one of {sorted(UNIT_DAYS)}, not {freq!r}")
    if horizon <= 0:
        raise ValueError(f"horizon must be positive, got {horizon}")
    cut = as_day(cutoff, "cutoff")
    end = cut + pd.Timedelta(days=float(horizon) * UNIT_DAYS[freq])
    sql = f"""
    WITH known AS (
        SELECT CAST(user_id AS VARCHAR) AS user_id FROM transactions
        WHERE CAST(ts AS DATE) <= DATE '{cut:%Y-%m-%d}' GROUP BY 1
    ),
    later AS (
        SELECT CAST(user_id AS VARCHAR) AS user_id FROM transactions
        WHERE CAST(ts AS DATE) > DATE '{cut:%Y-%m-%d}' AND CAST(ts AS DATE) <= DATE '{end:%Y-%m-%d}'
        GROUP BY 1
    )
    SELECT known.user_id, CASE WHEN later.user_id IS NULL THEN 1 ELSE 0 END AS churn
    FROM known LEFT JOIN later ON known.user_id = later.user_id
    ORDER BY known.user_id"""
    return run_sql(transactions, sql, engine).set_index("user_id")["churn"].astype("int64")


def activity_features_sql(cutoff, freq: str = FREQ, windows=(4, 13, 26), source: str = "transactions") -> str:
    if freq not in UNIT_DAYS:
        raise ValueError(f"freq must be one of {sorted(UNIT_DAYS)}, not {freq!r}")
    windows = sorted({int(w) for w in windows})
    if not windows or windows[0] <= 0:
        raise ValueError(f"windows must be positive whole numbers of periods, got {windows}")
    cut = f"DATE '{as_day(cutoff, 'cutoff'):%Y-%m-%d}'"
    unit = repr(float(UNIT_DAYS[freq]))
    win_cols = []
    for w in windows:
        days = int(round(w * UNIT_DAYS[freq]))
        win_cols.append(f"SUM(CASE WHEN d > {cut} - INTERVAL {days} DAY THEN 1 ELSE 0 END) AS purchases_{w}")
        win_cols.append(f"SUM(CASE WHEN d > {cut} - INTERVAL {days} DAY THEN amount ELSE 0.0 END) AS spend_{w}")
    w0 = windows[0]
    d0 = int(round(w0 * UNIT_DAYS[freq]))
    win_cols.append(
        f"SUM(CASE WHEN d > {cut} - INTERVAL {2 * d0} DAY AND d <= {cut} - INTERVAL {d0} DAY "
        f"THEN 1 ELSE 0 END) AS purchases_prev_{w0}"
    )
    windowed = [f"purchases_{w}, spend_{w}" for w in windows]
    return f"""WITH {days_cte(source, cut)},
gaps AS (
    SELECT user_id, d, amount,
           CAST(DATE_DIFF('day', LAG(d) OVER (PARTITION BY user_id ORDER BY d), d) AS DOUBLE) / {unit} AS gap,
           MIN(d) OVER (PARTITION BY user_id) AS first_d
    FROM days
),
per_user AS (
    SELECT user_id,
           CAST(COUNT(*) - 1 AS BIGINT) AS frequency,
           CAST(DATE_DIFF('day', MIN(d), MAX(d)) AS DOUBLE) / {unit} AS recency,
           CAST(DATE_DIFF('day', MIN(d), {cut}) AS DOUBLE) / {unit} AS T,
           CAST(DATE_DIFF('day', MAX(d), {cut}) AS DOUBLE) / {unit} AS time_since_last,
           CASE WHEN COUNT(*) > 1 THEN SUM(CASE WHEN d > first_d THEN amount ELSE 0.0 END)
                / CAST(COUNT(*) - 1 AS DOUBLE) ELSE 0.0 END AS monetary,
           SUM(amount) AS total_spend,
           SUM(amount) / CAST(COUNT(*) AS DOUBLE) AS avg_spend,
           AVG(gap) AS gap_mean, STDDEV_SAMP(gap) AS gap_std, MAX(gap) AS gap_max,
           ARG_MAX(gap, d) AS gap_last,
           {("," + chr(10) + "           ").join(win_cols)}
    FROM gaps
    GROUP BY user_id
)
SELECT user_id, frequency, recency, T, time_since_last, monetary, total_spend, avg_spend,
       COALESCE(gap_mean, T) AS gap_mean, COALESCE(gap_std, 0.0) AS gap_std,
       COALESCE(gap_max, T) AS gap_max, COALESCE(gap_last, 0.0) AS gap_last,
       {", ".join(windowed)},
       CAST(purchases_{w0} - purchases_prev_{w0} AS BIGINT) AS trend
FROM per_user
ORDER BY user_id"""


def activity_features(
    transactions, cutoff, freq: str = FREQ, windows=(4, 13, 26), engine: str | None = None
) -> pd.DataFrame:
    """Per-user features from the activity on or before ``cutoff`` (all times in ``freq`` units).

    Columns: ``frequency, recency, T`` (= tenure), ``time_since_last, monetary, total_spend,
    avg_spend``; inter-purchase gaps ``gap_mean, gap_std, gap_max`` (for fewer than 2 or 3
    purchase days: ``T`` for mean and max, i.e. the wait so far, and 0 for the spread) and
    ``gap_last``, the wait before the latest purchase (0 for a single purchase day);
    ``purchases_<w>``, ``spend_<w>`` in each trailing window of ``w`` periods; ``trend``
    (purchases in the last ``w0`` periods minus the ``w0`` before, ``w0`` the shortest window).
    """
    out = run_sql(transactions, activity_features_sql(cutoff, freq, windows), engine).set_index("user_id")
    for c in out.columns:
        if c.startswith("purchases_") or c in ("frequency", "trend"):
            out[c] = out[c].astype("int64")
    out.attrs["freq"] = freq
    return out


def periods_between(start, end, freq: str = FREQ) -> float:
    """The number of ``freq`` periods from ``start`` to ``end`` (days over the period's length)."""
    if freq not in UNIT_DAYS:
        raise ValueError(f"freq must be one of {sorted(UNIT_DAYS)}, not {freq!r}")
    return (as_day(end, "end") - as_day(start, "start")).days / UNIT_DAYS[freq]


def window_start(cutoff, periods: float, freq: str = FREQ) -> pd.Timestamp:
    """The day ``periods`` periods of ``freq`` before ``cutoff``."""
    return (as_day(cutoff, "cutoff") - pd.Timedelta(days=float(periods) * UNIT_DAYS[freq])).normalize()


MIN_CHURN_WINDOW = 2  # periods: the shortest churn window chosen from the data


def _median_age_ok(first: pd.Series, start: pd.Timestamp, w: int, freq: str) -> bool:
    known = first[first <= start]
    return bool(len(known)) and ((start - known).dt.days / UNIT_DAYS[freq]).median() >= w


def churn_window(transactions, cutoff, horizon: float, freq: str = FREQ, step: int = 13) -> int:
    """The churn window ``w`` of a shifted-window churn model, chosen from the data.

    The model learns at ``cutoff - w`` who makes no purchase in the next ``w`` periods, so it
    needs history before ``cutoff - w``: ``w`` is the longest window, at most ``horizon``, for
    which the median user known at ``cutoff - w`` has at least ``w`` periods of history there.
    Multiples of ``step`` (a quarter of weeks) come first; when not even ``step`` periods fit
    (a young data set: a shop's first year), the longest shorter window down to
    ``MIN_CHURN_WINDOW`` periods. On CDNOW (every first purchase in Q1 1997, cut-off 1997-09-30,
    weekly) that is 13 weeks: at 26 weeks before the cut-off the median customer was 7 weeks old.
    Raises ValueError naming the earliest cut-off the data allow when not even that fits.
    """
    if freq not in UNIT_DAYS:
        raise ValueError(f"freq must be one of {sorted(UNIT_DAYS)}, not {freq!r}")
    if step <= 0 or horizon < MIN_CHURN_WINDOW:
        raise ValueError(f"need step > 0 and horizon >= {MIN_CHURN_WINDOW}, got step={step}, horizon={horizon}")
    cut = as_day(cutoff, "cutoff")
    first = run_sql(
        transactions,
        f"""
        SELECT MIN(CAST(ts AS DATE)) AS first FROM transactions
        WHERE CAST(ts AS DATE) <= DATE '{cut:%Y-%m-%d}' GROUP BY user_id""",
    )["first"]
    first = pd.to_datetime(first)
    top = int(horizon)
    candidates = list(range(top // step * step, 0, -step)) + [
        w for w in range(min(step - 1, top), MIN_CHURN_WINDOW - 1, -1)
    ]
    for w in candidates:
        if _median_age_ok(first, window_start(cut, w, freq), w, freq):
            return w
    unit = pd.Timedelta(days=UNIT_DAYS[freq])
    later = next(
        (
            cut + k * unit
            for k in range(1, 1041)
            if _median_age_ok(first, window_start(cut + k * unit, MIN_CHURN_WINDOW, freq), MIN_CHURN_WINDOW, freq)
        ),
        None,
    )
    raise ValueError(
        f"the data hold too little history before {cut:%Y-%m-%d} for a shifted-window churn model: it needs "
        f"the median user known {MIN_CHURN_WINDOW} {freq} before the cut-off to be at least {MIN_CHURN_WINDOW} "
        f"{freq} old there ({len(first):,} users known at the cut-off). "
        + (
            f"The earliest cut-off these purchases allow is {later:%Y-%m-%d}."
            if later is not None
            else "No later cut-off within 20 years allows it with these users."
        )
    )


def shifted_window(transactions, cutoff, window: float, freq: str = FREQ, windows=(4, 13, 26)):
    """The training set of a shifted-window churn model: ``(X, y)`` with ``X`` the activity
    features at ``cutoff - window`` and ``y`` = 1 for no purchase in ``(cutoff - window, cutoff]``.

    A model fitted on it is applied to the features at ``cutoff`` and predicts no purchase in
    the next ``window`` periods; no row after ``cutoff`` is read.
    """
    start = window_start(cutoff, window, freq)
    X = activity_features(transactions, start, freq=freq, windows=windows)
    y = churn_labels(transactions, start, horizon=window, freq=freq).reindex(X.index)
    return X, y
