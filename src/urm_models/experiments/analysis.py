"""The analysis of a randomised campaign: did it work, by how much, and can the numbers be trusted.

Per arm: users and the mean outcome. Per treatment arm against the control: the absolute lift
(difference of means) and the relative lift (ratio of means - 1) with 95% intervals, p-values,
and, with several treatment arms, Holm-adjusted p-values and simultaneous (Bonferroni)
intervals. The checks before believing it: a sample-ratio-mismatch test (were the arms filled
as planned?) and covariate balance (standardised mean differences of the pre-campaign
features). Regression adjustment on pre-campaign features narrows the intervals; the variance
it removes is reported.

Which interval, and why (checked by simulation in ``tests/test_experiments.py`` and
docs/architecture.md, "Campaigns and decisions"):

* **binary outcomes** (visit, conversion: shares of users): Newcombe's hybrid score interval
  for the difference of two proportions (Newcombe 1998, method 10, from Wilson score intervals):
  it keeps close to 95% coverage for rates near 0 and small arms, where the Wald interval falls
  short; the relative lift uses the log risk-ratio interval (Katz et al. 1978); the p-value is the
  pooled two-proportion z-test.
* **amounts** (spend: mostly zeros and a heavy right tail): Welch's interval for the difference
  of means (unequal variances) and the delta method on the log ratio of means for the relative
  lift. Resampling Hillstrom's own spend, it covers 95.5% at Hillstrom's size (21,000 users per
  arm, ~120-270 buyers), 94% at 2,000 per arm and only ~90% at 500 per arm (6 buyers per arm):
  no interval built from means is reliable with so few non-zero outcomes (the bootstrap
  percentile and BCa intervals did worse there: 86% and 82%), so the table says so in ``note``
  when an arm has fewer than :data:`MIN_NONZERO` users with a non-zero outcome.
* **regression adjustment**: Lin's (2013) estimator, the treatment effect of an OLS with the
  centred covariates and their interactions with the arm, with HC2 standard errors; unbiased in
  large samples under randomisation whatever the outcome's relation to the covariates, and never
  less precise asymptotically than the difference of means. CUPED is the one-covariate case.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import stats

from ..data.campaign_files import Campaign
from ..evaluation.intervals import difference_of_means, difference_of_proportions

#: an arm with fewer users with a non-zero outcome gets a ``note``: its interval may undercover
MIN_NONZERO = 25
#: standardised mean difference above which a covariate counts as imbalanced (Austin 2009)
SMD_LIMIT = 0.1
#: sample-ratio-mismatch alarm (a p-value this small is a broken assignment, not chance)
SRM_ALPHA = 0.001


def arm_summary(campaign: Campaign, outcome: str) -> pd.DataFrame:
    """Per arm (control first): ``users``, ``share`` of all users, ``mean`` outcome, its ``std``,
    ``nonzero`` (users with a non-zero outcome) and ``total``."""
    y = campaign.outcome(outcome)
    arm = campaign.data.set_index("user_id")["arm"]
    g = y.groupby(arm, sort=False)
    out = pd.DataFrame(
        {
            "users": g.size(),
            "mean": g.mean(),
            "std": g.std(ddof=1),
            "nonzero": g.apply(lambda s: int((s != 0).sum())),
            "total": g.sum(),
        }
    )
    out = out.reindex(list(campaign.arms))
    out.insert(1, "share", out["users"] / out["users"].sum())
    out.index.name = "arm"
    return out


def _holm(p: np.ndarray) -> np.ndarray:
    m = len(p)
    order = np.argsort(p)
    adj = np.empty(m)
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p[i]))
        adj[i] = running
    return adj


def lift_table(campaign: Campaign, outcome: str, *, alpha: float = 0.05) -> pd.DataFrame:
    """Each treatment arm against the control on ``outcome``.

    Columns: ``control_mean``, ``mean``; ``lift`` (absolute, in the outcome's unit) with
    ``lift_lower``, ``lift_upper`` (the ``1 - alpha`` interval); ``relative_lift`` (mean /
    control mean - 1) with its interval; ``p_value``; with several treatment arms ``p_holm``
    (Holm's step-down adjustment: the family-wise error stays at ``alpha``) and the simultaneous
    intervals ``lift_lower_simultaneous``, ``lift_upper_simultaneous`` (Bonferroni: all of them
    hold together with probability ``1 - alpha``); ``method``; ``note`` (why an interval may not
    hold). The module docstring says which interval for which outcome and why.
    """
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must lie in (0, 1), got {alpha}")
    y = campaign.outcome(outcome)
    arm = campaign.data.set_index("user_id")["arm"]
    binary = campaign.binary(outcome)
    m = len(campaign.treatments)
    z = stats.norm.ppf(1 - alpha / 2)
    z_sim = stats.norm.ppf(1 - alpha / (2 * m))
    y0 = y[arm == campaign.control].to_numpy()
    rows = []
    for a in campaign.treatments:
        y1 = y[arm == a].to_numpy()
        if binary:
            d, lo, hi, rel, p = difference_of_proportions(y1.sum(), len(y1), y0.sum(), len(y0), z)
            _, lo_s, hi_s, _, _ = difference_of_proportions(y1.sum(), len(y1), y0.sum(), len(y0), z_sim)
            method = "Newcombe hybrid score (difference), log risk ratio (relative)"
        else:
            d, lo, hi, rel, p = difference_of_means(y1, y0, z)
            _, lo_s, hi_s, _, _ = difference_of_means(y1, y0, z_sim)
            method = "Welch (difference), delta method on the log ratio (relative)"
        few = [name for name, v in ((a, y1), (campaign.control, y0)) if (v != 0).sum() < MIN_NONZERO]
        note = (
            f"fewer than {MIN_NONZERO} users with a non-zero outcome in {few}: the interval may be too narrow"
            if few
            else ""
        )
        rows.append(
            {
                "arm": a,
                "users": len(y1),
                "control_users": len(y0),
                "control_mean": y0.mean(),
                "mean": y1.mean(),
                "lift": d,
                "lift_lower": lo,
                "lift_upper": hi,
                "relative_lift": rel[0],
                "relative_lift_lower": rel[1],
                "relative_lift_upper": rel[2],
                "p_value": p,
                "lift_lower_simultaneous": lo_s,
                "lift_upper_simultaneous": hi_s,
                "method": method,
                "note": note,
            }
        )
    out = pd.DataFrame(rows).set_index("arm")
    out.insert(out.columns.get_loc("p_value") + 1, "p_holm", _holm(out["p_value"].to_numpy()))
    out.attrs.update(
        outcome=outcome, unit=campaign.unit(outcome), window=campaign.window, alpha=alpha, control=campaign.control
    )
    return out


# ------------------------------------------------------------------------------ checks


def srm_test(campaign: Campaign, allocation: dict | None = None) -> dict:
    """Sample-ratio mismatch: the chi-square goodness-of-fit test of the arms' user counts
    against the planned ``allocation`` (``{arm: share}``; default equal shares). A p-value
    below :data:`SRM_ALPHA` means the assignment or the logging is broken (users lost from one
    arm, bots in another): no lift from such a campaign can be trusted."""
    counts = campaign.data["arm"].value_counts().reindex(list(campaign.arms)).fillna(0).to_numpy(float)
    if allocation is None:
        shares = np.full(len(counts), 1.0 / len(counts))
    else:
        unknown = sorted(set(allocation) - set(campaign.arms))
        missing = [a for a in campaign.arms if a not in allocation]
        if unknown or missing:
            raise ValueError(
                f"allocation must give a share for each arm {list(campaign.arms)}; unknown {unknown}, missing {missing}"
            )
        shares = np.array([float(allocation[a]) for a in campaign.arms])
        if np.any(shares <= 0) or not np.isclose(shares.sum(), 1.0):
            raise ValueError(f"allocation shares must be positive and add up to 1, got {dict(allocation)}")
    expected = shares * counts.sum()
    chi2, p = stats.chisquare(counts, expected)
    return {
        "observed": dict(zip(campaign.arms, counts.astype(int).tolist(), strict=True)),
        "expected": dict(zip(campaign.arms, np.round(expected, 1).tolist(), strict=True)),
        "chi2": float(chi2),
        "p_value": float(p),
        "mismatch": bool(p < SRM_ALPHA),
    }


def _design(frame: pd.DataFrame, drop_first: bool) -> pd.DataFrame:
    """Numbers for the features: numeric columns as they are (missing values: the column mean
    and a ``<col>_missing`` indicator), categories one-hot (every level, or all but the first);
    constant columns dropped."""
    parts = {}
    for c in frame.columns:
        s = frame[c]
        if pd.api.types.is_numeric_dtype(s) and not pd.api.types.is_bool_dtype(s):
            s = s.astype(float)
            if s.isna().any():
                parts[f"{c}_missing"] = s.isna().astype(float)
                s = s.fillna(s.mean() if s.notna().any() else 0.0)
            parts[c] = s
        else:
            levels = sorted(s.dropna().astype(str).unique())
            text = s.astype(object).where(s.notna(), None)
            for lv in levels[1:] if drop_first else levels:
                parts[f"{c}={lv}"] = (text.astype(str) == lv).astype(float).where(s.notna(), 0.0)
            if s.isna().any():
                parts[f"{c}_missing"] = s.isna().astype(float)
    out = pd.DataFrame(parts, index=frame.index)
    return out.loc[:, out.nunique() > 1]


def balance(campaign: Campaign, covariates=None) -> pd.DataFrame:
    """Standardised mean differences of the pre-campaign features, each treatment arm against
    the control: ``(mean_arm - mean_control) / sqrt((var_arm + var_control) / 2)``, one row per
    numeric feature or category level. ``imbalanced`` marks rows where any arm is beyond
    :data:`SMD_LIMIT` (0.1): randomisation should leave all of them below it."""
    cols = list(covariates or campaign.features)
    X = _design(campaign.data[cols], drop_first=False)
    arm = campaign.data["arm"]
    c = X[arm == campaign.control]
    out = {}
    for a in campaign.treatments:
        t = X[arm == a]
        pooled = np.sqrt((t.var(ddof=1) + c.var(ddof=1)) / 2)
        out[a] = ((t.mean() - c.mean()) / pooled.replace(0, np.nan)).fillna(0.0)
    table = pd.DataFrame(out)
    table.index.name = "covariate"
    table["imbalanced"] = (table.abs() > SMD_LIMIT).any(axis=1)
    return table


def _independent(Z: np.ndarray, tol: float = 1e-8) -> np.ndarray:
    """The columns of ``Z`` that are not linear combinations of the others (QR with column
    pivoting on the standardised columns): features such as a total and its parts, or a
    category's every level, would otherwise make the regression singular."""
    from scipy.linalg import qr

    if Z.shape[1] == 0:
        return Z
    sd = Z.std(axis=0)
    keep = sd > 0
    Zs = (Z[:, keep] - Z[:, keep].mean(axis=0)) / sd[keep]
    _, r, piv = qr(Zs, mode="economic", pivoting=True)
    diag = np.abs(np.diag(r))
    rank = int((diag > tol * diag[0]).sum()) if len(diag) else 0
    return Z[:, keep][:, np.sort(piv[:rank])]


def _ols_hc2(X: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """OLS coefficients and their HC2 covariance (heteroskedasticity-robust, leverage-corrected)."""
    q, r = np.linalg.qr(X)
    beta = np.linalg.solve(r, q.T @ y)
    resid = y - X @ beta
    h = np.einsum("ij,ij->i", q, q)  # leverages
    w = resid**2 / np.clip(1 - h, 1e-12, None)
    r_inv = np.linalg.inv(r)
    bread = r_inv @ r_inv.T  # (X'X)^-1
    meat = (X * w[:, None]).T @ X
    return beta, bread @ meat @ bread


def adjusted_lift(campaign: Campaign, outcome: str, covariates=None, *, alpha: float = 0.05) -> pd.DataFrame:
    """The lift of each treatment arm adjusted for pre-campaign covariates (Lin 2013: OLS of the
    outcome on the arm, the centred covariates and their interactions with the arm; HC2 errors),
    beside the unadjusted difference of means with the same robust error.

    Columns: ``lift``, ``lift_lower``, ``lift_upper``, ``std_error`` (adjusted);
    ``unadjusted_lift``, ``unadjusted_std_error``; ``variance_reduction`` = 1 - (adjusted /
    unadjusted variance): the share of the lift's variance the covariates remove (0.3 means the
    same precision with 30% fewer users); ``covariates`` (the design's columns)."""
    cols = list(covariates if covariates is not None else campaign.features)
    y_all = campaign.outcome(outcome).to_numpy()
    arm = campaign.data["arm"].to_numpy()
    z = stats.norm.ppf(1 - alpha / 2)
    rows = []
    for a in campaign.treatments:
        rows_ = (arm == a) | (arm == campaign.control)
        t = (arm[rows_] == a).astype(float)
        y = y_all[rows_]
        Z = _design(campaign.data.loc[rows_, cols], drop_first=True).to_numpy(float) if cols else np.empty((len(y), 0))
        Z = _independent(Z)
        Zc = Z - Z.mean(axis=0)
        ones = np.ones(len(y))
        _, cov0 = _ols_hc2(np.column_stack([ones, t]), y)
        beta, cov = _ols_hc2(np.column_stack([ones, t, Zc, Zc * t[:, None]]), y)
        b0 = y[t == 1].mean() - y[t == 0].mean()
        se0, se = float(np.sqrt(cov0[1, 1])), float(np.sqrt(cov[1, 1]))
        rows.append(
            {
                "arm": a,
                "lift": float(beta[1]),
                "lift_lower": float(beta[1] - z * se),
                "lift_upper": float(beta[1] + z * se),
                "std_error": se,
                "unadjusted_lift": float(b0),
                "unadjusted_std_error": se0,
                "variance_reduction": float(1 - se**2 / se0**2) if se0 > 0 else 0.0,
                "covariates": Z.shape[1],
            }
        )
    out = pd.DataFrame(rows).set_index("arm")
    out.attrs.update(outcome=outcome, unit=campaign.unit(outcome), covariates=cols, alpha=alpha)
    return out


@dataclass
class ExperimentReport:
    """Everything :func:`analyze` measured about one outcome of a campaign."""

    outcome: str
    unit: str
    window: str
    arms: pd.DataFrame
    lifts: pd.DataFrame
    adjusted: pd.DataFrame
    srm: dict
    balance: pd.DataFrame
    notes: list = field(default_factory=list)

    def summary(self) -> str:
        """The findings in sentences: what the notebook prints."""
        unit = "percentage points" if self.unit == "share of users" else self.unit
        scale = 100.0 if self.unit == "share of users" else 1.0
        lines = []
        for a, r in self.lifts.iterrows():
            sig = (
                "significant"
                if r.get("p_holm", r["p_value"]) < self.lifts.attrs.get("alpha", 0.05)
                else "not significant"
            )
            lines.append(
                f"{a}: {self.outcome} {r['mean'] * scale:.3g} vs {r['control_mean'] * scale:.3g} "
                f"{'%' if scale == 100 else unit} {self.window}; lift {r['lift'] * scale:+.3g} {unit} "
                f"(95% {r['lift_lower'] * scale:+.3g} to {r['lift_upper'] * scale:+.3g}), relative "
                f"{r['relative_lift']:+.1%}; {sig} after Holm's correction (p {r['p_holm']:.2g})"
            )
        return "\n".join(lines + self.notes)


def analyze(
    campaign: Campaign, outcome: str, *, alpha: float = 0.05, allocation: dict | None = None, covariates=None
) -> ExperimentReport:
    """Arms, lifts, the regression-adjusted lifts, the sample-ratio test and covariate balance
    of one outcome, with notes on anything that weakens the result."""
    report = ExperimentReport(
        outcome=outcome,
        unit=campaign.unit(outcome),
        window=campaign.window,
        arms=arm_summary(campaign, outcome),
        lifts=lift_table(campaign, outcome, alpha=alpha),
        adjusted=adjusted_lift(campaign, outcome, covariates, alpha=alpha),
        srm=srm_test(campaign, allocation),
        balance=balance(campaign, covariates),
    )
    if report.srm["mismatch"]:
        report.notes.append(
            f"SAMPLE RATIO MISMATCH: arm sizes {report.srm['observed']} against the planned "
            f"{report.srm['expected']} (p {report.srm['p_value']:.2g}): the assignment or its "
            "logging is broken; do not trust the lifts"
        )
    bad = report.balance.index[report.balance["imbalanced"]].tolist()
    if bad:
        report.notes.append(
            f"covariates with a standardised mean difference above {SMD_LIMIT}: {bad}; the "
            "adjusted lifts correct for them"
        )
    for a, r in report.lifts.iterrows():
        if r["note"]:
            report.notes.append(f"{a}: {r['note']}")
    return report
