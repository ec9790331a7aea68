"""Holdout scores for purchase predictions: per-user errors and the aggregate error."""

from __future__ import annotations

import numpy as np
import pandas as pd


def purchase_metrics(predicted, actual) -> dict:
    """Per-user MAE and RMSE, and aggregate predicted vs actual purchases.

    ``aggregate_error`` is (predicted - actual) / actual over all users: negative means
    under-prediction.
    """
    p = np.asarray(predicted, float)
    a = np.asarray(actual, float)
    if p.shape != a.shape:
        raise ValueError(f"predicted has {p.shape[0]} rows, actual {a.shape[0]}")
    if not np.isfinite(p).all():
        raise ValueError(f"{int((~np.isfinite(p)).sum())} predictions are not finite")
    total_a, total_p = float(a.sum()), float(p.sum())
    return {
        "mae": float(np.mean(np.abs(p - a))),
        "rmse": float(np.sqrt(np.mean((p - a) ** 2))),
        "predicted_total": total_p,
        "actual_total": total_a,
        "aggregate_error": (total_p - total_a) / total_a if total_a else float("nan"),
    }


def naive_baselines(rfm: pd.DataFrame, t: float) -> dict[str, pd.Series]:
    """Predict zero for everyone; carry each user's calibration repeat rate (x / T) forward."""
    zero = pd.Series(0.0, index=rfm.index, name="zero")
    rate = rfm["frequency"] / rfm["T"].where(rfm["T"] > 0)
    carry = (rate.fillna(0.0) * t).rename("carry_forward_rate")
    return {"zero": zero, "carry_forward_rate": carry}


def holdout_table(predictions: dict[str, pd.Series], actual: pd.Series) -> pd.DataFrame:
    """One row of :func:`purchase_metrics` per predictor, best MAE first."""
    rows = {name: purchase_metrics(pred.reindex(actual.index), actual) for name, pred in predictions.items()}
    return pd.DataFrame(rows).T.sort_values("mae")


def choose_purchase_model(comparison: pd.DataFrame, names, rtol: float = 1e-4) -> str:
    """The one rule that chooses the CLV model's purchase model: among ``names`` the one whose
    mean (row ``"<name> mean"`` of :func:`holdout_table`) has the lowest holdout RMSE, the
    metric the registry ranks CLV models by. RMSEs within ``rtol`` (relative) of the lowest are a
    tie, which goes to the earlier name: list the simpler models first (Gamma-Gompertz/NBD at
    its Pareto/NBD limit differs from Pareto/NBD in the seventh digit)."""
    names = list(names)
    missing = [n for n in names if f"{n} mean" not in comparison.index]
    if not names or missing:
        raise ValueError(
            f"the holdout table has no mean prediction of {missing or 'any model'}; its rows: {list(comparison.index)}"
        )
    rmse = np.array([float(comparison.loc[f"{n} mean", "rmse"]) for n in names])
    return names[int(np.flatnonzero(rmse <= rmse.min() * (1.0 + rtol))[0])]


def covariate_table(models: dict, rfm: pd.DataFrame, covariates: list[str], t: float):
    """Each fitted purchase model (``{name: model}``) beside the same model refitted with
    ``covariates`` on both its purchase and its dropout process: in-sample log-likelihood and
    AIC, and the holdout errors of expected purchases over ``t`` periods.

    Returns the table (rows ``<name>`` and ``<name> + covariates``) and the refitted models.
    """
    rows, refitted = {}, {}
    for name, m in models.items():
        cov = type(m)(purchase_covariates=covariates, dropout_covariates=covariates, penalizer=m.penalizer).fit(rfm)
        refitted[name] = cov
        for label, model in ((name, m), (f"{name} + covariates", cov)):
            pred = model.conditional_expected_purchases(t, rfm)
            rows[label] = {
                "log_likelihood": model.log_likelihood_,
                "aic": model.aic_,
                **purchase_metrics(pred, rfm["frequency_holdout"]),
            }
    return pd.DataFrame(rows).T, refitted


#: Predictors considered by :func:`select_on_validation`: (model class name, statistic).
CANDIDATES = (
    ("BetaGeo", "mean"),
    ("BetaGeo", "median"),
    ("ModifiedBetaGeo", "mean"),
    ("ModifiedBetaGeo", "median"),
    ("ParetoNBD", "mean"),
    ("ParetoNBD", "median"),
)


def predict_purchases(model, statistic: str, t: float, rfm: pd.DataFrame) -> pd.Series:
    """The model's predictive mean or median of purchases in the next ``t`` periods."""
    from ..models import conditional_median_purchases

    if statistic == "mean":
        return model.conditional_expected_purchases(t, rfm)
    if statistic == "median":
        return conditional_median_purchases(model, t, rfm)
    raise ValueError(f"statistic must be 'mean' or 'median', not {statistic!r}")


def select_on_validation(
    transactions: pd.DataFrame,
    cutoff,
    freq: str = "W",
    validation_periods: float = 13,
    candidates=CANDIDATES,
    metric: str = "mae",
) -> tuple[tuple[str, str], pd.DataFrame]:
    """Pick a purchase predictor without touching the holdout.

    The calibration period is split: models are fitted up to ``cutoff - validation_periods``
    and scored on the remaining calibration weeks. Returns the best (model, statistic) by
    ``metric`` and the validation table.
    """
    from .. import features, models
    from ..simulate import UNIT_DAYS

    cut = pd.Timestamp(cutoff)
    inner = cut - pd.Timedelta(days=float(validation_periods) * UNIT_DAYS[freq])
    rfm = features.rfm_summary(transactions, cutoff=inner, freq=freq, holdout_end=cut)
    t = float(rfm["duration_holdout"].iloc[0])
    fitted, preds = {}, {}
    for cls_name, stat in candidates:
        if cls_name not in fitted:
            fitted[cls_name] = getattr(models, cls_name)().fit(rfm)
        preds[f"{cls_name} {stat}"] = predict_purchases(fitted[cls_name], stat, t, rfm)
    table = holdout_table(preds, rfm["frequency_holdout"]).sort_values(metric)
    best = table.index[0]
    cls_name, stat = best.rsplit(" ", 1)
    return (cls_name, stat), table
