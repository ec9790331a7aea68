import os
import tempfile

import pytest
from hypothesis import settings

os.environ.setdefault("MPLBACKEND", "Agg")
# the pseudonym key of the test session: a key file outside the repository, as in production,
# but never the user's own ~/.config one
os.environ.setdefault("URM_PSEUDONYM_KEY_FILE", os.path.join(tempfile.mkdtemp(prefix="urm-key-"), "pseudonym.key"))

# Property tests draw the same examples on every run by default, so that `make test` (and CI)
# is reproducible; HYPOTHESIS_PROFILE=explore draws new random ones to hunt for fresh failures
# (pin any it finds with @example).
settings.register_profile("repeatable", derandomize=True)
settings.register_profile("explore", derandomize=False)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "repeatable"))


@pytest.fixture
def home(tmp_path, monkeypatch):
    """A private project home: quarantine, mlruns and reports go to a temporary directory."""
    monkeypatch.setenv("URM_HOME", str(tmp_path))
    # mlflow.set_tracking_uri() exports this variable; never let one test's store leak into another
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    yield tmp_path
    os.environ.pop("MLFLOW_TRACKING_URI", None)


@pytest.fixture(scope="session")
def cdnow_sample():
    from urm_models import datasets

    return datasets.load_cdnow(sample=True)


@pytest.fixture(scope="session")
def cdnow_master():
    from urm_models import datasets

    return datasets.load_cdnow(sample=False)


#: the longest tests (see docs/benchmarks.md), started first so that the xdist workers of
#: `make test` finish together instead of one waiting for the other
LONGEST_FIRST = (
    "test_kill_9_at_random_moments",
    "test_refresh_runs_every_notebook",
    "test_reports_mlflow_and_models_hold_no_raw_id",
    "test_forget_erases_users_everywhere",
    "test_refresh_on_telco",
    "test_refresh_on_your_own",
    "test_telco_cross_validated",
    "test_pareto_loglik",
)


def pytest_collection_modifyitems(config, items):
    def rank(item):
        for i, prefix in enumerate(LONGEST_FIRST):
            if item.name.startswith(prefix):
                return i
        return len(LONGEST_FIRST)

    items.sort(key=rank)  # stable: the rest keep their order


@pytest.fixture(scope="session")
def online_retail():
    from urm_models import datasets

    return datasets.load_online_retail()


@pytest.fixture(scope="session")
def grocery():
    from urm_models import datasets

    return datasets.load_grocery()
