"""MLflow pyfunc wrappers for models without a built-in flavour (imported only when logging)."""

from __future__ import annotations

import mlflow.pyfunc
import pandas as pd


class SurvivalPyfunc(mlflow.pyfunc.PythonModel):
    """Scores a SurvivalModel: ``p_churn`` within ``horizon`` and ``expected_remaining_lifetime``."""

    def __init__(self, model, horizon: float = 12.0):
        self.model = model
        self.horizon = float(horizon)

    def predict(self, context, model_input: pd.DataFrame, params=None) -> pd.DataFrame:
        return pd.DataFrame({
            "p_churn": self.model.churn_probability(model_input, self.horizon).to_numpy(),
            "expected_remaining_lifetime": self.model.expected_remaining_lifetime(model_input).to_numpy(),
        }, index=model_input.index)
