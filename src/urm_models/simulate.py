"""Draw transactions from the BTYD generative processes, vectorised over users.

Used for parameter-recovery tests and for benchmarks at scale; real results come from the
shipped data. Time is continuous in ``freq`` units; every user's first purchase is at their
own time 0, ``T`` periods before the cut-off.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import pandas as pd

#: Published CDNOW estimates (weekly), used as defaults: BG/NBD and Pareto/NBD from Fader,
#: Hardie & Lee (2005), Gamma-Gamma from Fader, Hardie & Lee (2005), "RFM and CLV".
DEFAULT_PARAMS = {
    "bgnbd": {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426},
    "mbgnbd": {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426},
    "paretonbd": {"r": 0.553, "alpha": 10.578, "s": 0.606, "beta": 11.669},
}
DEFAULT_SPEND = ("gamma_gamma", {"p": 6.25, "q": 3.74, "v": 15.44})
UNIT_DAYS = {"D": 1.0, "W": 7.0, "M": 365.25 / 12.0}


def simulate_transactions(
    n_users: int,
    model: Literal["bgnbd", "mbgnbd", "paretonbd"] = "bgnbd",
    params: dict | None = None,
    spend: tuple[str, dict] | None = DEFAULT_SPEND,
    seed: int = 0,
    T: tuple[float, float] | np.ndarray = (20.0, 78.0),
    holdout: float = 0.0,
    cutoff: str | pd.Timestamp = "2020-12-31",
    freq: Literal["D", "W", "M"] = "W",
    return_users: bool = False,
):
    """Simulate purchases for ``n_users`` customers.

    Parameters
    ----------
    n_users : int
    model : {"bgnbd", "mbgnbd", "paretonbd"}
        BG/NBD (drop-out after a repeat purchase with probability p), MBG/NBD (also at time 0),
        Pareto/NBD (exponential lifetime with rate mu).
    params : dict, optional
        ``r, alpha, a, b`` (or ``r, alpha, s, beta`` for Pareto/NBD), rates per ``freq`` unit.
        Defaults to the published CDNOW estimates.
    spend : ("gamma_gamma", {"p", "q", "v"}) or None
        Purchase values: nu ~ Gamma(q, rate v) per user, each value ~ Gamma(p, rate nu). None
        makes every amount 1.0.
    seed : int
    T : (low, high) or array
        Time from first purchase to the cut-off, uniform on (low, high), or given per user.
    holdout : float
        Periods after the cut-off that are simulated as well.
    cutoff : date-like
    freq : {"D", "W", "M"}
        The time unit of ``T``, ``holdout`` and the rates.
    return_users : bool
        Also return a per-user table of the latent draws (``lambda_``, ``p_``/``mu_``, ``T``).

    Returns
    -------
    DataFrame ``user_id, ts, amount`` sorted by user and time, and the user table if asked.
    Purchases keep their time of day: two can fall on one calendar day, which the BTYD summary
    merges (simulate with a daily ``freq`` or compare on an unmerged summary where that matters).
    """
    tx, users = _simulate(n_users, model, params, spend, seed, T, holdout, freq)
    uid, tt, amount = tx
    ids = users.pop("user_id")
    unit_ns = UNIT_DAYS[freq] * 86_400e9
    cut = pd.Timestamp(cutoff).value
    start_ns = cut - users["T"] * unit_ns
    ts = (start_ns[uid] + tt * unit_ns).astype("int64").astype("datetime64[ns]")
    out = pd.DataFrame({"user_id": ids[uid], "ts": ts, "amount": amount})
    if return_users:
        return out, pd.DataFrame({"user_id": ids, **users})
    return out


def simulate_rfm(
    n_users: int,
    model: Literal["bgnbd", "mbgnbd", "paretonbd"] = "bgnbd",
    params: dict | None = None,
    spend: tuple[str, dict] | None = DEFAULT_SPEND,
    seed: int = 0,
    T: tuple[float, float] | np.ndarray = (20.0, 78.0),
    holdout: float = 0.0,
    covariates: pd.DataFrame | None = None,
    coefficients: dict | None = None,
) -> pd.DataFrame:
    """The BTYD summary (``frequency, recency, T, monetary``) of simulated customers, straight
    from the continuous-time process: no calendar, no merging of same-day purchases, so the
    summary follows the model exactly (what parameter-recovery tests need). With ``holdout``
    periods, ``frequency_holdout`` counts the purchases in ``(T, T + holdout]``.

    ``covariates`` (one row per user, numeric columns) with ``coefficients`` named as the
    models name them (``purchase_<col>``; ``dropout_a_<col>``, ``dropout_b_<col>`` for the
    BG family, ``dropout_<col>`` for Pareto/NBD) give each user their own parameters:
    ``alpha_i = alpha exp(-sum purchase_c z_ic)``, ``a_i = a exp(sum dropout_a_c z_ic)``,
    ``b_i = b exp(sum dropout_b_c z_ic)``, ``beta_i = beta exp(-sum dropout_c z_ic)`` on the raw
    (unstandardised) covariates; the covariate columns are returned beside the summary.
    """
    (uid, tt, amount), users = _simulate(n_users, model, params, spend, seed, T, holdout, "W",
                                         covariates, coefficients)
    n = int(n_users)
    later = tt > users["T"][uid]
    held = np.bincount(uid[later], minlength=n)
    uid, tt, amount = uid[~later], tt[~later], amount[~later]
    counts = np.bincount(uid, minlength=n)
    last = np.zeros(n)
    np.maximum.at(last, uid, tt)
    total = np.bincount(uid, weights=amount, minlength=n)
    first_pos = np.r_[0, np.cumsum(counts)[:-1]]  # rows are sorted by user, then time
    first_amount = amount[first_pos]
    freq = counts - 1
    with np.errstate(invalid="ignore", divide="ignore"):
        monetary = np.where(freq > 0, (total - first_amount) / np.maximum(freq, 1), 0.0)
    out = pd.DataFrame({"frequency": freq.astype("int64"), "recency": last, "T": users["T"],
                        "monetary": monetary}, index=pd.Index(users["user_id"], name="user_id"))
    if holdout:
        out["frequency_holdout"] = held.astype("int64")
    if covariates is not None:
        for c in covariates.columns:
            out[c] = covariates[c].to_numpy()
    return out


#: which parameter each coefficient prefix scales, and the sign of its link
_COEF_LINKS = {"bgnbd": {"purchase_": ("alpha", -1.0), "dropout_a_": ("a", 1.0), "dropout_b_": ("b", 1.0)},
               "paretonbd": {"purchase_": ("alpha", -1.0), "dropout_": ("beta", -1.0)}}
_COEF_LINKS["mbgnbd"] = _COEF_LINKS["bgnbd"]


def _user_params(model, prm, n, covariates, coefficients) -> dict:
    """Each user's parameters (arrays) from the population ones and the covariates' effects."""
    out = {k: np.full(n, float(v)) for k, v in prm.items()}
    if covariates is None and not coefficients:
        return out
    if covariates is None or not coefficients:
        raise ValueError("covariates and coefficients go together: pass both or neither")
    if len(covariates) != n:
        raise ValueError(f"covariates must have one row per user ({n}), got {len(covariates)}")
    links = _COEF_LINKS[model]
    for name, coef in coefficients.items():
        # longest prefix first: "dropout_a_x" is not "dropout_" + "a_x"
        prefix = next((p for p in sorted(links, key=len, reverse=True) if name.startswith(p)), None)
        col = name[len(prefix):] if prefix else None
        if prefix is None or col not in covariates.columns:
            raise ValueError(f"coefficient {name!r}: expected one of {sorted(links)} followed by a "
                             f"covariate column ({list(covariates.columns)})")
        param, sign = links[prefix]
        out[param] = out[param] * np.exp(sign * float(coef) * covariates[col].to_numpy(float))
    return out


def _simulate(n_users, model, params, spend, seed, T, holdout, freq, covariates=None, coefficients=None):
    if model not in DEFAULT_PARAMS:
        raise ValueError(f"model must be one of {sorted(DEFAULT_PARAMS)}, not {model!r}")
    if freq not in UNIT_DAYS:
        raise ValueError(f"freq must be one of {sorted(UNIT_DAYS)}, not {freq!r}")
    prm = dict(DEFAULT_PARAMS[model])
    if params:
        unknown = set(params) - set(prm)
        if unknown:
            raise ValueError(f"unknown parameter(s) {sorted(unknown)} for {model}; expected {sorted(prm)}")
        prm.update(params)
    if any(v <= 0 for v in prm.values()):
        raise ValueError(f"all parameters must be positive, got {prm}")
    rng = np.random.default_rng(seed)
    n = int(n_users)
    if isinstance(T, tuple):
        T_arr = rng.uniform(T[0], T[1], n)
    else:
        T_arr = np.asarray(T, dtype=float)
        if T_arr.shape != (n,):
            raise ValueError(f"T must have one value per user ({n}), got shape {T_arr.shape}")
    horizon = T_arr + float(holdout)
    up = _user_params(model, prm, n, covariates, coefficients)

    lam = rng.gamma(prm["r"], 1.0 / up["alpha"], n)
    users = {"lambda_": lam, "T": T_arr}
    limit = horizon
    if model == "paretonbd":
        mu = rng.gamma(prm["s"], 1.0 / up["beta"], n)
        with np.errstate(divide="ignore", over="ignore"):  # mu may underflow to 0: tau = inf
            tau = rng.exponential(1.0 / mu)
        users["mu_"] = mu
        limit = np.minimum(horizon, tau)
        active = np.arange(n)
    else:
        p = rng.beta(up["a"], up["b"], n)
        users["p_"] = p
        active = np.arange(n)
        if model == "mbgnbd":
            active = active[rng.random(n) >= p]

    ev_user = [np.arange(n)]
    ev_time = [np.zeros(n)]
    t = np.zeros(n)
    while active.size:
        with np.errstate(divide="ignore", over="ignore"):  # lambda may underflow to 0: no purchase
            t_new = t[active] + rng.exponential(1.0 / lam[active])
        ok = t_new <= limit[active]
        active = active[ok]
        t[active] = t_new[ok]
        ev_user.append(active)
        ev_time.append(t_new[ok])
        if model != "paretonbd" and active.size:
            active = active[rng.random(active.size) >= users["p_"][active]]
    uid = np.concatenate(ev_user)
    tt = np.concatenate(ev_time)
    order = np.lexsort((tt, uid))
    uid, tt = uid[order], tt[order]

    if spend is None:
        amount = np.ones(uid.size)
    else:
        kind, sp = spend
        if kind != "gamma_gamma":
            raise ValueError(f"spend model must be 'gamma_gamma', not {kind!r}")
        nu = rng.gamma(sp["q"], 1.0 / sp["v"], n)
        users["nu_"] = nu
        amount = rng.gamma(sp["p"], 1.0 / nu[uid])
    width = max(7, len(str(n)))
    users["user_id"] = np.array([f"u{i:0{width}d}" for i in range(n)], dtype=object)
    return (uid, tt, amount), users


#: Fader, Hardie & Shang (2010), the donations data: the BG/BB default parameters
BGBB_PARAMS = {"alpha": 1.204, "beta": 0.750, "gamma": 0.657, "delta": 2.783}


def simulate_bgbb(n_users: int, n_periods: int = 6, params: dict | None = None, seed: int = 0,
                  holdout: int = 0) -> pd.DataFrame:
    """BG/BB histories: for each user ``p ~ Beta(alpha, beta)``, ``theta ~ Beta(gamma, delta)``;
    at each of ``n_periods + holdout`` opportunities after the first transaction the user dies
    first with probability ``theta`` (for good), else transacts with probability ``p``.

    Returns ``frequency, recency, n_periods`` over the first ``n_periods`` opportunities (what
    :class:`~urm_models.models.BetaGeoBetaBinom` fits) and ``frequency_holdout``, the
    transactions in the ``holdout`` opportunities after them.
    """
    p = {**BGBB_PARAMS, **(params or {})}
    rng = np.random.default_rng(seed)
    prob = rng.beta(p["alpha"], p["beta"], n_users)
    theta = rng.beta(p["gamma"], p["delta"], n_users)
    total = int(n_periods) + int(holdout)
    # opportunity of death: geometric (first opportunity at which the user is gone)
    death = rng.geometric(np.clip(theta, 1e-12, 1.0))  # 1 = dead from the first opportunity on
    buys = rng.random((n_users, total)) < prob[:, None]
    alive = np.arange(1, total + 1)[None, :] < death[:, None]
    bought = buys & alive
    cal = bought[:, :n_periods]
    idx = np.arange(1, n_periods + 1)[None, :]
    recency = np.where(cal.any(axis=1), (cal * idx).max(axis=1), 0)
    return pd.DataFrame({"frequency": cal.sum(axis=1).astype("int64"), "recency": recency.astype("int64"),
                         "n_periods": np.full(n_users, int(n_periods), dtype="int64"),
                         "frequency_holdout": bought[:, n_periods:].sum(axis=1).astype("int64")})
