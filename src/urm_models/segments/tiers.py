"""Value tiers: shares or amounts of a value, best first, and their report."""

from __future__ import annotations

import numpy as np
import pandas as pd


DEFAULT_TIER_SHARES = {"platinum": 0.10, "gold": 0.20, "silver": 0.30, "bronze": 0.40}
#: Tiers best first (the order of ``DEFAULT_TIER_SHARES``).
TIERS = list(DEFAULT_TIER_SHARES)


def value_tiers(value: pd.Series, shares: dict | None = None, amounts: dict | None = None) -> pd.Series:
    """Tier per user from predicted value (e.g. CLV), best tier first.

    ``shares`` (default 10/20/30/40%): the top share of users by value, then the next, ...;
    counts are cumulative roundings, so each tier is within one user of its share. Ties are
    broken by the index. ``amounts`` instead: ``{tier: minimum value}``, tested from the
    highest minimum down; users below every minimum get the last tier.
    """
    if shares is not None and amounts is not None:
        raise ValueError("give shares or amounts, not both")
    v = value.astype(float)
    if v.isna().any():
        raise ValueError(f"value has {int(v.isna().sum())} missing rows")
    if amounts is not None:
        ordered = sorted(amounts.items(), key=lambda kv: -kv[1])
        out = pd.Series(ordered[-1][0], index=v.index, dtype=object)
        assigned = pd.Series(False, index=v.index)
        for tier, minimum in ordered:
            hit = ~assigned & (v >= minimum)
            out[hit] = tier
            assigned |= hit
        return out.rename("tier")
    shares = dict(shares or DEFAULT_TIER_SHARES)
    total = sum(shares.values())
    if not np.isclose(total, 1.0):
        raise ValueError(f"tier shares must add up to 1, they add up to {total}")
    n = len(v)
    bounds = np.round(np.cumsum(list(shares.values())) * n).astype(int)
    bounds[-1] = n
    neg = -v.to_numpy()
    order = np.argsort(neg, kind="stable")
    ranked = neg[order]
    for b in bounds[:-1]:
        # users tied across a tier boundary are ordered by id, so that the split never depends
        # on row order (ties elsewhere land in one tier whatever their order)
        if 0 < b < n and ranked[b - 1] == ranked[b]:
            lo, hi = np.searchsorted(ranked, ranked[b], "left"), np.searchsorted(ranked, ranked[b], "right")
            block = order[lo:hi]
            order[lo:hi] = block[v.index[block].argsort()]
    labels = np.empty(n, dtype=object)
    start = 0
    for tier, end in zip(shares, bounds):
        labels[order[start:end]] = tier
        start = end
    return pd.Series(labels, index=v.index, name="tier")


def tier_report(tiers: pd.Series, value: pd.Series) -> pd.DataFrame:
    """Users and predicted value per tier, with each tier's share of both."""
    df = pd.DataFrame({"tier": tiers, "value": value.astype(float)})
    out = df.groupby("tier", sort=False).agg(users=("value", "size"), value=("value", "sum"))
    out["share_of_users"] = out["users"] / out["users"].sum()
    out["share_of_value"] = out["value"] / out["value"].sum()
    return out.reindex([t for t in TIERS if t in out.index] + [t for t in out.index if t not in TIERS])
