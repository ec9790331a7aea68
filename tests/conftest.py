import os
import tempfile

import pytest
import threadpoolctl
from hypothesis import settings

from urm_models.jobs.pipeline import KERNEL_THREADS

os.environ.setdefault("MPLBACKEND", "Agg")
# The tests' Spark sessions live for seconds to a minute: the JVM's quick compiler alone and one
# garbage-collector thread spend a quarter less CPU on them than the optimising compiler, which
# pays only in long jobs (tests/test_spark.py alone: 177 -> 134 CPU-seconds, docs/benchmarks.md).
# Subprocesses (`urm score --engine spark`) inherit it; core/spark.py reads it.
os.environ.setdefault("URM_SPARK_JAVA_OPTIONS", "-XX:TieredStopAtLevel=1 -XX:+UseSerialGC")
# One compute thread per test process, as in the refresh's kernel (jobs/pipeline.py KERNEL_THREADS):
# two xdist workers on two cores, each with OpenBLAS threads spinning beside the other's, spent
# several times the CPU on the same fits. The variables reach the subprocesses (the CLI, fresh
# clones); threadpoolctl limits this process, whose NumPy may be loaded already.
for _threads, _count in KERNEL_THREADS.items():
    os.environ.setdefault(_threads, _count)
threadpoolctl.threadpool_limits(1)
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
    from urm_models.data import datasets

    return datasets.load_cdnow(sample=True)


@pytest.fixture(scope="session")
def cdnow_master():
    from urm_models.data import datasets

    return datasets.load_cdnow(sample=False)


#: The test files, longest first (their wall time in `make test`, measured 2026-12-07, docs/benchmarks.md):
#: `make test` (--dist loadfile --no-loadscope-reorder) hands whole files to its 2 workers in this
#: order, so that the longest start first and the workers finish together instead of one idling
#: while the other runs a long file it was handed last. A file not listed starts after these, in
#: collection order; list a new file here once it takes more than a few seconds.
LONGEST_FIRST = (
    "test_reliability.py",  # ten kill -9 of a refresh and the refreshes after them
    "test_refresh_cdnow.py",
    "test_notebooks.py",
    "test_team.py",
    "test_scheduling.py",
    "test_spark.py",
    "test_btyd.py",
    "test_cli.py",
    "test_uplift.py",
    "test_refresh_activity.py",
    "test_btyd_covariates.py",
    "test_shifted.py",
    "test_readme.py",
    "test_dynamic.py",
    "test_hardening.py",
    "test_rfm.py",
    "test_churn.py",
    "test_secrets.py",
    "test_season.py",
    "test_gompertz.py",
    "test_experiments.py",
    "test_hostile_inputs.py",
    "test_tracking.py",
    "test_clv.py",
)


def pytest_collection_modifyitems(config, items):
    def rank(item):
        name = item.path.name
        return LONGEST_FIRST.index(name) if name in LONGEST_FIRST else len(LONGEST_FIRST)

    items.sort(key=rank)  # stable: the tests of a file keep their order (module fixtures rely on it)


@pytest.fixture(scope="session")
def online_retail():
    from urm_models.data import datasets

    return datasets.load_online_retail()


@pytest.fixture(scope="session")
def grocery():
    from urm_models.data import datasets

    return datasets.load_grocery()
