"""The model registry's promotion rule and the MLflow UI, against a real SQLite store."""

import json
import os
import signal
import socket
import subprocess
import time
import urllib.request

import mlflow
import pytest

from urm_models import features
from urm_models.core.paths import dataset_key
from urm_models.data import datasets
from urm_models.models import BetaGeo, CLVScorer, GammaGamma
from urm_models.serve import tracking


@pytest.fixture
def logged_clv(home):
    """A real CLV model, logged anew (as another run with another parameter) on each call."""
    rfm = features.rfm_summary(datasets.load_cdnow(sample=True), cutoff="1997-09-30", freq="W")
    scorer = CLVScorer(BetaGeo().fit(rfm), GammaGamma().fit(rfm), rfm_freq="W")
    calls = []

    def log(variant=None):
        calls.append(1)
        with tracking.start_run("clv", run_name="test", params={"variant": len(calls) if variant is None else variant}):
            return tracking.log_clv_model(scorer, rfm).model_uri

    return log, rfm, scorer


@pytest.mark.integration
def test_promotion_rule_champion_and_challenger(logged_clv):
    log, rfm, scorer = logged_clv
    with pytest.raises(LookupError, match="no 'champion' version of urm-clv"):
        tracking.champion("clv")
    first = tracking.register_model(log(), "clv", metric_value=1.70, dataset="cdnow_sample")
    assert (first["version"], first["role"], first["reason"]) == ("1", "champion", "no champion for 'cdnow_sample' yet")
    worse = tracking.register_model(log(), "clv", metric_value=1.75, dataset="cdnow_sample")  # RMSE: lower wins
    assert worse["role"] == "challenger" and "vs 'cdnow_sample' champion v1" in worse["reason"]
    same = tracking.register_model(log(), "clv", metric_value=1.70, dataset="cdnow_sample")  # a tie keeps the champion
    assert same["role"] == "challenger"
    assert tracking.champion("clv")["version"] == "1"
    better = tracking.register_model(log(), "clv", metric_value=1.60, dataset="cdnow_sample")
    assert better["role"] == "champion" and tracking.champion("urm-clv")["version"] == better["version"]
    client = mlflow.MlflowClient()
    # the metric the family is ranked by is a run metric under the same name in every run
    for version, value in (("1", 1.70), (better["version"], 1.60)):
        run = client.get_run(client.get_model_version("urm-clv", version).run_id)
        assert run.data.metrics["holdout_rmse"] == value
    assert client.get_model_version("urm-clv", "1").tags["role"] == "retired champion"
    assert str(client.get_model_version_by_alias("urm-clv", "challenger").version) == same["version"]
    assert client.get_model_version("urm-clv", better["version"]).tags["dataset"] == "cdnow_sample"
    uri = log()
    other = tracking.register_model(uri, "clv", metric_value=9.9, dataset="my.data")
    assert other["role"] == "champion" and other["reason"] == "no champion for 'my.data' yet"
    # each data set keeps its champion; `champion` names the latest promoted one
    assert tracking.champion("clv", "cdnow_sample")["version"] == better["version"]
    # no silent fallback: cdnow has no champion, and the error names the data sets that have one
    with pytest.raises(
        LookupError,
        match=r"no 'champion' version of urm-clv for data set 'cdnow' in .*champions exist "
        r"for 'cdnow_sample' \(v\d\), 'my.data' \(v\d\).*--models-from",
    ):
        tracking.champion("clv", "cdnow")
    assert tracking.champions_by_dataset("clv") == {"cdnow_sample": better["version"], "my.data": other["version"]}
    mine = tracking.champion("clv", "my.data")
    assert mine["version"] == other["version"] and mine["uri"] == f"models:/urm-clv@champion-{dataset_key('my.data')}"
    with pytest.raises(LookupError, match="for data set 'telco'.*urm refresh --dataset telco"):
        tracking.champion("clv", "telco")
    # names that differ only in punctuation or case are other data sets, with champions of their own
    with pytest.raises(LookupError, match="for data set 'my_data'"):
        tracking.champion("clv", "my_data")
    with pytest.raises(ValueError, match="cannot rank"):
        tracking.register_model(uri, "clv", metric_value=float("nan"), dataset="my.data")
    with pytest.raises(ValueError, match="unknown model family"):
        tracking.register_model(uri, "nps", metric_value=1.0, dataset="my.data")
    model, info = tracking.load_champion("clv")
    assert info["version"] == other["version"] and info["uri"] == "models:/urm-clv@champion"
    out = model.predict(rfm[["frequency", "recency", "T", "monetary"]].head(20).reset_index(drop=True))
    expected = scorer.predict(rfm.head(20))
    assert list(out.columns) == CLVScorer.columns
    assert (abs(out["clv"].to_numpy() - expected["clv"].to_numpy()) < 1e-9).all()
    # the registered model knows the time unit it was fitted in
    from urm_models.serve import scoring

    with pytest.raises(ValueError, match="scores RFM tables in 'W' units, not 'D'"):
        scoring.score_transactions(
            datasets.load_cdnow(sample=True), "1997-09-30", model, options=scoring.ScoringOptions(freq="D")
        )


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(url: str):
    with urllib.request.urlopen(url, timeout=5) as r:
        return json.loads(r.read())


@pytest.mark.integration
def test_an_identical_model_is_not_registered_again(logged_clv):
    """Same data, parameters and code: a repeated (or killed and rerun) refresh adds no version."""
    log, _, _ = logged_clv
    first = tracking.register_model(log(variant="a"), "clv", metric_value=1.70, dataset="cdnow_sample")
    again = tracking.register_model(log(variant="a"), "clv", metric_value=1.70, dataset="cdnow_sample")
    assert first["registered"] and not again["registered"]
    assert (again["version"], again["role"]) == ("1", "champion") and "identical to champion v1" in again["reason"]
    client = mlflow.MlflowClient()
    assert [str(v.version) for v in client.search_model_versions("name='urm-clv'")] == ["1"]
    # another data set's champion in between: the identical version gets the champion back
    # instead of a duplicate being registered
    tracking.register_model(log(variant="b"), "clv", metric_value=2.0, dataset="other")
    back = tracking.register_model(log(variant="a"), "clv", metric_value=1.70, dataset="cdnow_sample")
    assert (back["version"], back["role"], back["registered"]) == ("1", "champion", False)
    assert sorted(str(v.version) for v in client.search_model_versions("name='urm-clv'")) == ["1", "2"]
    # different parameters: a new version
    new = tracking.register_model(log(variant="c"), "clv", metric_value=1.80, dataset="cdnow_sample")
    assert new["registered"] and new["version"] == "3" and new["role"] == "challenger"


@pytest.mark.slow
def test_ui_serves_experiments_and_registered_models_over_rest(logged_clv):
    log, _, _ = logged_clv
    tracking.register_model(log(), "clv", metric_value=1.7, dataset="cdnow_sample")
    port = _free_port()
    argv, env = tracking.ui_command("127.0.0.1", port)
    assert "--workers" in argv and argv[argv.index("--workers") + 1] == "1"
    proc = subprocess.Popen(
        argv, env={**os.environ, **env}, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True
    )
    base = f"http://127.0.0.1:{port}/api/2.0/mlflow"
    try:
        deadline = time.monotonic() + 180
        while True:
            try:
                exps = _get(f"{base}/experiments/search?max_results=100")
                break
            except OSError:
                if proc.poll() is not None:
                    pytest.fail(f"mlflow ui exited: {proc.stderr.read().decode()[-2000:]}")
                if time.monotonic() > deadline:
                    pytest.fail("mlflow ui did not answer within 180 s")
                time.sleep(0.5)
        assert "urm-clv" in {e["name"] for e in exps["experiments"]}
        models = _get(f"{base}/registered-models/search")["registered_models"]
        (clv,) = [m for m in models if m["name"] == "urm-clv"]
        assert {"alias": "champion", "version": "1"} in clv["aliases"]
        # no background job runner was started beside the single web worker
        children = subprocess.run(
            ["pgrep", "-g", str(os.getpgid(proc.pid)), "-a"], capture_output=True, text=True
        ).stdout
        assert "huey" not in children
    finally:
        os.killpg(os.getpgid(proc.pid), signal.SIGTERM)
        proc.wait(30)


@pytest.mark.integration
def test_a_run_can_start_when_its_fitting_did(home):
    import time as _time

    started = tracking.now() - 30.0  # the fitting began half a minute ago
    with tracking.start_run("clv", run_name="backdated", params={"a": 1}, started=started) as run:
        tracking.log_metrics({"m": 1.0})
    got = mlflow.MlflowClient().get_run(run.info.run_id)
    assert abs(got.info.start_time / 1000 - started) < 0.01
    assert got.info.end_time / 1000 - started >= 30.0 and got.info.status == "FINISHED"
    assert got.data.params == {"a": "1"} and got.data.metrics == {"m": 1.0}
    assert got.data.tags["mlflow.runName"] == "backdated" and "code_version" in got.data.tags
    assert got.info.end_time / 1000 <= _time.time() + 1


def test_the_logged_schema_is_mlflows_own_inference_on_every_shipped_table(home, cdnow_sample):
    """``dataset_schema`` answers from the dtypes where they decide; on every table a notebook
    logs (and on columns where they do not decide) it equals MLflow's inference, which is what
    ``log_dataset`` then records."""
    import warnings

    import numpy as np
    import pandas as pd
    from mlflow.types.utils import _infer_schema

    from urm_models.data import campaign_files

    odd = pd.DataFrame(
        {
            "a": [1.0, np.nan],
            "b": ["x", None],
            "c": pd.array([1, None], dtype="Int64"),
            "d": pd.Categorical(["u", "v"]),
            "e": np.array([1.0, np.nan], dtype="float32"),
            "f": [True, False],
            "g": pd.to_datetime(["2020-01-01", None]),
        }
    )
    tables = {
        "hillstrom": campaign_files.load_hillstrom().data.drop(columns=["user_id"]),
        "telco": datasets.load_dataset("telco"),
        "cdnow_sample": cdnow_sample,
        "rfm": features.rfm_summary(cdnow_sample, cutoff="1997-09-30", freq="W").reset_index(),
        "odd": odd,
        "mixed": odd.assign(h=["x", 1]),  # MLflow cannot infer it: no schema, as MLflow logs it
    }
    for name, df in tables.items():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # MLflow's hint about integer columns
            try:
                expected = _infer_schema(df)
            except Exception:
                expected = None
        assert tracking.dataset_schema(df) == expected, name
    assert tracking.dataset_schema(tables["mixed"]) is None
    tracking.configure()
    with tracking.start_run("kpis", run_name="schema"):
        tracking.log_dataset(tables["hillstrom"], name="hillstrom_campaign", source="hillstrom")
        run = mlflow.active_run().info.run_id
    (logged,) = mlflow.get_run(run).inputs.dataset_inputs
    assert json.loads(logged.dataset.schema)["mlflow_colspec"] == _infer_schema(tables["hillstrom"]).to_dict()
