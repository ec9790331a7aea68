"""Models: BTYD purchase and spend models, contractual retention, CLV."""

from ._base import ConvergenceError, NotFittedError
from .btyd import BetaGeo, GammaGamma, ModifiedBetaGeo, ShiftedBetaGeometric
from .churn import ChurnClassifier
from .pareto import ParetoNBD
from .survival import SurvivalModel, contractual_clv

__all__ = ["ChurnClassifier", "SurvivalModel", "contractual_clv", "BetaGeo", "ModifiedBetaGeo", "ParetoNBD", "GammaGamma", "ShiftedBetaGeometric", "ConvergenceError",
           "NotFittedError"]

from .clv import CLVScorer, conditional_median_purchases, customer_lifetime_value  # noqa: E402

__all__ += ["customer_lifetime_value", "conditional_median_purchases", "CLVScorer"]
