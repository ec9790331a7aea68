"""Models: BTYD purchase and spend models, contractual retention, CLV."""

from ._base import ConvergenceError, NotFittedError
from .btyd import BetaGeo, GammaGamma, ModifiedBetaGeo, ShiftedBetaGeometric
from .pareto import ParetoNBD

__all__ = ["BetaGeo", "ModifiedBetaGeo", "ParetoNBD", "GammaGamma", "ShiftedBetaGeometric", "ConvergenceError",
           "NotFittedError"]

from .clv import conditional_median_purchases, customer_lifetime_value  # noqa: E402

__all__ += ["customer_lifetime_value", "conditional_median_purchases"]
