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


__all__ = ["current_time", "current_day"]
