"""Holdout scores for purchase predictions: per-user errors and the aggregate error."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from .. import features, models
from ..core.units import FREQ, UNIT_DAYS
from ..features.churn import window_start
from ..models import ShiftedWindowPurchases, TimeVaryingParetoNBD, conditional_median_purchases, fit_candidates


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
    pool: dict = field(default_factory=dict)

    def describe(self, freq: str = FREQ) -> str:
        what = self.choice
        if self.choice == POOL:
            what += " (" + ", ".join(f"{w:.2f} x {n}" for n, w in self.pool.items()) + ")"
        return (
            f"chosen on {len(self.origins)} inner window(s) of {self.horizon:g} {freq} inside the calibration "
            f"period (origins {', '.join(f'{o:%Y-%m-%d}' for o in self.origins)}): {what}"
        )


def inner_origins(transactions, cutoff, horizon: float, freq: str = FREQ, n_origins: int = 3, min_users: int = 100):
    """The validation horizon and origins of :func:`choose_on_inner_windows`, from the data.

    The horizon is the holdout's (``horizon``), shortened until the latest origin ``cutoff -
    horizon`` is admissible: at least ``min_users`` users known there and the median of them at
    least ``horizon / 2`` periods old (a cohort much younger than the window it should predict
    says little about it). Further origins step back a quarter of the horizon while they stay
    admissible, at most ``n_origins``. Raises ValueError (how much history is needed) when not
    even a 2-period window fits."""
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


@dataclass
class InnerWindows:
    """Every candidate's forecasts at the inner origins of :func:`inner_predictions`:
    ``origins``, the ``horizon`` (periods), per origin the users known there (``users``) and
    their repeat purchases in the next ``horizon`` periods (``actual``), and per candidate one
    array of mean forecasts per origin (``None`` where it could not be fitted or its forecasts
    are not finite: ``notes`` says why)."""

    origins: list
    horizon: float
    users: list
    actual: list
    predictions: dict
    notes: list = field(default_factory=list)
    btyd: list = field(default_factory=list)  # the candidates fitted on an RFM summary (the BTYD models)
    pool: dict = field(default_factory=dict)  # the pool's weights, when one was added (add_pool)


def inner_predictions(
    transactions, cutoff, candidates: dict, freq: str = FREQ, horizon: float = 13, n_origins: int = 3
) -> InnerWindows:
    """Each candidate (``{name: estimator}``: BTYD models fitted on an RFM summary, or models
    fitted on transactions and a cut-off such as ``ShiftedWindowPurchases``) fitted again at
    each inner origin inside the calibration period (:func:`inner_origins`) on the purchases up
    to it, exactly as it is fitted at the cut-off, and its mean forecast of the next ``h``
    periods, beside the purchases that followed (all before ``cutoff``: nothing after it is
    read)."""
    cut = pd.Timestamp(cutoff).normalize()
    ts = pd.to_datetime(transactions["ts"])
    tx = transactions[ts.dt.normalize() <= cut]  # nothing after the cut-off is read below
    h, origins = inner_origins(tx, cut, horizon, freq, n_origins)
    out = InnerWindows(
        origins=origins,
        horizon=h,
        users=[],
        actual=[],
        predictions={n: [] for n in candidates},
        btyd=[n for n, e in candidates.items() if _is_btyd(e)],
    )
    for origin in origins:
        end = origin + pd.Timedelta(days=h * UNIT_DAYS[freq])
        rfm = features.rfm_summary(tx, origin, freq=freq, holdout_end=end)
        out.users.append(rfm.index)
        out.actual.append(rfm["frequency_holdout"].to_numpy(float))
        btyd = {n: e for n, e in candidates.items() if _is_btyd(e)}
        fits = fit_candidates(btyd, rfm)
        for n, row in fits.notes.iterrows():
            if row.status != "fitted":
                out.notes.append(f"{origin:%Y-%m-%d} {n}: {row.status}: {row.reason}")
        for n, est in candidates.items():
            pred = None
            try:
                if n in btyd:
                    if n in fits.models:
                        pred = fits.models[n].conditional_expected_purchases(h, rfm).to_numpy(float)
                else:  # fitted on transactions and a date, with the same fallback as at the cut-off
                    fit = fit_candidates({n: est}, tx, origin)
                    if fit.notes.loc[n, "status"] != "fitted":
                        out.notes.append(
                            f"{origin:%Y-%m-%d} {n}: {fit.notes.loc[n, 'status']}: {fit.notes.loc[n, 'reason']}"
                        )
                    if n in fit.models:
                        pred = fit.models[n].predict(tx, h).reindex(rfm.index).to_numpy(float)
            except (ValueError, ArithmeticError) as exc:
                out.notes.append(f"{origin:%Y-%m-%d} {n}: not validated: {str(exc).splitlines()[0][:300]}")
            if pred is not None and not np.isfinite(pred).all():  # a fit at an extreme of its parameters
                out.notes.append(
                    f"{origin:%Y-%m-%d} {n}: not validated: {int((~np.isfinite(pred)).sum())} of "
                    f"{len(pred)} predictions are not finite"
                )
                pred = None
            out.predictions[n].append(pred)
    return out


#: the name of the linear pool among the candidates (``models.LinearPool``)
POOL = "LinearPool"


def choose_on_inner_windows(
    transactions,
    cutoff,
    candidates: dict,
    freq: str = FREQ,
    horizon: float = 13,
    n_origins: int = 3,
    z: float = 1.0,
    pool: bool = True,
) -> InnerChoice:
    """The one rule that chooses a purchase model, without reading anything after ``cutoff``.

    Each candidate (``{name: estimator}``, simplest first) is validated by
    :func:`inner_predictions` (refitted at inner origins inside the calibration period, the
    holdout's horizon where the history allows); with ``pool`` the linear pool of the BTYD choice
    and the best other model joins them, last (:func:`add_pool`: its weight cross-fitted on the
    same windows), and the forecasts are judged by :func:`decide_on_inner_windows`. The caller
    refits the choice on the whole calibration period (05 has every candidate fitted there
    already; a pool is ``models.LinearPool`` of two of them with ``InnerChoice.pool``'s weights)
    and reports its untouched holdout."""
    windows = inner_predictions(transactions, cutoff, candidates, freq, horizon, n_origins)
    return decide_on_inner_windows(add_pool(windows, z) if pool else windows, z)


def seasons_first(candidates: dict, seasonal: str, plain: str, level: float = 0.01) -> tuple[dict, str]:
    """The candidates in the order of the tie rule, the seasonal model first when the data reject
    the same model without seasons: ``seasonal`` (a ``TimeVaryingParetoNBD`` with a season
    calendar) and ``plain`` (the ``ParetoNBD`` fitted on the same purchases: its special case with
    every season coefficient 0) are nested, so a likelihood-ratio test on the calibration period
    (chi-squared with as many degrees of freedom as coefficients) says whether the seasons are
    more than noise. Rejected at ``level``: the seasons are part of the simplest model the data
    allow, and the seasonal model goes first; else the order is kept (it comes after the others).
    Per-user errors over a year barely see when in the year purchases fall, which is what the
    calendar is for. Returns the order and the reason."""
    from scipy import stats

    if seasonal not in candidates or plain not in candidates:
        return candidates, "no seasonal model to test"
    tv, pn = candidates[seasonal], candidates[plain]
    df = len(tv.params_) - len(pn.params_)
    stat = 2.0 * (tv.log_likelihood_ - pn.log_likelihood_)
    p = float(stats.chi2.sf(max(stat, 0.0), df)) if df > 0 else 1.0
    why = f"likelihood ratio {stat:.1f} on {df} degrees of freedom against {plain}: p = {p:.2g}"
    if p < level:
        return {seasonal: candidates[seasonal], **{n: m for n, m in candidates.items() if n != seasonal}}, (
            f"{why}: the seasons are not noise; {seasonal} first in the order of the tie rule"
        )
    return candidates, f"{why}: no evidence of the seasons at {level:g}; {seasonal} keeps its place"


def _user_halves(users: pd.Index) -> np.ndarray:
    """0 or 1 per user by a hash of the id: the same user in the same half at every origin."""
    return (pd.util.hash_array(np.asarray(users.astype(str), object)) % 2).astype(int)


def pool_weight(flexible: np.ndarray, simple: np.ndarray, actual: np.ndarray) -> float:
    """The weight ``w`` in [0, 1] of ``w flexible + (1 - w) simple`` with the least squared error."""
    d, e = flexible - simple, actual - simple
    den = float(d @ d)
    return float(np.clip((d @ e) / den, 0.0, 1.0)) if den > 0 else 0.0


def add_pool(windows: InnerWindows, z: float = 1.0) -> InnerWindows:
    """The inner windows with one more candidate, :data:`POOL`: the linear pool ``w flexible + (1 -
    w) simple`` of the BTYD model the rule would choose among the BTYD models alone (``simple``) and
    the other candidate (the shifted-window model, a model with a season calendar) with the lowest
    inner error (``flexible``), each validated at every origin. ``w`` minimises the squared error
    over every user and origin (``windows.pool`` records it); the pool's inner forecasts, by which
    it is judged beside the others, are cross-fitted: the users are split in two halves by a hash
    of their ids and each half is forecast with the weight fitted on the other, so the pool gains
    nothing from fitting its weight on the rows it is judged on. Unchanged when there is no model
    of each kind to pool."""
    full = [n for n, per in windows.predictions.items() if all(p is not None for p in per)]
    btyd = [n for n in full if n in windows.btyd]
    other = [n for n in full if n not in windows.btyd and n != POOL]
    if not btyd or not other:
        return windows
    sub = InnerWindows(
        windows.origins, windows.horizon, windows.users, windows.actual, {n: windows.predictions[n] for n in btyd}
    )
    simple = decide_on_inner_windows(sub, z).choice
    a = np.concatenate(windows.actual)

    def stacked(n):
        return np.concatenate(windows.predictions[n])

    flexible = min(other, key=lambda n: float(np.mean((stacked(n) - a) ** 2)))
    f, s = stacked(flexible), stacked(simple)
    half = np.concatenate([_user_halves(u) for u in windows.users])
    pooled = np.empty(len(a))
    for j in (0, 1):
        w_j = pool_weight(f[half != j], s[half != j], a[half != j])
        pooled[half == j] = w_j * f[half == j] + (1.0 - w_j) * s[half == j]
    w = pool_weight(f, s, a)
    bounds = np.cumsum([0, *[len(x) for x in windows.actual]])
    predictions = {**windows.predictions, POOL: [pooled[i:j] for i, j in zip(bounds[:-1], bounds[1:], strict=True)]}
    return InnerWindows(
        windows.origins,
        windows.horizon,
        windows.users,
        windows.actual,
        predictions,
        list(windows.notes),
        list(windows.btyd),
        {flexible: w, simple: 1.0 - w},
    )


def decide_on_inner_windows(windows: InnerWindows, z: float = 1.0) -> InnerChoice:
    """The decision of :func:`choose_on_inner_windows` from the candidates' inner forecasts
    (:func:`inner_predictions`; the candidates in ``windows.predictions``' order, simplest first):
    the lowest mean squared error over the origins wins; a candidate whose paired difference from
    it (per user and origin) is within ``z`` standard errors is a tie, and a tie goes to the
    simpler model (the earlier name). A candidate not validated at an origin is judged on the
    origins every candidate could be validated at when no candidate was validated at all."""
    origins, notes = list(windows.origins), list(windows.notes)
    names = list(windows.predictions)
    errors = {
        n: [None if p is None else (p - a) ** 2 for p, a in zip(windows.predictions[n], windows.actual, strict=True)]
        for n in names
    }
    rows, mse = {}, {}
    for n, per in errors.items():
        ok = [e for e in per if e is not None]
        rows[n] = {"origins_validated": len(ok)}
        mse[n] = np.mean([e.mean() for e in ok]) if len(ok) == len(origins) else np.inf
        rows[n]["rmse"] = float(np.sqrt(np.mean([e.mean() for e in ok]))) if ok else np.nan
    if not any(np.isfinite(v) for v in mse.values()):  # judge on the origins every candidate could be validated at
        common = [i for i in range(len(origins)) if all(errors[n][i] is not None for n in names)]
        if not common:
            raise ValueError(f"no candidate could be validated at every inner origin: {notes}")
        origins = [origins[i] for i in common]
        errors = {n: [errors[n][i] for i in common] for n in names}
        for n in names:
            rows[n]["origins_validated"] = len(common)
            mse[n] = np.mean([e.mean() for e in errors[n]])
            rows[n]["rmse"] = float(np.sqrt(mse[n]))
    best = min(mse, key=mse.get)
    for n in names:
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
    choice = next(n for n in names if rows[n]["tied"])
    if windows.pool:
        table["pool_weight"] = pd.Series(windows.pool).reindex(table.index)
    return InnerChoice(
        choice=choice, table=table, origins=origins, horizon=windows.horizon, notes=notes, pool=dict(windows.pool)
    )


def _is_btyd(estimator) -> bool:
    """Whether a candidate is fitted on an RFM summary (the BTYD models) rather than on
    transactions and a cut-off."""
    return not isinstance(estimator, (ShiftedWindowPurchases, TimeVaryingParetoNBD))


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
    if statistic == "mean":
        return model.conditional_expected_purchases(t, rfm)
    if statistic == "median":
        return conditional_median_purchases(model, t, rfm)
    raise ValueError(f"statistic must be 'mean' or 'median', not {statistic!r}")


def select_on_validation(
    transactions: pd.DataFrame,
    cutoff,
    freq: str = FREQ,
    validation_periods: float = 13,
    candidates=CANDIDATES,
    metric: str = "mae",
) -> tuple[tuple[str, str], pd.DataFrame]:
    """Pick a purchase predictor without touching the holdout.

    The calibration period is split: models are fitted up to ``cutoff - validation_periods``
    and scored on the remaining calibration weeks. Returns the best (model, statistic) by
    ``metric`` and the validation table.
    """
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


def actual_cumulative(transactions, cutoff, horizon: float, freq: str = FREQ) -> np.ndarray:
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
    cumulative: dict, actual: np.ndarray, freq: str = FREQ, block: str = "quarter", min_share: float = 0.5
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
