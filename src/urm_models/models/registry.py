"""Every model the package fits, in one table: its name (the class name, which runs, champions
and tables record), where it lives, what it predicts and from what, how the simulator draws
data from it, and whether it is a purchase candidate of notebook 05 (whose choice the champion
rule makes). 05, the shifted-window model's bases, the conformance test and the benchmarks read
this table; a new model is one row here, its module and its tests.

The classes are imported when first asked for (:attr:`ModelSpec.cls`): the churn, uplift and
survival models pull in XGBoost, scikit-learn pipelines and lifelines, which a BTYD-only job
does not need.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from importlib import import_module
from typing import Literal

from ..core.units import FREQ
from ..data.simulate import DEFAULT_PARAMS
from . import boosting


@dataclass(frozen=True)
class ModelSpec:
    """One model. ``role``: what it predicts; ``fits_on``: what ``fit`` takes (``"rfm"``: the BTYD
    summary of :func:`urm_models.features.rfm_summary`; ``"transactions"``: transactions and a
    cut-off; ``"periods"``: a discrete-time summary; ``"cohort"``: customers alive per period;
    ``"users"``: a user table and labels; ``"campaign"``: features, outcome and arm).
    ``simulation``: its key in :data:`urm_models.data.simulate.DEFAULT_PARAMS` (the simulator
    draws customers from it), or None. ``candidate``: a purchase model 05 fits and the champion
    rule chooses among (``needs_calendar``: only when a season calendar is given).
    ``count_distribution``: P(n purchases) exists, so medians and count intervals do. ``base``:
    the shifted-window model can carry its window to longer horizons with it.
    ``maximum_likelihood``: fitted by :class:`urm_models.models._base.MLEModel` (``params_``,
    ``summary`` with standard errors and 95% intervals)."""

    name: str
    module: str
    role: Literal["purchases", "spend", "retention", "churn", "survival", "uplift"]
    fits_on: Literal["rfm", "transactions", "periods", "cohort", "users", "campaign"]
    simulation: str | None = None
    candidate: bool = False
    needs_calendar: bool = False
    count_distribution: bool = False
    base: bool = False
    maximum_likelihood: bool = False

    @property
    def cls(self) -> type:
        return getattr(import_module(self.module, __package__), self.name)


_BTYD = {"role": "purchases", "fits_on": "rfm", "candidate": True, "count_distribution": True}
_MLE = {"maximum_likelihood": True}

#: the models, in the order 05 fits and shows its candidates (the tie rule's order too)
MODELS: dict[str, ModelSpec] = {
    s.name: s
    for s in (
        ModelSpec("BetaGeo", ".btyd", **_BTYD, **_MLE, simulation="bgnbd", base=True),
        ModelSpec("ModifiedBetaGeo", ".btyd", **_BTYD, **_MLE, simulation="mbgnbd", base=True),
        ModelSpec("ParetoNBD", ".pareto", **_BTYD, **_MLE, simulation="paretonbd", base=True),
        ModelSpec("GammaGompertzNBD", ".gompertz", **_BTYD, **_MLE, simulation="ggompertznbd"),
        ModelSpec("ShiftedWindowPurchases", ".shifted", **{**_BTYD, "fits_on": "transactions"}),
        ModelSpec(
            "TimeVaryingParetoNBD", ".dynamic", "purchases", "transactions", **_MLE, candidate=True, needs_calendar=True
        ),
        ModelSpec("BetaGeoBetaBinom", ".bgbb", "purchases", "periods", **_MLE, count_distribution=True),
        ModelSpec("GammaGamma", ".btyd", "spend", "rfm", **_MLE),
        ModelSpec("ShiftedBetaGeometric", ".btyd", "retention", "cohort", **_MLE),
        ModelSpec("ChurnClassifier", ".churn", "churn", "users"),
        ModelSpec("SurvivalModel", ".survival", "survival", "users"),
        ModelSpec("UpliftModel", ".uplift", "uplift", "campaign"),
    )
}


def spec(name: str) -> ModelSpec:
    """The entry of model ``name``; an unknown name is refused with the known ones."""
    try:
        return MODELS[name]
    except KeyError:
        raise ValueError(f"unknown model {name!r}; the package's models are {list(MODELS)}") from None


def model_names(**where) -> list[str]:
    """The names of the models whose fields equal ``where`` (``model_names(base=True)``), in order."""
    unknown = set(where) - set(ModelSpec.__dataclass_fields__)
    if unknown:
        raise TypeError(f"unknown field(s) {sorted(unknown)} of ModelSpec")
    return [n for n, s in MODELS.items() if all(getattr(s, k) == v for k, v in where.items())]


def purchase_candidates(*, freq: str = FREQ, seed: int = 0, fast: bool = False, calendar=None) -> dict:
    """Unfitted purchase candidates of 05, by name: every ``candidate`` model, those that need
    a season calendar only when ``calendar`` (a :class:`~urm_models.features.calendar.SeasonCalendar`)
    is given. ``fast``: the shifted-window model grows 100 trees instead of 400 (a quick refresh)."""
    out = {}
    for name in model_names(candidate=True):
        s = MODELS[name]
        if s.needs_calendar and calendar is None:
            continue
        if name == "ShiftedWindowPurchases":
            trees = replace(boosting.SHIFTED, n_estimators=100) if fast else boosting.SHIFTED
            out[name] = s.cls(freq=freq, random_state=seed, season=calendar, boosting=trees)
        elif name == "TimeVaryingParetoNBD":  # purchase and dropout rates move with the seasons
            cols = list(calendar.columns)
            out[name] = s.cls(purchase_covariates=cols, dropout_covariates=cols, freq=freq, season=calendar)
        else:
            out[name] = s.cls()
    return out


def check() -> None:
    """The table agrees with the package: every class exists and is its name, every simulation
    key is the simulator's, and the simulator draws from no model missing here."""
    for name, s in MODELS.items():
        if s.cls.__name__ != name:
            raise AssertionError(f"{name}: {s.module} holds {s.cls.__name__}")
    sims = {s.simulation for s in MODELS.values() if s.simulation}
    if sims != set(DEFAULT_PARAMS):
        raise AssertionError(f"simulation keys {sorted(sims)} != the simulator's {sorted(DEFAULT_PARAMS)}")


__all__ = ["ModelSpec", "MODELS", "spec", "model_names", "purchase_candidates", "check"]
