"""Per-user and per-period features computed from canonical tables."""

from .churn import activity_features, churn_labels, churn_window, periods_between, shifted_window
from .cohorts import cohort_of, cohort_retention, kpis, nps, overview, period_activity_sql
from .periods import period_summary
from .rfm import first_purchase, rfm_sql, rfm_summary

__all__ = [
    "activity_features",
    "churn_labels",
    "churn_window",
    "periods_between",
    "shifted_window",
    "period_summary",
    "rfm_summary",
    "rfm_sql",
    "first_purchase",
    "cohort_retention",
    "kpis",
    "nps",
    "period_activity_sql",
    "overview",
    "cohort_of",
]
