"""Every Python snippet of the README runs when pasted alone into a fresh interpreter."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _snippets() -> list[str]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    return re.findall(r"^```python\n(.*?)^```", text, flags=re.S | re.M)


def test_the_readme_has_python_snippets():
    assert len(_snippets()) >= 4


def _registered_churn_model(home: Path) -> None:
    """What `make run` leaves for the registry snippet: a urm-churn champion trained on Telco."""
    code = """
from urm_models.data import datasets
from urm_models.models import ChurnClassifier
from urm_models.serve import tracking
te = datasets.load_telco()
X, y = te.drop(columns=["user_id", "churn"]), te["churn"].to_numpy()
model = ChurnClassifier(n_bags=1, random_state=0).fit(X, y)
with tracking.start_run("churn", run_name="readme"):
    logged = tracking.log_sklearn_model(model, X)
tracking.register_model(logged.model_uri, "churn", metric_value=0.85, dataset="telco")
"""
    subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=_env(home), check=True, capture_output=True, text=True, timeout=600
    )


def _env(home: Path) -> dict:
    env = {**os.environ, "URM_HOME": str(home), "MPLBACKEND": "Agg"}
    env.pop("MLFLOW_TRACKING_URI", None)
    return env


@pytest.mark.slow
@pytest.mark.parametrize("index", range(len(_snippets())))
def test_each_python_snippet_runs_alone(index, tmp_path):
    code = _snippets()[index]
    if "models:/" in code:
        _registered_churn_model(tmp_path)
    # a fresh interpreter: nothing imported or defined by an earlier snippet; outputs (the
    # quarantine file, the MLflow store) go to a temporary project home
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=_env(tmp_path), capture_output=True, text=True, timeout=600
    )
    assert out.returncode == 0, f"README snippet {index} failed:\n{code}\n{out.stderr[-3000:]}"
