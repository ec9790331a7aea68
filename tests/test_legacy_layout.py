"""Champions registered under the flat layout keep loading (src/urm_models/core/legacy.py).

The fixture (tests/fixtures/legacy_champion/, made by its make.py from a checkout of the flat
layout) is an urm-clv model as MLflow stored it then: cloudpickle named its class
``urm_models.mlflow_models.CLVPyfunc``, a module that no longer exists as a file."""

import pickle
import pickletools
from pathlib import Path

import mlflow.pyfunc
import numpy as np
import pandas as pd
import pytest

import urm_models
from urm_models.core import legacy
from urm_models.serve import scoring

FIXTURE = Path(__file__).parent / "fixtures" / "legacy_champion"


def _globals(data: bytes) -> set[str]:
    """The module names a pickle imports (GLOBAL and STACK_GLOBAL opcodes)."""
    names, strings = set(), []
    for op, arg, _ in pickletools.genops(data):
        if op.name in ("SHORT_BINUNICODE", "BINUNICODE", "UNICODE"):
            strings = [*strings[-1:], arg]
        elif op.name == "STACK_GLOBAL":
            names.add(strings[0])
        elif op.name == "GLOBAL":
            names.add(arg.split(" ")[0])
    return names


def test_the_fixture_names_the_flat_layout():
    """Else the tests below would load a model of today's layout and prove nothing."""
    model = _globals((FIXTURE / "model" / "python_model.pkl").read_bytes())
    assert "urm_models.mlflow_models" in model and not any(".serve" in m for m in model)
    assert _globals((FIXTURE / "scoring.pkl").read_bytes()) >= {"urm_models.scoring"}


def test_a_champion_pickled_under_the_old_names_loads_and_scores_as_it_did():
    model = mlflow.pyfunc.load_model(str(FIXTURE / "model"))
    assert type(model.unwrap_python_model()).__module__ == "urm_models.serve.mlflow_models"
    expected = pd.read_csv(FIXTURE / "expected.csv")
    rfm = expected[["frequency", "recency", "T", "monetary"]]
    got = model.predict(rfm)
    for c in ("expected_purchases", "p_alive", "p_churn", "expected_remaining_lifetime", "clv"):
        np.testing.assert_allclose(got[c].to_numpy(), expected[c].to_numpy(), rtol=1e-6, err_msg=c)


def test_an_object_pickled_under_an_old_module_name_unpickles_as_todays_class():
    options = pickle.loads((FIXTURE / "scoring.pkl").read_bytes())
    assert type(options) is scoring.ScoringOptions and (options.freq, options.period) == ("W", 8.0)


@pytest.mark.parametrize("old", sorted(legacy.MODULES))
def test_every_old_name_is_the_module_that_holds_its_code_now(old):
    import importlib

    module = importlib.import_module(old)
    assert module is importlib.import_module(legacy.MODULES[old])
    assert module.__name__ == legacy.MODULES[old]  # the module itself, not a copy under the old name


def test_only_the_old_names_are_aliased():
    assert urm_models.__version__
    with pytest.raises(ModuleNotFoundError):
        __import__("urm_models.no_such_module")
    assert not any(new in legacy.MODULES for new in legacy.MODULES.values())
