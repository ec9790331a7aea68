"""Time-invariant customer covariates for the BTYD models: one standardisation for all.

A covariate enters a model through a log-link on one of its scale parameters (Fader & Hardie
2007, "Incorporating time-invariant covariates into the Pareto/NBD and BG/NBD models"):
``theta_i = theta * exp(+-coef @ z_i)`` with ``z_i`` the customer's covariates standardised on
the fitting rows, so ``theta`` is the value of a customer at the covariates' means and each
coefficient is the effect of one standard deviation. The means and scales are kept on the
model (``covariate_means_``, ``covariate_scales_``, in the order of ``covariate_columns_``)
and applied unchanged to the tables it scores.
"""

from __future__ import annotations

import numpy as np
import pandas as pd


def names(value) -> list[str]:
    """A covariate argument as a list of column names (None or () for none)."""
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    out = list(value)
    bad = [c for c in out if not isinstance(c, str)]
    if bad:
        raise TypeError(f"covariates must be column names (strings), got {bad}")
    return out


def union(*lists: list[str]) -> list[str]:
    """The columns of several lists, each once, in order of first appearance."""
    return list(dict.fromkeys(c for lst in lists for c in lst))


def design(model, rfm: pd.DataFrame, columns: list[str], rows=None, fitting: bool = False) -> np.ndarray:
    """The standardised covariate matrix (users x columns) of ``rfm``.

    ``fitting=True`` sets ``model.covariate_columns_``, ``covariate_means_`` and
    ``covariate_scales_`` from these rows (refusing a constant column); otherwise the model's
    fitted standardisation is applied. ``rows`` selects the rows used (a boolean mask).
    """
    n = len(rfm) if rows is None else int(np.sum(rows))
    if not columns:
        return np.zeros((n, 0))
    missing = [c for c in columns if c not in rfm.columns]
    if missing:
        raise ValueError(
            f"rfm lacks covariate column(s) {missing}: add them to the RFM table "
            f"(one value per user) or fit without them"
        )
    Z = rfm[columns].apply(pd.to_numeric, errors="coerce").to_numpy(float)
    if rows is not None:
        Z = Z[rows]
    bad = ~np.isfinite(Z)
    if bad.any():
        worst = int(bad.sum(axis=0).argmax())
        raise ValueError(
            f"covariate {columns[worst]!r} has {int(bad.sum(axis=0)[worst])} missing or "
            f"non-numeric rows of {len(Z):,}: fill or drop them before fitting or scoring"
        )
    if fitting:
        model.covariate_columns_ = list(columns)
        model.covariate_means_ = Z.mean(axis=0)
        model.covariate_scales_ = Z.std(axis=0)
        flat = [c for c, sd in zip(columns, model.covariate_scales_, strict=True) if sd == 0]
        if flat:
            raise ValueError(f"covariate(s) {flat} are constant on the fitting rows: they carry no information")
    elif list(columns) != list(getattr(model, "covariate_columns_", columns)):
        raise ValueError(f"covariate columns {columns} differ from the fitted {model.covariate_columns_}")
    return (Z - model.covariate_means_) / model.covariate_scales_
