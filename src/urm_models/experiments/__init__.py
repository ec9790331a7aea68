"""Decisions measured, not assumed: randomised campaigns, their analysis and planning, and the
policies that follow from measured effects (docs/architecture.md, "Campaigns and decisions").

``analysis`` (per-arm outcomes, lifts with intervals, several arms, sample-ratio mismatch,
covariate balance, regression adjustment), ``planning`` (sample size and minimum detectable
effect), ``campaign`` (a campaign from an assignment file and the data set's transactions:
features as of each send, outcomes after it) and ``policy`` (whom to contact with which arm,
and what a policy is worth on held-out users). The uplift models are
:class:`urm_models.models.UpliftModel`; their metrics and plots, :mod:`urm_models.evaluation.uplift`.
They take and return DataFrames and know no MLflow.
"""

from .analysis import ExperimentReport, adjusted_lift, analyze, arm_summary, balance, lift_table, srm_test
from .planning import minimum_detectable_effect, sample_size

__all__ = [
    "analyze",
    "ExperimentReport",
    "arm_summary",
    "lift_table",
    "adjusted_lift",
    "srm_test",
    "balance",
    "sample_size",
    "minimum_detectable_effect",
]
