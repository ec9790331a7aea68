"""Figures of a campaign's measured effects: lifts per arm with their intervals, and what each
targeting policy earns (matplotlib Figures, units and windows in the labels)."""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.figure import Figure


def _scale(unit: str) -> tuple[float, str]:
    return (100.0, "percentage points") if unit == "share of users" else (1.0, unit or "per user")


def lift_plot(lifts: pd.DataFrame, *, title: str = "") -> Figure:
    """Each treatment arm's absolute lift over the control (``experiments.lift_table``) with its
    95% interval and the simultaneous interval of all arms (thin)."""
    outcome, unit, window = (
        lifts.attrs.get("outcome", "outcome"),
        lifts.attrs.get("unit", ""),
        lifts.attrs.get("window", ""),
    )
    scale, label = _scale(unit)
    fig = Figure(figsize=(6.5, 0.6 * len(lifts) + 2.2))
    ax = fig.add_subplot()
    y = np.arange(len(lifts))[::-1]
    ax.hlines(
        y,
        lifts["lift_lower_simultaneous"] * scale,
        lifts["lift_upper_simultaneous"] * scale,
        color="grey",
        lw=1,
        label="simultaneous 95% (all arms)",
    )
    ax.hlines(y, lifts["lift_lower"] * scale, lifts["lift_upper"] * scale, color="#4c72b0", lw=4, label="95% interval")
    ax.plot(lifts["lift"] * scale, y, "o", color="black", label="lift")
    ax.axvline(0, color="grey", lw=0.6)
    ax.set_yticks(y, lifts.index)
    ax.set_xlabel(f"lift in {outcome} over {lifts.attrs.get('control', 'the control')} ({label})")
    ax.set_title(title or f"{outcome} {window}: each arm against the control", fontsize=10)
    ax.set_ylim(-0.6, len(lifts) - 0.4)
    ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.28), ncol=3, frameon=False)
    fig.tight_layout()
    return fig


def policy_plot(
    values: pd.DataFrame,
    *,
    unit: str = "",
    value_outcome: str = "value",
    share: float | None = None,
    window: str = "",
    chosen: str = "uplift",
) -> Figure:
    """What each policy earns per user over contacting no one (``experiments.policy.compare_policies``
    or ``evaluate_policies``'s ``values``), with 95% intervals; the share of users each contacts
    in the labels; the ``chosen`` policy in orange."""
    v = values.drop(index=[i for i in values.index if i == "no one"], errors="ignore")
    fig = Figure(figsize=(8.5, 0.5 * len(v) + 1.8))
    ax = fig.add_subplot()
    y = np.arange(len(v))[::-1]
    colours = ["#dd8452" if i == chosen else "#4c72b0" for i in v.index]
    ax.barh(y, v["value"], color=colours, alpha=0.85)
    ax.errorbar(
        v["value"],
        y,
        xerr=np.vstack([v["value"] - v["lower"], v["upper"] - v["value"]]),
        fmt="none",
        ecolor="black",
        capsize=3,
        lw=1,
    )
    ax.set_yticks(y, [f"{i} ({c:.0%} contacted)" for i, c in zip(v.index, v["contacted"], strict=True)])
    ax.axvline(0, color="grey", lw=0.6)
    ax.set_xlabel(f"incremental {value_outcome} per user over contacting no one ({unit or 'per user'}), 95% interval")
    budget = f", at most {share:.0%} contacted" if share is not None else ""
    ax.set_title(f"Policies on held-out users{budget}: {value_outcome} {window}".strip(), fontsize=10)
    fig.tight_layout()
    return fig


def effect_calibration_plot(table: pd.DataFrame, *, outcome: str = "outcome", unit: str = "", arm: str = "") -> Figure:
    """Measured against predicted effect by group of the predicted effect (``experiments.selection.
    heterogeneity``'s calibration table): points on the diagonal are a learner whose differences
    between users are real; a flat row of points is one that found none."""
    scale, label = _scale(unit)
    fig = Figure(figsize=(5.5, 4.2))
    ax = fig.add_subplot()
    x, m = table["predicted"] * scale, table["measured"] * scale
    err = np.vstack([(table["measured"] - table["lower"]).to_numpy(), (table["upper"] - table["measured"]).to_numpy()])
    ax.errorbar(x, m, yerr=err * scale, fmt="o", color="#4c72b0", capsize=3, label="measured (AIPW), 95% interval")
    lims = [min(x.min(), (table["lower"] * scale).min(), 0), max(x.max(), (table["upper"] * scale).max())]
    ax.plot(lims, lims, "k:", lw=1, label="measured = predicted")
    for g, xi, mi in zip(table.index, x, m, strict=True):
        ax.annotate(str(g), (xi, mi), textcoords="offset points", xytext=(5, 3), fontsize=7)
    ax.set_xlabel(f"predicted effect on {outcome}, out of fold ({label})")
    ax.set_ylabel(f"measured effect on {outcome} ({label})")
    ax.set_title(f"Effect by fifth of the predicted effect: {arm}".strip(": "), fontsize=10)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig
