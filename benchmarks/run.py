"""Benchmarks: `make bench` (or `python benchmarks/run.py [name ...]`).

Every case runs in its own subprocess so that its peak memory (max RSS) is its own; each
reports wall time and the peak RSS above the process's RSS once the input was loaded, and the
baseline runs in the same command so that ratios compare like with like. Results are printed
as Markdown rows and saved to benchmarks/out/<name>.json; copy them into docs/benchmarks.md
together with the command.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

OUT = Path(__file__).resolve().parent / "out"
ROOT = Path(__file__).resolve().parent.parent

# ----------------------------------------------------------------------------- rfm_summary
RFM_DATA = OUT / "rfm_10m.parquet"
RFM_CUTOFF, RFM_FREQ = "2020-12-31", "W"
# chosen so that 1,000,000 users make ~10,000,000 purchases (T uniform 20-78 weeks)
RFM_PARAMS = {"r": 1.0, "alpha": 2.3, "a": 1.0, "b": 9.0}


RFM_CASES = ("duckdb", "duckdb_parquet", "pandas")


def _maxrss_mb() -> float:
    """Peak RSS of this process image. VmHWM, not getrusage's ru_maxrss: Linux carries
    ru_maxrss over from the parent across fork+exec, which would hide a child's smaller peak."""
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024.0
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def rfm_pandas(tx: pd.DataFrame, cutoff: str, freq: str) -> pd.DataFrame:
    """The baseline: the same summary with a plain pandas groupby."""
    unit = {"D": 1.0, "W": 7.0, "M": 365.25 / 12}[freq]
    cut = pd.Timestamp(cutoff)
    d = tx[["user_id", "ts", "amount"]].assign(d=tx["ts"].dt.normalize())
    d = d[d["d"] <= cut]
    days = d.groupby(["user_id", "d"], sort=False)["amount"].sum().reset_index()
    first = days.groupby("user_id")["d"].transform("min")
    days["repeat_amount"] = np.where(days["d"] > first, days["amount"], 0.0)
    g = days.groupby("user_id").agg(
        n=("d", "size"), first=("d", "min"), last=("d", "max"), rep=("repeat_amount", "sum")
    )
    out = pd.DataFrame(index=g.index)
    out["frequency"] = (g["n"] - 1).astype("int64")
    out["recency"] = (g["last"] - g["first"]).dt.days / unit
    out["T"] = (cut - g["first"]).dt.days / unit
    out["monetary"] = np.where(out["frequency"] > 0, g["rep"] / out["frequency"].clip(lower=1), 0.0)
    return out.sort_index()


def _rfm_case(which: str) -> dict:
    from urm_models import features

    tx = pd.read_parquet(RFM_DATA) if which != "duckdb_parquet" else None
    n_rows = len(tx) if tx is not None else None
    base = _maxrss_mb()
    t0 = time.perf_counter()
    if which == "duckdb_parquet":  # DuckDB scans the file itself: no pandas copy of the input
        out = features.rfm_summary(RFM_DATA, cutoff=RFM_CUTOFF, freq=RFM_FREQ)
    elif which == "duckdb":
        out = features.rfm_summary(tx, cutoff=RFM_CUTOFF, freq=RFM_FREQ)
    else:
        out = rfm_pandas(tx, RFM_CUTOFF, RFM_FREQ)
    secs = time.perf_counter() - t0
    out.to_parquet(OUT / f"rfm_result_{which}.parquet")
    return {
        "case": which,
        "seconds": secs,
        "peak_rss_mb": _maxrss_mb(),
        "peak_above_input_mb": _maxrss_mb() - base,
        "rows": n_rows if n_rows is not None else len(pd.read_parquet(RFM_DATA, columns=["amount"])),
        "users": len(out),
    }


def bench_rfm(repeats: int = 3) -> list[dict]:
    _ensure_rfm_data()
    rows = _alternate("rfm_case", RFM_CASES, repeats, label="rfm_summary ")
    a = pd.read_parquet(OUT / "rfm_result_duckdb.parquet")
    b = pd.read_parquet(OUT / "rfm_result_pandas.parquet")
    pd.testing.assert_frame_equal(a[b.columns], b, check_exact=False, rtol=1e-9)
    df = pd.DataFrame(rows)
    med = df.groupby("case")[["seconds", "peak_rss_mb", "peak_above_input_mb"]].median()
    print("\n| path | rows | users | median wall s | peak RSS MB | peak above input MB |")
    print("|---|---|---|---|---|---|")
    for case in RFM_CASES:
        m = med.loc[case]
        print(
            f"| {case} | {rows[0]['rows']:,} | {rows[0]['users']:,} | {m['seconds']:.2f} | "
            f"{m['peak_rss_mb']:.0f} | {m['peak_above_input_mb']:.0f} |"
        )
    for case in ("duckdb", "duckdb_parquet"):
        ratio = med.loc["pandas", "seconds"] / med.loc[case, "seconds"]
        print(f"\n{case}: {ratio:.1f}x faster than the pandas groupby baseline (same output, checked)")
    return rows


# ----------------------------------------------------------------------------- BTYD fits
BTYD_DATA = OUT / "btyd_rfm_1m.parquet"
CDNOW_BG = {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426}


def _btyd_data() -> pd.DataFrame:
    rfm = pd.read_parquet(BTYD_DATA)
    rfm.attrs["freq"] = "W"
    return rfm


def _btyd_case(which: str) -> dict:
    """Fit (and CLV) on the 1M-user summary; report time, peak memory and the optimum."""
    rfm = _btyd_data()
    base = _maxrss_mb()
    out = {"case": which, "users": len(rfm)}
    if which in ("urm_bgnbd", "lifetimes_bgnbd"):
        # Both sides: one warm-up fit on 2,000 rows (imports, first calls), then timed fits
        # on the full data; "seconds" is the median of the timed fits, "first" the first one.
        if which == "urm_bgnbd":
            from urm_models.models import BetaGeo

            def fit(data):
                m = BetaGeo().fit(data)
                return m.params_

            n_timed = 5
        else:
            from lifetimes import BetaGeoFitter

            def fit(data):
                m = BetaGeoFitter().fit(data["frequency"], data["recency"], data["T"])
                return {k: float(m.params_[k]) for k in ("r", "alpha", "a", "b")}

            n_timed = 2
        fit(rfm.iloc[:2000])
        times = []
        for _ in range(n_timed):
            t0 = time.perf_counter()
            params = fit(rfm)
            times.append(time.perf_counter() - t0)
        out.update(
            seconds=float(np.median(times)),
            first=times[0],
            times=times,
            params=params,
            ll=_our_ll("BetaGeo", params, rfm),
        )
    elif which == "urm_clv":
        from urm_models.models import BetaGeo, GammaGamma, customer_lifetime_value

        bg, gg = BetaGeo().fit(rfm), GammaGamma().fit(rfm)
        t0 = time.perf_counter()
        c = customer_lifetime_value(bg, gg, rfm, horizon=12, freq="M", discount_rate=0.01)
        out.update(seconds=time.perf_counter() - t0, total_clv=float(c["clv"].sum()), params=bg.params_)
    elif which == "lifetimes_clv":
        from lifetimes import BetaGeoFitter, GammaGammaFitter

        from urm_models.models import BetaGeo, GammaGamma

        ours = BetaGeo().fit(rfm)
        gg_ours = GammaGamma().fit(rfm)
        bg = BetaGeoFitter()
        bg.params_ = pd.Series(ours.params_)
        bg.predict = bg.conditional_expected_number_of_purchases_up_to_time  # set by fit() normally
        gg = GammaGammaFitter()
        gg.params_ = pd.Series(gg_ours.params_)
        t0 = time.perf_counter()
        # lifetimes' CLV works in days; our summary is in weeks: freq="W" tells it so
        c = gg.customer_lifetime_value(
            bg, rfm["frequency"], rfm["recency"], rfm["T"], rfm["monetary"], time=12, discount_rate=0.01, freq="W"
        )
        out.update(seconds=time.perf_counter() - t0, total_clv=float(c.sum()), params=ours.params_)
    out["peak_rss_mb"] = _maxrss_mb()
    out["peak_above_input_mb"] = out["peak_rss_mb"] - base
    return out


def _our_ll(model: str, params: dict, rfm: pd.DataFrame) -> float:
    """Total log-likelihood at ``params`` with our implementation of ``model`` (a class name in
    urm_models.models): one yardstick for both fitters' optima."""
    from urm_models import models
    from urm_models.models.btyd import _Purchases

    model_cls = getattr(models, model)
    d = _Purchases(rfm["frequency"].to_numpy(float), rfm["recency"].to_numpy(float), rfm["T"].to_numpy(float))
    lp = np.log([params[k] for k in model_cls.param_names])
    return float(d.w @ model_cls()._loglik_grad(lp, d)[0])


def bench_btyd(repeats: int = 3) -> list[dict]:
    from urm_models import features
    from urm_models.data import datasets

    OUT.mkdir(exist_ok=True)
    if not BTYD_DATA.exists():
        tx = datasets.simulate_transactions(1_000_000, params=CDNOW_BG, T=(20, 78), seed=0, cutoff="2020-12-31")
        rfm = features.rfm_summary(tx, cutoff="2020-12-31", freq="W")
        rfm.to_parquet(BTYD_DATA)
    rfm = _btyd_data()
    n_distinct = len(rfm[["frequency", "recency", "T"]].drop_duplicates())
    print(
        f"1,000,000 simulated users (BG/NBD, CDNOW parameters, T uniform 20-78 weeks), "
        f"{n_distinct:,} distinct (x, t_x, T) histories"
    )
    rows = []
    plan = [("urm_bgnbd", "lifetimes_bgnbd", "urm_clv", "lifetimes_clv")]
    for group in plan:
        for which in group:
            r = _in_subprocess("btyd_case", which)
            rows.append(r)
            extra = (
                f"LL {r['ll']:.6f}; timed fits {', '.join(f'{t:.2f}' for t in r['times'])}"
                if "ll" in r
                else f"total CLV {r['total_clv']:,.0f}"
            )
            print(f"  {which:16s} {r['seconds']:7.2f}s  peak RSS {r['peak_rss_mb']:6.0f} MB  {extra}")
    df = pd.DataFrame(rows)
    med = df.groupby("case")["seconds"].median()
    ours_ll = df.loc[df.case == "urm_bgnbd", "ll"].iloc[0]
    ref_ll = df.loc[df.case == "lifetimes_bgnbd", "ll"].iloc[0]
    print(
        f"\nBG/NBD fit: {med['lifetimes_bgnbd'] / med['urm_bgnbd']:.0f}x faster than lifetimes 0.11.3; "
        f"log-likelihoods (ours at each optimum) differ by {abs(ours_ll - ref_ll) / abs(ref_ll):.1e} relative, "
        f"ours {'higher' if ours_ll >= ref_ll else 'lower'}"
    )
    print(
        f"CLV (12 months, 1% monthly discount): {med['lifetimes_clv'] / med['urm_clv']:.0f}x faster than "
        f"lifetimes' customer_lifetime_value on the same parameters"
    )
    return rows


# ----------------------------------------------------------------------------- Pareto/NBD
PARETO_DATA = OUT / "pareto_rfm_1m.parquet"
CDNOW_PARETO = {"r": 0.553, "alpha": 10.578, "s": 0.606, "beta": 11.669}


def _pareto_case(which: str) -> dict:
    rfm = pd.read_parquet(PARETO_DATA)
    rfm.attrs["freq"] = "W"
    base = _maxrss_mb()
    out = {"case": which, "users": len(rfm)}
    t0 = time.perf_counter()
    if which == "urm_paretonbd":
        from urm_models.models import ParetoNBD

        m = ParetoNBD().fit(rfm)
        params = m.params_
    else:
        from lifetimes import ParetoNBDFitter

        lm = ParetoNBDFitter().fit(rfm["frequency"], rfm["recency"], rfm["T"])
        params = {k: float(lm.params_[k]) for k in ("r", "alpha", "s", "beta")}
    out.update(seconds=time.perf_counter() - t0, params=params, ll=_our_ll("ParetoNBD", params, rfm))
    out["peak_rss_mb"] = _maxrss_mb()
    out["peak_above_input_mb"] = out["peak_rss_mb"] - base
    return out


def bench_pareto(repeats: int = 3) -> list[dict]:
    from urm_models import features
    from urm_models.data import datasets

    OUT.mkdir(exist_ok=True)
    if not PARETO_DATA.exists():
        tx = datasets.simulate_transactions(
            1_000_000, model="paretonbd", params=CDNOW_PARETO, T=(20, 78), seed=0, cutoff="2020-12-31"
        )
        features.rfm_summary(tx, cutoff="2020-12-31", freq="W").to_parquet(PARETO_DATA)
    rfm = pd.read_parquet(PARETO_DATA)
    n_distinct = len(rfm[["frequency", "recency", "T"]].drop_duplicates())
    print(
        f"1,000,000 simulated users (Pareto/NBD, CDNOW parameters, T uniform 20-78 weeks), "
        f"{n_distinct:,} distinct histories"
    )
    rows = []
    for which in ["urm_paretonbd", "lifetimes_paretonbd"] + ["urm_paretonbd"] * (repeats - 1):
        r = _in_subprocess("pareto_case", which)
        rows.append(r)
        print(
            f"  {which:20s} {r['seconds']:8.2f}s  peak RSS {r['peak_rss_mb']:6.0f} MB  "
            f"LL {r['ll']:.6f}  {', '.join(f'{k}={v:.4f}' for k, v in r['params'].items())}"
        )
    df = pd.DataFrame(rows)
    med = df.groupby("case")["seconds"].median()
    ours, ref = df.loc[df.case == "urm_paretonbd", "ll"].iloc[0], df.loc[df.case == "lifetimes_paretonbd", "ll"].iloc[0]
    print(
        f"\nPareto/NBD fit: {med['lifetimes_paretonbd'] / med['urm_paretonbd']:.0f}x faster than lifetimes "
        f"0.11.3; log-likelihoods differ by {abs(ours - ref) / abs(ref):.1e} relative, ours "
        f"{'higher' if ours >= ref else 'lower'}"
    )
    return rows


# ----------------------------------------------------------------------------- fit times
def _purchase_models(**where) -> tuple[str, ...]:
    """Purchase candidates of the package's model table (models/registry.py), in its order."""
    from urm_models.models import registry

    return tuple(registry.model_names(role="purchases", candidate=True, **where))


FIT_MODELS = _purchase_models()


def _fit_case(which: str) -> dict:
    """One fit on CDNOW_master calibrated to 1997-09-30 (weekly), its data loaded first."""
    from urm_models import features, models
    from urm_models.data import datasets

    tx = datasets.load_cdnow(sample=False)
    rfm = features.rfm_summary(tx, cutoff="1997-09-30", freq="W")
    t0 = time.perf_counter()
    if which == "ShiftedWindowPurchases":
        m = models.ShiftedWindowPurchases().fit(tx, "1997-09-30")
        fitted = {"window": m.window_, "training_rows": m.n_training_rows_}
    elif which == "TimeVaryingParetoNBD":  # without covariates: the cost of its weekly pieces alone
        m = models.TimeVaryingParetoNBD().fit(tx, "1997-09-30")
        fitted = {"ll": m.log_likelihood_}
    else:
        m = getattr(models, which)().fit(rfm)
        fitted = {"ll": m.log_likelihood_}
    return {"case": which, "users": len(rfm), "seconds": time.perf_counter() - t0, **fitted}


def bench_fits(repeats: int = 3) -> list[dict]:
    """Fit times of every purchase model on CDNOW_master, as ratios to Pareto/NBD's."""
    print("CDNOW_master (23,570 customers), calibration to 1997-09-30, weekly; each fit in a fresh process")
    rows = []
    for rep in range(repeats):
        for which in FIT_MODELS:
            r = _in_subprocess("fit_case", which)
            rows.append({**r, "repeat": rep})
            print(f"  {which:24s} {r['seconds']:7.2f}s")
    med = pd.DataFrame(rows).groupby("case")["seconds"].median()
    print("\nmedian fit time, and its ratio to Pareto/NBD's:")
    for which in FIT_MODELS:
        print(f"  {which:24s} {med[which]:7.2f}s  {med[which] / med['ParetoNBD']:6.1f}x")
    return rows


# ----------------------------------------------------------------------------- the limit without dropout
def _nodropout_case(which: str) -> dict:
    """Pareto/NBD on the gift shop's first seven months (weekly, cut-off 2011-06-30), where the
    data show no dropout: ours refuses the limit (then fit_candidates refits with a penalizer),
    lifetimes 0.11.3 runs to s -> 0; the time to the answer of each."""
    import warnings

    from urm_models import features, models
    from urm_models.data import datasets

    rfm = features.rfm_summary(datasets.load_online_retail(), "2011-06-30", freq="W")
    t0 = time.perf_counter()
    if which == "ours":
        try:
            models.ParetoNBD().fit(rfm)
            answer = "fitted"
        except models.ConvergenceError as exc:
            answer = str(exc).split(":")[1][:40]
    elif which == "ours_with_fallback":
        fits = models.fit_candidates({"ParetoNBD": models.ParetoNBD()}, rfm)
        answer = f"{fits.notes.loc['ParetoNBD', 'status']} s={fits.models['ParetoNBD'].params_['s']:.3g}"
    else:
        from lifetimes import ParetoNBDFitter

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # lifetimes' own warnings at the limit
            lf = ParetoNBDFitter().fit(rfm["frequency"], rfm["recency"], rfm["T"])
        answer = f"s={lf.params_['s']:.3g} beta={lf.params_['beta']:.3g}"
    return {"case": which, "seconds": time.perf_counter() - t0, "answer": answer}


def bench_nodropout(repeats: int = 3) -> list[dict]:
    """Pareto/NBD at the limit without dropout, ours against lifetimes (same data, fresh processes)."""
    rows = []
    for rep in range(repeats):
        for which in ("ours", "ours_with_fallback", "lifetimes"):
            r = _in_subprocess("nodropout_case", which)
            rows.append({**r, "repeat": rep})
            print(f"  {which:20s} {r['seconds']:6.2f}s  {r['answer']}")
    med = pd.DataFrame(rows).groupby("case")["seconds"].median()
    print(
        f"median: ours {med['ours']:.2f}s, with the penalized refit {med['ours_with_fallback']:.2f}s, "
        f"lifetimes {med['lifetimes']:.2f}s ({med['lifetimes'] / med['ours']:.1f}x ours)"
    )
    return rows


# ----------------------------------------------------------------------------- accuracy
#: the cases of the accuracy benchmark: data set, calibration cut-offs (the two of issue 28 and more, so that
#: nothing is tuned to two), end of the holdout, and a season calendar given to 05 (None: none)
ACCURACY = {
    "cdnow": ("cdnow", ("1997-06-30", "1997-08-15", "1997-09-30", "1997-12-31"), "1998-06-30", None),
    "cdnow, Nov-Dec calendar": ("cdnow", ("1997-12-31",), "1998-06-30", ["11-01..12-31"]),
    "gift shop 2010-11": (
        "online_retail",
        ("2011-04-30", "2011-06-30", "2011-08-15", "2011-09-30"),
        "2011-12-09",
        None,
    ),
    "gift shop 2009-10": (
        "online_retail_2009",
        ("2010-04-30", "2010-06-30", "2010-08-15", "2010-09-30"),
        "2010-12-09",
        None,
    ),
    "gift shop 2009-11, Q4 calendar": ("gift_2009_2011", ("2011-06-30", "2011-09-30"), "2011-12-09", ["10-01..12-31"]),
    "grocer": ("grocery", ("2006-12-31", "2007-03-31", "2007-06-30", "2007-09-30"), "2007-12-30", None),
    "apparel (simulated)": ("apparel", ("2007-12-31", "2008-12-31", "2009-06-30", "2009-12-31"), "2010-12-20", None),
    "apparel (simulated), its calendar": (
        "apparel",
        ("2007-12-31", "2008-12-31", "2009-06-30", "2009-12-31"),
        "2010-12-20",
        "apparel_season",
    ),
}
#: the candidates fitted without a calendar, and those of them fitted on the BTYD summary
ACCURACY_MODELS = _purchase_models(needs_calendar=False)
BTYD = _purchase_models(fits_on="rfm")


def _accuracy_data(which: str) -> pd.DataFrame:
    from urm_models.data import datasets

    if which == "gift_2009_2011":  # the two sheets of Online Retail II: the same shop and ids, 2009-12 to 2011-12
        a, b = datasets.load_online_retail("2009"), datasets.load_online_retail("2010")
        a = a[a["ts"] < "2010-12-01"]  # the sheets overlap on 2010-12-01..09 (the same invoices)
        return pd.concat([a[["user_id", "ts", "amount"]], b[["user_id", "ts", "amount"]]], ignore_index=True)
    if which.startswith("online_retail"):
        return datasets.load_online_retail("2009" if which.endswith("2009") else "2010")
    return getattr(datasets, f"load_{which}")()


def _accuracy_case(name: str, cutoff: str) -> dict:
    """Every purchase model, the linear pool and the honestly chosen champion on one data set and
    cut-off, as 05 does it: fitted on the calibration period (models.fit_candidates), the champion
    chosen on inner windows before the cut-off, every model scored on the untouched holdout."""
    from sklearn.base import clone

    from urm_models import features, models
    from urm_models.evaluation import holdout
    from urm_models.features.calendar import SeasonCalendar
    from urm_models.models.pool import component_cdf

    which, _, end, spec = ACCURACY[name]
    tx = _accuracy_data(which)
    calendar = None
    if spec is not None:
        calendar = SeasonCalendar(str(ROOT / "data/examples/apparel_season.csv") if spec == "apparel_season" else spec)
    rfm = features.rfm_summary(tx, cutoff, freq="W", holdout_end=end)
    t = float(rfm["duration_holdout"].iloc[0])
    a = rfm["frequency_holdout"]
    actual = holdout.actual_cumulative(tx, cutoff, t)
    horizons = list(range(1, len(actual) + 1))
    names = list(ACCURACY_MODELS) + (["TimeVaryingParetoNBD"] if calendar is not None else [])
    rows, fitted, cum, means, cdfs = {}, {}, {}, {}, {}
    for m in names:
        if m == "ShiftedWindowPurchases":
            est = models.ShiftedWindowPurchases(season=calendar)
        elif m == "TimeVaryingParetoNBD":
            est = models.TimeVaryingParetoNBD(
                purchase_covariates=calendar.columns, dropout_covariates=calendar.columns, season=calendar
            )
        else:
            est = getattr(models, m)()
        on_tx = m in ("ShiftedWindowPurchases", "TimeVaryingParetoNBD")
        t0 = time.process_time()
        fits = models.fit_candidates({m: est}, *((tx, cutoff) if on_tx else (rfm,)))
        seconds = time.process_time() - t0
        note = fits.notes.loc[m]
        if m not in fits.models:
            rows[m] = {"status": "dropped", "reason": note.reason[:120]}
            continue
        model = fits.models[m]
        median = None
        if m == "ShiftedWindowPurchases":
            mean = model.predict(tx, t)
            median = model.predict(tx, t, point="median")
            cum[m] = model.predict(tx, horizons).sum().to_numpy()
        elif m == "TimeVaryingParetoNBD":
            mean = model.predict(tx, t)
            cum[m] = model.scores(rfm, cutoff, horizons, 13.0)["expected"].sum(axis=0)
        else:
            mean = model.conditional_expected_purchases(t, rfm)
            median = models.conditional_median_purchases(model, t, rfm)
            cum[m] = np.array([model.conditional_expected_purchases(h, rfm).sum() for h in horizons])
        mean = mean.reindex(a.index)
        if not np.isfinite(mean).all():
            rows[m] = {"status": "dropped", "reason": "forecasts not finite"}
            cum.pop(m)
            continue
        fitted[m], means[m] = model, mean
        if median is not None:
            cdfs[m] = component_cdf(model, t, tx if on_tx else rfm, a.index)
        err = holdout.purchase_metrics(mean, a)
        rows[m] = {
            "status": note.status,
            "rmse": err["rmse"],
            "total_error": err["aggregate_error"],
            "median_mae": holdout.purchase_metrics(median.reindex(a.index), a)["mae"] if median is not None else np.nan,
            "fit_cpu_s": seconds,
        }
    t0 = time.process_time()
    order, season_test = holdout.seasons_first(fitted, "TimeVaryingParetoNBD", "ParetoNBD")
    try:
        inner = holdout.choose_on_inner_windows(tx, cutoff, {m: clone(f) for m, f in order.items()}, horizon=t)
        choice, how, inner_table = inner.choice, inner.describe(), inner.table.to_dict("index")
        pool = inner.pool
    except ValueError as exc:
        choice, how, inner_table, pool = next(iter(fitted)), f"no inner window: {exc}", {}, {}
    choose_s = time.process_time() - t0
    if pool:  # the linear pool of two fitted models with the inner windows' weights, on the holdout
        lp = models.LinearPool({m: fitted[m] for m in pool}, pool)
        mean = lp.combine({m: means[m] for m in pool})
        err = holdout.purchase_metrics(mean, a)
        median = (
            pd.Series(lp.median({m: cdfs[m] for m in pool}), index=a.index) if all(m in cdfs for m in pool) else None
        )
        rows[holdout.POOL] = {
            "status": "pool " + ", ".join(f"{w:.2f} {m}" for m, w in pool.items()),
            "rmse": err["rmse"],
            "total_error": err["aggregate_error"],
            "median_mae": holdout.purchase_metrics(median, a)["mae"] if median is not None else np.nan,
            "fit_cpu_s": 0.0,
        }
        cum[holdout.POOL] = lp.combine({m: np.asarray(cum[m]) for m in pool})
    for block in ("quarter", "month"):
        _, mape = holdout.tracking_errors(cum, actual, block=block)
        for m, v in mape.items():
            rows[m][f"{block}ly_mape"] = v
    scored = [m for m in rows if rows[m]["status"] != "dropped"]
    best = min(scored, key=lambda m: rows[m]["rmse"])
    return {
        "case": name,
        "cutoff": cutoff,
        "holdout_end": end,
        "calendar": calendar.describe() if calendar is not None else "",
        "season_test": season_test if calendar is not None else "",
        "users": len(rfm),
        "holdout_purchases": float(a.sum()),
        "models": rows,
        "champion": choice,
        "chosen_by": how,
        "choice_cpu_s": choose_s,
        "holdout_best": best,
        "inner": {
            m: {k: (None if isinstance(v, float) and not np.isfinite(v) else v) for k, v in r.items()}
            for m, r in inner_table.items()
        },
    }


def _beats(r, key) -> bool:
    """Whether the champion's (absolute) error is at most every BTYD model's."""
    champ = abs(r["models"][r["champion"]][key])
    return all(
        champ <= abs(r["models"][m][key]) + 1e-12 for m in BTYD if r["models"].get(m, {}).get("status") != "dropped"
    )


def bench_accuracy() -> list[dict]:
    """Holdout accuracy of every purchase model, the pool and the champion chosen on inner windows."""
    rows = []
    for name, (_, cutoffs, _, _) in ACCURACY.items():
        for cutoff in cutoffs:
            r = _in_subprocess("accuracy_case", name, cutoff)
            rows.append(r)
            print(
                f"\n{name}, cut-off {cutoff}, holdout to {r['holdout_end']}: {r['users']:,} customers, "
                f"{r['holdout_purchases']:,.0f} holdout repeat purchase days; champion {r['champion']} "
                f"(holdout best {r['holdout_best']}); {r['chosen_by']}"
                + (f"; {r['season_test']}" if r["season_test"] else "")
            )
            print("| model | RMSE | total error | median MAE | quarterly MAPE | monthly MAPE | fit CPU s |")
            print("|---|---|---|---|---|---|---|")
            for m, v in r["models"].items():
                if v["status"] == "dropped":
                    print(f"| {m} | dropped: {v['reason']} | | | | | |")
                    continue
                star = " (champion)" if m == r["champion"] else ""
                extra = f" ({v['status']})" if v["status"] not in ("fitted",) else ""
                print(
                    f"| {m}{star}{extra} | {v['rmse']:.4f} | {v['total_error']:+.1%} | {v['median_mae']:.4f} | "
                    f"{v['quarterly_mape']:.1%} | {v['monthly_mape']:.1%} | {v['fit_cpu_s']:.2f} |"
                )
    hits = sum(r["champion"] == r["holdout_best"] for r in rows)
    cost = [r["models"][r["champion"]]["rmse"] / r["models"][r["holdout_best"]]["rmse"] - 1 for r in rows]
    wrong = [c for c in cost if c > 0]
    print(
        f"\nthe inner choice is the holdout's best by RMSE in {hits} of {len(rows)} cases; a wrong pick costs "
        f"{np.mean(wrong) if wrong else 0:.1%} RMSE on average (at most {max(cost):.1%})"
    )
    print(
        f"the champion beats every BTYD model on RMSE in {sum(_beats(r, 'rmse') for r in rows)} of {len(rows)}, "
        f"on |total error| in {sum(_beats(r, 'total_error') for r in rows)} of {len(rows)}, on both in "
        f"{sum(_beats(r, 'rmse') and _beats(r, 'total_error') for r in rows)}"
    )
    return rows


# ----------------------------------------------------------------------------- scoring
SCORING_MODEL = OUT / "scoring_clv_pyfunc"
SCORING_CASES = ("features", "table", "table_pyfunc")


def _scoring_case(which: str) -> dict:
    """The relationship table of 1M simulated users (10M purchases) at the cut-off: the
    ``features`` step alone (activity_features: the baseline), the whole table with the CLV
    model in process (``table``), and the same through the logged MLflow pyfunc, as the refresh
    loads it (``table_pyfunc``, load time included)."""
    from urm_models import features
    from urm_models.serve import scoring

    tx = pd.read_parquet(RFM_DATA)
    base = _maxrss_mb()
    t0 = time.perf_counter()
    if which == "features":
        out = features.activity_features(tx, RFM_CUTOFF, freq=RFM_FREQ)
        extra = {}
    else:
        if which == "table":
            import pickle

            model = pickle.loads((OUT / "scoring_clv_scorer.pkl").read_bytes())
        else:
            import mlflow.pyfunc

            model = mlflow.pyfunc.load_model(str(SCORING_MODEL))
        out = scoring.score_transactions(tx, RFM_CUTOFF, model, options=scoring.ScoringOptions(freq=RFM_FREQ))
        extra = {
            "total_clv": float(out["clv"].sum()),
            "tiers": out["tier"].value_counts().to_dict(),
            "stages": out["lifecycle_stage"].value_counts().to_dict(),
        }
    secs = time.perf_counter() - t0
    return {
        "case": which,
        "seconds": secs,
        "users": len(out),
        "rows": len(tx),
        "peak_rss_mb": _maxrss_mb(),
        "peak_above_input_mb": _maxrss_mb() - base,
        **extra,
    }


def bench_scoring(repeats: int = 3) -> list[dict]:
    import pickle
    import shutil

    import mlflow.pyfunc

    from urm_models import features
    from urm_models.models import BetaGeo, CLVScorer, GammaGamma
    from urm_models.serve.mlflow_models import CLVPyfunc

    _ensure_rfm_data()  # the 10M transactions it shares with the rfm benchmark, simulated if missing
    tx = pd.read_parquet(RFM_DATA)
    rfm = features.rfm_summary(tx, cutoff=RFM_CUTOFF, freq=RFM_FREQ)
    t0 = time.perf_counter()
    scorer = CLVScorer(BetaGeo().fit(rfm), GammaGamma().fit(rfm), rfm_freq=RFM_FREQ)
    print(f"BG/NBD + Gamma-Gamma fitted on {len(rfm):,} users in {time.perf_counter() - t0:.1f}s (not timed below)")
    del tx, rfm
    (OUT / "scoring_clv_scorer.pkl").write_bytes(pickle.dumps(scorer))
    shutil.rmtree(SCORING_MODEL, ignore_errors=True)
    mlflow.pyfunc.save_model(str(SCORING_MODEL), python_model=CLVPyfunc(scorer))
    rows = _alternate("scoring_case", SCORING_CASES, repeats)
    df = pd.DataFrame(rows)
    assert df.loc[df.case == "table", "total_clv"].nunique() == 1
    assert np.isclose(
        df.loc[df.case == "table", "total_clv"].iloc[0], df.loc[df.case == "table_pyfunc", "total_clv"].iloc[0]
    )
    med = df.groupby("case")[["seconds", "peak_rss_mb", "peak_above_input_mb"]].median()
    print("\n| step | users | purchases | median wall s | peak RSS MB | peak above input MB | x features |")
    print("|---|---|---|---|---|---|---|")
    for case in SCORING_CASES:
        m = med.loc[case]
        print(
            f"| {case} | {rows[0]['users']:,} | {rows[0]['rows']:,} | {m['seconds']:.2f} | "
            f"{m['peak_rss_mb']:.0f} | {m['peak_above_input_mb']:.0f} | "
            f"{m['seconds'] / med.loc['features', 'seconds']:.2f} |"
        )
    print(f"tiers {rows[1]['tiers']}\nstages {rows[1]['stages']}")
    return rows


# ----------------------------------------------------------------------------- churn
#: the default ChurnClassifier, the one it replaced (5 bags at learning rate 0.02 with 5-fold
#: out-of-fold calibration) and the baseline: plain XGBoost, 300 trees of depth 4 at 0.05
CHURN_CASES = ("plain", "default", "former")
CHURN_FORMER = {"n_bags": 5, "learning_rate": 0.02, "early_stopping_rounds": 100, "cv": 5}  # with boosting= below


def _telco():
    from urm_models.data import datasets

    te = datasets.load_telco()
    return te.drop(columns=["user_id", "churn"]), te["churn"].to_numpy()


def _plain_xgboost():
    """What a user writes first: one-hot encoding and XGBoost (300 trees, depth 4, lr 0.05), one
    thread like the ChurnClassifier's."""
    from sklearn.compose import make_column_selector, make_column_transformer
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder
    from xgboost import XGBClassifier

    onehot = make_column_transformer(
        (OneHotEncoder(handle_unknown="ignore", sparse_output=False), make_column_selector(dtype_exclude="number")),
        remainder="passthrough",
    )
    return make_pipeline(
        onehot,
        XGBClassifier(n_estimators=300, max_depth=4, learning_rate=0.05, tree_method="hist", n_jobs=1, random_state=0),
    )


def _churn_case(which: str) -> dict:
    """Fit time on all of Telco (median of 5 fits after a warm-up; 1 fit for ``former``) and,
    but for ``former``, the issue's protocol: 5-fold stratified CV on seeds 0, 1 and 2."""
    from threadpoolctl import threadpool_limits

    from urm_models.evaluation.classification import cross_validate
    from urm_models.models import ChurnClassifier

    X, y = _telco()

    def make(seed):
        if which == "plain":
            return _plain_xgboost().set_params(xgbclassifier__random_state=seed)
        if which != "former":
            return ChurnClassifier(random_state=seed)
        from dataclasses import replace

        from urm_models.models import boosting

        trees = {k: v for k, v in CHURN_FORMER.items() if k in ("learning_rate", "early_stopping_rounds")}
        return ChurnClassifier(
            random_state=seed,
            n_bags=CHURN_FORMER["n_bags"],
            cv=CHURN_FORMER["cv"],
            boosting=replace(boosting.CHURN, **trees),
        )

    with threadpool_limits(1):  # BLAS threads only slow these small fits down (docs/benchmarks.md)
        make(0).fit(X, y)
        times = []
        for _ in range(1 if which == "former" else 5):
            t0 = time.perf_counter()
            make(0).fit(X, y)
            times.append(time.perf_counter() - t0)
        out = {"case": which, "fit_seconds": float(np.median(times)), "users": len(X), "peak_rss_mb": _maxrss_mb()}
        if which != "former":
            for seed in (0, 1, 2):
                res, _ = cross_validate(make(seed), X, y, n_splits=5, seed=seed)
                out[f"roc_auc_{seed}"], out[f"pr_auc_{seed}"] = res["roc_auc"].mean(), res["pr_auc"].mean()
                out[f"brier_{seed}"] = res["brier"].mean()
    return out


def bench_churn() -> list[dict]:
    rows = {which: _in_subprocess("churn_case", which) for which in CHURN_CASES}
    base = rows["plain"]["fit_seconds"]
    print(f"Telco, {rows['plain']['users']:,} users: fit on all of them; 5-fold stratified CV on seeds 0 / 1 / 2\n")
    print("| model | fit s | x plain XGBoost | ROC-AUC seeds 0 / 1 / 2 | PR-AUC seeds 0 / 1 / 2 | Brier seed 0 |")
    print("|---|---|---|---|---|---|")
    for which, r in rows.items():
        roc = " / ".join(f"{r[f'roc_auc_{s}']:.4f}" for s in range(3)) if "roc_auc_0" in r else "-"
        pr = " / ".join(f"{r[f'pr_auc_{s}']:.4f}" for s in range(3)) if "pr_auc_0" in r else "-"
        brier = f"{r['brier_0']:.5f}" if "brier_0" in r else "-"
        print(
            f"| {which} | {r['fit_seconds']:.3f} | {r['fit_seconds'] / base:.1f} | {roc} | {pr} | {brier} |", flush=True
        )
    return list(rows.values())


# ----------------------------------------------------------------------------- threads
def _threads_case(threads: str) -> dict:
    """03's logistic baseline on CDNOW (the shifted-window features, 23,570 users) fitted with
    OpenBLAS on ``threads`` threads: CPU and wall seconds of the second of two fits."""
    from threadpoolctl import threadpool_limits

    from urm_models import features
    from urm_models.data import datasets
    from urm_models.models import ChurnClassifier

    X, y = features.shifted_window(datasets.load_cdnow(), "1997-09-30", 26, freq="W")
    X, y = X.loc[:, X.nunique() > 1], y.to_numpy()
    with threadpool_limits(int(threads)):
        ChurnClassifier(model="logistic", random_state=0).fit(X, y)
        c0, w0 = time.process_time(), time.perf_counter()
        ChurnClassifier(model="logistic", random_state=0).fit(X, y)
        return {
            "threads": int(threads),
            "cpu_seconds": time.process_time() - c0,
            "wall_seconds": time.perf_counter() - w0,
        }


def bench_threads(repeats: int = 3) -> list[dict]:
    """The refresh's kernel computes on one thread (jobs/pipeline.py KERNEL_THREADS): the same fit
    on two threads is the baseline, run alternately in the same command."""
    rows = []
    for rep in range(repeats):  # alternating, so that the machine's drift hits both
        for threads in ("2", "1"):
            rows.append({**_in_subprocess("threads_case", threads), "repeat": rep})
            print(f"  {threads} thread(s): {rows[-1]['cpu_seconds']:.2f} CPU s, {rows[-1]['wall_seconds']:.2f} s")
    med = {
        t: {k: float(np.median([r[k] for r in rows if r["threads"] == t])) for k in ("cpu_seconds", "wall_seconds")}
        for t in (1, 2)
    }
    print("| OpenBLAS threads | CPU s (median) | wall s (median) | CPU x two threads |")
    print("|---|---|---|---|")
    for t in (2, 1):
        print(
            f"| {t} | {med[t]['cpu_seconds']:.2f} | {med[t]['wall_seconds']:.2f} | "
            f"{med[t]['cpu_seconds'] / med[2]['cpu_seconds']:.2f} |"
        )
    return rows


# ----------------------------------------------------------------------------- uplift
#: Hillstrom, each e-mail against no e-mail, each outcome; 70/30 splits stratified by arm x (outcome > 0),
#: seeds 0-8; peers with XGBoost (200 trees of depth 3, one thread) and with logistic / linear regression
UPLIFT_SEEDS = tuple(range(9))
UPLIFT_ARMS = ("Womens E-Mail", "Mens E-Mail")
UPLIFT_OUTCOMES = ("visit", "conversion", "spend")
UPLIFT_METHODS = (
    "urm chosen",
    "urm S (default)",
    "sklift S xgb",
    "sklift T xgb",
    "sklift CT xgb",
    "sklift S lr",
    "sklift T lr",
    "sklift CT lr",
    "causalml X xgb",
    "causalml URF",
    "response xgb",
    "response lr",
    "random",
)
UPLIFT_BOOT = 200
UPLIFT_SHARE = 0.3


def _uplift_case(arm: str, outcome: str) -> dict:
    """Every method on the nine splits of one arm and outcome: Qini of each on the test part, the
    bootstrap draws of its difference from the product's chosen ranking (test users resampled
    within each arm, the same draws for every method), the policies at a 30% budget, fit times."""
    import warnings

    from sklearn.linear_model import LinearRegression, LogisticRegression
    from sklearn.model_selection import train_test_split
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from threadpoolctl import threadpool_limits
    from xgboost import XGBClassifier, XGBRegressor

    warnings.filterwarnings("ignore", category=FutureWarning)  # sklift calls sklearn's deprecated stable_cumsum
    warnings.filterwarnings("ignore", category=UserWarning)  # causalml's notices about its optional packages
    from sklift.models import ClassTransformation, SoloModel, TwoModels

    from urm_models.data import campaign_files
    from urm_models.evaluation import uplift as ev
    from urm_models.experiments import policy as P
    from urm_models.experiments import selection
    from urm_models.models import UpliftModel

    c = campaign_files.load_hillstrom().restrict([arm])
    d = c.data
    X = c.X
    y = d[outcome].to_numpy(float)
    t = (d["arm"] == arm).to_numpy(int)
    binary = c.binary(outcome)
    onehot = pd.get_dummies(X.reset_index(drop=True), columns=["zip_code", "channel"], dtype=float)

    def xgb():
        kw = dict(n_estimators=200, max_depth=3, n_jobs=1, tree_method="hist", verbosity=0)
        return XGBClassifier(**kw) if binary else XGBRegressor(**kw)

    def lr():
        return make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000) if binary else LinearRegression())

    def fit_predict(which, seed, tr, te, sub):
        """The method's ranking of the test users (and, for ours, its policy)."""
        Xtr, Xte = onehot.iloc[tr], onehot.iloc[te]
        if which == "urm chosen":
            dec = selection.choose(sub, outcome, share=UPLIFT_SHARE, folds=3, seed=seed, n_boot=100)
            final = selection.fit_policy(sub, outcome, dec, seed=seed)
            Xt = X.iloc[te]
            rank = (
                final.model.response(Xt)[arm] if dec.ranking == selection.RESPONSE else final.model.predict(Xt)[arm]
            ).to_numpy()
            return rank, {"policy": final.recommend(Xt)["recommended_arm"], "ranking": dec.ranking, "mode": dec.mode}
        if which == "urm S (default)":
            m = UpliftModel(control="No E-Mail", random_state=seed).fit(X.iloc[tr], y[tr], d["arm"].iloc[tr])
            return m.predict(X.iloc[te])[arm].to_numpy(), {}
        if which.startswith("sklift"):
            _, kind, base = which.split()
            est = xgb if base == "xgb" else lr
            if kind == "CT" and not binary:
                return None, {}
            m = {
                "S": lambda: SoloModel(est()),
                "T": lambda: TwoModels(est(), est(), method="vanilla"),
                "CT": lambda: ClassTransformation(est()),
            }[kind]()
            return np.asarray(m.fit(Xtr, y[tr], t[tr]).predict(Xte), float), {}
        if which == "causalml X xgb":
            from causalml.inference.meta import BaseXClassifier, BaseXRegressor

            p = np.full(len(tr), t[tr].mean())
            eff = XGBRegressor(n_estimators=200, max_depth=3, n_jobs=1, verbosity=0)
            m = BaseXClassifier(outcome_learner=xgb(), effect_learner=eff) if binary else BaseXRegressor(learner=xgb())
            m.fit(Xtr.to_numpy(), t[tr], y[tr], p=p)
            return np.asarray(m.predict(Xte.to_numpy(), p=np.full(len(te), t[tr].mean())), float).ravel(), {}
        if which == "causalml URF":
            if not binary:
                return None, {}
            from causalml.inference.tree import UpliftRandomForestClassifier

            m = UpliftRandomForestClassifier(n_estimators=50, control_name="0", random_state=seed, n_jobs=1)
            m.fit(Xtr.to_numpy(), np.where(t[tr] == 1, "1", "0"), y[tr])
            return np.asarray(m.predict(Xte.to_numpy()), float).ravel(), {}
        if which.startswith("response"):  # the outcome model of the e-mailed users only
            rows = t[tr] == 1
            m = (xgb() if which.endswith("xgb") else lr()).fit(Xtr[rows], y[tr][rows])
            return (m.predict_proba(Xte)[:, 1] if binary else m.predict(Xte)), {}
        return np.random.default_rng(seed).random(len(te)), {}

    out = {"arm": arm, "outcome": outcome, "splits": []}
    with threadpool_limits(1):
        for seed in UPLIFT_SEEDS:
            tr, te = train_test_split(np.arange(len(y)), test_size=0.3, random_state=seed, stratify=t * 2 + (y > 0))
            sub = replace_campaign(c, d.iloc[tr])
            ranks, fits, extra = {}, {}, {}
            for which in UPLIFT_METHODS:
                t0 = time.process_time()
                r, more = fit_predict(which, seed, tr, te, sub)
                fits[which] = time.process_time() - t0
                if r is not None:
                    ranks[which] = r
                    extra.update(more)
            yt, tt = y[te], t[te]
            w = selection._arm_weights(tt, UPLIFT_BOOT, seed)
            q = ev.qini_coefficients(yt, ranks, tt, w)  # row 0: the test users as they are
            users = d["user_id"].iloc[te].to_numpy()
            idx = pd.Index(users)
            armv = pd.Series(d["arm"].iloc[te].to_numpy(), index=idx)
            yv = pd.Series(yt, index=idx)
            prop = {"No E-Mail": 1 - tt.mean(), arm: tt.mean()}
            chosen = extra["policy"]
            chosen.index = idx
            pols = {
                "urm chosen": chosen,
                "response targeting": P.score_policy(
                    pd.DataFrame({arm: ranks["response xgb"]}, index=idx), control="No E-Mail", share=UPLIFT_SHARE
                ),
                "best single arm, 30%": P.single_arm_policy(
                    idx, arm, control="No E-Mail", share=UPLIFT_SHARE, seed=seed
                ),
                "best single arm, everyone": P.single_arm_policy(idx, arm, control="No E-Mail"),
                "random 30%": P.single_arm_policy(idx, arm, control="No E-Mail", share=UPLIFT_SHARE, seed=seed + 100),
                "urm S personalised": P.uplift_policy(
                    pd.DataFrame({arm: ranks["urm S (default)"]}, index=idx), control="No E-Mail", share=UPLIFT_SHARE
                ),
            }
            terms = {n: P._terms(p, yv, armv, control="No E-Mail", propensity=prop) for n, p in pols.items()}
            split = {
                "seed": seed,
                "ranking": extra["ranking"],
                "mode": extra["mode"],
                "qini": {k: float(v) for k, v in q.iloc[0].items()},
                "qini_diff_draws": {k: (q["urm chosen"] - q[k]).to_numpy()[1:].tolist() for k in ranks},
                "fit_seconds": fits,
                "policy": {n: float(v.mean()) for n, v in terms.items()},
                "policy_diff": {
                    n: selection.paired(terms["urm chosen"], v) for n, v in terms.items() if n != "urm chosen"
                },
                "contacted": float((chosen != "No E-Mail").mean()),
            }
            if binary:
                from sklift.metrics import qini_auc_score

                split["ours_minus_sklift"] = max(
                    abs(float(qini_auc_score(yt, r, tt)) - split["qini"][k]) for k, r in ranks.items()
                )
            out["splits"].append(split)
    return out


def replace_campaign(c, data):
    from dataclasses import replace

    return replace(c, data=data.reset_index(drop=True))


def bench_uplift() -> list[dict]:
    cases = [(a, o) for a in UPLIFT_ARMS for o in UPLIFT_OUTCOMES]
    rows = [_in_subprocess("uplift_case", a, o) for a, o in cases]
    print(
        "Hillstrom, each e-mail vs no e-mail, outcomes visit / conversion / spend; 70/30 splits stratified by arm x "
        f"(outcome > 0), seeds {UPLIFT_SEEDS[0]}-{UPLIFT_SEEDS[-1]}; Qini coefficient on the test part (ours = "
        "scikit-uplift's qini_auc_score); 'urm chosen' = experiments.selection.choose on the training part "
        "(3-fold cross-fitting of S, T, X, DR and the response model), refitted, applied to the test part\n"
    )
    worst = {}
    for r in rows:
        splits = r["splits"]
        methods = list(splits[0]["qini"])
        print(f"\n### {r['arm']}, {r['outcome']}\n")
        picks = pd.Series([s["ranking"] + " / " + s["mode"] for s in splits]).value_counts().to_dict()
        print(f"chosen (ranking / policy) over the nine splits: {picks}\n")
        print(
            "| method | mean Qini | chosen - method, mean (95% paired bootstrap) | splits where chosen is "
            "significantly below | fit CPU s | x sklift T xgb |"
        )
        print("|---|---|---|---|---|---|")
        base = np.mean([s["fit_seconds"]["sklift T xgb"] for s in splits])
        for m in methods:
            mean_q = np.mean([s["qini"][m] for s in splits])
            draws = np.mean([s["qini_diff_draws"][m] for s in splits], axis=0)
            diff = np.mean([s["qini"]["urm chosen"] - s["qini"][m] for s in splits])
            lo, hi = np.percentile(draws, [2.5, 97.5])
            below = sum(np.percentile(s["qini_diff_draws"][m], 97.5) < 0 for s in splits)
            fit = np.mean([s["fit_seconds"][m] for s in splits])
            print(
                f"| {m} | {mean_q:.4f} | {diff:+.4f} ({lo:+.4f} to {hi:+.4f}) | {below} | {fit:.2f} | "
                f"{fit / base:.1f} |"
            )
            if m != "urm chosen":
                worst[(r["arm"], r["outcome"], m)] = (lo, hi, below)
        print("\npolicies at a 30% budget, incremental outcome per user over no e-mail (IPW on the test part):\n")
        print(
            "| policy | mean value | chosen - policy, mean (95%, t over the splits) | splits where chosen is "
            "significantly below |"
        )
        print("|---|---|---|---|")
        for n in splits[0]["policy"]:
            v = np.mean([s["policy"][n] for s in splits])
            if n == "urm chosen":
                print(f"| {n} | {v:.4f} | - | - |")
                continue
            d = np.array([s["policy_diff"][n]["difference"] for s in splits])
            half = 2.306 * d.std(ddof=1) / np.sqrt(len(d))
            below = sum(s["policy_diff"][n]["upper"] < 0 for s in splits)
            print(f"| {n} | {v:.4f} | {d.mean():+.4f} ({d.mean() - half:+.4f} to {d.mean() + half:+.4f}) | {below} |")
        if "ours_minus_sklift" in splits[0]:
            print(f"\nlargest |our Qini - scikit-uplift's|: {max(s['ours_minus_sklift'] for s in splits):.1e}")
    losses = {k: v for k, v in worst.items() if v[1] < 0}
    print(
        "\nwhere the chosen ranking's mean Qini is significantly below a peer's (interval of the mean difference "
        f"below 0): {sorted(losses) if losses else 'nowhere'}"
    )
    return rows


# ----------------------------------------------------------------------------- refresh
def _cell_kind(source: str) -> str:
    """Where a cell's time goes: model fitting and evaluation, MLflow I/O, imports, or the rest
    (loading data, features, tables and plots). A cell that fits and logs counts as fitting."""
    if any(
        k in source
        for k in (
            ".fit(",
            "cross_validate(",
            "select_on_validation(",
            "customer_lifetime_value(",
            "score_users(",
            "evaluate_policies(",
        )
    ):
        return "model fitting and scoring"
    if "tracking." in source:
        return "MLflow I/O"
    if source.lstrip().startswith(("%matplotlib", "import", "from")) and "load_dataset" not in source:
        return "imports"
    return "data, features, tables, plots"


def bench_refresh() -> list[dict]:
    """``make run`` (``urm refresh`` on CDNOW, Telco, then Hillstrom) in a fresh project home: CPU-seconds
    (user + system of the command and its kernel, as /usr/bin/time counts them) and wall time
    per refresh and per notebook (the manifest's), and each notebook's wall time split by
    papermill's per-cell durations into imports, MLflow I/O, model fitting and the rest."""
    import subprocess
    import tempfile

    import nbformat

    home = Path(tempfile.mkdtemp(prefix="urm-bench-refresh-"))
    env = {**os.environ, "URM_HOME": str(home)}
    env.pop("MLFLOW_TRACKING_URI", None)
    urm = Path(sys.executable).parent / "urm"
    rows, refreshes, kinds = [], [], {}
    for dataset in ("cdnow", "telco", "hillstrom"):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        t0 = time.perf_counter()
        subprocess.run(
            [str(urm), "refresh", "--dataset", dataset, "--run-id", f"bench-{dataset}", "--quiet"],
            env=env,
            check=True,
            capture_output=True,
        )
        wall = time.perf_counter() - t0
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
        manifest = json.loads((home / "reports" / "runs" / f"bench-{dataset}" / "manifest.json").read_text())
        in_notebooks = 0.0
        for entry in manifest["notebooks"]:
            if entry["status"] != "ok":
                continue
            nb = nbformat.read(entry["output"], as_version=4)
            spent = {}
            for cell in nb.cells:
                if cell.cell_type == "code":
                    kind = _cell_kind(cell.source)
                    spent[kind] = spent.get(kind, 0.0) + float(
                        cell.metadata.get("papermill", {}).get("duration") or 0.0
                    )
            for k, v in spent.items():
                kinds[k] = kinds.get(k, 0.0) + v
            in_notebooks += entry["cpu_seconds"]
            rows.append(
                {
                    "dataset": dataset,
                    "notebook": entry["notebook"],
                    "seconds": entry["seconds"],
                    "cpu_seconds": entry["cpu_seconds"],
                    **spent,
                }
            )
        refreshes.append(
            {
                "dataset": dataset,
                "wall": wall,
                "cpu_seconds": cpu,
                "outside_notebooks_cpu": cpu - in_notebooks,
                "users": manifest["predictions"]["rows"],
            }
        )
    total_cpu = sum(r["cpu_seconds"] for r in refreshes)
    total_wall = sum(r["wall"] for r in refreshes)
    print(
        f"`make run` (urm refresh --dataset cdnow, telco, hillstrom): {total_cpu:.1f} CPU-s "
        f"(user + sys), {total_wall:.1f} s wall\n"
    )
    print(
        "| refresh | users | wall s | CPU s | CPU s outside the notebooks "
        "(start-up, lock, fingerprint, publish, export) |"
    )
    print("|---|---|---|---|---|")
    for r in refreshes:
        print(
            f"| {r['dataset']} | {r['users']:,} | {r['wall']:.1f} | {r['cpu_seconds']:.1f} | "
            f"{r['outside_notebooks_cpu']:.1f} |"
        )
    print("\n| data set | notebook | wall s | CPU s |\n|---|---|---|---|")
    for r in rows:
        print(f"| {r['dataset']} | {r['notebook']} | {r['seconds']:.1f} | {r['cpu_seconds']:.1f} |")
    print("\n| where the notebooks' wall time went | seconds |\n|---|---|")
    for k, v in sorted(kinds.items(), key=lambda kv: -kv[1]):
        print(f"| {k} | {v:.1f} |")
    return [{"refreshes": refreshes, "notebooks": rows, "cell_kinds": kinds}]


# ----------------------------------------------------------------------------- Spark vs DuckDB
SPARK_CASES = ("duckdb", "spark")


def _ensure_rfm_data() -> None:
    """The 10M-purchase file, timestamps in microseconds (Spark cannot read pandas' default
    nanoseconds)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from urm_models.data import datasets

    OUT.mkdir(exist_ok=True)
    if RFM_DATA.exists() and pq.read_schema(RFM_DATA).field("ts").type == pa.timestamp("ns"):
        pd.read_parquet(RFM_DATA).to_parquet(RFM_DATA, coerce_timestamps="us", allow_truncated_timestamps=True)
    if not RFM_DATA.exists():
        t0 = time.perf_counter()
        tx = datasets.simulate_transactions(1_000_000, params=RFM_PARAMS, seed=0, cutoff=RFM_CUTOFF)
        print(f"simulated {len(tx):,} transactions for 1,000,000 users in {time.perf_counter() - t0:.1f}s")
        tx.to_parquet(RFM_DATA, coerce_timestamps="us", allow_truncated_timestamps=True)


def _spark_case(which: str) -> dict:
    """rfm_summary and activity_features (the relationship table's features) of the 10M-purchase
    Parquet file, both engines reading the file themselves; Spark's start-up timed apart."""
    from urm_models import features

    base = _maxrss_mb()
    t0 = time.perf_counter()
    startup = 0.0
    if which == "spark":
        from urm_models.core import spark

        session = spark.session()
        startup = time.perf_counter() - t0
    t1 = time.perf_counter()
    rfm = features.rfm_summary(RFM_DATA, RFM_CUTOFF, freq=RFM_FREQ, engine=which)
    t2 = time.perf_counter()
    act = features.activity_features(RFM_DATA, RFM_CUTOFF, freq=RFM_FREQ, engine=which)
    t3 = time.perf_counter()
    rfm.to_parquet(OUT / f"spark_rfm_{which}.parquet")
    act.to_parquet(OUT / f"spark_act_{which}.parquet")
    import pickle

    scorer = pickle.loads(SCORER_1M.read_bytes())
    t4 = time.perf_counter()
    if which == "spark":  # the whole relationship table, written as the CLI writes it
        from urm_models.serve import scoring, spark_scoring

        table, _ = spark_scoring.score_transactions_in_spark(
            str(RFM_DATA), RFM_CUTOFF, scorer, options=scoring.ScoringOptions(freq=RFM_FREQ)
        )
        table.write.mode("overwrite").partitionBy("as_of").parquet(str(OUT / "spark_table"))
    else:
        from urm_models.serve import scoring

        scoring.score_transactions(
            RFM_DATA, RFM_CUTOFF, scorer, options=scoring.ScoringOptions(freq=RFM_FREQ)
        ).to_parquet(OUT / "local_table.parquet")
    t5 = time.perf_counter()
    jvm = 0.0
    if which == "spark":
        proc = session.sparkContext._gateway.proc  # the JVM that pyspark launched
        session.stop()
        session.sparkContext._gateway.shutdown()
        proc.stdin.close()  # the JVM exits when its stdin closes
        proc.wait(timeout=60)  # reaped: its peak RSS now counts among the children's
        jvm = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return {
        "case": which,
        "seconds": t3 - t1,
        "rfm_seconds": t2 - t1,
        "activity_seconds": t3 - t2,
        "table_seconds": t5 - t4,
        "startup_seconds": startup,
        "peak_rss_mb": _maxrss_mb(),
        "jvm_peak_rss_mb": jvm,
        "peak_above_input_mb": _maxrss_mb() - base,
        "users": len(rfm),
    }


SCORER_1M = OUT / "clv_scorer_1m.pkl"


def _ensure_scorer() -> None:
    """BG/NBD + Gamma-Gamma fitted on the 1M users of the 10M-purchase file (not timed)."""
    import pickle

    from urm_models import features
    from urm_models.models import BetaGeo, CLVScorer, GammaGamma

    if not SCORER_1M.exists():
        rfm = features.rfm_summary(RFM_DATA, RFM_CUTOFF, freq=RFM_FREQ)
        SCORER_1M.write_bytes(pickle.dumps(CLVScorer(BetaGeo().fit(rfm), GammaGamma().fit(rfm), rfm_freq=RFM_FREQ)))


def bench_spark(repeats: int = 3) -> list[dict]:
    _ensure_rfm_data()
    _ensure_scorer()
    rows = _alternate("spark_case", SPARK_CASES, repeats, label="features ")
    for what in ("rfm", "act"):
        a = pd.read_parquet(OUT / f"spark_{what}_duckdb.parquet")
        b = pd.read_parquet(OUT / f"spark_{what}_spark.parquet")
        pd.testing.assert_frame_equal(a, b, check_exact=False, rtol=1e-9)
    df = pd.DataFrame(rows)
    med = df.groupby("case")[
        [
            "rfm_seconds",
            "activity_seconds",
            "seconds",
            "startup_seconds",
            "peak_rss_mb",
            "jvm_peak_rss_mb",
            "table_seconds",
        ]
    ].median()
    n = pd.read_parquet(RFM_DATA, columns=["amount"]).shape[0]
    print(
        f"\n10M-purchase Parquet file ({n:,} rows, {rows[0]['users']:,} users); Spark local[2]; "
        f"results equal (rtol 1e-9, checked)\n"
    )
    print(
        "| engine | rfm_summary s | activity_features s | both s | x DuckDB | relationship table s | x in-process | "
        "start-up s | peak RSS MB (python / JVM) |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for case in SPARK_CASES:
        m = med.loc[case]
        print(
            f"| {case} | {m['rfm_seconds']:.2f} | {m['activity_seconds']:.2f} | {m['seconds']:.2f} | "
            f"{m['seconds'] / med.loc['duckdb', 'seconds']:.1f} | {m['table_seconds']:.2f} | "
            f"{m['table_seconds'] / med.loc['duckdb', 'table_seconds']:.1f} | {m['startup_seconds']:.1f} | "
            f"{m['peak_rss_mb']:.0f} / {m['jvm_peak_rss_mb']:.0f} |"
        )
    return rows


# ----------------------------------------------------------------------------- one box, 100M rows
ONEBOX_DIR = OUT / "tx_100m"
ONEBOX_CHUNKS = 10  # of 1,000,000 users (~10M purchases) each
ONEBOX_LIMITS = ("60%", "4GB")


def _onebox_table(limit: str) -> dict:
    """The relationship table of the 10M users, streamed (scoring.score_to_parquet, 10 slices)."""
    import pickle

    os.environ["URM_DUCKDB_MEMORY_LIMIT"] = limit
    from urm_models.serve import scoring

    scorer = pickle.loads(SCORER_1M.read_bytes())
    base = _maxrss_mb()
    t0 = time.perf_counter()
    facts = scoring.score_to_parquet(
        ONEBOX_DIR / "*.parquet",
        RFM_CUTOFF,
        scorer,
        OUT / "onebox_table.parquet",
        batches=10,
        options=scoring.ScoringOptions(freq=RFM_FREQ),
    )
    secs = time.perf_counter() - t0
    return {
        "case": f"table {limit}",
        "seconds": secs,
        "peak_rss_mb": _maxrss_mb(),
        "peak_above_input_mb": _maxrss_mb() - base,
        "users": facts["rows"],
    }


def _onebox_case(limit: str) -> dict:
    """rfm_summary of 100M purchases (10M users) from Parquet on disk, DuckDB under ``limit``."""
    if limit.startswith("table "):
        return _onebox_table(limit.split(" ", 1)[1])
    os.environ["URM_DUCKDB_MEMORY_LIMIT"] = limit
    from urm_models import features

    base = _maxrss_mb()
    t0 = time.perf_counter()
    rfm = features.rfm_summary(ONEBOX_DIR / "*.parquet", RFM_CUTOFF, freq=RFM_FREQ)
    secs = time.perf_counter() - t0
    return {
        "case": limit,
        "seconds": secs,
        "peak_rss_mb": _maxrss_mb(),
        "peak_above_input_mb": _maxrss_mb() - base,
        "users": len(rfm),
        "repeat_purchases": int(rfm["frequency"].sum()),
    }


def bench_onebox(repeats: int = 1) -> list[dict]:
    from urm_models.data import datasets

    ONEBOX_DIR.mkdir(parents=True, exist_ok=True)
    rows_total = 0
    for k in range(ONEBOX_CHUNKS):
        part = ONEBOX_DIR / f"part-{k:02d}.parquet"
        if not part.exists():
            t0 = time.perf_counter()
            tx = datasets.simulate_transactions(1_000_000, params=RFM_PARAMS, seed=100 + k, cutoff=RFM_CUTOFF)
            tx["user_id"] = f"c{k}-" + tx["user_id"]
            tx.to_parquet(part.with_suffix(".tmp"), coerce_timestamps="us", allow_truncated_timestamps=True)
            part.with_suffix(".tmp").rename(part)
            print(f"  chunk {k}: {len(tx):,} purchases simulated in {time.perf_counter() - t0:.1f}s", flush=True)
            del tx
    import pyarrow.parquet as pq

    rows_total = sum(pq.ParquetFile(p).metadata.num_rows for p in sorted(ONEBOX_DIR.glob("*.parquet")))
    _ensure_rfm_data()
    _ensure_scorer()
    rows = _alternate("onebox_case", (*ONEBOX_LIMITS, "table 4GB"), repeats, label="memory_limit=")
    print(
        f"\n{rows_total:,} purchases of {rows[0]['users']:,} users in {ONEBOX_CHUNKS} Parquet files; "
        f"DuckDB under its memory limit, spilling to data/tmp/duckdb\n"
    )
    print("| step, memory_limit | wall s | peak RSS MB |")
    print("|---|---|---|")
    for r in rows:
        what = r["case"] if r["case"].startswith("table") else f"rfm_summary {r['case']}"
        print(f"| {what} | {r['seconds']:.1f} | {r['peak_rss_mb']:.0f} |")
    return rows


# ----------------------------------------------------------------------------- the Parquet contract
CONTRACT_CASES = ("duckdb 10M", "spark 10M", "duckdb 100M 4GB")


def _contract_case(which: str) -> dict:
    """parquet_contract.check_transactions beside rfm_summary of the same file and engine (the
    baseline: one pass over the purchases), in one process; Spark's start-up is not counted."""
    engine, size, *limit = which.split()
    if limit:
        os.environ["URM_DUCKDB_MEMORY_LIMIT"] = limit[0]
    from urm_models import features
    from urm_models.data import parquet_contract

    source = str(RFM_DATA) if size == "10M" else str(ONEBOX_DIR / "*.parquet")
    base = _maxrss_mb()
    if engine == "spark":
        from urm_models.core import spark

        spark.session()
        source = str(RFM_DATA)
    t0 = time.perf_counter()
    report = parquet_contract.check_transactions(source, engine=engine)
    t1 = time.perf_counter()
    features.rfm_summary(source, RFM_CUTOFF, freq=RFM_FREQ, engine=engine)
    t2 = time.perf_counter()
    return {
        "case": which,
        "seconds": t1 - t0,
        "contract_seconds": t1 - t0,
        "rfm_seconds": t2 - t1,
        "rows": report["n_rows"],
        "peak_rss_mb": _maxrss_mb(),
        "peak_above_input_mb": _maxrss_mb() - base,
    }


def bench_contract(repeats: int = 1) -> list[dict]:
    _ensure_rfm_data()
    if not any(ONEBOX_DIR.glob("*.parquet")):
        bench_onebox()
    rows = _alternate("contract_case", CONTRACT_CASES, repeats, label="")
    print("\n| engine, file | rows | contract s | rfm_summary s | contract / rfm_summary |")
    print("|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['case']} | {r['rows']:,} | {r['contract_seconds']:.1f} | {r['rfm_seconds']:.1f} | "
            f"{r['contract_seconds'] / r['rfm_seconds']:.2f} |"
        )
    return rows


CASES = {
    "rfm_case": _rfm_case,
    "btyd_case": _btyd_case,
    "pareto_case": _pareto_case,
    "scoring_case": _scoring_case,
    "churn_case": _churn_case,
    "spark_case": _spark_case,
    "onebox_case": _onebox_case,
    "contract_case": _contract_case,
    "uplift_case": _uplift_case,
    "fit_case": _fit_case,
    "accuracy_case": _accuracy_case,
    "nodropout_case": _nodropout_case,
    "threads_case": _threads_case,
}
BENCHES = {
    "rfm": bench_rfm,
    "btyd": bench_btyd,
    "pareto": bench_pareto,
    "scoring": bench_scoring,
    "churn": bench_churn,
    "refresh": bench_refresh,
    "spark": bench_spark,
    "onebox": bench_onebox,
    "contract": bench_contract,
    "uplift": bench_uplift,
    "fits": bench_fits,
    "accuracy": bench_accuracy,
    "nodropout": bench_nodropout,
    "threads": bench_threads,
}


def _alternate(case: str, whiches, repeats: int, label: str = "") -> list[dict]:
    """Run every case ``repeats`` times, alternating, so that drift hits all; print each run."""
    rows = []
    for rep in range(repeats):
        for which in whiches:
            r = _in_subprocess(case, which)
            r["repeat"] = rep
            rows.append(r)
            print(
                f"  {label}{which:12s} {r['seconds']:6.2f}s  peak RSS {r['peak_rss_mb']:7.0f} MB "
                f"(+{r['peak_above_input_mb']:.0f} MB above the loaded input)"
            )
    return rows


def _in_subprocess(case: str, *args: str) -> dict:
    out = subprocess.run([sys.executable, __file__, "--case", case, *args], capture_output=True, text=True, check=False)
    if out.returncode != 0:
        raise RuntimeError(f"benchmark case {case} {' '.join(args)} failed:\n{out.stderr}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("names", nargs="*", default=list(BENCHES))
    ap.add_argument("--case", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.case:
        print(json.dumps(CASES[args.case](*args.names)))
        return
    print(f"# {platform.platform()}, Python {platform.python_version()}, {os.cpu_count()} cores")
    for name in args.names:
        print(f"\n## {name}")
        rows = BENCHES[name]()
        OUT.mkdir(exist_ok=True)
        (OUT / f"{name}.json").write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
