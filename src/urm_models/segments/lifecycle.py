"""Lifecycle stages: new, active, at risk, lapsed, reactivated."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ._tables import aligned_series

#: Lifecycle stages, in the order their rules are tested (the first that applies wins).
STAGES = ["lapsed", "new", "reactivated", "at risk", "active"]


def lifecycle_stages(
    age: pd.Series,
    *,
    since_last=None,
    gap_before_last=None,
    lapsed=None,
    risk=None,
    period: float = 13,
    lapse_after: float = 26,
    at_risk: float = 0.5,
) -> pd.Series:
    """Lifecycle stage per user; all times in one unit (that of ``age``).

    Rules, first match wins:

    - **lapsed**: ``lapsed`` is true (an observed churn, e.g. a cancelled contract), or no
      purchase for ``lapse_after`` or more (``since_last >= lapse_after``);
    - **new**: the first purchase (or the contract start) lies within the last ``period``
      (``age < period``);
    - **reactivated**: bought within the last ``period`` after a gap of ``lapse_after`` or more
      (``gap_before_last``: the wait before the latest purchase);
    - **at risk**: the churn risk (``risk``: P(churn) or 1 - P(alive)) is ``at_risk`` or more;
    - **active**: everyone else.

    Parameters
    ----------
    age : time since the first purchase (BTYD ``T``) or the contract's tenure, indexed by user
    since_last, gap_before_last, lapsed, risk : per-user Series (or arrays in ``age``'s order);
        any of them may be omitted, and its rule is then skipped
    """
    if not 0 < period <= lapse_after:
        raise ValueError(f"need 0 < period <= lapse_after, got period={period}, lapse_after={lapse_after}")
    if not 0 <= at_risk <= 1:
        raise ValueError(f"at_risk must be a probability, got {at_risk}")
    idx = age.index
    age = aligned_series(age, idx, "age").astype(float)
    since = aligned_series(since_last, idx, "since_last")
    gap = aligned_series(gap_before_last, idx, "gap_before_last")
    gone = aligned_series(lapsed, idx, "lapsed")
    risk = aligned_series(risk, idx, "risk")
    out = np.full(len(idx), "active", dtype=object)
    decided = np.zeros(len(idx), bool)

    def assign(mask, stage):
        nonlocal decided
        hit = np.asarray(mask, bool) & ~decided
        out[hit] = stage
        decided |= hit

    lapsed_mask = np.zeros(len(idx), bool)
    if gone is not None:
        lapsed_mask |= gone.astype(bool).to_numpy()
    if since is not None:
        lapsed_mask |= since.to_numpy(float) >= lapse_after
    assign(lapsed_mask, "lapsed")
    assign(age.to_numpy() < period, "new")
    if since is not None and gap is not None:
        assign((since.to_numpy(float) < period) & (gap.to_numpy(float) >= lapse_after), "reactivated")
    if risk is not None:
        assign(risk.to_numpy(float) >= at_risk, "at risk")
    return pd.Series(out, index=idx, name="lifecycle_stage")
