"""The model table (models/registry.py) is the package's models, and every model in it keeps
scikit-learn's conventions: hyper-parameters in ``__init__`` (``get_params``, ``clone``), ``fit``
returns self, fitted attributes end in ``_``, an unfitted model raises the one
``NotFittedError``; every maximum-likelihood model has the one ``summary`` schema."""

import importlib
import inspect
import pickle
import pkgutil

import numpy as np
import pandas as pd
import pytest
import sklearn
from sklearn.base import clone
from sklearn.utils.validation import check_is_fitted

from urm_models import features, models
from urm_models.data import datasets, simulate
from urm_models.features.calendar import SeasonCalendar
from urm_models.models import NotFittedError, registry

SUMMARY = ["estimate", "std_error", "lower_95", "upper_95"]
CUTOFF = "1997-09-30"


def test_the_table_is_the_package_and_the_simulator():
    registry.check()
    defined = set()  # every public class with a fit method that a module of models/ defines
    for info in pkgutil.iter_modules(models.__path__):
        module = importlib.import_module(f"urm_models.models.{info.name}")
        for name, obj in vars(module).items():
            if inspect.isclass(obj) and obj.__module__ == module.__name__ and hasattr(obj, "fit"):
                if not name.startswith("_"):
                    defined.add(name)
    # combine or wrap fitted models (not fitted by name), or a step inside ChurnClassifier's pipeline
    helpers = {"LinearPool", "CLVScorer", "ConstantSpend", "FeatureEngineer"}
    assert defined - helpers == set(registry.MODELS)
    assert all(getattr(models, n) is registry.spec(n).cls for n in registry.MODELS)
    sims = {s.simulation for s in registry.MODELS.values() if s.simulation}
    assert sims == set(simulate.DEFAULT_PARAMS)
    assert registry.model_names(base=True) == ["BetaGeo", "ModifiedBetaGeo", "ParetoNBD"]
    with pytest.raises(ValueError, match="unknown model 'BGNBD'; the package's models are"):
        registry.spec("BGNBD")
    with pytest.raises(TypeError, match="unknown field"):
        registry.model_names(kind="purchases")


def test_purchase_candidates_are_fresh_and_follow_the_calendar():
    plain = registry.purchase_candidates(freq="W", seed=3, fast=True)
    assert list(plain) == [n for n in registry.model_names(candidate=True) if not registry.spec(n).needs_calendar]
    assert plain["ShiftedWindowPurchases"].boosting.n_estimators == 100
    assert plain["ShiftedWindowPurchases"].random_state == 3
    again = registry.purchase_candidates()
    assert all(again[n] is not plain[n] for n in plain)  # new objects each call: nothing shared between fits
    cal = SeasonCalendar(["11-01..12-31"])
    seasonal = registry.purchase_candidates(calendar=cal)
    assert list(seasonal)[-1] == "TimeVaryingParetoNBD"
    assert seasonal["TimeVaryingParetoNBD"].purchase_covariates == list(cal.columns)


@pytest.fixture(scope="module")
def data():
    tx = datasets.load_cdnow(sample=True)
    rfm = features.rfm_summary(tx, cutoff=CUTOFF, freq="W")
    return {
        "rfm": rfm,
        "transactions": tx,
        "periods": datasets.load_donations(),
        "cohort": [1000, 631, 468, 382, 326, 289, 262, 241],
        "spend": rfm[rfm["frequency"] > 0],
    }


def _fit(spec, model, data):
    if spec.role == "spend":
        return model.fit(data["spend"])
    if spec.fits_on == "transactions":
        return model.fit(data["transactions"], CUTOFF)
    if spec.fits_on == "periods":
        return model.fit(data["periods"], weights=data["periods"]["weights"])
    return model.fit(data[spec.fits_on])


@pytest.mark.parametrize("name", list(registry.MODELS))
def test_every_model_keeps_the_estimator_conventions_unfitted(name):
    spec = registry.spec(name)
    model = spec.cls()
    assert NotFittedError is sklearn.exceptions.NotFittedError
    with pytest.raises(NotFittedError):
        check_is_fitted(model)
    params = model.get_params()
    assert set(params) == set(inspect.signature(spec.cls.__init__).parameters) - {"self"}
    copy = clone(model)
    assert copy is not model and copy.get_params().keys() == params.keys()
    assert copy.set_params(**params) is copy


@pytest.mark.parametrize("name", registry.model_names(maximum_likelihood=True))
def test_every_maximum_likelihood_model_fits_as_an_estimator_with_the_one_summary(name, data):
    """Each maximum-likelihood model of the table, fitted on the data it takes (CDNOW_sample's
    summary or transactions, the donations' periods, a retention cohort): ``fit`` returns self,
    ``params_`` and ``summary`` name the same parameters, the summary has the one schema with
    finite estimates inside their intervals, a clone is unfitted, a pickle predicts the same."""
    spec = registry.spec(name)
    model = spec.cls()
    fitted = _fit(spec, model, data)
    assert fitted is model
    check_is_fitted(fitted)
    params = fitted.params_
    assert list(fitted.summary.columns) == SUMMARY and fitted.summary.index.name == "param"
    assert list(fitted.summary.index) == list(params.index if isinstance(params, pd.Series) else params)
    est = fitted.summary["estimate"].to_numpy()
    assert np.isfinite(est).all()
    ok = np.isfinite(fitted.summary["std_error"].to_numpy())
    assert ((fitted.summary["lower_95"] <= est + 1e-12) & (est <= fitted.summary["upper_95"] + 1e-12))[ok].all()
    assert np.isfinite(fitted.log_likelihood_)
    fitted_names = [k for k in vars(fitted) if k not in fitted.get_params()]
    assert fitted_names and all(k.endswith("_") or k.startswith("_") for k in fitted_names), fitted_names
    with pytest.raises(NotFittedError):
        check_is_fitted(clone(fitted))
    again = pickle.loads(pickle.dumps(fitted))
    pd.testing.assert_frame_equal(again.summary, fitted.summary)


def test_the_other_models_summaries_have_the_same_schema():
    """The churn classifier, the survival model and the uplift model share the schema: the
    estimate first, then (when the model measures it) its standard error and 95% interval."""
    from urm_models.data.campaign_files import campaign_from_frame

    telco = datasets.load_telco().head(1500).query("tenure > 0")
    X, y = telco.drop(columns=["user_id", "churn"]), telco["churn"]
    churn = registry.spec("ChurnClassifier").cls(n_bags=1, random_state=0).fit(X, y)
    survival = registry.spec("SurvivalModel").cls().fit(telco.drop(columns=["user_id"]), "tenure", "churn")
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"user_id": [f"u{i}" for i in range(2000)], "x": rng.normal(size=2000)})
    frame["arm"] = np.where(rng.random(2000) < 0.5, "mail", "none")
    frame["y"] = (rng.random(2000) < 0.2 + 0.1 * (frame["arm"] == "mail")).astype(int)
    camp = campaign_from_frame(frame, control="none", outcomes=["y"], features=["x"])
    uplift = registry.spec("UpliftModel").cls(control="none").fit(camp.X, camp.data["y"], camp.data["arm"])
    for model in (churn, survival, uplift):
        table = model.summary
        assert table.columns[0] == "estimate" and np.isfinite(table["estimate"].to_numpy(float)).all()
        if "std_error" in table:
            assert list(table.columns[:4]) == SUMMARY, type(model).__name__
    assert "std_error" not in churn.summary and set(survival.summary.columns) > set(SUMMARY)
