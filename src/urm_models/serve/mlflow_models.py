"""MLflow pyfunc wrappers for models without a built-in flavour (imported only when logging)."""

from __future__ import annotations

import mlflow.pyfunc
import numpy as np
import pandas as pd


class SurvivalPyfunc(mlflow.pyfunc.PythonModel):
    """Scores a SurvivalModel: ``p_churn`` within ``horizon``, ``expected_remaining_lifetime``
    and, with ``charge_col``, the contractual ``clv`` over ``clv_horizon`` periods and its
    ``value_at_risk``: the discounted charges of the same horizon lost if the customer leaves
    (every period's charge for a customer who stays, less ``clv``)."""

    def __init__(
        self,
        model,
        horizon: float = 12.0,
        charge_col: str | None = None,
        clv_horizon: int = 24,
        discount_rate: float = 0.01,
        margin: float = 1.0,
    ):
        self.model = model
        self.horizon = float(horizon)
        self.charge_col = charge_col
        self.clv_horizon = int(clv_horizon)
        self.discount_rate = float(discount_rate)
        self.margin = float(margin)

    def predict(self, context, model_input: pd.DataFrame, params=None) -> pd.DataFrame:
        # lazy: lifelines costs ~0.4 s; the CLV and uplift wrappers unpickled beside this one do not need it
        from ..models.survival import contractual_clv

        out = pd.DataFrame(
            {
                "p_churn": self.model.churn_probability(model_input, self.horizon).to_numpy(),
                "expected_remaining_lifetime": self.model.expected_remaining_lifetime(model_input).to_numpy(),
            },
            index=model_input.index,
        )
        if getattr(self, "charge_col", None):
            out["clv"] = contractual_clv(
                self.model, model_input, self.charge_col, self.clv_horizon, self.margin, self.discount_rate
            ).to_numpy()
            k = np.arange(1, self.clv_horizon + 1, dtype=float)
            retained = (
                model_input[self.charge_col].to_numpy(float)
                * self.margin
                * float(np.sum((1.0 + self.discount_rate) ** -k))
            )
            out["value_at_risk"] = np.maximum(retained - out["clv"].to_numpy(), 0.0)
        return out


class CLVPyfunc(mlflow.pyfunc.PythonModel):
    """Scores an RFM table with a :class:`~urm_models.models.CLVScorer`."""

    def __init__(self, scorer):
        self.scorer = scorer

    def predict(self, context, model_input: pd.DataFrame, params=None) -> pd.DataFrame:
        return self.scorer.predict(model_input)


class UpliftPyfunc(mlflow.pyfunc.PythonModel):
    """Scores users' pre-campaign features with an :class:`~urm_models.experiments.policy.UpliftPolicy`:
    effects and incremental values per arm, the recommended arm and its expected value."""

    def __init__(self, policy):
        self.policy = policy

    def predict(self, context, model_input: pd.DataFrame, params=None) -> pd.DataFrame:
        return self.policy.predict(model_input)
