"""Scores, cross-validation, calibration and cost-based thresholds for churn classifiers."""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from sklearn.base import clone
from sklearn.metrics import average_precision_score, brier_score_loss, log_loss, roc_auc_score
from sklearn.model_selection import StratifiedKFold

from .. import features
from ..core.units import FREQ
from ..models import fit_candidates


def lift_at(y, p, share: float = 0.1) -> tuple[float, float]:
    """(lift, capture rate) in the top ``share`` of users ranked by ``p``.

    Lift = churn rate in the top share / overall churn rate; capture = share of all churners
    found there. Ties at the boundary are broken by order (stable sort).
    """
    y = np.asarray(y, float)
    p = np.asarray(p, float)
    n_top = max(1, int(round(share * len(y))))
    top = np.argsort(-p, kind="stable")[:n_top]
    rate = y.mean()
    caught = y[top].sum()
    return float(y[top].mean() / rate) if rate > 0 else float("nan"), float(caught / y.sum()) if y.sum() else float(
        "nan"
    )


def classification_metrics(y, p) -> dict:
    """ROC-AUC, PR-AUC (average precision), Brier score, log loss, lift and capture at 10%."""
    y = np.asarray(y, int)
    p = np.clip(np.asarray(p, float), 1e-15, 1 - 1e-15)
    lift, capture = lift_at(y, p, 0.1)
    return {
        "roc_auc": float(roc_auc_score(y, p)),
        "pr_auc": float(average_precision_score(y, p)),
        "brier": float(brier_score_loss(y, p)),
        "log_loss": float(log_loss(y, p)),
        "lift_10": lift,
        "capture_10": capture,
    }


def cross_validate(
    estimator, X: pd.DataFrame, y, n_splits: int = 5, seed: int = 0, uncalibrated: bool = False
) -> tuple[pd.DataFrame, np.ndarray]:
    """Stratified k-fold CV with a fixed seed: per-fold metrics and the out-of-fold predictions.

    With ``uncalibrated=True`` the estimator's ``predict_proba_uncalibrated`` is scored as well
    (columns suffixed ``_uncalibrated``).
    """
    y = np.asarray(y)
    skf = StratifiedKFold(n_splits=n_splits, shuffle=True, random_state=seed)
    rows, oof = [], np.zeros(len(y))
    for fold, (tr, te) in enumerate(skf.split(X, y)):
        est = clone(estimator).fit(X.iloc[tr], y[tr])
        p = est.predict_proba(X.iloc[te])[:, 1]
        oof[te] = p
        row = {"fold": fold, **classification_metrics(y[te], p)}
        if uncalibrated:
            pu = est.predict_proba_uncalibrated(X.iloc[te])[:, 1]
            row.update({f"{k}_uncalibrated": v for k, v in classification_metrics(y[te], pu).items()})
        rows.append(row)
    return pd.DataFrame(rows).set_index("fold"), oof


def _saved(y, p, value_saved: float, success_rate: float | None, effect) -> tuple[np.ndarray, np.ndarray, str]:
    """Per user, in the order of ``p`` (highest first): the value a contact adds, and the basis."""
    y = np.asarray(y, float)
    p = np.asarray(p, float)
    order = np.argsort(-p, kind="stable")
    value_saved = np.broadcast_to(np.asarray(value_saved, float), y.shape)[order]  # one value or each user's
    if effect is not None:
        eff = np.asarray(effect, float)
        if eff.shape != y.shape or not np.isfinite(eff).all():
            raise ValueError(f"effect must give a finite measured effect for each of the {len(y)} users")
        # measured: the probability a contact keeps this user (a randomised campaign's uplift), churner or not
        return eff[order] * value_saved, order, "measured effect per user (a randomised campaign's uplift model)"
    if success_rate is None:
        raise ValueError(
            "give a measured effect per user (effect=, from a campaign's uplift model) or an assumed success_rate="
        )
    if not 0 <= success_rate <= 1:
        raise ValueError(f"success_rate must lie in [0, 1], got {success_rate}")
    return (
        y[order] * success_rate * value_saved,
        order,
        f"assumed: a contact keeps {success_rate:.0%} of churners, the same for everyone (not measured)",
    )


def choose_threshold(
    y, p, cost_per_contact: float, value_saved: float, success_rate: float | None = None, *, effect=None
) -> dict:
    """The score threshold that maximises the realised value of contacting users above it.

    Contacting a user costs ``cost_per_contact``; a kept user is worth ``value_saved`` (one
    number, or each user's own value, such as their CLV, in the order of ``y``). What a
    contact keeps is **measured** where a randomised campaign measured it (``effect``: each
    user's effect of the contact on staying, from an uplift model) or **assumed** (``success_rate``:
    a contacted churner is kept with this probability, the same for everyone); the result's
    ``basis`` says which. With an assumed rate the expected-value rule would contact when ``p *
    success_rate * value_saved > cost``; this picks the threshold on the data.
    """
    gains, order, basis = _saved(y, p, value_saved, success_rate, effect)
    p = np.asarray(p, float)
    gain = np.cumsum(gains - cost_per_contact)
    k = int(np.argmax(gain))
    best = float(gain[k])
    rate = success_rate if effect is None else float(np.mean(effect))
    mean_value = float(np.mean(value_saved))  # each user's value: the break-even at the mean user's
    out = {
        "break_even_probability": cost_per_contact / (rate * mean_value) if rate * mean_value > 0 else float("inf"),
        "basis": basis,
    }
    if best <= 0:
        return {"threshold": 1.0, "n_contacted": 0, "value": 0.0, **out}
    return {"threshold": float(p[order][k]), "n_contacted": k + 1, "value": best, **out}


def calibration_plot(y, probabilities: dict[str, np.ndarray], n_bins: int = 10) -> Figure:
    """Reliability diagram: observed churn rate by bin of predicted probability."""
    from sklearn.calibration import calibration_curve

    fig = Figure(figsize=(5, 5))
    ax = fig.add_subplot()
    ax.plot([0, 1], [0, 1], "k:", label="perfect")
    for name, p in probabilities.items():
        frac, mean = calibration_curve(y, p, n_bins=n_bins, strategy="quantile")
        ax.plot(mean, frac, "o-", ms=3, label=name)
    ax.set_xlabel("predicted probability")
    ax.set_ylabel("observed churn rate")
    ax.set_title("Calibration")
    ax.legend()
    fig.tight_layout()
    return fig


def gains_plot(y, probabilities: dict[str, np.ndarray]) -> Figure:
    """Cumulative capture (gains) curve: share of churners found vs share of users contacted."""
    fig = Figure(figsize=(5, 5))
    ax = fig.add_subplot()
    y = np.asarray(y, float)
    ax.plot([0, 1], [0, 1], "k:", label="random")
    for name, p in probabilities.items():
        order = np.argsort(-np.asarray(p), kind="stable")
        cap = np.r_[0, np.cumsum(y[order]) / y.sum()]
        ax.plot(np.linspace(0, 1, len(cap)), cap, label=name)
    ax.set_xlabel("share of users contacted (highest risk first)")
    ax.set_ylabel("share of churners found")
    ax.set_title("Gains")
    ax.legend()
    fig.tight_layout()
    return fig


def threshold_plot(
    y,
    p,
    cost_per_contact: float,
    value_saved: float,
    success_rate: float | None = None,
    *,
    effect=None,
    currency: str = "amount",
) -> Figure:
    """The campaign's value against the number of users contacted, highest risk first, in
    ``currency``; the title says whether what a contact keeps was measured or assumed."""
    gains, _, basis = _saved(y, p, value_saved, success_rate, effect)
    gain = np.cumsum(gains - cost_per_contact)
    fig = Figure(figsize=(6, 4))
    ax = fig.add_subplot()
    ax.plot(np.arange(1, len(gain) + 1), gain)
    ax.axhline(0, color="grey", lw=0.8)
    ax.set_xlabel("users contacted (highest risk first)")
    ax.set_ylabel(f"value of the campaign ({currency}: value saved - contact costs)")
    how = f"success {success_rate:.0%} ASSUMED, not measured" if effect is None else "measured effects"
    saved = (
        f"{value_saved:g} {currency}"
        if np.ndim(value_saved) == 0
        else (f"each user's value (mean {np.mean(value_saved):,.1f} {currency})")
    )
    ax.set_title(f"Contact cost {cost_per_contact:g} {currency}, value saved {saved}, {how}", fontsize=10)
    fig.tight_layout()
    return fig


def churn_source_on_inner_window(transactions, cutoff, window: int, classifier, btyd: dict, freq: str = FREQ):
    """Which churn risk the relationship table takes on transactions, chosen without the holdout:
    the classifier (trained as 03 trains it, one window earlier: features at ``cutoff - 2 window``,
    labels in the window after) or the best of the BTYD models' P(no purchase in ``window``)
    (fitted at ``cutoff - window``), both scored by ROC-AUC on who bought nothing in
    ``(cutoff - window, cutoff]``. Nothing after ``cutoff`` is read. A tie (the classifier not
    better) goes to the BTYD model, the simpler one.

    Returns ``(winner, table, description)``: ``winner`` is ``"urm-churn"`` or ``"urm-clv"``;
    when the data hold too little history for the earlier window (``features.churn_window``'s
    rule) the winner is ``"urm-clv"`` and the description says why."""
    cut = pd.Timestamp(cutoff).normalize()
    tx = transactions[pd.to_datetime(transactions["ts"]).dt.normalize() <= cut]
    inner = features.churn.window_start(cut, window, freq)
    first = pd.to_datetime(tx.groupby("user_id")["ts"].min()).dt.normalize()
    train_at = features.churn.window_start(inner, window, freq)
    known = first[first <= train_at]
    age = ((train_at - known).dt.days / (inner - train_at).days * window).median() if len(known) else 0.0
    # the rule of the inner windows of 05 (evaluation.holdout.inner_origins): 100 users known where
    # the classifier is trained, the median of them at least half a window old
    if len(known) < 100 or age < window / 2:
        return (
            "urm-clv",
            pd.DataFrame(),
            (
                f"the BTYD model's P(no purchase): too little history before {train_at:%Y-%m-%d} to validate the "
                f"classifier one window ({window} {freq}) earlier (it needs 100 users known there, the median of them "
                f"{window / 2:g} {freq} old; {len(known):,} known)"
            ),
        )
    X, y = features.shifted_window(tx, inner, window, freq=freq)
    X = X.loc[:, X.nunique() > 1]
    X_val = features.activity_features(tx, inner, freq=freq)
    y_val = features.churn_labels(tx, inner, horizon=window, freq=freq).reindex(X_val.index).to_numpy()
    scores = {
        "classifier": clone(classifier).fit(X, y.to_numpy()).predict_proba(X_val.reindex(columns=X.columns))[:, 1]
    }
    rfm = features.rfm_summary(tx, inner, freq=freq).reindex(X_val.index)
    fits = fit_candidates(btyd, rfm)
    for name, m in fits.models.items():
        scores[name] = m.probability_no_purchase(window, rfm).to_numpy()
    table = pd.DataFrame({k: classification_metrics(y_val, v) for k, v in scores.items()}).T
    best_btyd = table.drop(index="classifier")["roc_auc"].idxmax() if len(table) > 1 else None
    better = best_btyd is None or table.loc["classifier", "roc_auc"] > table.loc[best_btyd, "roc_auc"]
    winner = "urm-churn" if better else "urm-clv"
    return (
        winner,
        table,
        (
            f"chosen on the inner window ({inner:%Y-%m-%d}, {cut:%Y-%m-%d}]: classifier ROC-AUC "
            f"{table.loc['classifier', 'roc_auc']:.4f}"
            + (f" vs {best_btyd} {table.loc[best_btyd, 'roc_auc']:.4f}" if best_btyd else "")
        ),
    )
