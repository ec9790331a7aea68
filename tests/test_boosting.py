"""The boosters' settings are one object (models/boosting.py): every boosted model takes it
whole as ``boosting``, none repeats its nine keywords, and a model pickled when they were
attributes of its own loads with the same settings."""

import inspect
from dataclasses import fields, replace

import pytest
from sklearn.base import clone

from urm_models.models import BoostingOptions, ChurnClassifier, ShiftedWindowPurchases, UpliftModel, boosting
from urm_models.models.churn import _XGBEarlyStopping

SETTINGS = [f.name for f in fields(BoostingOptions)]
MODELS = {ChurnClassifier: boosting.CHURN, UpliftModel: boosting.UPLIFT, ShiftedWindowPurchases: boosting.SHIFTED}


@pytest.mark.parametrize("cls", [*MODELS, _XGBEarlyStopping], ids=lambda c: c.__name__)
def test_each_boosted_model_takes_the_settings_whole(cls):
    params = inspect.signature(cls.__init__).parameters
    assert "boosting" in params and not set(SETTINGS) & set(params)
    model = cls(boosting=replace(boosting.SHIFTED, max_depth=2)) if cls is not ChurnClassifier else cls()
    copy = clone(model)
    assert copy.boosting == model.boosting and copy.get_params()["boosting"] is not None


@pytest.mark.parametrize("cls", list(MODELS), ids=lambda c: c.__name__)
def test_a_model_pickled_with_the_settings_as_attributes_loads_them(cls):
    """Before 2026-12-08 each model held the settings as attributes (ShiftedWindowPurchases
    four of them, the others nine): __setstate__ gathers them, the rest from the model's default."""
    model = cls()
    state = {k: v for k, v in vars(model).items() if k != "boosting"}
    state |= {"n_estimators": 77, "learning_rate": 0.11, "max_depth": 5}
    loaded = cls.__new__(cls)
    loaded.__setstate__(state)
    assert loaded.boosting == replace(MODELS[cls], n_estimators=77, learning_rate=0.11, max_depth=5)
    assert "n_estimators" not in vars(loaded) and repr(loaded)  # get_params works: repr, clone


def test_settings_are_checked_when_made_and_the_shifted_model_refuses_early_stopping(cdnow_sample):
    for bad, match in (
        ({"n_estimators": 0}, "n_estimators must be a whole number"),
        ({"subsample": 1.5}, "subsample must lie in"),
        ({"validation_fraction": 1.0}, "validation_fraction must lie in"),
        ({"early_stopping_rounds": 0}, "early_stopping_rounds must be"),
    ):
        with pytest.raises(ValueError, match=match):
            BoostingOptions(**bad)
    assert boosting.UPLIFT.xgb_params(12)["n_estimators"] == 12
    assert "early_stopping_rounds" not in boosting.UPLIFT.xgb_params()
    with pytest.raises(ValueError, match="early_stopping_rounds=None"):
        ShiftedWindowPurchases(boosting=boosting.CHURN).fit(cdnow_sample, "1997-09-30")
