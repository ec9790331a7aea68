"""Segments and tiers: rule-based parts of the relationship table, one module per concept.

They take and return DataFrames and know no model: RFM scores and named segments (``rfm``),
value tiers (``tiers``), lifecycle stages (``lifecycle``), the action playbook (``playbook``),
retention targeting (``targeting``), transitions between as-of dates (``transitions``) and
KPIs by group (``kpis``).
"""

from .kpis import kpis_by
from .lifecycle import STAGES, lifecycle_stages
from .playbook import PLAYBOOK, playbook_table, recommend_actions
from .rfm import SEGMENT_RULES, rfm_scores, rfm_segments, segment_rules
from .targeting import target_list
from .tiers import DEFAULT_TIER_SHARES, TIERS, tier_bounds, tier_report, value_tiers
from .transitions import transitions

__all__ = [
    "rfm_scores",
    "SEGMENT_RULES",
    "rfm_segments",
    "value_tiers",
    "tier_report",
    "DEFAULT_TIER_SHARES",
    "TIERS",
    "STAGES",
    "lifecycle_stages",
    "PLAYBOOK",
    "recommend_actions",
    "kpis_by",
    "target_list",
    "transitions",
    "segment_rules",
    "playbook_table",
    "tier_bounds",
]
