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
