"""What a campaign's users did in the window after a send.

A send on day ``d`` splits time in two: **features** use only purchases on days before ``d``
(``cutoff = d - 1``, the rule of every feature query: on or before the cut-off), the
**outcomes** only the days ``d .. d + window - 1``. The send day itself belongs to the outcome
window (a send's time of day is rarely in the data; a purchase earlier that day cannot be told
from one after the e-mail, so it is counted where it cannot leak into a feature).
"""

from __future__ import annotations

import pandas as pd

from ..core.sql import as_day, run_sql
from ..core.units import FREQ, UNIT_DAYS


def window_days(window: float, freq: str) -> int:
    """Whole days of ``window`` periods of ``freq``."""
    if freq not in UNIT_DAYS:
        raise ValueError(f"freq must be one of {sorted(UNIT_DAYS)}, not {freq!r}")
    if not window > 0:
        raise ValueError(f"window must be positive, got {window}")
    return int(round(float(window) * UNIT_DAYS[freq]))


def window_outcomes(transactions, start, window: float, freq: str = FREQ, engine: str | None = None) -> pd.DataFrame:
    """Per user with a purchase on the days ``start .. start + window - 1``: ``purchases``
    (days with a purchase, as the RFM summary counts them) and ``spend`` (their amounts), indexed
    by ``user_id``. Users without a purchase there are absent (0 and 0.0 for them)."""
    first = as_day(start, "start")
    days = window_days(window, freq)
    sql = f"""
    SELECT CAST(user_id AS VARCHAR) AS user_id, COUNT(DISTINCT CAST(ts AS DATE)) AS purchases,
           SUM(CAST(amount AS DOUBLE)) AS spend
    FROM transactions
    WHERE CAST(ts AS DATE) >= DATE '{first:%Y-%m-%d}'
      AND CAST(ts AS DATE) < DATE '{first:%Y-%m-%d}' + INTERVAL {days} DAY
    GROUP BY 1
    ORDER BY 1"""
    out = run_sql(transactions, sql, engine).set_index("user_id")
    out["purchases"] = out["purchases"].astype("int64")
    return out
