"""What "now" and "today" mean, decided once for every layer: the machine's local wall-clock
time, naive, like the timestamps of an extract (which a time zone option converts to naive local
times of its zone). ``current_time()`` is the instant no event of a file may come after (validation, the
Parquet contract); ``current_day()`` is the day a customer or campaign table is scored as of when the
caller gives no date (the refresh of transactions scores as of its cut-off instead).
"""

from __future__ import annotations

from datetime import datetime

import pandas as pd


def current_time() -> pd.Timestamp:
    """The current local time, naive."""
    return pd.Timestamp(datetime.now())


def current_day() -> pd.Timestamp:
    """Midnight of the current local day, naive."""
    return current_time().normalize()


def scoring_day(kind: str, cutoff) -> str:
    """The day (``YYYY-MM-DD``) a data set's table is scored as of when none is given: the
    cut-off for transactions (the end of the models' calibration), today for a customer or
    campaign table (who they are now). The refresh and notebook 06 read it from here."""
    return f"{pd.Timestamp(cutoff) if kind == 'transactions' else current_day():%Y-%m-%d}"


__all__ = ["current_time", "current_day", "scoring_day"]
