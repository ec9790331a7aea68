"""Candidates that cannot fit: the limit without dropout refused alike by every BTYD model, the
regularisation the error names tried, and the rest of the list fitted (issue 28)."""

import numpy as np
import pandas as pd
import pytest

from urm_models import features
from urm_models.core.errors import ConvergenceError
from urm_models.models import BetaGeo, GammaGompertzNBD, ModifiedBetaGeo, ParetoNBD, fit_candidates

CANDIDATES = {
    "BetaGeo": BetaGeo(),
    "ModifiedBetaGeo": ModifiedBetaGeo(),
    "ParetoNBD": ParetoNBD(),
    "GammaGompertzNBD": GammaGompertzNBD(),
}


@pytest.fixture(scope="module")
def young_shop(online_retail):
    """The gift shop's first seven months: hardly anyone has stopped buying yet."""
    return features.rfm_summary(online_retail, "2011-06-30", freq="W", holdout_end="2011-12-09")


@pytest.mark.parametrize("name", sorted(CANDIDATES))
def test_every_model_refuses_the_limit_without_dropout_alike(young_shop, name):
    """BG/NBD's a -> 0 and Pareto/NBD's s -> 0, beta -> infinity are one limit (the NBD): every
    model says so in the same words with the same advice, instead of BG/NBD refusing while
    Pareto/NBD 'fits' with s = 5e-7 and beta = 3e6 and no standard errors."""
    with pytest.raises(ConvergenceError) as ei:
        CANDIDATES[name].fit(young_shop)
    msg = str(ei.value)
    assert msg.startswith(f"{name}: no dropout in these data (")
    assert "of the customers would drop out over the data's span" in msg
    assert "Refit with penalizer=0.001" in msg


@pytest.mark.slow
def test_fit_candidates_refits_with_the_penalizer_the_error_names(young_shop):
    fits = fit_candidates(CANDIDATES, young_shop)
    assert list(fits.models) == list(CANDIDATES)
    assert set(fits.notes["status"]) == {"penalized"}
    assert (fits.notes["penalizer"] == 1e-3).all()
    assert fits.notes["reason"].str.contains("no dropout in these data").all()
    for name, m in fits.models.items():
        assert m.penalizer == 1e-3 and np.isfinite(m.covariance_.to_numpy()).all(), name
        pred = m.conditional_expected_purchases(23, young_shop)
        assert np.isfinite(pred).all() and 0.5 < pred.sum() / young_shop["frequency_holdout"].sum() < 2.0
    assert "ParetoNBD: penalized (penalizer=0.001): ParetoNBD: no dropout" in fits.summary()
    assert all(not e.penalizer for e in CANDIDATES.values())  # the estimators given stay as they were


def test_fit_candidates_drops_what_cannot_fit_and_keeps_the_rest(cdnow_sample):
    rfm = features.rfm_summary(cdnow_sample, "1997-09-30", freq="W")
    tiny = rfm.head(3)

    class Broken(BetaGeo):
        def fit(self, rfm, weights=None):
            raise ValueError("needs at least 100 customers, got 3")

    fits = fit_candidates({"BetaGeo": BetaGeo(), "broken": Broken()}, tiny)
    assert fits.dropped == ["broken"]
    assert fits.notes.loc["broken", "reason"] == "needs at least 100 customers, got 3"
    fits = fit_candidates({"ParetoNBD": ParetoNBD(), "BetaGeo": BetaGeo()}, rfm)
    assert (fits.notes["status"] == "fitted").all() and fits.summary() == ""
    assert isinstance(fits.notes, pd.DataFrame) and fits.notes.index.name == "model"
