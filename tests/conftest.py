import os

import pytest

os.environ.setdefault("MPLBACKEND", "Agg")


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
