"""Fitting a list of candidate models so that one that cannot fit does not stop the others.

Every candidate is fitted as it is; a fit that fails with a :class:`ConvergenceError` (whose
message names the cause and, for the maximum-likelihood models, ``penalizer=0.001``) is fitted
again with the regularisation it names, a larger one after that; a candidate that still fails, or
that raises a ValueError saying the data do not suit it (too few users, a covariate that never
varies), leaves the list. Each outcome is a row of :attr:`CandidateFits.notes` (``fitted``,
``penalized`` or ``dropped``, the penalizer used and the reason), which the notebooks show and log
to the run.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import pandas as pd
from sklearn.base import clone

from ..core.errors import ConvergenceError
from ._base import ModelWarning

__all__ = ["CandidateFits", "fit_candidates", "PENALIZERS"]

#: the regularisation tried, in order, after a plain fit fails (the one the errors name first)
PENALIZERS = (1e-3, 1e-2)


@dataclass
class CandidateFits:
    """The fitted candidates (``models``, in the order given, without the dropped ones) and one
    row per candidate in ``notes``: ``status``, ``penalizer``, ``reason``."""

    models: dict = field(default_factory=dict)
    notes: pd.DataFrame = field(default_factory=pd.DataFrame)

    @property
    def dropped(self) -> list[str]:
        return [n for n, s in self.notes["status"].items() if s == "dropped"] if len(self.notes) else []

    def summary(self) -> str:
        """One line per candidate that needed help or left the list ('' when all fitted as given)."""
        rows = self.notes[self.notes["status"] != "fitted"] if len(self.notes) else self.notes
        return "\n".join(
            f"{name}: {r.status}"
            + (f" (penalizer={r.penalizer:g})" if r.status == "penalized" else "")
            + f": {r.reason}"
            for name, r in rows.iterrows()
        )


def _first_sentence(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text if len(text) <= 400 else text[:397] + "..."


def fit_candidates(estimators: dict, *args, penalizers=PENALIZERS, **kwargs) -> CandidateFits:
    """Fit each estimator of ``{name: estimator}`` with ``fit(*args, **kwargs)`` (clones: the
    estimators given stay unfitted); see the module docstring for what happens when a fit fails.

    A fit that completes without standard errors (a singular Hessian) is kept and noted
    (``reason``: no standard errors; its intervals then come without parameter uncertainty)."""
    out = CandidateFits()
    rows = {}
    for name, est in estimators.items():
        model, status, pen, reason = None, "dropped", float(getattr(est, "penalizer", 0.0) or 0.0), ""
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("error", ModelWarning)  # a caveat is a note here, raised below
                model = clone(est).fit(*args, **kwargs)
            status = "fitted"
        except (ConvergenceError, ModelWarning) as exc:
            reason = _first_sentence(exc)
            if "penalizer" in est.get_params():
                for p in (p for p in penalizers if p > pen):
                    try:
                        model = clone(est).set_params(penalizer=p).fit(*args, **kwargs)
                        status, pen = "penalized", p
                        break
                    except (ConvergenceError, ValueError) as again:
                        reason = f"{reason}; with penalizer={p:g}: {_first_sentence(again)}"
        except ValueError as exc:  # the data do not suit it (too few users, a constant covariate, ...)
            reason = _first_sentence(exc)
        if model is not None and status != "dropped":
            cov = getattr(model, "covariance_", None)
            if cov is not None and not pd.DataFrame(cov).notna().all().all():
                reason = (reason + "; " if reason else "") + "no standard errors (singular Hessian)"
            out.models[name] = model
        rows[name] = {"status": status, "penalizer": pen, "reason": reason}
    out.notes = pd.DataFrame.from_dict(rows, orient="index", columns=["status", "penalizer", "reason"])
    out.notes.index.name = "model"
    return out
