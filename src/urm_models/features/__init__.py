"""Per-user and per-period features computed from canonical tables."""

from .cohorts import activity_sql, cohort_retention, kpis, nps, overview
from .rfm import rfm_sql, rfm_summary

__all__ = ["rfm_summary", "rfm_sql", "cohort_retention", "kpis", "nps", "activity_sql", "overview"]
