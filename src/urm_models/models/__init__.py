"""Models: BTYD purchase and spend models, contractual retention, churn classifiers, CLV.

The churn classifier and the uplift model (scikit-learn, XGBoost) and the survival models (lifelines) are imported
when first used, so that a notebook or job that fits only BTYD models does not pay for them.
"""

from importlib import import_module

from ..core.errors import ConvergenceError
from ._base import ModelWarning, NotFittedError
from .bgbb import BetaGeoBetaBinom
from .boosting import BoostingOptions
from .btyd import BetaGeo, GammaGamma, ModifiedBetaGeo, ShiftedBetaGeometric
from .candidates import CandidateFits, fit_candidates
from .clv import CLVScorer, ConstantSpend, conditional_median_purchases, customer_lifetime_value, spend_model_for
from .dynamic import TimeVaryingParetoNBD
from .gompertz import GammaGompertzNBD
from .pareto import ParetoNBD
from .pool import LinearPool

_LAZY = {
    "ChurnClassifier": ".churn",
    "SurvivalModel": ".survival",
    "contractual_clv": ".survival",
    "ShiftedWindowPurchases": ".shifted",
    "UpliftModel": ".uplift",
}

__all__ = [
    "ChurnClassifier",
    "SurvivalModel",
    "contractual_clv",
    "BetaGeo",
    "ModifiedBetaGeo",
    "ParetoNBD",
    "GammaGompertzNBD",
    "TimeVaryingParetoNBD",
    "BetaGeoBetaBinom",
    "ShiftedWindowPurchases",
    "UpliftModel",
    "GammaGamma",
    "ShiftedBetaGeometric",
    "ConvergenceError",
    "ModelWarning",
    "NotFittedError",
    "customer_lifetime_value",
    "conditional_median_purchases",
    "CLVScorer",
    "ConstantSpend",
    "spend_model_for",
    "CandidateFits",
    "fit_candidates",
    "LinearPool",
    "BoostingOptions",
]


def __getattr__(name: str):
    if name in _LAZY:
        value = getattr(import_module(_LAZY[name], __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
