"""Diagnostics of BTYD models as matplotlib Figures (model vs actual)."""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from ..core.units import FREQ, UNIT_DAYS, UNIT_WORDS
from ..models.btyd import validate_rfm
from .plots import periods


def _with_covariates(model) -> bool:
    return getattr(model, "new_customer_params", None) is not None and model._has_covariates()


def _params(model, covariates):
    """Each customer's parameters as a new customer (``None`` for a model without covariates)."""
    return model.new_customer_params(covariates) if _with_covariates(model) else None


def _take(P, rows):
    """Per-customer parameters ``P`` restricted to ``rows`` (numbers stay numbers)."""
    return tuple(p[rows] if np.ndim(p) else p for p in P)


def _population(model, what: str) -> None:
    """These figures describe the population by one parameter set: refuse a model with
    covariates (each customer has their own) instead of drawing its covariates' means."""
    check = getattr(model, "_plain_only", None)
    if check is not None:
        check(what)


def period_transactions(model, rfm: pd.DataFrame, max_frequency: int = 7) -> Figure:
    """Customers by number of repeat purchases in calibration: actual vs the model's expectation
    (sum over customers of P(X(T_i) = k) for a new customer observed for T_i; with covariates,
    each customer with their own parameters, from the covariate columns of ``rfm``)."""
    validate_rfm(rfm)
    T = rfm["T"].to_numpy(float)
    P = _params(model, rfm)
    expected = []
    if P is None:
        uT, counts = np.unique(T, return_counts=True)
        zeros = np.zeros_like(uT)
        for k in range(max_frequency):
            expected.append(float(counts @ model._prob_n(k, uT, zeros, zeros, zeros)))
    else:
        zeros = np.zeros_like(T)
        for k in range(max_frequency):
            expected.append(float(model._prob_n(k, T, zeros, zeros, zeros, P).sum()))
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


def calibration_vs_holdout(predictions: dict[str, pd.Series], rfm: pd.DataFrame, max_frequency: int = 7) -> Figure:
    """Mean holdout purchases by calibration frequency: actual vs each model's prediction."""
    validate_rfm(rfm, columns=("frequency", "frequency_holdout"))
    grp = rfm["frequency"].clip(upper=max_frequency)
    fig = Figure(figsize=(7, 4))
    ax = fig.add_subplot()
    ax.plot(*_by(rfm["frequency_holdout"], grp), "k-o", label="actual")
    for name, pred in predictions.items():
        ax.plot(*_by(pred, grp), "--o", ms=3, label=name)
    ax.set_xlabel(f"repeat purchases in calibration ({max_frequency} = {max_frequency}+)")
    span = ""
    if "duration_holdout" in rfm.columns and len(rfm):
        n = float(rfm["duration_holdout"].iloc[0])
        freq = rfm.attrs.get("freq")
        span = f" ({periods(n, freq)})" if freq in UNIT_WORDS else f" ({n:g} periods of the summary)"
    ax.set_ylabel(f"mean repeat purchases\nin the holdout{span}")  # two lines: one is clipped at this size
    ax.set_title("Calibration vs holdout: actual and predicted means")
    ax.legend()
    fig.tight_layout()
    return fig


def _by(values: pd.Series, groups: pd.Series):
    m = values.groupby(groups.to_numpy()).mean()
    return m.index.to_numpy(), m.to_numpy()


def _matrix(fn, max_frequency: int, max_recency: float, T: float, title: str, label: str, unit: str) -> Figure:
    x = np.arange(max_frequency + 1, dtype=float)
    rec = np.linspace(0, max_recency, 40)
    X, R = np.meshgrid(x, rec, indexing="ij")
    R = np.where(X == 0, 0.0, R)
    Z = fn(X.ravel(), R.ravel(), np.full(X.size, T)).reshape(X.shape)
    fig = Figure(figsize=(7, 5))
    ax = fig.add_subplot()
    im = ax.imshow(Z, origin="lower", aspect="auto", cmap="viridis", extent=[0, max_recency, -0.5, max_frequency + 0.5])
    ax.set_xlabel(f"recency: age at the last purchase ({unit} after the first)")
    ax.set_ylabel("frequency (repeat purchases)")
    ax.set_title(title)
    fig.colorbar(im, ax=ax, label=label)
    fig.tight_layout()
    return fig


def frequency_recency_matrix(model, T: float, t: float = 1.0, max_frequency: int = 30, freq: str = FREQ) -> Figure:
    """Expected purchases in the next ``t`` periods (of ``freq``) for a customer whose first
    purchase was ``T`` periods ago."""
    _population(model, "frequency_recency_matrix")
    return _matrix(
        lambda x, r, TT: model._conditional_expected(t, x, r, TT),
        max_frequency,
        T,
        T,
        f"{type(model).__name__}: expected purchases in the next {periods(t, freq)}\n"
        f"of a customer who first bought {periods(round(T), freq)} ago",
        "expected purchases",
        UNIT_WORDS[freq],
    )


def p_alive_matrix(model, T: float, max_frequency: int = 30, freq: str = FREQ) -> Figure:
    """P(alive) by frequency and recency for a customer whose first purchase was ``T`` periods ago."""
    from scipy.special import expit

    _population(model, "p_alive_matrix")
    return _matrix(
        lambda x, r, TT: expit(-model._log_odds_dead(x, r, TT)),
        max_frequency,
        T,
        T,
        f"{type(model).__name__}: P(alive) of a customer who first bought {periods(round(T), freq)} ago",
        "P(alive)",
        UNIT_WORDS[freq],
    )


def _tracking(model, transactions: pd.DataFrame, cutoff, end, freq: str, covariates=None):
    """Calendar grid (weekly, or daily for ``freq="D"``) with the actual and the expected
    cumulative repeat purchases (same-day purchases merged) of the customers who started by
    ``cutoff``: the expectation is sum_i E[X(tau - s_i)] from each first purchase s_i (with
    covariates, each customer's own E, from their row of ``covariates``, indexed by user id)."""
    unit = UNIT_DAYS[freq]
    days = transactions.assign(d=pd.to_datetime(transactions["ts"]).dt.normalize()).drop_duplicates(["user_id", "d"])
    first = days.groupby("user_id")["d"].transform("min")
    cutoff, end = pd.Timestamp(cutoff), pd.Timestamp(end)
    starts = days.loc[days["d"] == first].groupby("user_id")["d"].first()
    starts = starts[starts <= cutoff]
    repeats = days[(days["d"] > first) & days["user_id"].isin(starts.index) & (days["d"] <= end)]
    step = 1 if freq == "D" else 7
    # steps back from ``end``, so that the last point counts every purchase up to it
    grid = pd.date_range(end=end, periods=int(np.ceil((end - starts.min()).days / step)) + 1, freq=f"{step}D")
    actual = np.searchsorted(np.sort(repeats["d"].to_numpy()), grid.to_numpy(), side="right").astype(float)
    if _with_covariates(model) and covariates is not None:
        missing = starts.index.difference(covariates.index.astype(str))
        if len(missing):
            raise ValueError(
                f"covariates lack {len(missing):,} of the {len(starts):,} customers who started "
                f"by {cutoff:%Y-%m-%d}: give one row per customer, indexed by user_id"
            )
        covariates = covariates.set_axis(covariates.index.astype(str)).reindex(starts.index)
    P = _params(model, covariates)
    expected = []
    if P is None:
        s_days, s_counts = np.unique(((starts - starts.min()).dt.days).to_numpy(), return_counts=True)
        for g in grid:
            age = ((g - starts.min()).days - s_days) / unit
            ok = age > 0
            expected.append(float(s_counts[ok] @ model.expected_purchases(age[ok])) if ok.any() else 0.0)
    else:
        s_days = ((starts - starts.min()).dt.days).to_numpy()
        for g in grid:
            age = ((g - starts.min()).days - s_days) / unit
            ok = age > 0
            z = np.zeros(int(ok.sum()))
            expected.append(
                float(model._conditional_expected(age[ok], z, z, z, _take(P, ok)).sum()) if ok.any() else 0.0
            )
    return grid, actual, np.asarray(expected), cutoff


def cumulative_purchases(
    model, transactions: pd.DataFrame, cutoff, end, freq: str = FREQ, covariates: pd.DataFrame | None = None
) -> Figure:
    """Cumulative repeat purchases (same-day purchases merged) over calendar time: actual vs
    the model's expectation sum_i E[X(tau - s_i)] from each customer's first purchase s_i.
    A model with covariates needs ``covariates``: its columns, one row per customer (index
    user_id)."""
    grid, actual, expected, cutoff = _tracking(model, transactions, cutoff, end, freq, covariates)
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


def holdout_tracking(
    expected: dict[str, np.ndarray], transactions: pd.DataFrame, cutoff, end, freq: str = FREQ, season=()
) -> Figure:
    """Repeat purchases after the cut-off of the customers known at it, actual vs each
    predictor: cumulative (top) and per period of ``freq`` (bottom). ``expected[name][k-1]`` is
    the predictor's total over the first ``k`` periods of ``freq`` after ``cutoff`` (k = 1, 2, ...
    up to ``end``), so any model that predicts per user over a horizon can be drawn, BTYD or not.
    ``season``: calendar months (1-12) shaded as the high season (e.g. ``(11, 12)``)."""
    cutoff, end = pd.Timestamp(cutoff).normalize(), pd.Timestamp(end).normalize()
    days = transactions.assign(d=pd.to_datetime(transactions["ts"]).dt.normalize()).drop_duplicates(["user_id", "d"])
    first = days.groupby("user_id")["d"].min()
    known = first.index[first <= cutoff]
    after = np.sort(days.loc[(days["d"] > cutoff) & (days["d"] <= end) & days["user_id"].isin(known), "d"].to_numpy())
    unit = pd.Timedelta(days=UNIT_DAYS[freq])
    n = int(np.floor((end - cutoff) / unit))
    grid = pd.DatetimeIndex([cutoff + k * unit for k in range(1, n + 1)])
    actual = np.searchsorted(after, grid.to_numpy(), side="right")
    months = sorted({int(m) for m in season})
    if any(m < 1 or m > 12 for m in months):
        raise ValueError(f"season must be calendar months 1-12, got {list(season)}")
    fig = Figure(figsize=(8, 7))
    ax, per = fig.subplots(2, 1, sharex=True)
    step = UNIT_WORDS[freq].rstrip("s")
    ax.plot(grid, actual, "k-", label="actual")
    per.plot(grid, np.diff(actual, prepend=0), "k-", label="actual")
    for name, values in expected.items():
        values = np.asarray(values, float)
        if values.shape != (n,):
            raise ValueError(
                f"expected[{name!r}] has {values.size} values; the grid has {n} {UNIT_WORDS[freq]} "
                f"from {cutoff:%Y-%m-%d} to {end:%Y-%m-%d}"
            )
        ax.plot(grid, values, "--", label=f"{name} ({values[-1] / max(actual[-1], 1) - 1:+.1%} at the end)")
        per.plot(grid, np.diff(values, prepend=0.0), "--", label=name)
    if months:
        # each period whose end falls in a season month, shaded from its start to its end
        marked = np.isin(grid.month, months)
        label = f"high season (months {', '.join(map(str, months))})"
        for a in (ax, per):
            for j in np.flatnonzero(marked):
                a.axvspan(
                    grid[j] - unit, grid[j], color="0.9", lw=0, zorder=0, label=label if j == marked.argmax() else None
                )
    ax.set_ylabel("cumulative repeat purchases since the cut-off")
    per.set_ylabel(f"repeat purchases per {step}")
    per.set_xlabel("date")
    ax.set_title(f"Holdout: repeat purchases of the {len(known):,} customers known at {cutoff:%Y-%m-%d}")
    ax.legend(fontsize="small")
    fig.tight_layout()
    return fig


def incremental_purchases(
    model, transactions: pd.DataFrame, cutoff, end, freq: str = FREQ, covariates: pd.DataFrame | None = None
) -> Figure:
    """Repeat purchases per week (per day for ``freq="D"``) over calendar time, actual vs the
    model: the week-to-week differences of :func:`cumulative_purchases` (``covariates`` as
    there). Seasonality the model cannot know (CDNOW's Christmas 1997) shows here first."""
    grid, actual, expected, cutoff = _tracking(model, transactions, cutoff, end, freq, covariates)
    step = "day" if freq == "D" else "week"
    fig = Figure(figsize=(8, 4))
    ax = fig.add_subplot()
    ax.plot(grid[1:], np.diff(actual), "k-", label="actual")
    ax.plot(grid[1:], np.diff(expected), "--", label=type(model).__name__)
    ax.axvline(cutoff, color="grey", ls=":", label="cut-off")
    ax.set_ylabel(f"repeat purchases per {step}")
    ax.set_xlabel("date")
    ax.set_title(f"Repeat purchases per {step}: actual vs {type(model).__name__}")
    ax.legend()
    fig.tight_layout()
    return fig


def p_alive_history(
    model,
    transactions: pd.DataFrame,
    user_id,
    end,
    freq: str = FREQ,
    label: str | None = None,
    covariates: pd.DataFrame | None = None,
) -> Figure:
    """One customer's P(alive) over calendar time, from their first purchase to ``end``, as the
    model re-scores them each day with the purchases made so far (same-day purchases merged);
    their purchases are marked. ``label`` names them in the title (pass a pseudonym, not the
    raw id: figures go to reports and MLflow). A model with covariates needs ``covariates``
    (indexed by user id, with the model's columns) holding this customer's row."""
    from scipy.special import expit

    mine = transactions.loc[transactions["user_id"].astype(str) == str(user_id), "ts"]
    if mine.empty:
        raise ValueError("that user has no purchase in the transactions")
    if _with_covariates(model) and covariates is not None:
        covariates = covariates[covariates.index.astype(str) == str(user_id)]
        if len(covariates) != 1:
            raise ValueError(f"covariates hold {len(covariates)} rows for that user; give exactly one")
    P = _params(model, covariates)
    days = np.sort(pd.to_datetime(mine).dt.normalize().unique())
    first, end = pd.Timestamp(days[0]), pd.Timestamp(end)
    grid = pd.date_range(first, end, freq="D")
    made = np.searchsorted(days, grid.to_numpy(), side="right")  # purchase days up to each day
    unit = UNIT_DAYS[freq]
    T = (grid - first).days.to_numpy() / unit
    tx = (pd.DatetimeIndex(days)[made - 1] - first).days.to_numpy() / unit
    x = (made - 1).astype(float)
    alive = expit(-model._log_odds_dead(x, tx, T, P))
    fig = Figure(figsize=(8, 3.5))
    ax = fig.add_subplot()
    ax.plot(grid, alive, "-", color="steelblue", label="P(alive)")
    marks = pd.DatetimeIndex(days)[pd.DatetimeIndex(days) <= end]
    ax.vlines(marks, 0, 1, colors="k", linestyles=":", label="purchase")
    ax.set_ylim(0, 1.02)
    ax.set_ylabel("P(alive)")
    ax.set_xlabel("date")
    who = f" of {label}" if label else ""
    ax.set_title(f"{type(model).__name__}: P(alive){who} over time")
    ax.legend(loc="lower left")
    fig.tight_layout()
    return fig


def typical_history(rfm: pd.DataFrame, first, freq: str = FREQ) -> pd.DataFrame:
    """A made-up customer's purchases, no real customer's: the median repeat customer's number of
    purchases (``frequency`` + 1), evenly spread from ``first`` over the median repeat customer's
    ``recency``. What :func:`p_alive_history` draws in a report, so that a figure under reports/
    and MLflow carries nobody's purchase dates (an erased user could not be taken out of an image)."""
    validate_rfm(rfm)
    repeat = rfm[rfm["frequency"] > 0]
    if repeat.empty:
        raise ValueError("no repeat customer in the RFM table: a typical purchase history needs one")
    n = max(int(round(float(repeat["frequency"].median()))), 1)
    span = float(repeat["recency"].median()) * UNIT_DAYS[freq]
    ts = pd.Timestamp(first).normalize() + pd.to_timedelta(np.round(np.linspace(0.0, span, n + 1)), unit="D")
    return pd.DataFrame({"user_id": "typical", "ts": ts})


def _clip_spike(ax, dist) -> None:
    """A gamma density with shape < 1 is infinite at 0: show the body (up to the density at
    the 5th percentile) and say so, instead of one spike."""
    top = float(dist.pdf(dist.ppf(0.05)))
    if dist.pdf(dist.ppf(0.001)) > 3 * top:
        ax.set_ylim(0, 1.2 * top)
        ax.text(
            0.98,
            0.6,
            "density near 0\nrises beyond the axis",
            transform=ax.transAxes,
            ha="right",
            fontsize=7,
            color="grey",
        )


def heterogeneity(model, freq: str = FREQ) -> Figure:
    """The fitted mixing distributions: purchase rates (gamma(r, alpha), per ``freq`` period)
    and dropout (BG/NBD, MBG/NBD: the beta(a, b) probability of dropping out after a purchase;
    Pareto/NBD: the gamma(s, beta) dropout rate per period), with their means."""
    from scipy import stats

    _population(model, "heterogeneity")
    p = model.params_
    word = UNIT_WORDS[freq][:-1]
    fig = Figure(figsize=(9, 3.5))
    left, right = fig.subplots(1, 2)
    lam = stats.gamma(a=p["r"], scale=1.0 / p["alpha"])
    xs = np.linspace(lam.ppf(0.001), lam.ppf(0.99), 400)
    left.plot(xs, lam.pdf(xs))
    _clip_spike(left, lam)
    left.axvline(lam.mean(), color="grey", ls=":", label=f"mean {lam.mean():.3g}")
    left.set_xlabel(f"purchase rate (purchases per {word})")
    left.set_ylabel("density")
    left.set_title(f"Purchase rates: gamma(r={p['r']:.3g}, alpha={p['alpha']:.3g})")
    left.legend()
    if "s" in p:  # Pareto/NBD: exponential lifetimes with gamma-distributed rates
        mu = stats.gamma(a=p["s"], scale=1.0 / p["beta"])
        xs = np.linspace(mu.ppf(0.001), mu.ppf(0.99), 400)
        right.plot(xs, mu.pdf(xs), color="darkorange")
        _clip_spike(right, mu)
        right.axvline(mu.mean(), color="grey", ls=":", label=f"mean {mu.mean():.3g}")
        right.set_xlabel(f"dropout rate (per {word})")
        right.set_title(f"Dropout rates: gamma(s={p['s']:.3g}, beta={p['beta']:.3g})")
    else:  # BG/NBD family: drop out after a purchase with probability p ~ beta(a, b)
        pb = stats.beta(p["a"], p["b"])
        xs = np.linspace(pb.ppf(0.001), pb.ppf(0.999), 400)
        right.plot(xs, pb.pdf(xs), color="darkorange")
        right.axvline(pb.mean(), color="grey", ls=":", label=f"mean {pb.mean():.3g}")
        right.set_xlabel("probability of dropping out after a purchase")
        right.set_title(f"Dropout: beta(a={p['a']:.3g}, b={p['b']:.3g})")
    right.set_ylabel("density")
    right.legend()
    fig.suptitle(f"{type(model).__name__}: heterogeneity across customers")
    fig.tight_layout()
    return fig


def customer_exposure(rfm: pd.DataFrame, bins: int = 12, min_count: int = 5, freq: str = FREQ) -> Figure:
    """Customer exposure: how many customers have each age (``T``, time since the first
    purchase) and each recency (time from the first to the last repeat purchase; one-time
    buyers have recency 0), in a ``bins`` x ``bins`` grid of counts. What the models see of the
    customers, without drawing any one of them: cells of fewer than ``min_count`` customers are
    left blank, so a figure under reports/ and MLflow shows no single customer (an erased user
    could not be taken out of an image)."""
    validate_rfm(rfm)
    word = UNIT_WORDS[freq]
    top = float(max(rfm["T"].max(), 1e-9))
    edges = np.linspace(0.0, top, bins + 1)
    counts, _, _ = np.histogram2d(rfm["T"], rfm["recency"], bins=[edges, edges])
    shown = np.where(counts >= min_count, counts, np.nan)
    fig = Figure(figsize=(6.5, 5))
    ax = fig.add_subplot()
    mesh = ax.pcolormesh(edges, edges, shown.T, cmap="Blues", shading="flat")
    ax.plot([0, top], [0, top], ":", color="grey", lw=1)
    fig.colorbar(mesh, ax=ax, label="customers")
    ax.set_xlabel(f"age T ({word} since the first purchase)")
    ax.set_ylabel(f"recency ({word} from the first to the last repeat purchase)")
    hidden = int(counts[(counts > 0) & (counts < min_count)].sum())
    ax.set_title(
        f"Customer exposure: {len(rfm):,} customers by age and recency"
        + (f"\n(cells of fewer than {min_count} customers blank: {hidden:,} customers)" if hidden else ""),
        fontsize=10,
    )
    fig.tight_layout()
    return fig


def block_tracking(tables: dict, cutoff, freq: str = FREQ, season=()) -> Figure:
    """Repeat purchases per month and per quarter of the holdout, actual vs each model (one panel
    per table of :func:`urm_models.evaluation.holdout.tracking_errors`, keyed ``"month"``,
    ``"quarter"``), each block drawn at its end date, the blocks ending in a ``season`` month
    shaded; the legend gives each model's MAPE over the blocks."""
    cutoff = pd.Timestamp(cutoff).normalize()
    unit = pd.Timedelta(days=UNIT_DAYS[freq])
    months = sorted({int(m) for m in season})
    fig = Figure(figsize=(8, 3.2 * len(tables)))
    axes = np.atleast_1d(fig.subplots(len(tables), 1))
    for ax, (block, table) in zip(axes, tables.items(), strict=True):
        ends = pd.DatetimeIndex([cutoff + int(e) * unit for e in table["period_end"]])
        if not len(ends):  # a holdout shorter than half a block
            ax.text(
                0.5,
                0.5,
                f"the holdout is shorter than half a {block}",
                ha="center",
                va="center",
                transform=ax.transAxes,
            )
            ax.set_title(f"Holdout by {block}")
            continue
        starts = pd.DatetimeIndex([cutoff, *ends[:-1]])
        ax.plot(ends, table["actual"], "ko-", label="actual")
        counted = table["actual"] > 0
        for name in [c for c in table.columns if c not in ("period_end", "actual")]:
            errors = np.abs(table.loc[counted, name] - table.loc[counted, "actual"]) / table.loc[counted, "actual"]
            mape = float(np.mean(errors)) if counted.any() else float("nan")
            ax.plot(ends, table[name], "--", marker=".", label=f"{name} (MAPE {mape:.1%})")
        labelled = False
        for a, b in zip(starts, ends, strict=True):
            if months and (b - pd.Timedelta(days=1)).month in months:
                label = None if labelled else f"high season (months {', '.join(map(str, months))})"
                ax.axvspan(a, b, color="0.9", lw=0, zorder=0, label=label)
                labelled = True
        ax.set_ylabel(f"repeat purchases per {block}")
        ax.set_title(f"Holdout by {block} (blocks of {BLOCK_WORDS[block]} from {cutoff:%Y-%m-%d})")
        ax.legend(fontsize="x-small")
    axes[-1].set_xlabel("end of the block (date)")
    fig.tight_layout()
    return fig


BLOCK_WORDS = {"month": "365.25/12 days", "quarter": "365.25/4 days"}
