"""Plots as matplotlib Figures (object API: no pyplot state, never ``plt.show()``)."""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from ..core.units import UNIT_WORDS


def periods(n: float, freq: str) -> str:
    """A span in words for titles and labels: ``periods(13, "W")`` is ``"13 weeks"``."""
    word = UNIT_WORDS.get(freq, f"{freq} periods")
    return f"{n:g} {word[:-1] if n == 1 and word.endswith('s') else word}"


def cohort_heatmap(retention: pd.DataFrame, title: str = "Cohort retention", freq: str | None = None) -> Figure:
    """Heat map of a :func:`urm_models.features.cohort_retention` matrix (shares); ``freq`` (its
    ``freq``: "D", "W", "M") names the unit of the x axis."""
    fig = Figure(figsize=(max(6, 0.45 * retention.shape[1] + 2), max(3, 0.35 * retention.shape[0] + 1.5)))
    ax = fig.add_subplot()
    data = retention.to_numpy(dtype=float)
    im = ax.imshow(
        np.ma.masked_invalid(data),
        aspect="auto",
        cmap="viridis",
        vmin=0,
        vmax=np.nanmax(data[:, 1:]) if data.shape[1] > 1 else 1,
    )
    ax.set_xticks(range(retention.shape[1]), [str(c) for c in retention.columns])
    ax.set_yticks(range(retention.shape[0]), [str(i) for i in retention.index])
    unit = UNIT_WORDS.get(freq or "", f"{retention.columns.name or 'period'}s")
    ax.set_xlabel(f"{unit} since the cohort's first purchase (0: the first {unit.rstrip('s')})")
    ax.set_ylabel("cohort")
    ax.set_title(title)
    if data.size <= 400:
        for (i, j), v in np.ndenumerate(data):
            if np.isfinite(v):
                ax.text(
                    j,
                    i,
                    f"{v:.0%}",
                    ha="center",
                    va="center",
                    fontsize=7,
                    color="white" if v < 0.6 * np.nanmax(data[:, 1:] if data.shape[1] > 1 else data) else "black",
                )
    fig.colorbar(im, ax=ax, label="active share")
    fig.tight_layout()
    return fig


KPI_UNITS = {
    "active_users": "users",
    "retention_rate": "share",
    "repeat_purchase_rate": "share",
    "revenue_per_user": "amount per active user",
    "churn_rate": "share",
    "revenue": "amount",
}


def kpi_trends(
    kpis: pd.DataFrame,
    columns=("active_users", "retention_rate", "repeat_purchase_rate", "revenue_per_user"),
    currency: str = "amount",
) -> Figure:
    """One small panel per KPI over periods (a :func:`urm_models.features.kpis` table); amounts
    are labelled in ``currency``."""
    columns = [c for c in columns if c in kpis.columns]
    fig = Figure(figsize=(10, 2.4 * ((len(columns) + 1) // 2)))
    axes = fig.subplots((len(columns) + 1) // 2, 2, squeeze=False).ravel()
    x = np.arange(len(kpis))
    for ax, col in zip(axes, columns, strict=False):
        ax.plot(x, kpis[col].to_numpy(dtype=float), marker="o", ms=3)
        unit = KPI_UNITS.get(col, "").replace("amount", currency)
        ax.set_title(col.replace("_", " ") + (f" ({unit})" if unit else ""))
        ax.set_xlabel(f"{kpis.index.name or 'period'}", fontsize=7)
        step = max(1, len(x) // 8)
        ax.set_xticks(x[::step], [str(i) for i in kpis.index[::step]], rotation=30, fontsize=7)
        ax.grid(alpha=0.3)
    for ax in axes[len(columns) :]:
        ax.set_visible(False)
    fig.tight_layout()
    return fig


def histogram(values, bins: int = 30, title: str = "", xlabel: str = "") -> Figure:
    """Users by ``values``; whole numbers over a range of at most 60 (purchases, months) get one
    bar per value, so that 0, 1 and 2 are never merged into one bar."""
    fig = Figure(figsize=(6, 3.5))
    ax = fig.add_subplot()
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v)]
    if len(v) and np.array_equal(v, np.round(v)) and v.max() - v.min() <= 60:
        bins = np.arange(v.min(), v.max() + 2) - 0.5
    elif len(v) and np.array_equal(v, np.round(v)):
        bins = np.unique(np.round(np.linspace(v.min(), v.max() + 1, 31))) - 0.5  # whole-number edges
    ax.hist(v, bins=bins, color="steelblue", edgecolor="white")
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("users")
    fig.tight_layout()
    return fig


def transition_heatmap(
    matrix: pd.DataFrame, title: str = "Transitions", fmt: str = "{:.0%}", label: str | None = None
) -> Figure:
    """Heat map of a transition matrix from :func:`urm_models.segments.transitions` (rows:
    label before, columns: label after), e.g. its ``shares`` (``fmt`` percent) or ``counts``
    (``fmt="{:,.0f}"``); ``label`` names the colour scale (default: "share of the row's users"
    for percentages, else "users")."""
    data = matrix.to_numpy(dtype=float)
    fig = Figure(figsize=(max(5, 0.9 * matrix.shape[1] + 2.5), max(3.5, 0.55 * matrix.shape[0] + 1.5)))
    ax = fig.add_subplot()
    im = ax.imshow(np.ma.masked_invalid(data), cmap="Blues", aspect="auto", vmin=0)
    ax.set_xticks(range(matrix.shape[1]), [str(c) for c in matrix.columns], rotation=30, ha="right")
    ax.set_yticks(range(matrix.shape[0]), [str(i) for i in matrix.index])
    ax.set_xlabel(matrix.columns.name or "after")
    ax.set_ylabel(matrix.index.name or "before")
    ax.set_title(title)
    top = np.nanmax(data) if np.isfinite(data).any() else 1.0
    for (i, j), v in np.ndenumerate(data):
        if np.isfinite(v):
            ax.text(
                j, i, fmt.format(v), ha="center", va="center", fontsize=7, color="white" if v > 0.6 * top else "black"
            )
    fig.colorbar(im, ax=ax, label=label or ("share of the row's users" if "%" in fmt else "users"))
    fig.tight_layout()
    return fig


def bar(values: pd.Series, title: str = "", xlabel: str = "", fmt: str = "{:,.0f}") -> Figure:
    """Horizontal bars of a Series (largest on top), each labelled with its value."""
    v = values.astype(float).sort_values()
    fig = Figure(figsize=(7, max(2.5, 0.35 * len(v) + 1)))
    ax = fig.add_subplot()
    ax.barh([str(i) for i in v.index], v.to_numpy(), color="steelblue")
    for y, x in enumerate(v.to_numpy()):
        ax.text(x, y, " " + fmt.format(x), va="center", fontsize=7)
    if len(v) and np.isfinite(v.to_numpy()).any():
        # room for the value labels to the right of the longest bar
        ax.set_xlim(0, max(float(np.nanmax(v.to_numpy())), 0.0) * 1.18 or 1.0)
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    fig.tight_layout()
    return fig
