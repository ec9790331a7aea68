"""Models: BTYD purchase and spend models, contractual retention, churn classifiers, CLV.

Every model class is a row of :mod:`urm_models.models.registry` and is imported from its module
when first used (``from urm_models.models import ParetoNBD``): a notebook or job that fits only
BTYD models does not pay for XGBoost, scikit-learn pipelines or lifelines. A new model is its
module, its row in the registry and its tests; nothing here names it.
"""

from importlib import import_module

from ..core.errors import ConvergenceError
from . import registry
from ._base import ModelWarning, NotFittedError
from .boosting import BoostingOptions
from .candidates import CandidateFits, fit_candidates
from .clv import CLVScorer, ConstantSpend, conditional_median_purchases, customer_lifetime_value, spend_model_for
from .pool import LinearPool

#: what the package offers beside the models' classes (the registry's), imported when first used
_LAZY = {"contractual_clv": ".survival"}

__all__ = [
    *registry.MODELS,
    "contractual_clv",
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
    if name in registry.MODELS:
        value = registry.MODELS[name].cls
    elif name in _LAZY:
        value = getattr(import_module(_LAZY[name], __name__), name)
    else:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    globals()[name] = value
    return value
