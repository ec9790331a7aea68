"""Diagnostics of BTYD models as matplotlib Figures (model vs actual)."""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from ..models.btyd import validate_rfm
from .plots import UNIT_WORDS, periods


def period_transactions(model, rfm: pd.DataFrame, max_frequency: int = 7) -> Figure:
    """Customers by number of repeat purchases in calibration: actual vs the model's expectation
    (sum over customers of P(X(T_i) = k) for a new customer observed for T_i)."""
    validate_rfm(rfm)
    T = rfm["T"].to_numpy(float)
    uT, counts = np.unique(T, return_counts=True)
    zeros = np.zeros_like(uT)
    expected = []
    for k in range(max_frequency):
        expected.append(float(counts @ model._prob_n(k, uT, zeros, zeros, zeros)))
    expected.append(len(rfm) - sum(expected))
    actual = [int((rfm["frequency"] == k).sum()) for k in range(max_frequency)]
    actual.append(int((rfm["frequency"] >= max_frequency).sum()))
    fig = Figure(figsize=(7, 4))
    ax = fig.add_subplot()
    idx = np.arange(max_frequency + 1)
    ax.bar(idx - 0.2, actual, 0.4, label="actual")
    ax.bar(idx + 0.2, expected, 0.4, label=type(model).__name__)
    ax.set_xticks(idx, [str(k) for k in range(max_frequency)] + [f"{max_frequency}+"])
    ax.set_xlabel("repeat purchases in calibration")
    ax.set_ylabel("customers")
    ax.set_title(f"Customers by repeat purchases in calibration: actual vs {type(model).__name__}")
    ax.legend()
    fig.tight_layout()
    return fig


def calibration_vs_holdout(predictions: dict[str, pd.Series], rfm: pd.DataFrame,
                           max_frequency: int = 7) -> Figure:
    """Mean holdout purchases by calibration frequency: actual vs each model's prediction."""
    validate_rfm(rfm, columns=("frequency", "frequency_holdout"))
    grp = rfm["frequency"].clip(upper=max_frequency)
    fig = Figure(figsize=(7, 4))
    ax = fig.add_subplot()
    ax.plot(*_by(rfm["frequency_holdout"], grp), "k-o", label="actual")
    for name, pred in predictions.items():
        ax.plot(*_by(pred, grp), "--o", ms=3, label=name)
    ax.set_xlabel(f"repeat purchases in calibration ({max_frequency} = {max_frequency}+)")
    span = (f" ({rfm['duration_holdout'].iloc[0]:g} periods of the summary)"
            if "duration_holdout" in rfm.columns and len(rfm) else "")
    ax.set_ylabel(f"mean repeat purchases in the holdout{span}")
    ax.set_title("Calibration vs holdout: actual and predicted means")
    ax.legend()
    fig.tight_layout()
    return fig


def _by(values: pd.Series, groups: pd.Series):
    m = values.groupby(groups.to_numpy()).mean()
    return m.index.to_numpy(), m.to_numpy()


def _matrix(fn, max_frequency: int, max_recency: float, T: float, title: str, label: str,
            unit: str) -> Figure:
    x = np.arange(max_frequency + 1, dtype=float)
    rec = np.linspace(0, max_recency, 40)
    X, R = np.meshgrid(x, rec, indexing="ij")
    R = np.where(X == 0, 0.0, R)
    Z = fn(X.ravel(), R.ravel(), np.full(X.size, T)).reshape(X.shape)
    fig = Figure(figsize=(7, 5))
    ax = fig.add_subplot()
    im = ax.imshow(Z, origin="lower", aspect="auto", cmap="viridis",
                   extent=[0, max_recency, -0.5, max_frequency + 0.5])
    ax.set_xlabel(f"recency: age at the last purchase ({unit} after the first)")
    ax.set_ylabel("frequency (repeat purchases)")
    ax.set_title(title)
    fig.colorbar(im, ax=ax, label=label)
    fig.tight_layout()
    return fig


def frequency_recency_matrix(model, T: float, t: float = 1.0, max_frequency: int = 30,
                             freq: str = "W") -> Figure:
    """Expected purchases in the next ``t`` periods (of ``freq``) for a customer whose first
    purchase was ``T`` periods ago."""
    return _matrix(lambda x, r, TT: model._conditional_expected(t, x, r, TT), max_frequency, T, T,
                   f"{type(model).__name__}: expected purchases in the next {periods(t, freq)}\n"
                   f"of a customer who first bought {periods(round(T), freq)} ago", "expected purchases",
                   UNIT_WORDS[freq])


def p_alive_matrix(model, T: float, max_frequency: int = 30, freq: str = "W") -> Figure:
    """P(alive) by frequency and recency for a customer whose first purchase was ``T`` periods ago."""
    from scipy.special import expit

    return _matrix(lambda x, r, TT: expit(-model._log_odds_dead(x, r, TT)), max_frequency, T, T,
                   f"{type(model).__name__}: P(alive) of a customer who first bought "
                   f"{periods(round(T), freq)} ago", "P(alive)", UNIT_WORDS[freq])


def cumulative_purchases(model, transactions: pd.DataFrame, cutoff, end, freq: str = "W") -> Figure:
    """Cumulative repeat purchases (same-day purchases merged) over calendar time: actual vs
    the model's expectation sum_i E[X(tau - s_i)] from each customer's first purchase s_i."""
    from ..simulate import UNIT_DAYS

    unit = UNIT_DAYS[freq]
    days = transactions.assign(d=pd.to_datetime(transactions["ts"]).dt.normalize()) \
        .drop_duplicates(["user_id", "d"])
    first = days.groupby("user_id")["d"].transform("min")
    cutoff, end = pd.Timestamp(cutoff), pd.Timestamp(end)
    starts = days.loc[days["d"] == first].groupby("user_id")["d"].first()
    starts = starts[starts <= cutoff]
    repeats = days[(days["d"] > first) & days["user_id"].isin(starts.index) & (days["d"] <= end)]
    grid = pd.date_range(starts.min(), end, freq="7D" if freq != "D" else "D")
    actual = np.array([(repeats["d"] <= g).sum() for g in grid], float)
    s_days, s_counts = np.unique(((starts - starts.min()).dt.days).to_numpy(), return_counts=True)
    expected = []
    for g in grid:
        age = ((g - starts.min()).days - s_days) / unit
        ok = age > 0
        expected.append(float(s_counts[ok] @ model.expected_purchases(age[ok])) if ok.any() else 0.0)
    fig = Figure(figsize=(8, 4))
    ax = fig.add_subplot()
    ax.plot(grid, actual, "k-", label="actual")
    ax.plot(grid, expected, "--", label=type(model).__name__)
    ax.axvline(cutoff, color="grey", ls=":", label="cut-off")
    ax.set_ylabel("cumulative repeat purchases")
    ax.set_xlabel("date")
    ax.set_title(f"Tracking cumulative repeat purchases: actual vs {type(model).__name__}")
    ax.legend()
    fig.tight_layout()
    return fig
