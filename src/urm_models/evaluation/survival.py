"""Survival-model scores: time-dependent Brier score with inverse-probability-of-censoring
weights (Graf et al. 1999) and its integral over time."""

from __future__ import annotations

import numpy as np
import pandas as pd


def _censoring_survival(train: pd.DataFrame, duration_col: str, event_col: str):
    """Kaplan-Meier of the censoring times, G(t) = P(C > t), from the training data."""
    from lifelines import KaplanMeierFitter

    km = KaplanMeierFitter().fit(train[duration_col], 1 - train[event_col].astype(int))

    def G(t):
        return np.clip(np.asarray(km.survival_function_at_times(np.atleast_1d(t)), float), 1e-12, 1.0)

    return G


def brier_scores(
    survival: pd.DataFrame, test: pd.DataFrame, train: pd.DataFrame, duration_col: str, event_col: str
) -> pd.Series:
    """IPCW Brier score at each time of ``survival`` (rows: times, columns: test users, the
    predicted S_i(t)). A user who churned by t counts (S_i(t))^2 / G(T_i-); one still at risk
    counts (1 - S_i(t))^2 / G(t); users censored before t count 0 (their weight goes to others).
    """
    G = _censoring_survival(train, duration_col, event_col)
    T = test[duration_col].to_numpy(float)
    E = test[event_col].to_numpy(int)
    g_before = G(T - 1e-9)
    S = survival.to_numpy(float)
    out = []
    for k, t in enumerate(survival.index.to_numpy(float)):
        died = (T <= t) & (E == 1)
        alive = T > t
        out.append(
            np.mean(np.where(died, S[k] ** 2 / g_before, 0.0) + np.where(alive, (1.0 - S[k]) ** 2 / G(t)[0], 0.0))
        )
    return pd.Series(out, index=survival.index, name="brier")


def integrated_brier_score(model, test: pd.DataFrame, train: pd.DataFrame, times=None) -> float:
    """Brier score averaged over ``times`` (default: 1 to the 90th percentile of the test
    durations) by the trapezoid rule; lower is better, 0.25 is an uninformative 50/50 guess."""
    d, e = model.duration_col_, model.event_col_
    if times is None:
        hi = float(np.percentile(test[d], 90))
        times = np.arange(1.0, max(hi, 2.0) + 0.5, 1.0)
    times = np.asarray(times, float)
    S = model.predict_survival(test, times)
    bs = brier_scores(S, test, train, d, e)
    return float(np.trapezoid(bs.to_numpy(), times) / (times[-1] - times[0]))


def kaplan_meier_by(
    df: pd.DataFrame, duration_col: str, event_col: str, by: str, at=None, title: str | None = None, unit: str = ""
):
    """Kaplan-Meier survival per group of ``by`` (e.g. tier, contract, cohort).

    Returns ``(figure, table)``: the curves with 95% bands, and per group the number still at
    risk at each time of ``at`` (default: six evenly spaced times up to the longest duration),
    the KM survival there and the median survival time (inf if not reached). ``unit`` names the
    duration's unit on the axis (e.g. ``"months"``).
    """
    from lifelines import KaplanMeierFitter
    from matplotlib.figure import Figure

    for c in (duration_col, event_col, by):
        if c not in df.columns:
            raise ValueError(f"the data lack column {c!r}")
    dur = pd.to_numeric(df[duration_col]).astype(float)
    at = np.linspace(0, dur.max(), 7)[:-1].round() if at is None else np.asarray(at, float)
    fig = Figure(figsize=(7, 4))
    ax = fig.add_subplot()
    rows = {}
    groups = df.groupby(by, sort=True, observed=True)
    for level, g in groups:
        km = KaplanMeierFitter(label=f"{level} (n={len(g):,})").fit(dur.loc[g.index], g[event_col].astype(int))
        km.plot_survival_function(ax=ax, ci_show=True)
        surv = np.asarray(km.survival_function_at_times(at), float)
        row = {f"at risk t={t:g}": int((dur.loc[g.index] >= t).sum()) for t in at}
        row.update({f"S(t={t:g})": s for t, s in zip(at, surv, strict=True)})
        row["median"] = float(km.median_survival_time_)
        rows[level] = row
    ax.set_xlabel(f"{duration_col} ({unit})" if unit else duration_col)
    ax.set_ylabel("share surviving")
    ax.set_title(title or f"Kaplan-Meier by {by}")
    ax.set_ylim(0, 1.02)
    fig.tight_layout()
    table = pd.DataFrame.from_dict(rows, orient="index")
    table.index.name = by
    return fig, table
