"""The one rule that chooses a purchase model reads nothing after the cut-off (issue 28): it is
judged on inner windows inside the calibration period, close calls go to the simpler model, and
the holdout it never saw is what gets reported."""

import pandas as pd
import pytest

from urm_models import features
from urm_models.evaluation import holdout
from urm_models.models import BetaGeo, ModifiedBetaGeo, ParetoNBD, ShiftedWindowPurchases

CUT = "1997-09-30"


def candidates():
    return {
        "BetaGeo": BetaGeo(),
        "ModifiedBetaGeo": ModifiedBetaGeo(),
        "ParetoNBD": ParetoNBD(),
        "ShiftedWindowPurchases": ShiftedWindowPurchases(n_estimators=100),
    }


@pytest.fixture(scope="module")
def choice(cdnow_sample):
    return holdout.choose_on_inner_windows(cdnow_sample, CUT, candidates(), freq="W", horizon=39)


def test_the_choice_never_reads_the_holdout(cdnow_sample, choice):
    """Holdout purchases halved, moved and their amounts multiplied: the same choice, the same table."""
    later = cdnow_sample[cdnow_sample["ts"] > CUT].sample(frac=0.5, random_state=1)
    later = later.assign(amount=later["amount"] * 100, ts=later["ts"] + pd.Timedelta(days=3))
    changed = pd.concat([cdnow_sample[cdnow_sample["ts"] <= CUT], later], ignore_index=True)
    again = holdout.choose_on_inner_windows(changed, CUT, candidates(), freq="W", horizon=39)
    assert again.choice == choice.choice
    pd.testing.assert_frame_equal(again.table, choice.table)
    # and the holdout does differ: a rule reading it would have seen another table
    before = features.rfm_summary(cdnow_sample, CUT, freq="W", holdout_end="1998-06-30")["frequency_holdout"].sum()
    after = features.rfm_summary(changed, CUT, freq="W", holdout_end="1998-06-30")["frequency_holdout"].sum()
    assert after < 0.6 * before


def test_inner_windows_come_from_the_data_and_precede_the_cutoff(cdnow_sample, choice):
    assert choice.choice in candidates()
    # every CDNOW customer starts in Q1 1997: the holdout's 39 weeks do not fit before 1997-09-30,
    # the longest window whose cohort is at least half its length old does
    assert 2 <= choice.horizon < 39
    for origin in choice.origins:
        assert origin + pd.Timedelta(weeks=choice.horizon) <= pd.Timestamp(CUT)
    assert (choice.table["origins_validated"] == len(choice.origins)).all()
    best = choice.table["rmse"].idxmin()
    assert choice.table.loc[choice.choice, "tied"] and choice.table.loc[best, "mse_difference"] <= 0
    # the tie rule: the chosen is the first tied candidate in the order given (simplest first)
    tied = choice.table.index[choice.table["tied"]]
    assert choice.choice == tied[0]


def test_a_close_call_goes_to_the_simpler_model(cdnow_sample):
    """The same model under two names ties exactly: the first named wins, whichever it is."""
    a = holdout.choose_on_inner_windows(cdnow_sample, CUT, {"simple": ParetoNBD(), "fancy": ParetoNBD()}, horizon=39)
    b = holdout.choose_on_inner_windows(cdnow_sample, CUT, {"fancy": ParetoNBD(), "simple": ParetoNBD()}, horizon=39)
    assert (a.choice, b.choice) == ("simple", "fancy")


def test_too_little_history_is_refused_with_what_is_needed(cdnow_sample):
    with pytest.raises(ValueError, match="too little history before 1997-01-10 to validate.*choose a later cut-off"):
        holdout.choose_on_inner_windows(cdnow_sample, "1997-01-10", candidates(), horizon=39)
