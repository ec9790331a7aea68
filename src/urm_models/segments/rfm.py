"""RFM scores and named segments."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ._tables import rule_table

#: Named segments from R (recency score, 5 = most recent) and FM (mean of the frequency and
#: monetary scores among repeat buyers, rounded up; 0 for one-time buyers). The first matching
#: rule wins; the default table covers all 30 (R, FM) cells. Override with your own table (same
#: columns) or a CSV file of it.
SEGMENT_RULES = pd.DataFrame(
    [
        ("Champions", 4, 5, 4, 5),
        ("Loyal", 3, 5, 3, 5),
        ("Potential loyalists", 4, 5, 2, 2),
        ("Promising", 4, 5, 1, 1),
        ("New", 4, 5, 0, 0),
        ("Need attention", 3, 3, 1, 2),
        ("About to sleep", 3, 3, 0, 0),
        ("Cannot lose", 1, 2, 4, 5),
        ("At risk", 1, 2, 2, 3),
        ("Hibernating", 2, 2, 0, 1),
        ("Lost", 1, 1, 0, 1),
    ],
    columns=["segment", "r_min", "r_max", "fm_min", "fm_max"],
)


def _quintile(values: pd.Series) -> pd.Series:
    """Scores 1..5 by quintile of rank, higher values higher. Tied users share a score (the
    one of their lowest rank), so the scores depend on the values only, not on row order."""
    rank_min = values.rank(method="min").to_numpy()
    n = len(values)
    score = 1 + np.floor(5 * (rank_min - 1) / max(n, 1)).astype("int64")
    return pd.Series(np.clip(score, 1, 5), index=values.index)


def rfm_scores(rfm: pd.DataFrame, lapse_after: float | None = None) -> pd.DataFrame:
    """R, F, M scores and FM = ceil((F + M) / 2).

    R (1-5) is the quintile of the time since the last purchase (``time_since_last`` if present,
    else ``T - recency`` of a BTYD summary) over all users: the most recent fifth scores 5. With
    ``lapse_after`` (in the table's time unit), a user without a purchase for that long scores
    at most R = 3, so the recent segments (Champions, Potential loyalists, Promising, New) never
    hold a lapsed user.

    F and M (1-5) are quintiles among *repeat* buyers only; one-time buyers score F = M = FM = 0,
    a cell of their own. Scored over everyone, the many one-time buyers of a typical shop (60% on
    CDNOW) would tie at the bottom and push every repeat buyer to F >= 4.
    """
    for c in ("frequency", "monetary"):
        if c not in rfm.columns:
            raise ValueError(f"rfm lacks column {c!r} (use features.rfm_summary or activity_features)")
    if "time_since_last" in rfm.columns:
        since = rfm["time_since_last"].astype(float)
    elif {"T", "recency"} <= set(rfm.columns):
        since = rfm["T"].astype(float) - rfm["recency"].astype(float)
    else:
        raise ValueError("rfm needs time_since_last, or T and recency")
    repeat = rfm["frequency"].to_numpy() > 0
    scores = {"R": _quintile(-since).to_numpy()}  # less time since the last purchase = more recent = higher
    for col, score in (("frequency", "F"), ("monetary", "M")):
        values = np.zeros(len(rfm), dtype="int64")
        if repeat.any():
            values[repeat] = _quintile(rfm[col][repeat].astype(float)).to_numpy()
        scores[score] = values
    out = pd.DataFrame(scores, index=rfm.index)
    return finish_scores(out, since, lapse_after)


def finish_scores(scores: pd.DataFrame, since: pd.Series, lapse_after: float | None) -> pd.DataFrame:
    """The row-wise part of :func:`rfm_scores`, after the quintiles (which need every user):
    the lapse cap on R and FM. Shared with the Spark scoring, which ranks in Spark."""
    out = scores
    if lapse_after is not None:
        out.loc[since.to_numpy() >= lapse_after, "R"] = out["R"].clip(upper=3)
    out["FM"] = np.ceil((out["F"] + out["M"]) / 2).astype("int64")
    return out


def segment_rules(rules) -> pd.DataFrame:
    """The segment rule table (default :data:`SEGMENT_RULES`; a DataFrame or CSV file of the
    same columns), refused when a (R, FM) cell has no segment."""
    if rules is None:
        return SEGMENT_RULES
    rules = rule_table(rules, SEGMENT_RULES, "the segment rule table")
    grid = [(r, fm) for r in range(1, 6) for fm in range(0, 6)]
    uncovered = [
        (r, fm)
        for r, fm in grid
        if not ((rules.r_min <= r) & (r <= rules.r_max) & (rules.fm_min <= fm) & (fm <= rules.fm_max)).any()
    ]
    if uncovered:
        raise ValueError(
            f"segment rules leave (R, FM) cells {uncovered} without a segment (FM = 0 holds the one-time buyers)"
        )
    return rules


def rfm_segments(rfm: pd.DataFrame, rules=None, lapse_after: float | None = None) -> pd.DataFrame:
    """RFM scores (:func:`rfm_scores`) plus the named ``segment`` of each user (first matching
    rule)."""
    s = rfm_scores(rfm, lapse_after=lapse_after)
    s["segment"] = segment_of(s, rules)
    return s


def segment_of(scores: pd.DataFrame, rules=None) -> pd.Series:
    """The named segment of each (R, FM) pair: the first matching rule (row-wise; the rules are
    resolved once on the 5 x 6 grid of (R, FM) cells)."""
    table = segment_rules(rules)
    grid = np.empty((6, 6), dtype=object)
    for r in range(1, 6):
        for fm in range(0, 6):
            hit = (table.r_min <= r) & (r <= table.r_max) & (table.fm_min <= fm) & (fm <= table.fm_max)
            grid[r, fm] = str(table.segment[hit.to_numpy()].iloc[0])
    R, FM = scores["R"].to_numpy("int64"), scores["FM"].to_numpy("int64")
    if len(R) and (R.min() < 1 or R.max() > 5 or FM.min() < 0 or FM.max() > 5):
        raise ValueError("R must lie in 1..5 and FM in 0..5 (scores from rfm_scores)")
    return pd.Series(grid[R, FM], index=scores.index, name="segment")
