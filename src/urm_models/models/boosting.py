"""The settings of the gradient-boosted trees (XGBoost) that the churn classifier, the uplift
learners and the shifted-window purchase model grow: one object, passed whole as each model's
``boosting`` hyper-parameter, instead of the same nine keywords in every signature.

Each model keeps its own default (:data:`CHURN`, :data:`UPLIFT`, :data:`SHIFTED`), decided here:
the three fit different data (a few thousand customers with a dozen attributes; a randomised
campaign's 64,000 users where the effect is small; tens of thousands of user-windows of counts)
and were tuned on it (docs/benchmarks.md).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields


@dataclass(frozen=True)
class BoostingOptions:
    """How the boosters grow. ``n_estimators`` is an upper bound when early stopping is on
    (``early_stopping_rounds`` rounds without improvement on a held-out ``validation_fraction``
    of the rows end it; None: every tree is grown). The rest are XGBoost's parameters of the
    same names: ``learning_rate`` (shrinkage), ``max_depth``, ``min_child_weight`` (the least
    hessian a leaf holds), ``subsample`` and ``colsample_bytree`` (row and column shares per
    tree), ``reg_lambda`` (L2 penalty on leaf weights).

    Frozen: a model's default is shared, so a change is a new object
    (``dataclasses.replace(model.boosting, max_depth=4)``)."""

    n_estimators: int = 2000
    learning_rate: float = 0.05
    max_depth: int = 3
    min_child_weight: float = 5.0
    subsample: float = 0.8
    colsample_bytree: float = 0.3
    reg_lambda: float = 5.0
    early_stopping_rounds: int | None = 50
    validation_fraction: float = 0.2

    def __post_init__(self):
        if not (isinstance(self.n_estimators, int) and self.n_estimators >= 1):
            raise ValueError(f"n_estimators must be a whole number of trees >= 1, not {self.n_estimators!r}")
        for name in ("subsample", "colsample_bytree"):
            if not 0 < getattr(self, name) <= 1:
                raise ValueError(f"{name} must lie in (0, 1], not {getattr(self, name)!r}")
        if not 0 < self.validation_fraction < 1:
            raise ValueError(f"validation_fraction must lie in (0, 1), not {self.validation_fraction!r}")
        if self.early_stopping_rounds is not None and self.early_stopping_rounds < 1:
            raise ValueError(f"early_stopping_rounds must be >= 1 or None, not {self.early_stopping_rounds!r}")

    def xgb_params(self, n_estimators: int | None = None) -> dict:
        """XGBoost's keyword arguments for the trees (``n_estimators`` overrides the bound, for
        a refit at the number early stopping chose); early stopping is the caller's."""
        out = {k: v for k, v in asdict(self).items() if k not in ("early_stopping_rounds", "validation_fraction")}
        if n_estimators is not None:
            out["n_estimators"] = n_estimators
        return out


def from_state(state: dict, default: BoostingOptions) -> dict:
    """A model pickled before the settings were one object (its nine attributes in its
    ``__dict__``), given its ``boosting``: what ``__setstate__`` reads, so that champions
    registered before keep loading and cloning."""
    if "boosting" not in state:
        names = [f.name for f in fields(BoostingOptions)]
        given = {n: state.pop(n) for n in names if n in state}
        state["boosting"] = BoostingOptions(**{**asdict(default), **given})
    return state


#: ChurnClassifier: shallow trees on a few columns each, many bags, early stopping
CHURN = BoostingOptions()
#: UpliftModel: stumps-and-pairs on every feature, lightly regularised (a small effect on many users)
UPLIFT = BoostingOptions(
    max_depth=2, min_child_weight=1.0, subsample=1.0, colsample_bytree=1.0, reg_lambda=1.0, early_stopping_rounds=100
)
#: ShiftedWindowPurchases: a fixed number of trees on many user-windows (no early stopping)
SHIFTED = BoostingOptions(
    n_estimators=400,
    learning_rate=0.03,
    max_depth=4,
    min_child_weight=100.0,
    subsample=0.8,
    colsample_bytree=0.8,
    reg_lambda=1.0,
    early_stopping_rounds=None,
)

__all__ = ["BoostingOptions", "CHURN", "UPLIFT", "SHIFTED"]
