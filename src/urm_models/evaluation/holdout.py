"""Holdout scores for purchase predictions: per-user errors and the aggregate error."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ..simulate import UNIT_DAYS


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


@dataclass
class InnerChoice:
    """What :func:`choose_on_inner_windows` chose and why: ``choice`` (a name of the candidates),
    ``table`` (per candidate: mean RMSE over the origins, its paired difference from the best
    with a standard error, ``tied`` with the best, and the number of origins it was validated
    on), the ``origins`` and the validation ``horizon`` (periods), and ``notes`` (candidates
    that could not be fitted at an origin, and why)."""

    choice: str
    table: pd.DataFrame
    origins: list
    horizon: float
    notes: list = field(default_factory=list)

    def describe(self, freq: str = "W") -> str:
        return (
            f"chosen on {len(self.origins)} inner window(s) of {self.horizon:g} {freq} inside the calibration "
            f"period (origins {', '.join(f'{o:%Y-%m-%d}' for o in self.origins)}): {self.choice}"
        )


def inner_origins(transactions, cutoff, horizon: float, freq: str = "W", n_origins: int = 3, min_users: int = 100):
    """The validation horizon and origins of :func:`choose_on_inner_windows`, from the data.

    The horizon is the holdout's (``horizon``), shortened until the latest origin ``cutoff -
    horizon`` is admissible: at least ``min_users`` users known there and the median of them at
    least ``horizon / 2`` periods old (a cohort much younger than the window it should predict
    says little about it). Further origins step back a quarter of the horizon while they stay
    admissible, at most ``n_origins``. Raises ValueError (how much history is needed) when not
    even a 2-period window fits."""
    from ..features.churn import window_start

    cut = pd.Timestamp(cutoff).normalize()
    first = pd.to_datetime(transactions.groupby("user_id")["ts"].min()).dt.normalize()
    first = first[first <= cut]

    def admissible(origin, h):
        known = first[first <= origin]
        return len(known) >= min_users and ((origin - known).dt.days / UNIT_DAYS[freq]).median() >= h / 2

    h = int(np.floor(horizon))
    while h >= 2 and not admissible(window_start(cut, h, freq), h):
        h -= 1
    if h < 2:
        raise ValueError(
            f"too little history before {cut:%Y-%m-%d} to validate a purchase model inside the calibration "
            f"period: a window of even 2 {freq} needs {min_users} users known 2 {freq} before the cut-off and the "
            f"median of them at least 1 {freq} old ({len(first):,} users known at the cut-off); choose a later cut-off"
        )
    step = max(1, h // 4)
    origins = [window_start(cut, h + k * step, freq) for k in range(n_origins)]
    origins = [o for k, o in enumerate(origins) if k == 0 or admissible(o, h)]
    return float(h), origins


def choose_on_inner_windows(
    transactions, cutoff, candidates: dict, freq: str = "W", horizon: float = 13, n_origins: int = 3, z: float = 1.0
) -> InnerChoice:
    """The one rule that chooses a purchase model, without reading anything after ``cutoff``.

    Each candidate (``{name: estimator}``, simplest first: BTYD models fitted on an RFM summary,
    or a ``ShiftedWindowPurchases`` fitted on transactions and a cut-off) is fitted again at each
    inner origin inside the calibration period (:func:`inner_origins`: the holdout's horizon where
    the history allows) on the purchases up to it, predicts the next ``h`` periods, and is scored
    by RMSE against the purchases that followed (all before ``cutoff``). The candidate with the
    lowest mean squared error over the origins wins; one whose paired difference from it (per user
    and origin) is within ``z`` standard errors is a tie, and a tie goes to the simpler model
    (the earlier name). A candidate that cannot be fitted at an origin (``fit_candidates``'s
    penalizer fallback included) is not validated there; one validated nowhere cannot be chosen.
    The caller refits the choice on the whole calibration period (05 has every candidate fitted
    there already) and reports its untouched holdout."""
    from .. import features
    from ..models import fit_candidates

    cut = pd.Timestamp(cutoff).normalize()
    ts = pd.to_datetime(transactions["ts"])
    tx = transactions[ts.dt.normalize() <= cut]  # nothing after the cut-off is read below
    h, origins = inner_origins(tx, cut, horizon, freq, n_origins)
    errors = {n: [] for n in candidates}  # per origin: squared errors per user
    actual_all, notes = [], []
    for origin in origins:
        end = origin + pd.Timedelta(days=h * UNIT_DAYS[freq])
        rfm = features.rfm_summary(tx, origin, freq=freq, holdout_end=end)
        actual = rfm["frequency_holdout"].to_numpy(float)
        actual_all.append(actual)
        btyd = {n: e for n, e in candidates.items() if not hasattr(e, "activity_columns_") and _is_btyd(e)}
        fits = fit_candidates(btyd, rfm)
        for n, row in fits.notes.iterrows():
            if row.status != "fitted":
                notes.append(f"{origin:%Y-%m-%d} {n}: {row.status}: {row.reason}")
        for n, est in candidates.items():
            try:
                if n in btyd:
                    if n not in fits.models:
                        errors[n].append(None)
                        continue
                    pred = fits.models[n].conditional_expected_purchases(h, rfm).to_numpy(float)
                else:
                    from sklearn.base import clone

                    m = clone(est).fit(tx, origin)
                    pred = m.predict(tx, h).reindex(rfm.index).to_numpy(float)
            except (ValueError, ArithmeticError) as exc:
                notes.append(f"{origin:%Y-%m-%d} {n}: not validated: {str(exc).splitlines()[0][:300]}")
                errors[n].append(None)
                continue
            if not np.isfinite(pred).all():  # a fit at an extreme of its parameters: no number to judge
                notes.append(
                    f"{origin:%Y-%m-%d} {n}: not validated: {int((~np.isfinite(pred)).sum())} of "
                    f"{len(pred)} predictions are not finite"
                )
                errors[n].append(None)
                continue
            errors[n].append((pred - actual) ** 2)
    rows = {}
    mse = {}
    for n, per in errors.items():
        ok = [e for e in per if e is not None]
        rows[n] = {"origins_validated": len(ok)}
        mse[n] = np.mean([e.mean() for e in ok]) if len(ok) == len(origins) else np.inf
        rows[n]["rmse"] = float(np.sqrt(np.mean([e.mean() for e in ok]))) if ok else np.nan
    if not any(np.isfinite(v) for v in mse.values()):  # judge on the origins every candidate could be validated at
        common = [i for i in range(len(origins)) if all(errors[n][i] is not None for n in candidates)]
        if not common:
            raise ValueError(f"no candidate could be validated at every inner origin: {notes}")
        origins = [origins[i] for i in common]
        errors = {n: [errors[n][i] for i in common] for n in candidates}
        for n in candidates:
            rows[n]["origins_validated"] = len(common)
            mse[n] = np.mean([e.mean() for e in errors[n]])
            rows[n]["rmse"] = float(np.sqrt(mse[n]))
    best = min(mse, key=mse.get)
    for n in candidates:
        if not np.isfinite(mse[n]):
            rows[n].update(mse_difference=np.nan, std_error=np.nan, tied=False)
            continue
        diff = np.concatenate(
            [a - b for a, b in zip(errors[n], errors[best], strict=True)]
        )  # paired, per user and origin
        se = float(diff.std(ddof=1) / np.sqrt(len(diff))) if len(diff) > 1 else 0.0
        rows[n].update(mse_difference=float(diff.mean()), std_error=se, tied=bool(diff.mean() <= z * se))
    table = pd.DataFrame.from_dict(rows, orient="index")[
        ["rmse", "mse_difference", "std_error", "tied", "origins_validated"]
    ]
    choice = next(n for n in candidates if rows[n]["tied"])
    return InnerChoice(choice=choice, table=table, origins=origins, horizon=h, notes=notes)


def _is_btyd(estimator) -> bool:
    from ..models import ShiftedWindowPurchases

    return not isinstance(estimator, ShiftedWindowPurchases)


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


#: the length of a month and a quarter, in days (the calendar's average)
BLOCK_DAYS = {"month": 365.25 / 12, "quarter": 365.25 / 4}


def actual_cumulative(transactions, cutoff, horizon: float, freq: str = "W") -> np.ndarray:
    """Cumulative repeat purchase days after ``cutoff`` of the users known there, at the end of
    each of the periods ``1 .. floor(horizon)`` (same-day purchases one, as in the BTYD summary)."""
    cut = pd.Timestamp(cutoff).normalize()
    d = pd.DataFrame(
        {"user_id": transactions["user_id"].astype(str), "d": pd.to_datetime(transactions["ts"]).dt.normalize()}
    ).drop_duplicates()
    known = d.groupby("user_id")["d"].min() <= cut
    after = d[(d["d"] > cut) & d["user_id"].map(known)]
    n = int(np.floor(horizon))
    k = np.ceil((after["d"] - cut).dt.days / UNIT_DAYS[freq]).astype(int)
    counts = np.bincount(k[(k >= 1) & (k <= n)], minlength=n + 1)[1:]
    return np.cumsum(counts).astype(float)


def tracking_errors(
    cumulative: dict, actual: np.ndarray, freq: str = "W", block: str = "quarter", min_share: float = 0.5
) -> tuple[pd.DataFrame, pd.Series]:
    """Predicted against actual purchases per month or quarter of the holdout: ``cumulative`` holds
    each model's cumulative expected purchases at the end of periods ``1 .. len(actual)``
    (``freq`` units), ``actual`` the same from :func:`actual_cumulative`. Blocks start at the
    cut-off; a last block shorter than ``min_share`` of a full one is left out. Returns the table
    (one row per block: its last period, actual and each model's prediction) and each model's mean
    absolute percentage error over the blocks (MAPE)."""
    n = len(actual)
    size = BLOCK_DAYS[block] / UNIT_DAYS[freq]
    ends = [int(round(k * size)) for k in range(1, int(np.ceil(n / size)) + 1)]
    ends = [min(e, n) for e in ends]
    starts = [0, *ends[:-1]]
    keep = [(s, e) for s, e in zip(starts, ends, strict=True) if e > s and (e - s) >= min_share * size]

    def per_block(c):
        c = np.r_[0.0, np.asarray(c, float)[:n]]
        return np.array([c[e] - c[s] for s, e in keep])

    table = pd.DataFrame({"period_end": [e for _, e in keep], "actual": per_block(actual)})
    for name, c in cumulative.items():
        table[name] = per_block(c)
    counted = table["actual"] > 0
    # no block long enough (a holdout shorter than half a quarter) or none with a purchase: no MAPE (NaN)
    mape = pd.Series(
        {
            name: float(
                np.mean(np.abs(table.loc[counted, name] - table.loc[counted, "actual"]) / table.loc[counted, "actual"])
            )
            if counted.any()
            else float("nan")
            for name in cumulative
        },
        name=f"{block}ly_mape",
        dtype=float,
    )
    return table, mape
