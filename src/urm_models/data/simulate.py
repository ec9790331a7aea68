"""Draw transactions from the BTYD generative processes, vectorised over users.

Used for parameter-recovery tests and for benchmarks at scale; real results come from the
shipped data. Time is continuous in ``freq`` units; every user's first purchase is at their
own time 0, ``T`` periods before the cut-off.
"""

from __future__ import annotations

from typing import Literal, TypedDict, Unpack

import numpy as np
import pandas as pd

from ..core.units import FREQ, UNIT_DAYS

#: Published CDNOW estimates (weekly), used as defaults: BG/NBD and Pareto/NBD from Fader,
#: Hardie & Lee (2005), Gamma-Gamma from Fader, Hardie & Lee (2005), "RFM and CLV".
DEFAULT_PARAMS = {
    "bgnbd": {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426},
    "mbgnbd": {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426},
    "paretonbd": {"r": 0.553, "alpha": 10.578, "s": 0.606, "beta": 11.669},
    # a hazard that rises with age (Bemmaor & Glady 2012's CDNOW fit sits at the Pareto limit b -> 0)
    "ggompertznbd": {"r": 0.553, "alpha": 10.578, "b": 0.05, "s": 1.0, "beta": 2.0},
}
DEFAULT_SPEND = ("gamma_gamma", {"p": 6.25, "q": 3.74, "v": 15.44})


#: the generative processes :func:`simulate_transactions` and :func:`simulate_rfm` draw from
Model = Literal["bgnbd", "mbgnbd", "paretonbd", "ggompertznbd"]


class Population(TypedDict, total=False):
    """The simulated customers, the keyword arguments :func:`simulate_transactions` and
    :func:`simulate_rfm` share (their defaults in :data:`POPULATION`).

    ``params``: ``r, alpha, a, b`` (``r, alpha, s, beta`` for Pareto/NBD, ``r, alpha, b, s, beta``
    for Gamma-Gompertz/NBD), rates per time unit, defaulting to the published CDNOW estimates
    (:data:`DEFAULT_PARAMS`). ``spend``: ``("gamma_gamma", {"p", "q", "v"})`` (nu ~ Gamma(q, rate
    v) per user, each value ~ Gamma(p, rate nu)) or None (every amount 1.0). ``seed``. ``T``:
    time from the first purchase to the cut-off, ``(low, high)`` (uniform) or one value per user.
    ``holdout``: periods after the cut-off simulated as well. ``covariates`` (one row per user,
    numeric columns) with ``coefficients`` named as the models name them (``purchase_<col>``;
    ``dropout_a_<col>``, ``dropout_b_<col>`` for the BG family, ``dropout_<col>`` for Pareto/NBD)
    give each user their own parameters: ``alpha_i = alpha exp(-sum purchase_c z_ic)``,
    ``a_i = a exp(sum dropout_a_c z_ic)``, ``b_i = b exp(sum dropout_b_c z_ic)``,
    ``beta_i = beta exp(-sum dropout_c z_ic)`` on the raw (unstandardised) covariates.
    """

    params: dict | None
    spend: tuple[str, dict] | None
    seed: int
    T: tuple[float, float] | np.ndarray
    holdout: float
    covariates: pd.DataFrame | None
    coefficients: dict | None


#: the defaults of :class:`Population`, decided here
POPULATION: Population = {
    "params": None,
    "spend": DEFAULT_SPEND,
    "seed": 0,
    "T": (20.0, 78.0),
    "holdout": 0.0,
    "covariates": None,
    "coefficients": None,
}


def _population(given: dict) -> dict:
    unknown = set(given) - set(POPULATION)
    if unknown:
        raise TypeError(f"unknown simulation option(s) {sorted(unknown)}; known: {sorted(POPULATION)}")
    return {**POPULATION, **given}


def simulate_transactions(
    n_users: int,
    model: Model = "bgnbd",
    *,
    cutoff: str | pd.Timestamp = "2020-12-31",
    freq: Literal["D", "W", "M"] = FREQ,
    return_users: bool = False,
    **population: Unpack[Population],
):
    """Simulate purchases for ``n_users`` customers of ``model``: BG/NBD (drop-out after a
    repeat purchase with probability p), MBG/NBD (also at time 0), Pareto/NBD (exponential
    lifetime with rate mu), Gamma-Gompertz/NBD (Gompertz lifetime: P(alive at u) =
    exp(-eta (e^{bu} - 1)), eta ~ Gamma(s, beta)); ``population`` describes the customers
    (:class:`Population`). Their first purchases are ``T`` periods of ``freq`` before ``cutoff``.
    ``return_users``: also return a per-user table of the latent draws (``lambda_``,
    ``p_``/``mu_``, ``T``).

    Returns
    -------
    DataFrame ``user_id, ts, amount`` sorted by user and time, and the user table if asked.
    Purchases keep their time of day: two can fall on one calendar day, which the BTYD summary
    merges (simulate with a daily ``freq`` or compare on an unmerged summary where that matters).
    """
    tx, users = _simulate(n_users, model, freq=freq, **_population(population))
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


def simulate_rfm(n_users: int, model: Model = "bgnbd", **population: Unpack[Population]) -> pd.DataFrame:
    """The BTYD summary (``frequency, recency, T, monetary``) of simulated customers of ``model``
    (:func:`simulate_transactions`), straight from the continuous-time process: no calendar, no
    merging of same-day purchases, so the summary follows the model exactly (what
    parameter-recovery tests need). With ``holdout`` periods, ``frequency_holdout`` counts the
    purchases in ``(T, T + holdout]``; with ``covariates`` their columns are returned beside the
    summary (:class:`Population`).
    """
    pop = _population(population)
    (uid, tt, amount), users = _simulate(n_users, model, freq="W", **pop)
    covariates = pop["covariates"]
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
    out = pd.DataFrame(
        {"frequency": freq.astype("int64"), "recency": last, "T": users["T"], "monetary": monetary},
        index=pd.Index(users["user_id"], name="user_id"),
    )
    if pop["holdout"]:
        out["frequency_holdout"] = held.astype("int64")
    if covariates is not None:
        for c in covariates.columns:
            out[c] = covariates[c].to_numpy()
    return out


#: which parameter each coefficient prefix scales, and the sign of its link
_COEF_LINKS = {
    "bgnbd": {"purchase_": ("alpha", -1.0), "dropout_a_": ("a", 1.0), "dropout_b_": ("b", 1.0)},
    "paretonbd": {"purchase_": ("alpha", -1.0), "dropout_": ("beta", -1.0)},
}
_COEF_LINKS["mbgnbd"] = _COEF_LINKS["bgnbd"]
_COEF_LINKS["ggompertznbd"] = _COEF_LINKS["paretonbd"]


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
        col = name[len(prefix) :] if prefix else None
        if prefix is None or col not in covariates.columns:
            raise ValueError(
                f"coefficient {name!r}: expected one of {sorted(links)} followed by a "
                f"covariate column ({list(covariates.columns)})"
            )
        param, sign = links[prefix]
        out[param] = out[param] * np.exp(sign * float(coef) * covariates[col].to_numpy(float))
    return out


def _simulate(n_users, model, *, params, spend, seed, T, holdout, freq, covariates=None, coefficients=None):
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
    if model in ("paretonbd", "ggompertznbd"):
        mu = rng.gamma(prm["s"], 1.0 / up["beta"], n)
        with np.errstate(divide="ignore", over="ignore"):  # mu may underflow to 0: tau = inf
            if model == "paretonbd":
                tau = rng.exponential(1.0 / mu)
            else:  # Gompertz: solve exp(-eta (e^{b tau} - 1)) = U for tau
                tau = np.log1p(rng.exponential(1.0, n) / mu) / prm["b"]
        users["mu_" if model == "paretonbd" else "eta_"] = mu
        users["tau_"] = tau  # the lifetime from the first purchase (alive at the cut-off: tau_ > T)
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
        if model in ("bgnbd", "mbgnbd") and active.size:
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


def simulate_bgbb(
    n_users: int, n_periods: int = 6, params: dict | None = None, seed: int = 0, holdout: int = 0
) -> pd.DataFrame:
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
    return pd.DataFrame(
        {
            "frequency": cal.sum(axis=1).astype("int64"),
            "recency": recency.astype("int64"),
            "n_periods": np.full(n_users, int(n_periods), dtype="int64"),
            "frequency_holdout": bought[:, n_periods:].sum(axis=1).astype("int64"),
        }
    )


# ------------------------------------------------------------------------------ campaigns

#: The four kinds of user a retention contact meets: a **persuadable** buys more and stays longer
#: when contacted, a **sure thing** buys anyway, a **lost cause** has left already (nothing
#: helps), a **sleeping dog** is annoyed by the contact (buys less, leaves sooner).
USER_TYPES = ("persuadable", "sure thing", "lost cause", "sleeping dog")
#: default effects of a contact of strength 1 on each type: multipliers of the purchase rate and
#: of the dropout rate from the send on
CAMPAIGN_EFFECTS = {
    "persuadable": (2.5, 0.5),
    "sure thing": (1.0, 1.0),
    "lost cause": (1.0, 1.0),
    "sleeping dog": (0.6, 2.0),
}


def simulate_campaign(
    n_users: int,
    arms: dict | None = None,
    *,
    control: str = "control",
    allocation: dict | None = None,
    window: float = 8.0,
    freq: Literal["D", "W", "M"] = FREQ,
    sent_at: str | pd.Timestamp = "2021-03-01",
    params: dict | None = None,
    spend: tuple[str, dict] | None = DEFAULT_SPEND,
    effects: dict | None = None,
    T: tuple[float, float] = (20.0, 78.0),
    seed: int = 0,
):
    """A randomised retention campaign with known, heterogeneous effects (ground truth for the
    analysis and the uplift models).

    Each user's history up to ``sent_at`` is a Pareto/NBD process (``params``, default the CDNOW
    estimates; first purchase ``T`` periods before the send, uniform on ``T``). At the send every
    user is one of :data:`USER_TYPES`: users who have dropped out by then are lost causes;
    among the others, those in the top quarter of purchase rates are sleeping dogs with
    probability 0.3 (else 0.05), and the rest are persuadables when their purchase rate is below
    the median of all users, sure things otherwise. Each user is randomised to an arm
    (``allocation``, default equal shares); a treatment arm of strength ``s`` (``arms``:
    ``{name: s}``, default ``{"contact": 1.0}``) multiplies the type's purchase rate by
    ``1 + (m - 1) s`` and its dropout rate by ``1 + (d - 1) s`` from the send on, with ``(m, d)``
    from ``effects`` (default :data:`CAMPAIGN_EFFECTS`); the control changes nothing.
    Purchases are then simulated for ``window`` periods after the send.

    Returns ``(transactions, assignments, truth)``: transactions before and after the send
    (``user_id, ts, amount``), the assignment file (``user_id, arm, sent_at``), and per user
    the ``type``, ``arm``, the realised outcomes in the window (``purchases``, ``converted`` = any
    purchase, ``spend``) and, for every arm, the expected purchases ``expected_purchases[<arm>]``,
    the probability of a purchase ``p_purchase[<arm>]`` and the expected spend
    ``expected_spend[<arm>]`` in the window, from which the true effects follow exactly
    (``effect_<outcome>[<arm>]`` against the control).
    """
    arms = dict(arms or {"contact": 1.0})
    if control in arms:
        raise ValueError(f"the control {control!r} cannot also be a treatment arm")
    names = [control, *arms]
    effects = {**CAMPAIGN_EFFECTS, **(effects or {})}
    if allocation is None:
        shares = np.full(len(names), 1.0 / len(names))
    else:
        if set(allocation) != set(names):
            raise ValueError(f"allocation must give a share for each arm {names}, got {sorted(allocation)}")
        shares = np.array([float(allocation[a]) for a in names])
        if np.any(shares <= 0) or not np.isclose(shares.sum(), 1.0):
            raise ValueError(f"allocation shares must be positive and add up to 1, got {allocation}")
    if not window > 0:
        raise ValueError(f"window must be positive, got {window}")
    n = int(n_users)
    rng = np.random.default_rng([seed, 20])
    (uid, tt, amount), users = _simulate(
        n, "paretonbd", params=params, spend=spend, seed=seed, T=T, holdout=0.0, freq=freq
    )
    lam, mu, T_arr = users["lambda_"], users["mu_"], users["T"]
    alive = users["tau_"] > T_arr
    high = lam >= np.quantile(lam, 0.75)
    sleeping = alive & (rng.random(n) < np.where(high, 0.3, 0.05))
    kind = np.where(
        ~alive,
        "lost cause",
        np.where(sleeping, "sleeping dog", np.where(lam < np.median(lam), "persuadable", "sure thing")),
    ).astype(object)
    arm = np.asarray(names, dtype=object)[rng.choice(len(names), size=n, p=shares)]
    strength = np.array([0.0 if a == control else float(arms[a]) for a in arm])
    nu = users.get("nu_")
    unit_spend = (spend[1]["p"] / nu) if spend is not None else np.ones(n)

    def rates(k_strength: np.ndarray):
        m = np.array([effects[k][0] for k in kind])
        d = np.array([effects[k][1] for k in kind])
        return lam * np.clip(1 + (m - 1) * k_strength, 0.0, None), mu * np.clip(1 + (d - 1) * k_strength, 0.0, None)

    truth = pd.DataFrame({"type": kind, "arm": arm}, index=pd.Index(users["user_id"], name="user_id"))
    for a in names:
        lam_a, mu_a = rates(np.full(n, 0.0 if a == control else float(arms[a])))
        with np.errstate(divide="ignore", invalid="ignore"):
            e_n = np.where(mu_a > 0, lam_a / mu_a * -np.expm1(-mu_a * window), lam_a * window)
            p_any = np.where(lam_a + mu_a > 0, lam_a / (lam_a + mu_a) * -np.expm1(-(lam_a + mu_a) * window), 0.0)
        truth[f"expected_purchases[{a}]"] = np.where(alive, e_n, 0.0)
        truth[f"p_purchase[{a}]"] = np.where(alive, p_any, 0.0)
        truth[f"expected_spend[{a}]"] = truth[f"expected_purchases[{a}]"] * unit_spend
    for a in arms:
        for what, col in (
            ("purchases", "expected_purchases"),
            ("converted", "p_purchase"),
            ("spend", "expected_spend"),
        ):
            truth[f"effect_{what}[{a}]"] = truth[f"{col}[{a}]"] - truth[f"{col}[{control}]"]

    # after the send: a memoryless remaining lifetime and Poisson purchases at the arm's rates
    lam_u, mu_u = rates(strength)
    with np.errstate(divide="ignore", over="ignore"):
        left = np.where(mu_u > 0, rng.exponential(1.0 / np.where(mu_u > 0, mu_u, 1.0)), np.inf)
    end = np.where(alive, np.minimum(left, window), 0.0)
    counts = rng.poisson(lam_u * end)
    post_uid = np.repeat(np.arange(n), counts)
    post_t = T_arr[post_uid] + rng.random(post_uid.size) * end[post_uid]
    if spend is None:
        post_amount = np.ones(post_uid.size)
    else:
        post_amount = rng.gamma(spend[1]["p"], 1.0 / nu[post_uid])
    truth["purchases"] = counts
    truth["converted"] = (counts > 0).astype("int64")
    truth["spend"] = np.bincount(post_uid, weights=post_amount, minlength=n)

    all_uid = np.concatenate([uid, post_uid])
    all_t = np.concatenate([tt, post_t])
    all_amount = np.concatenate([amount, post_amount])
    order = np.lexsort((all_t, all_uid))
    unit_ns = UNIT_DAYS[freq] * 86_400e9
    send = pd.Timestamp(sent_at)
    start_ns = send.value - T_arr * unit_ns
    ts = (start_ns[all_uid[order]] + all_t[order] * unit_ns).astype("int64").astype("datetime64[ns]")
    ids = users["user_id"]
    transactions = pd.DataFrame({"user_id": ids[all_uid[order]], "ts": ts, "amount": all_amount[order]})
    assignments = pd.DataFrame({"user_id": ids, "arm": arm, "sent_at": send})
    return transactions, assignments, truth


def simulate_time_varying(
    n_users: int,
    params: dict | None = None,
    calendar: pd.DataFrame | None = None,
    contacts: dict | None = None,
    coefficients: dict | None = None,
    seed: int = 0,
    T: tuple[float, float] = (20.0, 78.0),
    holdout: float = 0.0,
    cutoff: str | pd.Timestamp = "2020-12-31",
    freq: Literal["D", "W", "M"] = FREQ,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Pareto/NBD customers whose purchase and dropout rates move with covariates that change
    every period of ``freq`` (the model of :class:`~urm_models.models.TimeVaryingParetoNBD`).

    ``calendar``: ``period_start`` (every ``freq`` unit, covering every customer's life and the
    holdout) and columns shared by everyone (a high-season flag). ``contacts``: per-user
    covariates drawn here, ``{name: probability}``: 1 in a period with that probability, else 0
    (a marketing contact). ``coefficients``: ``purchase_<col>``, ``dropout_<col>``: while alive a
    customer buys at rate ``lambda exp(sum purchase_c z_c(t))`` and drops out at rate
    ``mu exp(sum dropout_c z_c(t))``; lambda ~ Gamma(r, alpha), mu ~ Gamma(s, beta).

    Returns the transactions (``user_id, ts, amount``, amount 1) through ``cutoff + holdout`` and
    the per-user covariate table (``user_id, period_start, <contacts>``; empty without contacts).
    """
    prm = {**DEFAULT_PARAMS["paretonbd"], **(params or {})}
    unit = pd.Timedelta(days=UNIT_DAYS[freq])
    rng = np.random.default_rng(seed)
    n = int(n_users)
    cut = pd.Timestamp(cutoff)
    ages = rng.uniform(T[0], T[1], n)
    born = cut - pd.to_timedelta(ages * unit.total_seconds(), unit="s")
    end = cut + holdout * unit
    if calendar is not None:
        cal = calendar.assign(period_start=pd.to_datetime(calendar["period_start"])).set_index("period_start")
        anchor = cal.index.min()
    else:
        cal, anchor = None, born.min().normalize()
    k0 = np.floor(np.asarray((born - anchor) / unit, float)).astype(int)
    k_end = int(np.ceil((end - anchor) / unit))
    if (k0 < 0).any():
        raise ValueError(f"the calendar starts at {anchor:%Y-%m-%d}, after some customers' first purchase")
    reps = k_end - k0
    owner = np.repeat(np.arange(n), reps)
    k = k0[owner] + (np.arange(reps.sum()) - np.repeat(np.cumsum(reps) - reps, reps))
    starts = anchor + k * unit
    width = max(7, len(str(n)))
    ids = np.array([f"u{i:0{width}d}" for i in range(n)], dtype=object)
    Z = {}
    if cal is not None:
        pos = cal.index.get_indexer(starts)
        if (pos < 0).any():
            missing = starts[pos < 0][0]
            raise ValueError(f"the calendar lacks periods the customers' lives span, e.g. {str(missing)[:10]}")
        Z.update({c: cal[c].to_numpy(float)[pos] for c in cal.columns})
    for c, p in (contacts or {}).items():
        Z[c] = (rng.random(len(owner)) < p).astype(float)
    m1, m2 = np.zeros(len(owner)), np.zeros(len(owner))
    for name, g in (coefficients or {}).items():
        which, _, col = name.partition("_")
        if which not in ("purchase", "dropout") or col not in Z:
            raise ValueError(f"coefficient {name!r}: expected purchase_<col> or dropout_<col>, <col> among {sorted(Z)}")
        (m1 if which == "purchase" else m2)[:] += float(g) * Z[col]
    m1, m2 = np.exp(m1), np.exp(m2)
    # each piece in customer time (periods since the first purchase)
    u0 = np.maximum(np.asarray((starts - born[owner]) / unit, float), 0.0)
    u1 = np.asarray((starts + unit - born[owner]) / unit, float)
    u1 = np.minimum(u1, (ages + holdout)[owner])
    lam = rng.gamma(prm["r"], 1.0 / prm["alpha"], n)
    mu = rng.gamma(prm["s"], 1.0 / prm["beta"], n)
    # the lifetime: the dropout exposure B(t) reaches an Exp(1) / mu draw
    need = rng.exponential(1.0, n) / mu
    b_end = np.cumsum(m2 * (u1 - u0))
    first = np.r_[True, owner[1:] != owner[:-1]]
    start = np.maximum.accumulate(np.where(first, np.arange(len(owner)), 0))
    b_end = b_end - (b_end - m2 * (u1 - u0))[start]
    b_start = b_end - m2 * (u1 - u0)
    crossing = (b_start < need[owner]) & (b_end >= need[owner])
    tau = np.full(n, np.inf)
    tau[owner[crossing]] = (u0 + (need[owner] - b_start) / m2)[crossing]
    # purchases: a Poisson number in each piece of life, at uniform times in it
    alive_end = np.minimum(u1, tau[owner])
    span = np.maximum(alive_end - u0, 0.0)
    counts = rng.poisson(lam[owner] * m1 * span)
    who = np.repeat(owner, counts)
    times = np.repeat(u0, counts) + rng.random(counts.sum()) * np.repeat(span, counts)
    uid = np.r_[np.arange(n), who]
    tt = np.r_[np.zeros(n), times]
    ts = born[uid] + pd.to_timedelta(tt * unit.total_seconds(), unit="s")
    tx = pd.DataFrame({"user_id": ids[uid], "ts": ts, "amount": 1.0}).sort_values(["user_id", "ts"], ignore_index=True)
    table = pd.DataFrame({"user_id": ids[owner], "period_start": starts, **{c: Z[c] for c in (contacts or {})}})
    return tx, table if contacts else table.iloc[:0]
