"""Relationship KPIs by group (tier, segment, cohort, lifecycle stage)."""

from __future__ import annotations

import pandas as pd

from ..features.cohorts import nps
from ._tables import aligned_series
from .lifecycle import STAGES
from .tiers import TIERS


def kpis_by(
    scores: pd.DataFrame, by: str, *, churned=None, revenue=None, feedback: pd.DataFrame | None = None
) -> pd.DataFrame:
    """Relationship KPIs per group (``by``: a column of ``scores``, e.g. tier or cohort).

    Columns: ``users``, ``share_of_users``; predicted ``churn_rate`` (mean ``p_churn``) and
    ``retention_rate`` (1 - it); ``avg_clv``, ``clv_share``; with ``churned`` (observed 0/1
    per user, e.g. the holdout outcome) the observed ``observed_churn_rate`` and
    ``observed_retention_rate``; with ``revenue`` (per user) ``revenue_share``; with
    ``feedback`` (``user_id, ts, score``) the ``nps`` of each group from each user's latest score
    and ``nps_responses``.
    """
    if by not in scores.columns:
        raise ValueError(f"scores lack the grouping column {by!r}")
    df = scores[[by]].copy()
    for col in ("p_churn", "clv"):
        if col in scores.columns:
            df[col] = scores[col].astype(float)
    if churned is not None:
        df["churned"] = aligned_series(churned, scores.index, "churned").astype(float)
    if revenue is not None:
        df["revenue"] = aligned_series(revenue, scores.index, "revenue").astype(float)
    g = df.groupby(by, sort=False, observed=True)
    out = pd.DataFrame({"users": g.size()})
    out["share_of_users"] = out["users"] / out["users"].sum()
    if "p_churn" in df:
        out["churn_rate"] = g["p_churn"].mean()
        out["retention_rate"] = 1.0 - out["churn_rate"]
    if "churned" in df:
        out["observed_churn_rate"] = g["churned"].mean()
        out["observed_retention_rate"] = 1.0 - out["observed_churn_rate"]
    if "clv" in df:
        out["avg_clv"] = g["clv"].mean()
        out["clv_share"] = g["clv"].sum() / df["clv"].sum()
    if "revenue" in df:
        out["revenue_share"] = g["revenue"].sum() / df["revenue"].sum()
    if feedback is not None:
        latest = feedback.sort_values("ts").groupby("user_id").tail(1).set_index("user_id")["score"]
        joined = df[[by]].join(latest.rename("score"), how="inner")
        out["nps"] = pd.Series({k: nps(t) for k, t in joined.groupby(by, observed=True)}, dtype=float)
        out["nps_responses"] = joined.groupby(by, observed=True).size()
    if isinstance(scores[by].dtype, pd.CategoricalDtype):
        out = out.reindex([c for c in scores[by].cat.categories if c in out.index])
    elif by == "tier":
        out = out.reindex([t for t in TIERS if t in out.index] + [t for t in out.index if t not in TIERS])
    elif by == "lifecycle_stage":
        out = out.reindex([t for t in STAGES if t in out.index] + [t for t in out.index if t not in STAGES])
    else:
        out = out.sort_index()
    return out
