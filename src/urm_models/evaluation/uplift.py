"""How well a ranking finds the users a contact changes, judged on held-out users of a
randomised campaign (the truth of one user's effect is never observed; groups of treated and
control users at the top of the ranking show it).

* **Qini curve** (Radcliffe 2007): contact the top ``k`` users of the ranking; the incremental
  outcomes among them are ``Y_t(k) - Y_c(k) N_t(k) / N_c(k)`` (treated outcomes minus the control
  outcomes scaled to the treated count). The **Qini coefficient** is the area between the curve
  and the random ranking's diagonal, divided by that of the perfect ranking (treated responders
  first, control responders last): 1 for a perfect ranking, 0 for random, negative for worse
  than random. It is the definition of scikit-uplift's ``qini_auc_score`` (``negative_effect=True``),
  checked equal in ``make bench``.
* **Uplift curve**: ``(mean_t(k) - mean_c(k)) k``; its normalised area, **AUUC**, the same way.
* **Uplift at k**: the difference of treated and control means among the top share ``k``.
* **Uplift by decile**: treated and control means and their difference, with a 95% interval, in
  each tenth of the ranking: a good model's deciles fall from left to right.

Bootstrap intervals resample the held-out users within each arm (:func:`evaluate`).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from scipy import stats

from .intervals import difference_of_means, difference_of_proportions


def _arrays(y, uplift, treated):
    y, u, t = np.asarray(y, float), np.asarray(uplift, float), np.asarray(treated)
    if t.dtype == bool:
        t = t.astype(int)
    t = t.astype(float)
    if not (len(y) == len(u) == len(t)):
        raise ValueError(f"y, uplift and treated must have the same length: {len(y)}, {len(u)}, {len(t)}")
    if not np.isin(t, (0.0, 1.0)).all():
        raise ValueError("treated must be 0/1 (1 = the treatment arm, 0 = the control)")
    if t.sum() == 0 or t.sum() == len(t):
        raise ValueError("both the treatment and the control arm need users")
    if not (np.isfinite(u).all() and np.isfinite(y).all()):
        raise ValueError("y and uplift must be finite")
    return y, u, t


def _cumulative(y, u, t):
    """Counts and outcome sums of treated and control users among the top ``k``, at every
    distinct score (users with the same score enter together), starting from (0, 0)."""
    order = np.argsort(-u, kind="mergesort")
    y, u, t = y[order], u[order], t[order]
    ends = np.r_[np.flatnonzero(np.diff(u)), len(u) - 1]
    n_t = np.cumsum(t)[ends]
    n_all = ends + 1.0
    n_c = n_all - n_t
    y_t = np.cumsum(y * t)[ends]
    y_c = np.cumsum(y * (1 - t))[ends]
    return np.r_[0.0, n_all], np.r_[0.0, n_t], np.r_[0.0, n_c], np.r_[0.0, y_t], np.r_[0.0, y_c]


def qini_curve(y, uplift, treated) -> pd.DataFrame:
    """The Qini curve: ``targeted`` users (top of the ranking) and the ``incremental`` outcomes
    among them (treated outcomes minus control outcomes scaled to the treated count)."""
    y, u, t = _arrays(y, uplift, treated)
    n, n_t, n_c, y_t, y_c = _cumulative(y, u, t)
    with np.errstate(invalid="ignore", divide="ignore"):
        inc = y_t - np.where(n_c > 0, y_c * n_t / n_c, 0.0)
    return pd.DataFrame({"targeted": n, "share": n / n[-1], "incremental": inc})


def uplift_curve(y, uplift, treated) -> pd.DataFrame:
    """The uplift curve: ``targeted`` users and ``(mean_t - mean_c) x targeted`` among them."""
    y, u, t = _arrays(y, uplift, treated)
    n, n_t, n_c, y_t, y_c = _cumulative(y, u, t)
    with np.errstate(invalid="ignore", divide="ignore"):
        diff = np.where(n_t > 0, y_t / np.where(n_t > 0, n_t, 1), 0.0) - np.where(
            n_c > 0, y_c / np.where(n_c > 0, n_c, 1), 0.0
        )
    return pd.DataFrame({"targeted": n, "share": n / n[-1], "incremental": diff * n})


def _area(curve: pd.DataFrame) -> float:
    return float(np.trapezoid(curve["incremental"].to_numpy(), curve["targeted"].to_numpy()))


def _normalised(curve_fn, y, u, t) -> float:
    actual = curve_fn(y, u, t)
    perfect = curve_fn(y, y * t - y * (1 - t), t)
    last = float(perfect["incremental"].iloc[-1])
    baseline = 0.5 * float(perfect["targeted"].iloc[-1]) * last
    denom = _area(perfect) - baseline
    if denom == 0:
        return float("nan")
    return (_area(actual) - baseline) / denom


def qini_coefficient(y, uplift, treated) -> float:
    """Area between the Qini curve and the random diagonal over that of the perfect ranking."""
    return _normalised(qini_curve, *_arrays(y, uplift, treated))


def _weighted_area(y, t, order, ends, w):
    """Areas under the Qini curves of one ranking (``order``: users best first; ``ends``: the
    last position of each run of tied scores) for rows of user weights ``w`` (draws x users:
    how often each user was drawn), and the curves' last points."""
    w = w[:, order]
    ys, ts = y[order], t[order]
    n_t = np.cumsum(w * ts, axis=1)[:, ends]
    n_all = np.cumsum(w, axis=1)[:, ends]
    y_t = np.cumsum(w * (ys * ts), axis=1)[:, ends]
    y_c = np.cumsum(w * (ys * (1 - ts)), axis=1)[:, ends]
    n_c = n_all - n_t
    with np.errstate(invalid="ignore", divide="ignore"):
        inc = y_t - np.where(n_c > 0, y_c * n_t / np.where(n_c > 0, n_c, 1), 0.0)
    zero = np.zeros((len(w), 1))
    x, inc = np.hstack([zero, n_all]), np.hstack([zero, inc])
    return np.trapezoid(inc, x, axis=1), inc[:, -1], x[:, -1]


def _runs(u):
    order = np.argsort(-u, kind="mergesort")
    return order, np.r_[np.flatnonzero(np.diff(u[order])), len(u) - 1]


def qini_coefficients(y, rankings: dict, treated, weights=None) -> pd.DataFrame:
    """:func:`qini_coefficient` of several rankings of the same users (``{name: scores}``), for
    each row of ``weights`` (draws x users: how often a bootstrap draw took each user; default
    one row of ones, the users as they are): a DataFrame, one row per draw, one column per
    ranking. Each ranking is sorted once, whatever the number of draws: what a paired bootstrap
    of Qini differences needs."""
    y, _, t = _arrays(y, np.zeros(len(y)), treated)
    w = np.ones((1, len(y))) if weights is None else np.atleast_2d(np.asarray(weights, float))
    if w.shape[1] != len(y):
        raise ValueError(f"weights must have one column per user ({len(y)}), got {w.shape[1]}")
    area_p, last, n = _weighted_area(y, t, *_runs(y * t - y * (1 - t)), w)
    baseline = 0.5 * n * last
    denom = area_p - baseline
    out = {}
    for name, u in rankings.items():
        u = np.asarray(u, float)
        if len(u) != len(y) or not np.isfinite(u).all():
            raise ValueError(f"ranking {name!r} must give a finite score for each of the {len(y)} users")
        area, _, _ = _weighted_area(y, t, *_runs(u), w)
        with np.errstate(invalid="ignore", divide="ignore"):
            out[name] = np.where(denom != 0, (area - baseline) / np.where(denom != 0, denom, 1), np.nan)
    return pd.DataFrame(out)


def auuc(y, uplift, treated) -> float:
    """The area under the uplift curve, normalised as :func:`qini_coefficient`."""
    return _normalised(uplift_curve, *_arrays(y, uplift, treated))


def uplift_at_k(y, uplift, treated, k: float = 0.3) -> float:
    """Treated mean minus control mean among the top share ``k`` of the ranking (both arms
    together ranked; ties at the cut taken in order)."""
    y, u, t = _arrays(y, uplift, treated)
    if not 0 < k <= 1:
        raise ValueError(f"k must be a share in (0, 1], got {k}")
    top = np.argsort(-u, kind="mergesort")[: max(1, int(round(k * len(u))))]
    yt, tt = y[top], t[top]
    if tt.sum() == 0 or tt.sum() == len(tt):
        return float("nan")
    return float(yt[tt == 1].mean() - yt[tt == 0].mean())


def uplift_by_decile(y, uplift, treated, bins: int = 10, alpha: float = 0.05) -> pd.DataFrame:
    """Per tenth of the ranking (1 = the highest predicted uplift): users, treated and control
    counts and means, the observed ``uplift`` (treated - control mean) with its interval
    (Newcombe for 0/1 outcomes, Welch for amounts) and the mean ``predicted`` uplift."""
    y, u, t = _arrays(y, uplift, treated)
    order = np.argsort(-u, kind="mergesort")
    z = stats.norm.ppf(1 - alpha / 2)
    binary = bool(np.isin(y, (0.0, 1.0)).all())
    rows = []
    for b, idx in enumerate(np.array_split(order, bins), start=1):
        yt, yc = y[idx][t[idx] == 1], y[idx][t[idx] == 0]
        row = {
            "decile": b,
            "users": len(idx),
            "treated": len(yt),
            "control": len(yc),
            "treated_mean": yt.mean() if len(yt) else np.nan,
            "control_mean": yc.mean() if len(yc) else np.nan,
            "predicted": float(u[idx].mean()),
        }
        if len(yt) >= 2 and len(yc) >= 2:
            d, lo, hi, _, _ = (
                difference_of_proportions(yt.sum(), len(yt), yc.sum(), len(yc), z)
                if binary
                else difference_of_means(yt, yc, z)
            )
        else:
            d = lo = hi = np.nan
        rows.append({**row, "uplift": d, "lower": lo, "upper": hi})
    return pd.DataFrame(rows).set_index("decile")


def evaluate(y, uplift, treated, *, k: float = 0.3, n_boot: int = 200, seed: int = 0, alpha: float = 0.05) -> pd.Series:
    """Qini coefficient, AUUC and uplift at ``k`` with percentile bootstrap intervals (the
    held-out users resampled within each arm, ``n_boot`` times, seeded): a Series with
    ``qini``, ``qini_lower``, ``qini_upper``, ``auuc``..., ``uplift_at_<k%>``..."""
    y, u, t = _arrays(y, uplift, treated)
    metrics = {
        "qini": qini_coefficient,
        "auuc": auuc,
        f"uplift_at_{int(round(k * 100))}": lambda a, b, c: uplift_at_k(a, b, c, k),
    }
    point = {name: fn(y, u, t) for name, fn in metrics.items()}
    rng = np.random.default_rng(seed)
    idx_t, idx_c = np.flatnonzero(t == 1), np.flatnonzero(t == 0)
    draws = {name: [] for name in metrics}
    for _ in range(int(n_boot)):
        s = np.r_[rng.choice(idx_t, len(idx_t)), rng.choice(idx_c, len(idx_c))]
        for name, fn in metrics.items():
            draws[name].append(fn(y[s], u[s], t[s]))
    out = {}
    for name in metrics:
        lo, hi = np.nanquantile(draws[name], [alpha / 2, 1 - alpha / 2]) if n_boot else (np.nan, np.nan)
        out.update({name: point[name], f"{name}_lower": float(lo), f"{name}_upper": float(hi)})
    return pd.Series(out)


# ------------------------------------------------------------------------------ plots


def qini_plot(
    y,
    rankings: dict,
    treated,
    *,
    outcome: str = "outcome",
    unit: str = "",
    window: str = "",
    arm: str = "the treatment",
) -> Figure:
    """Qini curves of several rankings (``{name: scores}``) with the random ranking's diagonal;
    the x axis counts held-out users targeted, the y axis the incremental outcomes among them."""
    fig = Figure(figsize=(6.5, 4.5))
    ax = fig.add_subplot()
    y, _, t = _arrays(y, np.zeros(len(y)), treated)
    for name, scores in rankings.items():
        curve = qini_curve(y, scores, t)
        q = qini_coefficient(y, scores, t)
        ax.plot(curve["targeted"], curve["incremental"], label=f"{name} (Qini {q:.3f})")
    last = qini_curve(y, np.zeros(len(y)), t)["incremental"].iloc[-1]
    ax.plot([0, len(y)], [0, last], "k:", label="random")
    what = f"{outcome} ({unit})" if unit and unit != "share of users" else f"users with a {outcome}"
    ax.set_xlabel(f"held-out users contacted, highest predicted uplift first (of {len(y):,})")
    ax.set_ylabel(f"incremental {what}")
    ax.set_title(f"Qini curve: {arm} vs control, {outcome} {window}".strip(), fontsize=10)
    ax.axhline(0, color="grey", lw=0.6)
    ax.legend(fontsize=8, loc="best")
    fig.tight_layout()
    return fig


def uplift_by_decile_plot(
    table: pd.DataFrame, *, outcome: str = "outcome", unit: str = "", window: str = "", arm: str = "the treatment"
) -> Figure:
    """Observed uplift per decile of predicted uplift with its 95% interval, and the predicted
    mean uplift of each decile."""
    scale = 100.0 if unit == "share of users" else 1.0
    label = "percentage points" if scale == 100.0 else (unit or "per user")
    fig = Figure(figsize=(6.5, 4.2))
    ax = fig.add_subplot()
    x = table.index.to_numpy()
    err = (
        np.vstack([(table["uplift"] - table["lower"]).to_numpy(), (table["upper"] - table["uplift"]).to_numpy()])
        * scale
    )
    ax.bar(x, table["uplift"] * scale, color="#4c72b0", alpha=0.8, label="observed (treated - control)")
    ax.errorbar(x, table["uplift"] * scale, yerr=err, fmt="none", ecolor="black", capsize=3, lw=1, label="95% interval")
    ax.plot(x, table["predicted"] * scale, "o-", color="#dd8452", ms=4, label="predicted")
    ax.axhline(0, color="grey", lw=0.6)
    ax.set_xticks(x)
    ax.set_xlabel("decile of predicted uplift (1 = highest)")
    ax.set_ylabel(f"uplift in {outcome} ({label})")
    ax.set_title(f"Uplift by decile: {arm} vs control, {outcome} {window}".strip(), fontsize=10)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig
